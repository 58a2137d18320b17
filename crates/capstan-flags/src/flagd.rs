//! The flagd flag-definition document: parsing it into domain types and writing it back.

use serde_json::{Map, Value};

use crate::definition::{FlagDefinition, FlagState, Prerequisite, check_metadata};
use crate::error::DefinitionError;

/// The schema a written document points editors to.
const FLAGD_SCHEMA: &str = "https://flagd.dev/schema/v0/flags.json";

/// A whole flagd document: flags, shared `$evaluators` and flag-set metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlagdDocument {
    /// In the order the document lists them.
    pub flags: Vec<FlagDefinition>,
    /// Named JsonLogic rules that targeting references with `{"$ref": "name"}`.
    pub evaluators: Map<String, Value>,
    /// Flag-set metadata, merged under every flag's own metadata.
    pub metadata: Map<String, Value>,
}

impl FlagdDocument {
    /// Reads a flagd document, checking its structure. Targeting is only checked to be
    /// JSON here; [`crate::CompiledEnvironment::compile`] checks the rules themselves.
    pub fn parse(document: &Value) -> Result<FlagdDocument, DefinitionError> {
        let Some(fields) = document.as_object() else {
            return Err(DefinitionError::new("document", "expected a JSON object"));
        };
        let mut parsed = FlagdDocument::default();
        let mut saw_flags = false;
        for (name, value) in fields {
            match name.as_str() {
                "flags" => {
                    saw_flags = true;
                    let flags = expect_object(value, "flags")?;
                    for (key, flag) in flags {
                        parsed.flags.push(parse_flag(key, flag)?);
                    }
                }
                "$evaluators" => parsed.evaluators = expect_object(value, "$evaluators")?.clone(),
                "metadata" => {
                    parsed.metadata = expect_object(value, "metadata")?.clone();
                    check_metadata(&parsed.metadata, "metadata")?;
                }
                // Editors use `$schema`; it says nothing about the flags.
                "$schema" => {}
                other => return Err(DefinitionError::new(other, "unknown field")),
            }
        }
        if !saw_flags {
            return Err(DefinitionError::new("flags", "missing required field"));
        }
        Ok(parsed)
    }

    /// Writes the document as a flagd file; `parse` reads it back to an equal document.
    pub fn to_json(&self) -> Value {
        let mut document = Map::new();
        document.insert("$schema".to_owned(), Value::String(FLAGD_SCHEMA.to_owned()));
        let flags: Map<String, Value> = self
            .flags
            .iter()
            .map(|flag| (flag.key.clone(), flag_to_json(flag)))
            .collect();
        document.insert("flags".to_owned(), Value::Object(flags));
        if !self.evaluators.is_empty() {
            document.insert(
                "$evaluators".to_owned(),
                Value::Object(self.evaluators.clone()),
            );
        }
        if !self.metadata.is_empty() {
            document.insert("metadata".to_owned(), Value::Object(self.metadata.clone()));
        }
        Value::Object(document)
    }
}

fn parse_flag(key: &str, value: &Value) -> Result<FlagDefinition, DefinitionError> {
    let path = format!("flags.{key}");
    let fields = expect_object(value, &path)?;
    let mut state = None;
    let mut variants = None;
    let mut flag = FlagDefinition {
        key: key.to_owned(),
        state: FlagState::Enabled,
        variants: Map::new(),
        default_variant: None,
        targeting: None,
        metadata: Map::new(),
        prerequisites: Vec::new(),
    };
    for (name, value) in fields {
        let field_path = format!("{path}.{name}");
        match name.as_str() {
            "state" => {
                let parsed = value.as_str().and_then(FlagState::parse);
                state = Some(parsed.ok_or_else(|| {
                    DefinitionError::new(
                        &field_path,
                        format!("expected \"ENABLED\" or \"DISABLED\", found {value}"),
                    )
                })?);
            }
            "variants" => variants = Some(expect_object(value, &field_path)?.clone()),
            "defaultVariant" => {
                flag.default_variant = match value {
                    Value::Null => None,
                    Value::String(name) => Some(name.clone()),
                    other => {
                        return Err(DefinitionError::new(
                            field_path,
                            format!("expected a variant name or null, found {other}"),
                        ));
                    }
                }
            }
            "targeting" => {
                flag.targeting = match value {
                    Value::Null => None,
                    Value::Object(_) => Some(value.clone()),
                    other => {
                        return Err(DefinitionError::new(
                            field_path,
                            format!("expected a JsonLogic object, found {other}"),
                        ));
                    }
                }
            }
            "metadata" => flag.metadata = expect_object(value, &field_path)?.clone(),
            "prerequisites" => flag.prerequisites = parse_prerequisites(value, &field_path)?,
            _ => return Err(DefinitionError::new(field_path, "unknown field")),
        }
    }
    flag.state = state
        .ok_or_else(|| DefinitionError::new(format!("{path}.state"), "missing required field"))?;
    flag.variants = variants.ok_or_else(|| {
        DefinitionError::new(format!("{path}.variants"), "missing required field")
    })?;
    flag.check_structure()?;
    Ok(flag)
}

