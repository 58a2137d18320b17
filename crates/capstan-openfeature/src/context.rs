//! OpenFeature's evaluation context, as the context Capstan's rules read.

use open_feature::{EvaluationError, EvaluationErrorCode};
use serde_json::Map;

use crate::value::field_to_json;

/// Builds Capstan's context for one evaluation: the targeting key, and each custom field
/// as an attribute of the same name. A field that has no JSON form fails the evaluation
/// with `INVALID_CONTEXT`: evaluating without it could match the wrong rule.
pub(crate) fn capstan_context(
    context: &open_feature::EvaluationContext,
) -> Result<capstan_sdk::EvaluationContext, EvaluationError> {
    // The fields are a HashMap; sorting them gives rules that read the whole context the
    // same order on every evaluation.
    let mut fields: Vec<_> = context.custom_fields.iter().collect();
    fields.sort_by(|left, right| left.0.cmp(right.0));
    let mut attributes = Map::with_capacity(fields.len());
    for (name, field) in fields {
        let value = field_to_json(field).map_err(|error| {
            let place = if error.path.is_empty() {
                format!("context field \"{name}\"")
            } else {
                format!("context field \"{name}\" at {}", error.path)
            };
            EvaluationError {
                code: EvaluationErrorCode::InvalidContext,
                message: Some(format!("{place}: {}", error.problem)),
            }
        })?;
        attributes.insert(name.clone(), value);
    }
    Ok(capstan_sdk::EvaluationContext::new(
        context.targeting_key.clone(),
        attributes,
    ))
}

#[cfg(test)]
mod tests {
    use open_feature::{EvaluationContext, EvaluationContextFieldValue, StructValue, Value};
    use serde_json::json;

    use super::*;

    #[test]
    fn the_targeting_key_and_fields_reach_the_rules() {
        let context = EvaluationContext::default()
            .with_targeting_key("user-1")
            .with_custom_field("email", "a@example.com")
            .with_custom_field("age", 41)
            .with_custom_field(
                "account",
                EvaluationContextFieldValue::new_struct(
                    StructValue::default().with_field("plan", "pro"),
                ),
            );
        let capstan = capstan_context(&context).unwrap();
        assert_eq!(capstan.targeting_key(), Some("user-1"));
        // Rules read the targeting key as an attribute too, as in flagd.
        assert_eq!(capstan.attribute("targetingKey"), Some(&json!("user-1")));
        assert_eq!(capstan.attribute("email"), Some(&json!("a@example.com")));
        assert_eq!(capstan.attribute("age"), Some(&json!(41)));
        assert_eq!(
            capstan.attribute("account"),
            Some(&json!({ "plan": "pro" }))
        );
    }

    #[test]
    fn an_empty_context_has_no_targeting_key() {
        let capstan = capstan_context(&EvaluationContext::default()).unwrap();
        assert_eq!(capstan.targeting_key(), None);
        assert_eq!(capstan.attribute("targetingKey"), None);
    }

    #[test]
    fn a_field_without_a_json_form_is_an_invalid_context() {
        let context = EvaluationContext::default().with_custom_field(
            "account",
            EvaluationContextFieldValue::new_struct(
                StructValue::default().with_field("score", Value::Float(f64::NAN)),
            ),
        );
        assert_eq!(
            capstan_context(&context).unwrap_err(),
            EvaluationError {
                code: EvaluationErrorCode::InvalidContext,
                message: Some("context field \"account\" at score: not a finite number".to_owned()),
            }
        );
        let context = EvaluationContext::default().with_custom_field("ratio", f64::INFINITY);
        assert_eq!(
            capstan_context(&context).unwrap_err().message.as_deref(),
            Some("context field \"ratio\": not a finite number")
        );
    }
}
