//! How results are shown: tables and fields for people, JSON for scripts (`--json`).

use serde_json::Value;
use std::fmt::Write;

/// A column: its heading and the field of each item it shows (a JSON pointer, `/status/backlog`,
/// for one inside an object).
pub type Column = (&'static str, &'static str);

/// The widest a cell is shown; longer text is cut with `…` (`--json` shows it whole).
const MAX_CELL: usize = 60;

/// One value as a cell: `-` for nothing, lists joined with commas, control characters (a
/// remote server's text may carry terminal escapes) shown as spaces, and cut at `MAX_CELL`.
pub fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "-".to_owned(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    };
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_CELL {
        let cut: String = text.chars().take(MAX_CELL - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Items as a table with a heading row, columns as wide as their widest cell.
pub fn table(items: &[Value], columns: &[Column]) -> String {
    let rows: Vec<Vec<String>> =
        std::iter::once(columns.iter().map(|(heading, _)| (*heading).to_owned()).collect())
            .chain(items.iter().map(|item| {
                columns
                    .iter()
                    .map(|(_, field)| cell(field_of(item, field)))
                    .collect()
            }))
            .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| rows.iter().map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// The field `name` of `item`, or the value a JSON pointer names.
fn field_of<'v>(item: &'v Value, name: &str) -> &'v Value {
    if name.starts_with('/') {
        item.pointer(name).unwrap_or(&Value::Null)
    } else {
        &item[name]
    }
}

/// The list under `field` as a table, or a line saying there is none.
pub fn list(answer: &Value, field: &str, columns: &[Column]) -> String {
    match answer[field].as_array() {
        Some(items) if !items.is_empty() => table(items, columns),
        _ => format!("no {}\n", field.replace('_', " ")),
    }
}

/// One object as `field  value` lines, in the given order.
pub fn fields(item: &Value, names: &[&str]) -> String {
    let width = names.iter().map(|name| name.len()).max().unwrap_or(0);
    names
        .iter()
        .map(|name| format!("{name:<width$}  {}\n", cell(&item[*name])))
        .collect()
}

/// `--json`: the API's answer as it came, indented.
pub fn json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_lines_up_its_columns_and_defuses_terminal_escapes() {
        let items = [
            json!({"id": "d1", "status": "dead", "last_error": "\u{1b}[2Jconnection refused"}),
            json!({"id": "delivery-2", "status": "delivered", "last_error": null}),
        ];
        let shown = table(
            &items,
            &[("ID", "id"), ("STATUS", "status"), ("ERROR", "last_error")],
        );
        assert_eq!(
            shown,
            "ID          STATUS     ERROR\n\
             d1          dead        [2Jconnection refused\n\
             delivery-2  delivered  -\n"
        );
    }

    #[test]
    fn long_cells_are_cut_and_lists_joined() {
        assert_eq!(cell(&json!("x".repeat(100))).chars().count(), MAX_CELL);
        assert_eq!(cell(&json!(["a", "b"])), "a,b");
        assert_eq!(
            fields(&json!({"id": 1, "name": "Ann"}), &["id", "name"]),
            "id    1\nname  Ann\n"
        );
    }
}
