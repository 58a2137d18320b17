//! Conversions between OpenFeature's values and the JSON values Capstan reads and serves.
//!
//! The two do not map one to one: JSON has `null`, which OpenFeature's values cannot hold,
//! and OpenFeature has non-finite floats, dates and opaque structs, which JSON cannot hold.
//! Such a value is refused with the place it was found, never silently changed.

use std::any::Any;

use open_feature::{EvaluationContextFieldValue, StructValue, Value};
use serde_json::{Map, Number, Value as Json};
use time::UtcOffset;
use time::format_description::well_known::Rfc3339;

/// A value that has no counterpart on the other side, and where in the value it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unrepresentable {
    /// Where the value is, from the outermost value inward (`limits.tiers[2]`); empty
    /// when the outermost value itself is the problem.
    pub(crate) path: String,
    pub(crate) problem: &'static str,
}

impl Unrepresentable {
    fn new(problem: &'static str) -> Unrepresentable {
        Unrepresentable {
            path: String::new(),
            problem,
        }
    }

    /// Prefixes the path with the field of an object that held the value.
    fn in_field(mut self, name: &str) -> Unrepresentable {
        self.path = if self.path.is_empty() || self.path.starts_with('[') {
            format!("{name}{}", self.path)
        } else {
            format!("{name}.{}", self.path)
        };
        self
    }

    /// Prefixes the path with the position in an array that held the value.
    fn in_item(mut self, index: usize) -> Unrepresentable {
        self.path = if self.path.is_empty() || self.path.starts_with('[') {
            format!("[{index}]{}", self.path)
        } else {
            format!("[{index}].{}", self.path)
        };
        self
    }
}

/// The attribute a custom field of an OpenFeature evaluation context becomes.
pub(crate) fn field_to_json(field: &EvaluationContextFieldValue) -> Result<Json, Unrepresentable> {
    match field {
        EvaluationContextFieldValue::Bool(value) => Ok(Json::Bool(*value)),
        EvaluationContextFieldValue::Int(value) => Ok(Json::from(*value)),
        EvaluationContextFieldValue::Float(value) => float_to_json(*value),
        EvaluationContextFieldValue::String(value) => Ok(Json::String(value.clone())),
        // OFREP clients send dates as RFC 3339 text; written in UTC, such dates also
        // compare in time order as strings, which is what targeting rules can do with them.
        EvaluationContextFieldValue::DateTime(value) => value
            .to_offset(UtcOffset::UTC)
            .format(&Rfc3339)
            .map(Json::String)
            .map_err(|_| Unrepresentable::new("a date RFC 3339 cannot write")),
        EvaluationContextFieldValue::Struct(value) => any_to_json(&**value),
    }
}

/// OpenFeature lets a context field hold a value of any type; the provider can read the
/// types that describe structured data and refuses the rest rather than guess.
fn any_to_json(value: &(dyn Any + Send + Sync)) -> Result<Json, Unrepresentable> {
    if let Some(value) = value.downcast_ref::<StructValue>() {
        return struct_to_json(value);
    }
    if let Some(value) = value.downcast_ref::<Value>() {
        return value_to_json(value);
    }
    if let Some(value) = value.downcast_ref::<Json>() {
        return Ok(value.clone());
    }
    if let Some(value) = value.downcast_ref::<Map<String, Json>>() {
        return Ok(Json::Object(value.clone()));
    }
    Err(Unrepresentable::new(
        "a struct of a type the provider cannot read (use open_feature::StructValue, \
         open_feature::Value or serde_json::Value)",
    ))
}

pub(crate) fn value_to_json(value: &Value) -> Result<Json, Unrepresentable> {
    match value {
        Value::Bool(value) => Ok(Json::Bool(*value)),
        Value::Int(value) => Ok(Json::from(*value)),
        Value::Float(value) => float_to_json(*value),
        Value::String(value) => Ok(Json::String(value.clone())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| value_to_json(item).map_err(|error| error.in_item(index)))
            .collect::<Result<Vec<Json>, Unrepresentable>>()
            .map(Json::Array),
        Value::Struct(value) => struct_to_json(value),
    }
}

pub(crate) fn struct_to_json(value: &StructValue) -> Result<Json, Unrepresentable> {
    // The fields are a HashMap; sorting them gives rules that read a whole object the
    // same order on every evaluation.
    let mut fields: Vec<(&String, &Value)> = value.fields.iter().collect();
    fields.sort_by(|left, right| left.0.cmp(right.0));
    let mut object = Map::with_capacity(fields.len());
    for (name, field) in fields {
        let field = value_to_json(field).map_err(|error| error.in_field(name))?;
        object.insert(name.clone(), field);
    }
    Ok(Json::Object(object))
}

