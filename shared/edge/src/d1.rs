//! Small helpers for binding values to D1 statements and recognising its errors.

use worker::wasm_bindgen::JsValue;

pub fn text(value: &str) -> JsValue {
    JsValue::from_str(value)
}

pub fn optional_text(value: Option<&str>) -> JsValue {
    value.map_or(JsValue::NULL, JsValue::from_str)
}

/// A list bound as one JSON-array parameter and read back with `json_each`, which keeps any
/// number of keys within D1's limit of 100 bound parameters per statement.
pub fn json_list<'a>(values: impl IntoIterator<Item = &'a str>) -> JsValue {
    let values: Vec<&str> = values.into_iter().collect();
    JsValue::from_str(&serde_json::to_string(&values).unwrap_or_else(|_| "[]".to_owned()))
}

/// True when a statement failed on a UNIQUE index: someone else wrote the same key first.
pub fn is_unique_violation(error: &worker::Error) -> bool {
    error.to_string().contains("UNIQUE constraint failed")
}

/// A `json_object(...)` expression of the columns of a select list (`a, b, t.c, (expr) AS d`),
/// each keyed by its name; bare columns are qualified with `alias`. Reading a row back through
/// this JSON gives the same fields a plain `SELECT` of the list gives.
pub fn json_object_of(columns: &str, alias: &str) -> String {
    let mut entries = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let mut push = |column: &str| {
        let column = column.trim();
        let (expression, name) = match column.rsplit_once(" AS ") {
            Some((expression, name)) => (expression.trim().to_owned(), name.trim().to_owned()),
            None => match column.split_once('.') {
                Some((_, name)) => (column.to_owned(), name.to_owned()),
                None => (format!("{alias}.{column}"), column.to_owned()),
            },
        };
        entries.push(format!("'{name}', {expression}"));
    };
    for (at, c) in columns.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                push(&columns[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    push(&columns[start..]);
    format!("json_object({})", entries.join(", "))
}

#[cfg(test)]
mod tests {
    use super::json_object_of;

    #[test]
    fn a_select_list_becomes_a_json_object_keyed_by_column_name() {
        assert_eq!(
            json_object_of(
                "id, name,\n  t.kind, (SELECT COUNT(*) FROM m WHERE m.a = t.id, 1) AS n",
                "t"
            ),
            "json_object('id', t.id, 'name', t.name, 'kind', t.kind, 'n', (SELECT COUNT(*) FROM m WHERE m.a = t.id, 1))"
        );
    }
}
