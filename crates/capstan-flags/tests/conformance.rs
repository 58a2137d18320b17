//! Runs the OpenFeature flagd-testbed evaluator suite against the engine.
//!
//! The suite is read at test time from the shared folder (or `CAPSTAN_CONFORMANCE_DIR`):
//! its Gherkin features and the flags they use. A small Gherkin reader below expands
//! scenario outlines; every scenario runs except those tagged `@fractional-v1`, the legacy
//! bucketing that Capstan does not implement.

use std::path::{Path, PathBuf};

use capstan_flags::{CompiledEnvironment, EvaluationContext, FlagdDocument, ValueType};
use serde_json::{Map, Value};

const SKIPPED_TAG: &str = "@fractional-v1";
const MINIMUM_SCENARIOS: usize = 80;
/// Rules that read `$flagd.timestamp` see this fixed time, so runs are repeatable.
const NOW_UNIX_SECONDS: i64 = 1_700_000_000;

fn suite_dir() -> PathBuf {
    match std::env::var_os("CAPSTAN_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/conformance/flagd-testbed"
        )),
    }
}

#[test]
fn flagd_testbed_evaluator_suite() {
    let dir = suite_dir();
    assert!(
        dir.is_dir(),
        "conformance suite not found at {}",
        dir.display()
    );

    let flags_path = dir.join("flags/testkit-flags.json");
    let flags_text = std::fs::read_to_string(&flags_path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", flags_path.display()));
    let flags_json: Value = serde_json::from_str(&flags_text).expect("testkit flags are JSON");
    let document = FlagdDocument::parse(&flags_json).expect("testkit flags parse");
    // The testkit holds flags that flagd tolerates but Capstan's strict compiler rejects
    // (for example a `$ref` to a missing evaluator), so it loads the way flagd would.
    let (environment, tolerated) = CompiledEnvironment::compile_flagd_compatible(&document);
    assert!(
        CompiledEnvironment::compile(&document).is_err(),
        "strict compilation should reject the testkit"
    );
    assert!(!tolerated.is_empty());

    let mut features: Vec<PathBuf> = std::fs::read_dir(dir.join("gherkin"))
        .expect("gherkin folder")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "feature")
        })
        .collect();
    features.sort();
    assert!(
        !features.is_empty(),
        "no feature files in {}",
        dir.display()
    );

    let mut passed = 0;
    let mut failures = Vec::new();
    for feature_path in &features {
        for scenario in read_feature(feature_path) {
            if scenario.tags.iter().any(|tag| tag == SKIPPED_TAG) {
                continue;
            }
            match run_scenario(&environment, &scenario) {
                Ok(()) => passed += 1,
                Err(message) => failures.push(format!(
                    "{}: {}\n    {message}",
                    scenario.file, scenario.name
                )),
            }
        }
    }

    println!(
        "conformance: the testkit loads with {} problems flagd tolerates:",
        tolerated.len()
    );
    for problem in &tolerated {
        println!("  {problem}");
    }
    println!(
        "conformance: {passed} scenarios passed, {} failed",
        failures.len()
    );
    for failure in &failures {
        println!("  FAILED {failure}");
    }
    assert!(
        failures.is_empty(),
        "{} conformance scenarios failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        passed >= MINIMUM_SCENARIOS,
        "only {passed} scenarios ran; expected at least {MINIMUM_SCENARIOS}"
    );
}

// ---------------------------------------------------------------------------------------
// Steps

/// What the steps of one scenario build up and observe.
#[derive(Default)]
struct World {
    flag: Option<TypedFlag>,
    targeting_key: Option<String>,
    attributes: Map<String, Value>,
    details: Option<Details>,
}

struct TypedFlag {
    key: String,
    value_type: ValueType,
    fallback: Value,
}

/// The resolution details a caller sees, with the fallback substituted.
#[derive(Debug)]
struct Details {
    value: Value,
    variant: Option<String>,
    reason: String,
    error_code: Option<String>,
    metadata: Map<String, Value>,
}

fn run_scenario(environment: &CompiledEnvironment, scenario: &Scenario) -> Result<(), String> {
    let mut world = World::default();
    for step in &scenario.steps {
        run_step(environment, &mut world, step)
            .map_err(|message| format!("step \"{}\": {message}", step.text))?;
    }
    Ok(())
}

