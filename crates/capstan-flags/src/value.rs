//! The values targeting rules compute with, and JsonLogic's JavaScript-derived semantics
//! for truthiness, equality, ordering and conversions.
//!
//! Values borrow from the compiled rules and from the context wherever they can, so
//! evaluating a rule allocates only when it computes a new string or array.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Str(&'a str),
    String(String),
    /// A JSON array or object borrowed from the rules or the context; never a scalar.
    Json(&'a Value),
    /// An array computed by the rules, such as the result of `map` or `merge`.
    List(Vec<Val<'a>>),
}

impl<'a> Val<'a> {
    #[inline]
    pub(crate) fn from_json(value: &'a Value) -> Val<'a> {
        match value {
            Value::Null => Val::Null,
            Value::Bool(flag) => Val::Bool(*flag),
            Value::Number(number) => Val::Number(number.as_f64().unwrap_or(f64::NAN)),
            Value::String(text) => Val::Str(text),
            Value::Array(_) | Value::Object(_) => Val::Json(value),
        }
    }

    #[inline]
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    #[inline]
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(text) => Some(text),
            Val::String(text) => Some(text),
            _ => None,
        }
    }

    pub(crate) fn is_array(&self) -> bool {
        matches!(self, Val::List(_) | Val::Json(Value::Array(_)))
    }

    /// JsonLogic truthiness: JavaScript's, except that an empty array is false.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(flag) => *flag,
            Val::Number(number) => *number != 0.0 && !number.is_nan(),
            Val::Str(text) => !text.is_empty(),
            Val::String(text) => !text.is_empty(),
            Val::Json(Value::Array(items)) => !items.is_empty(),
            Val::Json(_) => true,
            Val::List(items) => !items.is_empty(),
        }
    }

    /// The items of an array; anything else has none.
    pub(crate) fn items(&self) -> Items<'_, 'a> {
        match self {
            Val::Json(Value::Array(items)) => Items::Json(items.iter()),
            Val::List(items) => Items::List(items.iter()),
            _ => Items::List([].iter()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Val::Json(Value::Array(items)) => items.len(),
            Val::List(items) => items.len(),
            _ => 0,
        }
    }

    /// Looks one step into an object or array, as `var` does with each part of its path.
    pub(crate) fn child(&self, key: &str, index: Option<usize>) -> Option<Val<'a>> {
        match self {
            Val::Json(Value::Object(fields)) => fields.get(key).map(Val::from_json),
            Val::Json(Value::Array(items)) => items.get(index?).map(Val::from_json),
            Val::List(items) => items.get(index?).cloned(),
            _ => None,
        }
    }

    /// JavaScript's ToNumber.
    pub(crate) fn to_number(&self) -> f64 {
        match self {
            Val::Null => 0.0,
            Val::Bool(flag) => f64::from(u8::from(*flag)),
            Val::Number(number) => *number,
            Val::Str(text) => string_to_number(text),
            Val::String(text) => string_to_number(text),
            Val::Json(Value::Object(_)) => f64::NAN,
            Val::Json(_) | Val::List(_) => string_to_number(&self.to_js_string()),
        }
    }

    /// JavaScript's String(value), which `cat`, `in` on strings and variant names use.
    pub(crate) fn to_js_string(&self) -> Cow<'_, str> {
        match self {
            Val::Null => Cow::Borrowed("null"),
            Val::Bool(true) => Cow::Borrowed("true"),
            Val::Bool(false) => Cow::Borrowed("false"),
            Val::Number(number) => Cow::Owned(format_number(*number)),
            Val::Str(text) => Cow::Borrowed(text),
            Val::String(text) => Cow::Borrowed(text),
            Val::Json(Value::Object(_)) => Cow::Borrowed("[object Object]"),
            Val::Json(_) | Val::List(_) => {
                let parts: Vec<String> = self
                    .items()
                    .map(|item| match item {
                        Val::Null => String::new(),
                        other => other.to_js_string().into_owned(),
                    })
                    .collect();
                Cow::Owned(parts.join(","))
            }
        }
    }

    /// Converts to JSON, for results that leave the engine as data.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(flag) => Value::Bool(*flag),
            Val::Number(number) => number_to_json(*number),
            Val::Str(text) => Value::String((*text).to_owned()),
            Val::String(text) => Value::String(text.clone()),
            Val::Json(value) => (*value).clone(),
            Val::List(items) => Value::Array(items.iter().map(Val::to_json).collect()),
        }
    }
}

pub(crate) enum Items<'v, 'a> {
    Json(std::slice::Iter<'a, Value>),
    List(std::slice::Iter<'v, Val<'a>>),
}

impl<'a> Iterator for Items<'_, 'a> {
    type Item = Val<'a>;

    fn next(&mut self) -> Option<Val<'a>> {
        match self {
            Items::Json(items) => items.next().map(Val::from_json),
            Items::List(items) => items.next().cloned(),
        }
    }
}

fn string_to_number(text: &str) -> f64 {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return 0.0;
    }
    // Rust also accepts "inf" and "nan", which JavaScript does not.
    if trimmed
        .bytes()
        .any(|byte| byte.is_ascii_alphabetic() && byte != b'e' && byte != b'E')
    {
        return match trimmed {
            "Infinity" | "+Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => f64::NAN,
        };
    }
    trimmed.parse().unwrap_or(f64::NAN)
}

