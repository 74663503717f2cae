//! A fetched CRM body as text lines, in the format of the CRM links guide:
//! `customers[0].name: John Doe`, one line per scalar, in the order the body wrote them.
//!
//! The guide shows objects (`a.b`) and arrays (`a[0]`) only; where it is silent we chose:
//! `null`, `true`, `false` and numbers are written as JSON writes them; an empty object or array
//! keeps its key as `key: {}` / `key: []`; a top-level array starts at `[0].…`; a top-level
//! scalar is a line of its value alone; line breaks inside a string become spaces, so one value
//! is always one line. Keys are written as given (a key with a dot in it is not escaped).
//!
//! The body is read with a streaming visitor, not through `serde_json::Value`, so that key order
//! is kept (the workspace's `serde_json` sorts object keys) and the limits stop the work as soon
//! as they are reached. A body that is not JSON is plain text: its non-empty lines, trimmed.

use crate::error::ApiError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::fmt::{self, Write as _};

/// One line of flattened text: the JSON path of a scalar and its value. Plain text and a
/// top-level scalar have an empty path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub path: String,
    pub value: String,
}

impl Line {
    /// The record this line belongs to, which [`chunk`](super::chunk) keeps together: the path up
    /// to its first array index (`customers[3]` for `customers[3].orders[0].id`), else its first
    /// key (`company` for `company.address.city`), else empty (plain text).
    pub fn record(&self) -> &str {
        let path = self.path.as_str();
        if let Some(close) = path.find(']') {
            return &path[..=close];
        }
        let end = path.find(['.', '[']).unwrap_or(path.len());
        &path[..end]
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.value)
        } else {
            write!(f, "{}: {}", self.path, self.value)
        }
    }
}

/// How much of a body is flattened before it is refused. A CRM that answers more than this is
/// asked (by the error) to paginate or trim its response, as the guide's best practices say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_lines: usize,
    /// The flattened text's size in bytes, one newline per line included.
    pub max_bytes: usize,
    /// Objects and arrays nested deeper than this are refused (serde_json's own limit is 128).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_lines: 50_000,
            max_bytes: 4 * 1024 * 1024,
            max_depth: 32,
        }
    }
}

/// Flattens a fetched body. JSON is recognised by its content (a body starting with `{` or `[`
/// must be valid JSON); anything else that is not a JSON scalar is plain text.
///
/// Errors are [`ApiError::crm_failed`]: the CRM answered something we cannot index, and the
/// message says what and which limit.
pub fn flatten(body: &str, limits: &Limits) -> Result<Vec<Line>, ApiError> {
    let trimmed = body.trim_start_matches('\u{feff}').trim();
    let mut out = Output {
        lines: Vec::new(),
        bytes: 0,
        limits: *limits,
        failure: None,
    };
    let looks_like_json = trimmed.starts_with(['{', '[']);
    match read_json(trimmed, &mut out) {
        Ok(()) => return Ok(out.lines),
        Err(error) => {
            if let Some(failure) = out.failure {
                return Err(failure);
            }
            if looks_like_json {
                return Err(ApiError::crm_failed(format!(
                    "the CRM's response looks like JSON but is not valid JSON ({error})"
                )));
            }
        }
    }
    out.lines.clear();
    out.bytes = 0;
    for text in trimmed.lines().map(str::trim).filter(|text| !text.is_empty()) {
        out.push(String::new(), one_line(text))?;
    }
    Ok(out.lines)
}

fn read_json(text: &str, out: &mut Output) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut path = String::new();
    Node {
        out,
        path: &mut path,
        depth: 0,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()
}

/// Line breaks and other control characters become single spaces.
fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.trim().chars() {
        if c.is_control() {
            pending_space = true;
            continue;
        }
        if pending_space && !line.is_empty() && !line.ends_with(' ') {
            line.push(' ');
        }
        pending_space = false;
        line.push(c);
    }
    line
}

struct Output {
    lines: Vec<Line>,
    bytes: usize,
    limits: Limits,
    /// Why a limit stopped the reading; serde's own error would only say "custom error".
    failure: Option<ApiError>,
}

impl Output {
    fn push(&mut self, path: String, value: String) -> Result<(), ApiError> {
        let separator = if path.is_empty() { 0 } else { 2 };
        self.bytes += path.len() + separator + value.len() + 1;
        if self.lines.len() >= self.limits.max_lines {
            return Err(ApiError::crm_failed(format!(
                "the CRM's response flattens to more than {} lines; paginate or trim it",
                self.limits.max_lines
            )));
        }
        if self.bytes > self.limits.max_bytes {
            return Err(ApiError::crm_failed(format!(
                "the CRM's response flattens to more than {} bytes of text; paginate or trim it",
                self.limits.max_bytes
            )));
        }
        self.lines.push(Line { path, value });
        Ok(())
    }

    fn fail<E: de::Error>(&mut self, failure: ApiError) -> E {
        let error = E::custom(&failure.body.message);
        self.failure = Some(failure);
        error
    }
}

/// One JSON value at `path`, visited in document order.
struct Node<'a> {
    out: &'a mut Output,
    path: &'a mut String,
    depth: usize,
}

