//! The OpenAPI document, pinned: a change to any route's shape shows in review as a change
//! to `openapi.snapshot.json`. Rewrite the snapshot with `CAPSTAN_UPDATE_SNAPSHOTS=1`.

use std::collections::BTreeSet;

use serde_json::Value;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/api/openapi.snapshot.json"
);

fn document() -> Value {
    serde_json::to_value(capstan_server::api().1).unwrap()
}

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let current = serde_json::to_string_pretty(&document()).unwrap() + "\n";
    if std::env::var_os("CAPSTAN_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &current).unwrap();
    }
    let pinned = std::fs::read_to_string(SNAPSHOT).unwrap();
    assert!(
        current == pinned,
        "the OpenAPI document changed; review the change and rerun with CAPSTAN_UPDATE_SNAPSHOTS=1"
    );
}

/// Whether a response schema says nothing about its body's shape.
fn free_form(schema: &Value) -> bool {
    match schema.as_object() {
        None => true,
        Some(schema) => {
            !schema.contains_key("$ref")
                && !schema.contains_key("properties")
                && !schema.contains_key("items")
                && !schema.contains_key("allOf")
                && !schema.contains_key("oneOf")
                && schema.get("type").and_then(Value::as_str) != Some("string")
        }
    }
}

/// Operations whose success answer is still an untyped JSON object. The list only
/// shrinks: a new route must describe its answer, and typing one means taking it off.
const STILL_FREE_FORM: &[&str] = &[];

#[test]
fn every_success_answer_has_a_described_shape_except_those_still_listed() {
    let document = document();
    let mut untyped = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !status.starts_with('2') {
                    continue;
                }
                if let Some(content) = response.get("content").and_then(Value::as_object) {
                    for (media, body) in content {
                        if media == "application/json" && free_form(&body["schema"]) {
                            untyped.insert(format!("{} {path}", method.to_uppercase()));
                        }
                    }
                }
            }
        }
    }
    let listed: BTreeSet<String> = STILL_FREE_FORM.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        untyped, listed,
        "operations with an untyped answer differ from STILL_FREE_FORM"
    );
}

#[test]
fn every_operation_is_under_a_described_tag() {
    let document = document();
    let described: BTreeSet<&str> = document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|tag| {
            tag["description"]
                .as_str()
                .is_some_and(|text| !text.is_empty())
        })
        .filter_map(|tag| tag["name"].as_str())
        .collect();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let tags: Vec<&str> = operation["tags"]
                .as_array()
                .map(|tags| tags.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert!(!tags.is_empty(), "{method} {path} has no tag");
            for tag in tags {
                assert!(
                    described.contains(tag),
                    "{method} {path}: tag {tag:?} is not described"
                );
            }
        }
    }
}