fn run_step(
    environment: &CompiledEnvironment,
    world: &mut World,
    step: &Step,
) -> Result<(), String> {
    let (pattern, arguments) = split_quoted(&step.text)?;
    let argument = |index: usize| arguments.get(index).cloned().ok_or("missing argument");
    match pattern.as_str() {
        "an evaluator" => Ok(()),
        "a context containing a key {}, with type {} and with value {}" => {
            let value = typed_value(&argument(1)?, &argument(2)?)?;
            world.attributes.insert(argument(0)?, value);
            Ok(())
        }
        "a context containing a nested property with outer key {} and inner key {}, with value {}" =>
        {
            let outer = world
                .attributes
                .entry(argument(0)?)
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(inner) = outer else {
                return Err("outer key holds a non-object".into());
            };
            inner.insert(argument(1)?, Value::String(argument(2)?));
            Ok(())
        }
        "a context containing a targeting key with value {}" => {
            world.targeting_key = Some(argument(0)?);
            Ok(())
        }
        "the flag was evaluated with details" => {
            let flag = world.flag.as_ref().ok_or("no flag was given")?;
            let context =
                EvaluationContext::new(world.targeting_key.clone(), world.attributes.clone());
            let resolution = environment
                .evaluate(&flag.key, &context, NOW_UNIX_SECONDS)
                .expect_type(flag.value_type);
            let value = match (&resolution.error, resolution.value) {
                (None, Some(value)) => value.clone(),
                _ => flag.fallback.clone(),
            };
            world.details = Some(Details {
                value,
                variant: resolution.variant.map(str::to_owned),
                reason: resolution.reason.as_str().to_owned(),
                error_code: resolution
                    .error
                    .as_ref()
                    .map(|error| error.code.as_str().to_owned()),
                metadata: resolution.metadata.clone(),
            });
            Ok(())
        }
        "the resolved details value should be {}" => {
            let flag = world.flag.as_ref().ok_or("no flag was given")?;
            let expected = parse_flag_value(flag.value_type, &argument(0)?)?;
            let details = details(world)?;
            if values_match(flag.value_type, &details.value, &expected) {
                Ok(())
            } else {
                Err(format!("expected value {expected}, got {details:?}"))
            }
        }
        "the reason should be {}" => expect_equal(
            "reason",
            Some(details(world)?.reason.as_str()),
            &argument(0)?,
            world,
        ),
        "the error-code should be {}" => expect_equal(
            "error code",
            details(world)?.error_code.as_deref(),
            &argument(0)?,
            world,
        ),
        "the variant should be {}" => expect_equal(
            "variant",
            details(world)?.variant.as_deref(),
            &argument(0)?,
            world,
        ),
        "the resolved metadata is empty" => {
            let details = details(world)?;
            if details.metadata.is_empty() {
                Ok(())
            } else {
                Err(format!("metadata is {:?}", details.metadata))
            }
        }
        "the resolved metadata should contain" => {
            let details = details(world)?;
            let table = step.table.as_ref().ok_or("the step needs a table")?;
            for row in table_rows(table)? {
                let key = row_cell(&row, "key")?;
                let expected =
                    typed_value(&row_cell(&row, "metadata_type")?, &row_cell(&row, "value")?)?;
                let value_type = value_type(&row_cell(&row, "metadata_type")?)?;
                match details.metadata.get(&key) {
                    Some(actual) if values_match(value_type, actual, &expected) => {}
                    other => {
                        return Err(format!(
                            "metadata \"{key}\": expected {expected}, got {other:?}"
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => {
            if let Some(type_name) = pattern
                .strip_prefix("a ")
                .and_then(|rest| rest.strip_suffix("-flag with key {} and a fallback value {}"))
            {
                let value_type = value_type(type_name)?;
                let fallback = parse_flag_value(value_type, &argument(1)?)?;
                world.flag = Some(TypedFlag {
                    key: argument(0)?,
                    value_type,
                    fallback,
                });
                return Ok(());
            }
            Err("undefined step".into())
        }
    }
}

fn details(world: &World) -> Result<&Details, String> {
    world
        .details
        .as_ref()
        .ok_or_else(|| "the flag was not evaluated".to_owned())
}

fn expect_equal(
    what: &str,
    actual: Option<&str>,
    expected: &str,
    world: &World,
) -> Result<(), String> {
    if actual == Some(expected) {
        Ok(())
    } else {
        Err(format!(
            "expected {what} {expected:?}, got {actual:?} in {:?}",
            world.details
        ))
    }
}

fn value_type(name: &str) -> Result<ValueType, String> {
    Ok(match name {
        "Boolean" => ValueType::Boolean,
        "String" => ValueType::String,
        "Integer" => ValueType::Integer,
        "Float" => ValueType::Float,
        "Object" => ValueType::Object,
        other => return Err(format!("unknown type {other:?}")),
    })
}

/// A value of a flag's type written as text in a step.
fn parse_flag_value(value_type: ValueType, text: &str) -> Result<Value, String> {
    let type_name = match value_type {
        ValueType::Boolean => "Boolean",
        ValueType::String => "String",
        ValueType::Integer => "Integer",
        ValueType::Float => "Float",
        ValueType::Object => "Object",
    };
    typed_value(type_name, text)
}

fn typed_value(type_name: &str, text: &str) -> Result<Value, String> {
    let invalid =
        |error: &dyn std::fmt::Display| format!("{text:?} is not a valid {type_name}: {error}");
    Ok(match type_name {
        "String" => Value::String(text.to_owned()),
        "Boolean" => Value::Bool(text.parse::<bool>().map_err(|error| invalid(&error))?),
        "Integer" => Value::from(text.parse::<i64>().map_err(|error| invalid(&error))?),
        "Float" => Value::from(text.parse::<f64>().map_err(|error| invalid(&error))?),
        "Object" => {
            serde_json::from_str(&text.replace("\\\"", "\"")).map_err(|error| invalid(&error))?
        }
        other => return Err(format!("unknown type {other:?}")),
    })
}

fn values_match(value_type: ValueType, actual: &Value, expected: &Value) -> bool {
    match value_type {
        // JSON does not tell 0 from 0.0, nor does a caller asking for a number.
        ValueType::Integer | ValueType::Float => {
            actual.as_f64().is_some() && actual.as_f64() == expected.as_f64()
        }
        _ => actual == expected,
    }
}

/// Replaces each quoted argument in a step with `{}` and returns the arguments, with
/// `\"` inside them unescaped.
fn split_quoted(text: &str) -> Result<(String, Vec<String>), String> {
    let mut pattern = String::new();
    let mut arguments = Vec::new();
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        if character != '"' {
            pattern.push(character);
            continue;
        }
        let mut argument = String::new();
        loop {
            match characters.next() {
                None => return Err(format!("unterminated quote in {text:?}")),
                Some('"') => break,
                Some('\\') => match characters.next() {
                    Some('"') => argument.push('"'),
                    Some(other) => {
                        argument.push('\\');
                        argument.push(other);
                    }
                    None => argument.push('\\'),
                },
                Some(other) => argument.push(other),
            }
        }
        pattern.push_str("{}");
        arguments.push(argument);
    }
    Ok((pattern, arguments))
}

fn table_rows(table: &[Vec<String>]) -> Result<Vec<Vec<(String, String)>>, String> {
    let (header, rows) = table.split_first().ok_or("empty table")?;
    Ok(rows
        .iter()
        .map(|row| header.iter().cloned().zip(row.iter().cloned()).collect())
        .collect())
}

fn row_cell(row: &[(String, String)], column: &str) -> Result<String, String> {
    row.iter()
        .find(|(name, _)| name == column)
        .map(|(_, value)| value.clone())
        .ok_or_else(|| format!("no column {column:?}"))
}

// ---------------------------------------------------------------------------------------
// A small Gherkin reader: features, backgrounds, scenarios, outlines with examples, tags
// and data tables, which is all the testbed uses.

#[derive(Debug, Clone)]
struct Step {
    text: String,
    table: Option<Vec<Vec<String>>>,
}

/// One runnable scenario, outlines already expanded.
#[derive(Debug)]
struct Scenario {
    file: String,
    name: String,
    tags: Vec<String>,
    steps: Vec<Step>,
}

struct Outline {
    name: String,
    tags: Vec<String>,
    steps: Vec<Step>,
    examples: Vec<Examples>,
    is_outline: bool,
}

struct Examples {
    tags: Vec<String>,
    table: Vec<Vec<String>>,
}

enum Section {
    None,
    Background,
    Scenario,
    Examples,
}

fn read_feature(path: &Path) -> Vec<Scenario> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    let file = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut feature_tags = Vec::new();
    let mut pending_tags: Vec<String> = Vec::new();
    let mut background: Vec<Step> = Vec::new();
    let mut outlines: Vec<Outline> = Vec::new();
    let mut section = Section::None;

    for (number, raw_line) in text.lines().enumerate() {
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let location = || format!("{file}:{}", number + 1);
        if line.starts_with('@') {
            pending_tags.extend(line.split_whitespace().map(str::to_owned));
        } else if line.starts_with("Feature:") {
            feature_tags = std::mem::take(&mut pending_tags);
        } else if line.starts_with("Background:") {
            section = Section::Background;
        } else if let Some((is_outline, name)) = scenario_heading(line) {
            let mut tags = feature_tags.clone();
            tags.append(&mut pending_tags);
            outlines.push(Outline {
                name: name.trim().to_owned(),
                tags,
                steps: Vec::new(),
                examples: Vec::new(),
                is_outline,
            });
            section = Section::Scenario;
        } else if line.starts_with("Examples:") || line.starts_with("Scenarios:") {
            let outline = outlines
                .last_mut()
                .unwrap_or_else(|| panic!("{}: examples outside a scenario", location()));
            outline.examples.push(Examples {
                tags: std::mem::take(&mut pending_tags),
                table: Vec::new(),
            });
            section = Section::Examples;
        } else if line.starts_with('|') {
            let row = table_row(line);
            match section {
                Section::Examples => {
                    let examples = outlines
                        .last_mut()
                        .and_then(|outline| outline.examples.last_mut());
                    examples
                        .unwrap_or_else(|| panic!("{}: stray table", location()))
                        .table
                        .push(row);
                }
                Section::Background => attach_row(background.last_mut(), row, &location()),
                Section::Scenario => {
                    attach_row(
                        outlines
                            .last_mut()
                            .and_then(|outline| outline.steps.last_mut()),
                        row,
                        &location(),
                    );
                }
                Section::None => panic!("{}: table outside a scenario", location()),
            }
        } else if let Some(step_text) = step_text(line) {
            let step = Step {
                text: step_text.to_owned(),
                table: None,
            };
            match section {
                Section::Background => background.push(step),
                Section::Scenario => outlines.last_mut().expect("a scenario").steps.push(step),
                Section::None | Section::Examples => {
                    panic!("{}: step outside a scenario", location())
                }
            }
        } else {
            panic!("{}: cannot read {line:?}", location());
        }
    }

    let mut scenarios = Vec::new();
    for outline in outlines {
        let steps: Vec<Step> = background.iter().chain(&outline.steps).cloned().collect();
        if !outline.is_outline {
            scenarios.push(Scenario {
                file: file.clone(),
                name: outline.name,
                tags: outline.tags,
                steps,
            });
            continue;
        }
        for examples in &outline.examples {
            let Some((header, rows)) = examples.table.split_first() else {
                continue;
            };
            for row in rows {
                let substitute = |text: &str| {
                    header
                        .iter()
                        .zip(row)
                        .fold(text.to_owned(), |text, (name, value)| {
                            text.replace(&format!("<{name}>"), value)
                        })
                };
                let mut tags = outline.tags.clone();
                tags.extend(examples.tags.iter().cloned());
                let steps = steps
                    .iter()
                    .map(|step| Step {
                        text: substitute(&step.text),
                        table: step.table.as_ref().map(|table| {
                            table
                                .iter()
                                .map(|cells| cells.iter().map(|cell| substitute(cell)).collect())
                                .collect()
                        }),
                    })
                    .collect();
                let name = format!("{} [{}]", outline.name, row.join(" | "));
                scenarios.push(Scenario {
                    file: file.clone(),
                    name,
                    tags,
                    steps,
                });
            }
        }
    }
    scenarios
}

fn scenario_heading(line: &str) -> Option<(bool, &str)> {
    for (keyword, is_outline) in [
        ("Scenario Outline:", true),
        ("Scenario Template:", true),
        ("Scenario:", false),
        ("Example:", false),
    ] {
        if let Some(name) = line.strip_prefix(keyword) {
            return Some((is_outline, name));
        }
    }
    None
}

fn step_text(line: &str) -> Option<&str> {
    ["Given ", "When ", "Then ", "And ", "But ", "* "]
        .iter()
        .find_map(|keyword| line.strip_prefix(keyword))
}

fn attach_row(step: Option<&mut Step>, row: Vec<String>, location: &str) {
    let step = step.unwrap_or_else(|| panic!("{location}: table before any step"));
    step.table.get_or_insert_with(Vec::new).push(row);
}

/// Splits `| a | b |` into trimmed cells. Gherkin escapes `\|`, `\\` and `\n` in cells;
/// other backslashes stay, so `\"` reaches the steps as written.
fn table_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut characters = inner.chars();
    while let Some(character) = characters.next() {
        match character {
            '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
            '\\' => match characters.next() {
                Some('|') => cell.push('|'),
                Some('\\') => cell.push('\\'),
                Some('n') => cell.push('\n'),
                Some(other) => {
                    cell.push('\\');
                    cell.push(other);
                }
                None => cell.push('\\'),
            },
            other => cell.push(other),
        }
    }
    cells
}

#[test]
fn gherkin_table_cells_keep_quotes_escaped() {
    assert_eq!(
        table_row(r#"| a | {\"b\": 1} | c\|d |"#),
        vec!["a", r#"{\"b\": 1}"#, "c|d"]
    );
}