impl Node<'_> {
    fn scalar<E: de::Error>(self, value: String) -> Result<(), E> {
        let path = self.path.clone();
        self.out
            .push(path, value)
            .map_err(|failure| self.out.fail(failure))
    }

    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > self.out.limits.max_depth {
            let failure = ApiError::crm_failed(format!(
                "the CRM's response nests objects and arrays deeper than {} levels",
                self.out.limits.max_depth
            ));
            return Err(self.out.fail(failure));
        }
        Ok(depth)
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<(), E> {
        self.scalar(value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.scalar(value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.scalar(value.to_string())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        // serde_json's own text for a float (`1.5`, `1e300`), as the body would have it.
        let text = serde_json::Number::from_f64(value).map_or_else(|| "null".to_owned(), |n| n.to_string());
        self.scalar(text)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.scalar(one_line(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar("null".to_owned())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut items: A) -> Result<(), A::Error> {
        let depth = self.enter()?;
        let base = self.path.len();
        let mut index = 0usize;
        loop {
            self.path.truncate(base);
            // Writing to a String cannot fail.
            let _ = write!(self.path, "[{index}]");
            let node = Node {
                out: &mut *self.out,
                path: &mut *self.path,
                depth,
            };
            if items.next_element_seed(node)?.is_none() {
                break;
            }
            index += 1;
        }
        self.path.truncate(base);
        if index == 0 {
            return self.scalar("[]".to_owned());
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut entries: A) -> Result<(), A::Error> {
        let depth = self.enter()?;
        let base = self.path.len();
        let mut empty = true;
        while let Some(key) = entries.next_key::<std::borrow::Cow<'de, str>>()? {
            empty = false;
            if base > 0 {
                self.path.push('.');
            }
            self.path.push_str(&one_line(&key));
            entries.next_value_seed(Node {
                out: &mut *self.out,
                path: &mut *self.path,
                depth,
            })?;
            self.path.truncate(base);
        }
        if empty {
            return self.scalar("{}".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str) -> Vec<String> {
        flatten(body, &Limits::default())
            .unwrap_or_else(|e| panic!("{body}: {e}"))
            .iter()
            .map(Line::to_string)
            .collect()
    }

    #[test]
    fn the_guides_example_flattens_to_the_guides_text_in_body_order() {
        let body = r#"{"customers":[{"id":"cust-123","name":"John Doe","email":"john@example.com",
            "subscription":"Premium","support_level":"Gold"}]}"#;
        assert_eq!(
            text(body),
            [
                "customers[0].id: cust-123",
                "customers[0].name: John Doe",
                "customers[0].email: john@example.com",
                "customers[0].subscription: Premium",
                "customers[0].support_level: Gold",
            ]
        );
    }

    #[test]
    fn scalars_nesting_and_empty_containers_have_one_spelling_each() {
        let body = r#"{"a":{"b":{"c":null}},"ok":true,"no":false,"n":-3,"big":18446744073709551615,
            "f":1.5,"tags":["x",["y"]],"none":[],"blank":{},"note":"two\nlines"}"#;
        assert_eq!(
            text(body),
            [
                "a.b.c: null",
                "ok: true",
                "no: false",
                "n: -3",
                "big: 18446744073709551615",
                "f: 1.5",
                "tags[0]: x",
                "tags[1][0]: y",
                "none: []",
                "blank: {}",
                "note: two lines",
            ]
        );
    }

    #[test]
    fn top_level_arrays_and_scalars_have_no_leading_name() {
        assert_eq!(text(r#"[{"id":1},{"id":2}]"#), ["[0].id: 1", "[1].id: 2"]);
        assert_eq!(text("42"), ["42"]);
        assert_eq!(text(r#""hello""#), ["hello"]);
        assert_eq!(text("[]"), ["[]"]);
    }

    #[test]
    fn plain_text_is_passed_through_as_its_non_empty_lines() {
        assert_eq!(
            text("Opening hours: 9-5\r\n\n  Closed on Sundays  \n"),
            ["Opening hours: 9-5", "Closed on Sundays"]
        );
        assert_eq!(text("42 apples"), ["42 apples"]);
        assert_eq!(text(""), Vec::<String>::new());
    }

    #[test]
    fn records_are_cut_at_the_first_array_index_or_the_first_key() {
        let cases = [
            ("customers[3].orders[0].id", "customers[3]"),
            ("data.customers[12].name", "data.customers[12]"),
            ("[0].id", "[0]"),
            ("company.address.city", "company"),
            ("total", "total"),
            ("", ""),
        ];
        for (path, record) in cases {
            let line = Line {
                path: path.to_owned(),
                value: "v".to_owned(),
            };
            assert_eq!(line.record(), record, "{path}");
        }
    }

    #[test]
    fn bodies_over_a_limit_or_malformed_are_refused_with_the_reason() {
        let small = Limits {
            max_lines: 3,
            max_bytes: 40,
            max_depth: 4,
        };
        let cases = [
            (r#"[1,2,3,4]"#, "more than 3 lines", "too many lines"),
            (
                r#"{"a":"0123456789012345678901234567890123456789"}"#,
                "more than 40 bytes",
                "too many bytes",
            ),
            (r#"[[[[[1]]]]]"#, "deeper than 4 levels", "too deep"),
            (r#"{"a":1"#, "not valid JSON", "truncated JSON"),
            (r#"{"a":1} trailing"#, "not valid JSON", "trailing text"),
        ];
        for (body, reason, description) in cases {
            let error = flatten(body, &small).err();
            assert!(
                error.as_ref().is_some_and(|e| e.body.message.contains(reason)),
                "{description}: expected {reason:?}, got {error:?}"
            );
        }
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(
            flatten(&deep, &Limits::default()).is_err(),
            "very deep JSON is refused, not a stack overflow"
        );
        assert!(
            flatten("a\nb\nc\nd", &small).is_err(),
            "plain text is bounded too"
        );
    }
}
