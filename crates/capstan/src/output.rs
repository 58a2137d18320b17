//! How the CLI prints: aligned tables for people, `--json` for scripts.

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(crate) fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Prints rows under a header with columns padded to line up.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
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

/// The elements of the array `value[field]`; none when it is absent or not an array.
pub(crate) fn elements<'a>(value: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    value[field].as_array().into_iter().flatten()
}

/// Prints the objects of the array `value[field]` as a table: a row an object, a column
/// a `(header, field)` pair, each value shown as `cell` shows it.
pub(crate) fn print_objects(value: &Value, field: &str, columns: &[(&str, &str)]) {
    let header: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
    let rows: Vec<Vec<String>> = elements(value, field)
        .map(|object| {
            columns
                .iter()
                .map(|(_, field)| cell(object.get(*field)))
                .collect()
        })
        .collect();
    print_table(&header, &rows);
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
        let answer = serde_json::from_value(value.clone())
            .context("the server's answer does not have the shape this CLI knows")?;
        human(answer);
    }
    Ok(())
}

/// An optional text as a cell: absent as "-".
pub(crate) fn text_cell(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}