fn parse_prerequisites(value: &Value, path: &str) -> Result<Vec<Prerequisite>, DefinitionError> {
    let Some(items) = value.as_array() else {
        return Err(DefinitionError::new(
            path,
            "expected an array of prerequisites",
        ));
    };
    let mut prerequisites = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let fields = expect_object(item, &item_path)?;
        let mut flag = None;
        let mut variants = None;
        for (name, value) in fields {
            let field_path = format!("{item_path}.{name}");
            match name.as_str() {
                "flag" => match value {
                    Value::String(key) => flag = Some(key.clone()),
                    other => {
                        return Err(DefinitionError::new(
                            field_path,
                            format!("expected a flag key, found {other}"),
                        ));
                    }
                },
                "variants" => variants = Some(parse_variant_names(value, &field_path)?),
                _ => return Err(DefinitionError::new(field_path, "unknown field")),
            }
        }
        prerequisites.push(Prerequisite {
            flag: flag.ok_or_else(|| {
                DefinitionError::new(format!("{item_path}.flag"), "missing required field")
            })?,
            variants: variants.ok_or_else(|| {
                DefinitionError::new(format!("{item_path}.variants"), "missing required field")
            })?,
        });
    }
    Ok(prerequisites)
}

fn parse_variant_names(value: &Value, path: &str) -> Result<Vec<String>, DefinitionError> {
    let Some(items) = value.as_array() else {
        return Err(DefinitionError::new(
            path,
            "expected an array of variant names",
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::String(name) => Ok(name.clone()),
            other => Err(DefinitionError::new(
                format!("{path}[{index}]"),
                format!("expected a variant name, found {other}"),
            )),
        })
        .collect()
}

fn flag_to_json(flag: &FlagDefinition) -> Value {
    let mut fields = Map::new();
    fields.insert(
        "state".to_owned(),
        Value::String(flag.state.as_str().to_owned()),
    );
    fields.insert("variants".to_owned(), Value::Object(flag.variants.clone()));
    if let Some(default) = &flag.default_variant {
        fields.insert("defaultVariant".to_owned(), Value::String(default.clone()));
    }
    if let Some(targeting) = &flag.targeting {
        fields.insert("targeting".to_owned(), targeting.clone());
    }
    if !flag.metadata.is_empty() {
        fields.insert("metadata".to_owned(), Value::Object(flag.metadata.clone()));
    }
    if !flag.prerequisites.is_empty() {
        let prerequisites = flag
            .prerequisites
            .iter()
            .map(|prerequisite| {
                let mut item = Map::new();
                item.insert("flag".to_owned(), Value::String(prerequisite.flag.clone()));
                let variants = prerequisite
                    .variants
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect();
                item.insert("variants".to_owned(), Value::Array(variants));
                Value::Object(item)
            })
            .collect();
        fields.insert("prerequisites".to_owned(), Value::Array(prerequisites));
    }
    Value::Object(fields)
}

fn expect_object<'v>(
    value: &'v Value,
    path: &str,
) -> Result<&'v Map<String, Value>, DefinitionError> {
    value.as_object().ok_or_else(|| {
        DefinitionError::new(
            path,
            format!("expected a JSON object, found {}", kind_of(value)),
        )
    })
}

/// Names a JSON value's kind for error messages, without echoing a possibly large value.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
