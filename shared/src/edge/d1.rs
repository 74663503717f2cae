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
