//! The evaluation context: who is asking, built once per request and read by every
//! evaluation of that request.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::fast_hash::{HashIndex, hash_str, same_str};

/// The attribute under which targeting rules read the targeting key, as in flagd.
pub(crate) const TARGETING_KEY: &str = "targetingKey";

/// The attributes of one request, indexed so that a compiled `var` finds an attribute by
/// a hash it computed at compile time.
#[derive(Debug, Clone)]
pub struct EvaluationContext {
    targeting_key: Option<String>,
    /// Attributes in the order the caller gave them.
    entries: Vec<(Box<str>, Value)>,
    /// Finds entries by the hash of their names.
    index: HashIndex,
    /// All attributes as one JSON object, built only if a rule reads the whole context.
    whole: OnceLock<Value>,
}

impl EvaluationContext {
    /// Builds the context. The targeting key is also visible to rules as the attribute
    /// `targetingKey`; when it is `None`, a string attribute `targetingKey` serves as the
    /// targeting key instead, as flagd reads both from one map.
    pub fn new(targeting_key: Option<String>, attributes: Map<String, Value>) -> EvaluationContext {
        let targeting_key = targeting_key.or_else(|| {
            attributes
                .get(TARGETING_KEY)
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let mut entries: Vec<(Box<str>, Value)> = attributes
            .into_iter()
            .map(|(name, value)| (name.into_boxed_str(), value))
            .collect();
        if let Some(key) = &targeting_key {
            let value = Value::String(key.clone());
            match entries
                .iter_mut()
                .find(|(name, _)| &**name == TARGETING_KEY)
            {
                Some(entry) => entry.1 = value,
                None => entries.push((TARGETING_KEY.into(), value)),
            }
        }
        let hashes: Vec<u64> = entries.iter().map(|(name, _)| hash_str(name)).collect();
        let index = HashIndex::new(&hashes);
        EvaluationContext {
            targeting_key,
            entries,
            index,
            whole: OnceLock::new(),
        }
    }

    pub fn targeting_key(&self) -> Option<&str> {
        self.targeting_key.as_deref()
    }

    /// One attribute by name.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.lookup(hash_str(name), name)
    }

    /// One attribute by name and the name's [`hash_str`] hash.
    #[inline(always)]
    pub(crate) fn lookup(&self, hash: u64, name: &str) -> Option<&Value> {
        let position = self
            .index
            .find(hash, |position| same_str(&self.entries[position].0, name))?;
        Some(&self.entries[position].1)
    }

    /// Every attribute as one JSON object, for `{"var": ""}`.
    pub(crate) fn as_object(&self) -> &Value {
        self.whole.get_or_init(|| {
            Value::Object(
                self.entries
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.clone()))
                    .collect(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attributes(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn finds_attributes_and_the_targeting_key() {
        let context =
            EvaluationContext::new(Some("user-1".into()), attributes(json!({"a": 1, "b": "x"})));
        assert_eq!(context.attribute("a"), Some(&json!(1)));
        assert_eq!(context.attribute("b"), Some(&json!("x")));
        assert_eq!(context.attribute("c"), None);
        assert_eq!(context.attribute(TARGETING_KEY), Some(&json!("user-1")));
        assert_eq!(context.targeting_key(), Some("user-1"));
    }

    #[test]
    fn a_targeting_key_attribute_serves_when_none_is_given() {
        let context = EvaluationContext::new(None, attributes(json!({"targetingKey": "user-2"})));
        assert_eq!(context.targeting_key(), Some("user-2"));
    }

    #[test]
    fn many_attributes_are_all_found() {
        let map: Map<String, Value> = (0..200)
            .map(|i| (format!("attribute-{i}"), json!(i)))
            .collect();
        let context = EvaluationContext::new(None, map);
        for i in 0..200 {
            assert_eq!(
                context.attribute(&format!("attribute-{i}")),
                Some(&json!(i))
            );
        }
        assert_eq!(context.as_object().as_object().unwrap().len(), 200);
    }
}
