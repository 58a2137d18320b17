//! How the CLI prints: aligned tables for people, `--json` for scripts.

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(crate) fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Prints rows under a header with columns padded to line up.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Prints a table with a row an item, its cells made by `row`.
pub(crate) fn print_rows<T>(
    header: &[&str],
    items: impl IntoIterator<Item = T>,
    row: impl FnMut(T) -> Vec<String>,
) {
    let rows: Vec<Vec<String>> = items.into_iter().map(row).collect();
    print_table(header, &rows);
}

/// A JSON value as a short cell: strings bare, others as compact JSON, absent as "-".
pub(crate) fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Prints a response: as JSON with `--json`, otherwise the way `human` shows it to people.
pub(crate) fn print_response(json: bool, value: &Value, human: impl FnOnce(&Value)) {
    if json {
        print_json(value);
    } else {
        human(value);
    }
}

/// Prints an answer: as the server sent it with `--json`; otherwise decoded into its wire
/// type `T` (the type the server answers with) and shown to people by `human`.
pub(crate) fn print_answer<T: DeserializeOwned>(
    json: bool,
    value: &Value,
    human: impl FnOnce(T),
) -> anyhow::Result<()> {
    if json {
        print_json(value);
    } else {
        human(decode(value.clone())?);
    }
    Ok(())
}

/// An answer decoded into its wire type `T`, the type the server answers with.
pub(crate) fn decode<T: DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value)
        .context("the server's answer does not have the shape this CLI knows")
}

/// A typed value as `cell` shows its JSON form: an enum as its wire name, a number
/// formatted as the server's JSON formats it (`0.5`, `1e-7`), a list as compact JSON.
pub(crate) fn json_cell<T: Serialize>(value: &T) -> String {
    cell(serde_json::to_value(value).ok().as_ref())
}

/// An optional text as a cell: absent as "-".
pub(crate) fn text_cell(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_typed_value_shows_as_its_json_would() {
        for number in [0.5, 1e-7, 0.1 + 0.2, 100.0, 1e21, -0.0, f64::NAN] {
            assert_eq!(json_cell(&number), cell(Some(&json!(number))), "{number}");
        }
        assert_eq!(json_cell(&1e-7), "1e-7");
        assert_eq!(json_cell(&100.0), "100.0");
        assert_eq!(json_cell(&f64::INFINITY), "-");
        assert_eq!(json_cell(&None::<u64>), "-");
        assert_eq!(json_cell(&vec!["a", "b"]), r#"["a","b"]"#);
        assert_eq!(json_cell(&json!({"a": [1, 2.5]})), r#"{"a":[1,2.5]}"#);
    }
}