fn float_to_json(value: f64) -> Result<Json, Unrepresentable> {
    Number::from_f64(value)
        .map(Json::Number)
        .ok_or_else(|| Unrepresentable::new("not a finite number"))
}

/// The OpenFeature value of a flag's JSON value. Integers stay integers, so a struct
/// flag's `{"columns": 3}` reads back as `Value::Int(3)`.
pub(crate) fn json_to_value(value: Json) -> Result<Value, Unrepresentable> {
    match value {
        Json::Null => Err(Unrepresentable::new(
            "null, which OpenFeature's values cannot hold",
        )),
        Json::Bool(value) => Ok(Value::Bool(value)),
        Json::Number(number) => number
            .as_i64()
            .map(Value::Int)
            .or_else(|| number.as_f64().map(Value::Float))
            .ok_or_else(|| Unrepresentable::new("a number OpenFeature cannot hold")),
        Json::String(value) => Ok(Value::String(value)),
        Json::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| json_to_value(item).map_err(|error| error.in_item(index)))
            .collect::<Result<Vec<Value>, Unrepresentable>>()
            .map(Value::Array),
        Json::Object(object) => object_to_struct(object).map(Value::Struct),
    }
}

/// The OpenFeature struct of a flag's value, which must be a JSON object.
pub(crate) fn json_to_struct(value: Json) -> Result<StructValue, Unrepresentable> {
    match value {
        Json::Object(object) => object_to_struct(object),
        Json::Array(_) => Err(Unrepresentable::new("an array, not an object")),
        _ => Err(Unrepresentable::new("not an object")),
    }
}

fn object_to_struct(object: Map<String, Json>) -> Result<StructValue, Unrepresentable> {
    let mut value = StructValue::default();
    for (name, field) in object {
        let field = json_to_value(field).map_err(|error| error.in_field(&name))?;
        value.fields.insert(name, field);
    }
    Ok(value)
}