/// JavaScript's Number#toString for the values rules meet: integers without a fraction.
pub(crate) fn format_number(number: f64) -> String {
    if number.is_nan() {
        "NaN".to_owned()
    } else if number.is_infinite() {
        if number > 0.0 {
            "Infinity".to_owned()
        } else {
            "-Infinity".to_owned()
        }
    } else if number == 0.0 {
        "0".to_owned()
    } else if number.fract() == 0.0 && number.abs() < 1e21 {
        format!("{number:.0}")
    } else {
        format!("{number}")
    }
}

fn number_to_json(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        Value::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}

/// The primitive JavaScript converts a value to before comparing it.
enum Primitive<'v> {
    Null,
    Bool(bool),
    Number(f64),
    Text(Cow<'v, str>),
    /// Objects and arrays compared with each other compare by identity, which data from
    /// JSON never shares.
    Object,
}

fn to_primitive<'v>(value: &'v Val<'_>, other_is_object: bool) -> Primitive<'v> {
    match value {
        Val::Null => Primitive::Null,
        Val::Bool(flag) => Primitive::Bool(*flag),
        Val::Number(number) => Primitive::Number(*number),
        Val::Str(text) => Primitive::Text(Cow::Borrowed(text)),
        Val::String(text) => Primitive::Text(Cow::Borrowed(text)),
        Val::Json(_) | Val::List(_) if other_is_object => Primitive::Object,
        Val::Json(_) | Val::List(_) => Primitive::Text(value.to_js_string()),
    }
}

fn is_object(value: &Val<'_>) -> bool {
    matches!(value, Val::Json(_) | Val::List(_))
}

/// JavaScript's `==`.
pub(crate) fn loose_equal(left: &Val<'_>, right: &Val<'_>) -> bool {
    let both_objects = is_object(left) && is_object(right);
    let left = to_primitive(left, both_objects);
    let right = to_primitive(right, both_objects);
    primitive_loose_equal(&left, &right)
}

fn primitive_loose_equal(left: &Primitive<'_>, right: &Primitive<'_>) -> bool {
    match (left, right) {
        (Primitive::Object, _) | (_, Primitive::Object) => false,
        (Primitive::Null, Primitive::Null) => true,
        (Primitive::Null, _) | (_, Primitive::Null) => false,
        (Primitive::Text(left), Primitive::Text(right)) => left == right,
        (Primitive::Bool(left), Primitive::Bool(right)) => left == right,
        (Primitive::Number(left), Primitive::Number(right)) => left == right,
        (Primitive::Number(number), Primitive::Text(text))
        | (Primitive::Text(text), Primitive::Number(number)) => *number == string_to_number(text),
        (Primitive::Bool(flag), other) | (other, Primitive::Bool(flag)) => {
            primitive_loose_equal(&Primitive::Number(f64::from(u8::from(*flag))), other)
        }
    }
}

/// JavaScript's `===`.
pub(crate) fn strict_equal(left: &Val<'_>, right: &Val<'_>) -> bool {
    match (left, right) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(left), Val::Bool(right)) => left == right,
        (Val::Number(left), Val::Number(right)) => left == right,
        _ => match (left.as_str(), right.as_str()) {
            (Some(left), Some(right)) => left == right,
            _ => false,
        },
    }
}

/// JavaScript's relational comparison: strings compare as text, anything else as numbers.
/// `None` when the comparison is undefined (a NaN), which makes every relation false.
pub(crate) fn compare(left: &Val<'_>, right: &Val<'_>) -> Option<Ordering> {
    let left = to_primitive(left, false);
    let right = to_primitive(right, false);
    if let (Primitive::Text(left), Primitive::Text(right)) = (&left, &right) {
        return Some(left.as_ref().cmp(right.as_ref()));
    }
    primitive_to_number(&left).partial_cmp(&primitive_to_number(&right))
}

fn primitive_to_number(value: &Primitive<'_>) -> f64 {
    match value {
        Primitive::Null => 0.0,
        Primitive::Bool(flag) => f64::from(u8::from(*flag)),
        Primitive::Number(number) => *number,
        Primitive::Text(text) => string_to_number(text),
        Primitive::Object => f64::NAN,
    }
}

/// Describes a JSON value's type for error messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn truthiness_follows_jsonlogic() {
        let empty = json!([]);
        let full = json!([0]);
        let object = json!({});
        assert!(!Val::Null.truthy());
        assert!(!Val::Number(0.0).truthy());
        assert!(!Val::Str("").truthy());
        assert!(!Val::Json(&empty).truthy());
        assert!(Val::Json(&full).truthy());
        assert!(Val::Json(&object).truthy());
        assert!(Val::Str("0").truthy());
    }

    #[test]
    fn loose_equality_coerces_like_javascript() {
        assert!(loose_equal(&Val::Number(1.0), &Val::Str("1")));
        assert!(loose_equal(&Val::Bool(true), &Val::Number(1.0)));
        assert!(loose_equal(&Val::Bool(false), &Val::Str("0")));
        assert!(!loose_equal(&Val::Null, &Val::Number(0.0)));
        assert!(loose_equal(&Val::Null, &Val::Null));
        let array = json!([1, 2]);
        assert!(loose_equal(&Val::Json(&array), &Val::Str("1,2")));
        assert!(!strict_equal(&Val::Number(1.0), &Val::Str("1")));
    }

    #[test]
    fn comparison_uses_text_for_two_strings_and_numbers_otherwise() {
        assert_eq!(
            compare(&Val::Str("10"), &Val::Str("9")),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(&Val::Number(10.0), &Val::Str("9")),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&Val::Str("abc"), &Val::Number(1.0)), None);
    }

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(1.5), "1.5");
        assert_eq!(format_number(0.1), "0.1");
    }
}
