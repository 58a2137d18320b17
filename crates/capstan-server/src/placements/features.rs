//! Features as JSON (the shapes Azure Personalizer takes) to the learner's features.
//!
//! A feature list is an array of objects, or one object. In an object, a key whose value
//! is an object is a namespace (`{"user": {"country": "FR", "age": 31}}`); other keys are
//! features of the default namespace `_`. Strings and booleans are categories, numbers
//! are quantities, arrays give one feature per element, nested objects are flattened
//! with dots, `null` is nothing. Limits keep one request from flooding the model.

use capstan_bandit::{Feature, Features};
use serde_json::Value;

use crate::core::error::Failure;

/// Most features one context, or one candidate, may have.
pub const MAX_FEATURES: usize = 1_024;
/// Longest namespace, name or text value, in bytes.
pub const MAX_TEXT: usize = 256;
/// Deepest nesting of objects and arrays.
pub const MAX_DEPTH: usize = 6;

const DEFAULT_NAMESPACE: &str = "_";

pub fn parse_features(field: &str, value: &Value) -> Result<Features, Failure> {
    let mut features = Vec::new();
    match value {
        Value::Null => {}
        Value::Array(parts) => {
            for (index, part) in parts.iter().enumerate() {
                top_level(&format!("{field}[{index}]"), part, &mut features)?;
            }
        }
        Value::Object(_) => top_level(field, value, &mut features)?,
        _ => {
            return Err(Failure::field(
                field,
                "expected an object or an array of objects",
            ));
        }
    }
    Ok(Features(features))
}

fn top_level(field: &str, value: &Value, features: &mut Vec<Feature>) -> Result<(), Failure> {
    let Value::Object(entries) = value else {
        return Err(Failure::field(field, "expected an object of features"));
    };
    for (key, value) in entries {
        let path = format!("{field}.{key}");
        check_text(&path, key)?;
        match value {
            Value::Object(inner) => {
                for (name, value) in inner {
                    let path = format!("{path}.{name}");
                    check_text(&path, name)?;
                    flatten(&path, key, name, value, 1, features)?;
                }
            }
            other => flatten(&path, DEFAULT_NAMESPACE, key, other, 1, features)?,
        }
    }
    Ok(())
}

fn flatten(
    path: &str,
    namespace: &str,
    name: &str,
    value: &Value,
    depth: usize,
    features: &mut Vec<Feature>,
) -> Result<(), Failure> {
    if depth > MAX_DEPTH {
        return Err(Failure::field(
            path,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if features.len() >= MAX_FEATURES && !value.is_null() {
        return Err(Failure::field(
            path,
            format!("more than {MAX_FEATURES} features"),
        ));
    }
    match value {
        Value::Null => {}
        Value::Bool(flag) => features.push(Feature::boolean(namespace, name, *flag)),
        Value::Number(number) => {
            let number = number.as_f64().unwrap_or(f64::NAN);
            if !number.is_finite() {
                return Err(Failure::field(path, "must be a finite number"));
            }
            features.push(Feature::number(namespace, name, number));
        }
        Value::String(text) => {
            check_text(path, text)?;
            features.push(Feature::text(namespace, name, text.as_str()));
        }
        Value::Array(elements) => {
            for (index, element) in elements.iter().enumerate() {
                let element_path = format!("{path}[{index}]");
                // Categories in a list are a set: each is its own indicator under the
                // list's name; numbers keep their position.
                let element_name = match element {
                    Value::String(_) | Value::Bool(_) => name.to_owned(),
                    _ => format!("{name}[{index}]"),
                };
                flatten(
                    &element_path,
                    namespace,
                    &element_name,
                    element,
                    depth + 1,
                    features,
                )?;
            }
        }
        Value::Object(entries) => {
            for (key, value) in entries {
                let inner_path = format!("{path}.{key}");
                check_text(&inner_path, key)?;
                flatten(
                    &inner_path,
                    namespace,
                    &format!("{name}.{key}"),
                    value,
                    depth + 1,
                    features,
                )?;
            }
        }
    }
    Ok(())
}

fn check_text(path: &str, text: &str) -> Result<(), Failure> {
    if text.len() > MAX_TEXT {
        return Err(Failure::field(
            path,
            format!("longer than {MAX_TEXT} bytes"),
        ));
    }
    Ok(())
}

/// The seed of a decision's random choices, from its event id (FNV-1a).
pub fn seed_of(event_id: &str) -> u64 {
    event_id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use capstan_bandit::FeatureValue;
    use serde_json::json;

    fn parsed(value: Value) -> Vec<(String, String, FeatureValue)> {
        parse_features("context", &value)
            .unwrap()
            .0
            .into_iter()
            .map(|f| (f.namespace, f.name, f.value))
            .collect()
    }

    #[test]
    fn personalizer_shapes_become_namespaced_features() {
        let features = parsed(json!([
            {"user": {"country": "FR", "age": 31, "premium": true, "tags": ["sleep", "calm"]}},
            {"timeOfDay": "evening", "device": {"os": {"name": "ios"}}}
        ]));
        assert_eq!(
            features,
            vec![
                (
                    "user".into(),
                    "country".into(),
                    FeatureValue::Text("FR".into())
                ),
                ("user".into(), "age".into(), FeatureValue::Number(31.0)),
                (
                    "user".into(),
                    "premium".into(),
                    FeatureValue::Text("true".into())
                ),
                (
                    "user".into(),
                    "tags".into(),
                    FeatureValue::Text("sleep".into())
                ),
                (
                    "user".into(),
                    "tags".into(),
                    FeatureValue::Text("calm".into())
                ),
                (
                    "_".into(),
                    "timeOfDay".into(),
                    FeatureValue::Text("evening".into())
                ),
                (
                    "device".into(),
                    "os.name".into(),
                    FeatureValue::Text("ios".into())
                ),
            ]
        );
        assert!(parsed(json!(null)).is_empty());
    }

    #[test]
    fn bad_and_huge_features_name_their_path() {
        let error = parse_features("context", &json!("text")).unwrap_err();
        assert!(error.to_string().starts_with("context: "), "{error}");
        let error = parse_features("context", &json!([1])).unwrap_err();
        assert!(error.to_string().starts_with("context[0]: "), "{error}");
        let many: serde_json::Map<String, Value> =
            (0..2_000).map(|i| (format!("f{i}"), json!(i))).collect();
        let error = parse_features("context", &json!({ "user": many })).unwrap_err();
        assert!(
            error.to_string().contains("more than 1024 features"),
            "{error}"
        );
        let long = "x".repeat(300);
        let error = parse_features("candidates[2].features", &json!({ "a": long })).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("candidates[2].features.a: longer than"),
            "{error}"
        );
        let deep = json!({"a": {"b": [[[[[[["x"]]]]]]]}});
        let error = parse_features("context", &deep).unwrap_err();
        assert!(error.to_string().contains("nested deeper"), "{error}");
    }

    #[test]
    fn seeds_are_stable_and_differ() {
        assert_eq!(seed_of("event-1"), seed_of("event-1"));
        assert_ne!(seed_of("event-1"), seed_of("event-2"));
    }
}