/// The integer a number flag serves to an integer evaluation. The SDK reads numbers as
/// `f64`; only a whole number that fits in an `i64` is an integer, anything else would
/// change the value.
pub(crate) fn integer(number: f64) -> Option<i64> {
    // `i64::MIN as f64` is exactly -2^63 and `i64::MAX as f64` rounds up to 2^63, so
    // this range holds exactly the whole numbers that convert without saturating.
    let in_range = number >= i64::MIN as f64 && number < i64::MAX as f64;
    (in_range && number.fract() == 0.0).then_some(number as i64)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;

    fn problem(path: &str, problem: &'static str) -> Unrepresentable {
        Unrepresentable {
            path: path.to_owned(),
            problem,
        }
    }

    #[test]
    fn scalar_fields_become_json() {
        let cases = [
            (EvaluationContextFieldValue::Bool(true), json!(true)),
            (EvaluationContextFieldValue::Int(-7), json!(-7)),
            (EvaluationContextFieldValue::Float(2.5), json!(2.5)),
            (EvaluationContextFieldValue::from("pro"), json!("pro")),
        ];
        for (field, expected) in cases {
            assert_eq!(field_to_json(&field), Ok(expected), "{field:?}");
        }
    }

    #[test]
    fn dates_become_rfc_3339_in_utc() {
        // 2026-03-01T10:30:00+02:00.
        let date = OffsetDateTime::from_unix_timestamp(1_772_353_800)
            .unwrap()
            .to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(
            field_to_json(&EvaluationContextFieldValue::DateTime(date)),
            Ok(json!("2026-03-01T08:30:00Z"))
        );
    }

    #[test]
    fn non_finite_floats_are_refused() {
        for number in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                field_to_json(&EvaluationContextFieldValue::Float(number)),
                Err(problem("", "not a finite number"))
            );
        }
    }

    #[test]
    fn nested_structs_become_objects_with_sorted_fields() {
        let account = StructValue::default()
            .with_field("plan", "pro")
            .with_field("seats", 12)
            .with_field("ratio", 0.75)
            .with_field("beta", true)
            .with_field("tags", vec!["eu", "paying"])
            .with_field(
                "owner",
                StructValue::default()
                    .with_field("email", "a@example.com")
                    .with_field("logins", Value::Array(vec![Value::Int(1), 2.into()])),
            );
        let json = field_to_json(&EvaluationContextFieldValue::new_struct(account)).unwrap();
        assert_eq!(
            json,
            json!({
                "beta": true,
                "owner": { "email": "a@example.com", "logins": [1, 2] },
                "plan": "pro",
                "ratio": 0.75,
                "seats": 12,
                "tags": ["eu", "paying"],
            })
        );
        // Sorted, whatever order the HashMap holds them in.
        let names: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(names, ["beta", "owner", "plan", "ratio", "seats", "tags"]);
    }

    #[test]
    fn structs_of_the_readable_types_are_accepted() {
        let expected = json!({ "plan": "pro" });
        let fields = [
            EvaluationContextFieldValue::new_struct(
                StructValue::default().with_field("plan", "pro"),
            ),
            EvaluationContextFieldValue::new_struct(Value::Struct(
                StructValue::default().with_field("plan", "pro"),
            )),
            EvaluationContextFieldValue::new_struct(json!({ "plan": "pro" })),
            EvaluationContextFieldValue::from(Arc::new(
                json!({ "plan": "pro" }).as_object().unwrap().clone(),
            )),
        ];
        for field in fields {
            assert_eq!(field_to_json(&field), Ok(expected.clone()));
        }
    }

    #[test]
    fn structs_of_other_types_are_refused() {
        let field = EvaluationContextFieldValue::new_struct(HashMap::<String, i32>::new());
        let error = field_to_json(&field).unwrap_err();
        assert!(error.problem.starts_with("a struct of a type"), "{error:?}");
    }

    #[test]
    fn a_refused_value_deep_inside_is_named_by_its_path() {
        let value = StructValue::default().with_field(
            "limits",
            StructValue::default().with_field(
                "tiers",
                Value::Array(vec![1.into(), Value::Array(vec![Value::Float(f64::NAN)])]),
            ),
        );
        assert_eq!(
            struct_to_json(&value),
            Err(problem("limits.tiers[1][0]", "not a finite number"))
        );
    }

    #[test]
    fn flag_values_become_openfeature_values() {
        let value = json_to_value(json!({
            "columns": 3,
            "gap": 1.5,
            "huge": 18_446_744_073_709_551_615u64,
            "dense": false,
            "title": "Grid",
            "sizes": [1, [2.5, "x"]],
            "theme": { "dark": true },
        }))
        .unwrap();
        let expected = StructValue::default()
            .with_field("columns", 3)
            .with_field("gap", 1.5)
            // Past i64, an integer can only be a float.
            .with_field("huge", 18_446_744_073_709_551_615.0)
            .with_field("dense", false)
            .with_field("title", "Grid")
            .with_field(
                "sizes",
                Value::Array(vec![1.into(), Value::Array(vec![2.5.into(), "x".into()])]),
            )
            .with_field("theme", StructValue::default().with_field("dark", true));
        assert_eq!(value, Value::Struct(expected));
    }

    #[test]
    fn null_in_a_flag_value_is_refused_with_its_path() {
        assert_eq!(
            json_to_value(json!({ "a": { "b": [1, null] } })),
            Err(problem(
                "a.b[1]",
                "null, which OpenFeature's values cannot hold"
            ))
        );
        assert_eq!(
            json_to_struct(json!([{ "x": null }])),
            Err(problem("", "an array, not an object"))
        );
    }

    #[test]
    fn struct_flags_must_hold_objects() {
        assert_eq!(
            json_to_struct(json!({ "columns": 3 })),
            Ok(StructValue::default().with_field("columns", 3))
        );
        assert_eq!(
            json_to_struct(json!([1, 2])),
            Err(problem("", "an array, not an object"))
        );
        assert_eq!(
            json_to_struct(json!("grid")),
            Err(problem("", "not an object"))
        );
    }

    #[test]
    fn only_whole_numbers_in_range_are_integers() {
        let cases = [
            (3.0, Some(3)),
            (-0.0, Some(0)),
            (-42.0, Some(-42)),
            (2.5, None),
            (-9_223_372_036_854_775_808.0, Some(i64::MIN)),
            // 2^63: one past i64::MAX.
            (9_223_372_036_854_775_808.0, None),
            (1e19, None),
            (-1e19, None),
            (f64::NAN, None),
            (f64::INFINITY, None),
            (f64::NEG_INFINITY, None),
        ];
        for (number, expected) in cases {
            assert_eq!(integer(number), expected, "{number}");
        }
        // The largest f64 below 2^63 converts exactly.
        let largest = 9_223_372_036_854_774_784.0;
        assert_eq!(integer(largest), Some(9_223_372_036_854_774_784));
    }
}
