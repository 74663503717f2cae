//! Reading JSON the way every endpoint does: a value of the wrong type is refused with the path
//! to it (`customers[3].tags`), so the client knows what to fix; a lone UTF-16 surrogate escape
//! is repaired rather than refused; and a provider's list can be read item by item, so one
//! malformed item does not cost the others.

use crate::error::{ApiError, ErrorCode};
use serde::de::{self, Deserialize, DeserializeOwned, Deserializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// A document we were handed that is not what it must be, with what is wrong with it in words: a
/// partner's webhook body or API answer that is not what its documentation says, a backup's line
/// or cursor that does not check. A webhook's receiver answers it as 400 `malformed_request`
/// (`From<Malformed> for ApiError`), a restore as 422 naming the line; a CRM call counts it as
/// the partner's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(String);

impl Malformed {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// What is wrong with the document.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// So that a reader says what is wrong in words (`.ok_or("the body has no event name")?`).
impl From<&str> for Malformed {
    fn from(reason: &str) -> Self {
        Self::new(reason)
    }
}

impl From<String> for Malformed {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

/// The reason, for what records or shows it as text (a sync log's entry, a call's refusal).
impl From<Malformed> for String {
    fn from(malformed: Malformed) -> Self {
        malformed.0
    }
}

impl From<Malformed> for ApiError {
    fn from(malformed: Malformed) -> Self {
        ApiError::malformed(malformed.0)
    }
}

/// Deserialises JSON, naming the path of a value of the wrong type (`customers[3].tags`).
///
/// Lone surrogate escapes are repaired first (see [`repair_lone_surrogates`]).
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = repair_lone_surrogates(bytes);
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let error = ApiError::new(
                    ErrorCode::ValidationFailed,
                    format!("the request body has the wrong shape: {inner}"),
                );
                // The body as a whole (a missing field, a number where an object belongs) names no field.
                if field == "." { error } else { error.at(field) }
            }
            _ => ApiError::malformed(format!("the request body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::malformed(format!("the request body is not valid JSON: {error}")))?;
    Ok(value)
}

/// A JSON body's members, when it is an object that names only `allowed` (the fields of a
/// `what`): 422 naming the first other member, with the fields it takes.
pub fn members<'a>(
    body: &'a serde_json::Value,
    allowed: &[&str],
    what: &str,
) -> Result<&'a serde_json::Map<String, serde_json::Value>, ApiError> {
    let members = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("body", "the body must be a JSON object"))?;
    if let Some(name) = members.keys().find(|name| !allowed.contains(&name.as_str())) {
        return Err(ApiError::invalid(
            name.as_str(),
            format!(
                "{name} is not a {what} field; the fields are {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(members)
}

/// The number `text` holds in JSON's notation (`75000.00`, `-3`, `1.5e3`), spaces around it
/// aside; None for anything else (`.5`, `+3`, `1,000`). Read by serde_json, which every bundle
/// has: Rust's own float parser would add it 10 KB gzip.
pub fn number_in_text(text: &str) -> Option<f64> {
    serde_json::from_slice(text.trim().as_bytes()).ok()
}

/// Reads a request's JSON body: as [`from_json`], and refusing what no client means and what two
/// readers of one body could read differently: a name given twice in one object (a parser that
/// keeps the first and one that keeps the last would act on different values), and a NUL
/// character in a string (no name or message holds one, and it cuts text short in the systems we
/// pass it to). Both are 422 with the path of the offending value. Payloads from providers and
/// CRMs, whose shape we do not choose, are read with [`from_json`] instead.
pub fn from_request<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    strict::<T, true>(bytes)
}

/// As [`from_request`], for a batch whose items check their own text: a NUL fails only its item
/// (with the field it is in), not the 999 others; a repeated name still refuses the body.
pub fn from_batch_request<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    strict::<T, false>(bytes)
}

fn strict<T: DeserializeOwned, const NO_NUL: bool>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = repair_lone_surrogates(bytes);
    follows_rules::<NO_NUL>(&bytes)?;
    from_json(&bytes)
}

/// Refuses a body that breaks a rule of [`from_request`] (or, `NO_NUL` false, of
/// [`from_batch_request`]), naming where; one the same for every body type, so each bundle
/// carries it once. The body is looked at byte by byte, not parsed (a 1000-customer batch in a
/// fraction of the parser's time), and a body that is not JSON at all passes here, to be reported
/// by `from_json` in its own words.
fn follows_rules<const NO_NUL: bool>(bytes: &[u8]) -> Result<(), ApiError> {
    let Some((field, message)) = first_broken_rule::<NO_NUL>(bytes) else {
        return Ok(());
    };
    if serde_json::from_slice::<de::IgnoredAny>(bytes).is_err() {
        return Ok(());
    }
    let error = ApiError::new(ErrorCode::ValidationFailed, format!("the request body {message}"));
    Err(if field.is_empty() { error } else { error.at(field) })
}

/// An array or object the scan is inside of, with where in it the scan is.
enum Open<'a> {
    Array {
        index: usize,
    },
    Object {
        names: Names<'a>,
        /// The name of the value being read; the next string is a name when `name_next`.
        name: Option<Cow<'a, [u8]>>,
        name_next: bool,
    },
}

/// Where the scan is, written as `serde_path_to_error` writes a path (`customers[3].tags`),
/// empty at the top.
fn path_of(open: &[Open<'_>]) -> String {
    let mut path = String::new();
    for segment in open {
        match segment {
            Open::Array { index } => path.push_str(&format!("[{index}]")),
            Open::Object { name: Some(name), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&String::from_utf8_lossy(name));
            }
            Open::Object { name: None, .. } => {}
        }
    }
    path
}

/// How deep the parser reads before it refuses a value it builds (serde_json's limit). A body
/// deeper than this is refused whole: serde_json skips a member a type does not name at any depth,
/// so a scan that stopped here would let the rest of the body through unread.
const DEEPEST: usize = 128;

/// The first rule a JSON text breaks, in the text's order, as where (the path of the object
/// that repeats a name or names a NUL, of the string that holds a NUL) and what; None when it
/// breaks none, or stops being JSON before it would. It fails closed: a body nested past
/// [`DEEPEST`], or with a name that is not text, breaks a rule, since past either the scan could
/// not see what the parser reads.
fn first_broken_rule<const NO_NUL: bool>(bytes: &[u8]) -> Option<(String, String)> {
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if open.len() > DEEPEST {
            return Some((String::new(), format!("is nested deeper than {DEEPEST} levels")));
        }
        match byte {
            b'{' => open.push(Open::Object {
                names: Names::default(),
                name: None,
                name_next: true,
            }),
            b'[' => open.push(Open::Array { index: 0 }),
            b'}' | b']' => {
                open.pop();
            }
            b',' => match open.last_mut() {
                Some(Open::Array { index }) => *index += 1,
                Some(Open::Object { name_next, .. }) => *name_next = true,
                None => {}
            },
            b'"' => {
                let (end, holds_nul) = string_end(bytes, at + 1)?;
                let is_name = matches!(open.last(), Some(Open::Object { name_next: true, .. }));
                let text = if is_name {
                    let Some(text) = name_text(bytes.get(at..=end)?) else {
                        let message = "has a name that is not text (an escape that is not Unicode's, or bytes that \
                                       are not UTF-8)";
                        return Some((path_of(&open), message.to_owned()));
                    };
                    Some(text)
                } else {
                    None
                };
                let broken = match (open.last_mut(), text) {
                    (
                        Some(Open::Object {
                            names,
                            name,
                            name_next: name_next @ true,
                        }),
                        Some(text),
                    ) => {
                        *name_next = false;
                        let broken = if NO_NUL && text.contains(&0) {
                            Some("has a NUL character (\\u0000) in a name".to_owned())
                        } else if !names.insert(text.clone()) {
                            let text = String::from_utf8_lossy(&text);
                            Some(format!("gives the name `{text}` twice in one object"))
                        } else {
                            None
                        };
                        *name = Some(text);
                        // Said of the object, not of the name.
                        broken.map(|message| (open.len() - 1, message))
                    }
                    _ => (NO_NUL && holds_nul)
                        .then(|| (open.len(), "has a NUL character (\\u0000) in a string".to_owned())),
                };
                if let Some((depth, message)) = broken {
                    return Some((path_of(open.get(..depth)?), message));
                }
                at = end;
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// Where the string whose text starts at `start` ends (its closing quote), and whether it holds
/// the escape of a NUL; None when it does not end.
fn string_end(bytes: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut at = start;
    let mut holds_nul = false;
    loop {
        at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
        if bytes.get(at) == Some(&b'"') {
            return Some((at, holds_nul));
        }
        holds_nul |= bytes.get(at + 1..at + 6) == Some(b"u0000".as_slice());
        // An escape is a backslash and one character; `\uXXXX`'s digits are plain text.
        at += 2;
    }
}

/// A name as its text's bytes, from its quoted JSON: borrowed unless it holds an escape
/// (`"n\u0033"` is `n3`); None when it is not JSON's text (a bad escape, or bytes that are not
/// UTF-8).
fn name_text(quoted: &[u8]) -> Option<Cow<'_, [u8]>> {
    let inner = quoted.get(1..quoted.len().checked_sub(1)?)?;
    if inner.contains(&b'\\') {
        serde_json::from_slice::<String>(quoted)
            .ok()
            .map(|text| Cow::Owned(text.into_bytes()))
    } else {
        std::str::from_utf8(inner).ok()?;
        Some(Cow::Borrowed(inner))
    }
}

/// The names an object gave so far: a short list searched in order (an item of a batch has a
/// dozen), a set once it is long, so that a hostile object of many names costs no square.
#[derive(Default)]
struct Names<'a> {
    few: Vec<Cow<'a, [u8]>>,
    many: HashSet<Cow<'a, [u8]>>,
}

impl<'a> Names<'a> {
    const FEW: usize = 16;

    /// False when `name` was given before.
    fn insert(&mut self, name: Cow<'a, [u8]>) -> bool {
        if self.few.len() < Self::FEW {
            if self.few.contains(&name) {
                return false;
            }
            self.few.push(name);
            return true;
        }
        if self.many.is_empty() {
            self.many.extend(self.few.iter().cloned());
        }
        self.many.insert(name)
    }
}

/// The escape a lone surrogate becomes: U+FFFD REPLACEMENT CHARACTER.
const REPLACEMENT_ESCAPE: &[u8; 6] = b"\\ufffd";

/// Rewrites every `\uXXXX` escape of an unpaired UTF-16 surrogate to `\ufffd`, leaving the rest
/// of the body as it was; borrowed when there is nothing to repair, which is almost always.
///
/// Why: JavaScript strings may hold a lone surrogate (a string cut in the middle of an emoji),
/// and `JSON.stringify` writes it as an escape such as `\ud800`. That text is no Unicode, so
/// serde_json refuses it, and one broken name in a 1000-item sync would fail the whole request.
/// We choose to keep the item with U+FFFD in place of the broken unit, as WHATWG's UTF-8
/// decoding does for invalid sequences: the client loses one character it could not have meant,
/// not a batch. A high surrogate followed by a low one (`\ud83d\ude00`) is a character and stays.
///
/// Escapes are read in pairs from the start (`\\` is one escaped backslash, so `\\ud800` is a
/// backslash and the text `ud800`). A backslash outside a string is a syntax error that the
/// parser reports anyway, and the replacement has the escape's length, so the positions in any
/// error message stay those of the client's body.
pub fn repair_lone_surrogates(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut repaired: Option<Vec<u8>> = None;
    let mut at = 0;
    // memchr looks a word at a time: a body of 1000 customers holds few backslashes, or none.
    while let Some(offset) = bytes.get(at..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        at += offset;
        let Some(unit) = unicode_escape_at(bytes, at) else {
            // Any other escape is two bytes: the backslash and the character it escapes.
            at += 2;
            continue;
        };
        let lone = match unit {
            0xD800..=0xDBFF => match unicode_escape_at(bytes, at + 6) {
                Some(0xDC00..=0xDFFF) => {
                    at += 12;
                    continue;
                }
                _ => true,
            },
            0xDC00..=0xDFFF => true,
            _ => false,
        };
        if lone {
            let copy = repaired.get_or_insert_with(|| bytes.to_vec());
            if let Some(escape) = copy.get_mut(at..at + REPLACEMENT_ESCAPE.len()) {
                escape.copy_from_slice(REPLACEMENT_ESCAPE);
            }
        }
        at += 6;
    }
    repaired.map_or(Cow::Borrowed(bytes), Cow::Owned)
}

/// The UTF-16 unit of a `\uXXXX` escape starting at `at`, in either case of hex.
fn unicode_escape_at(bytes: &[u8], at: usize) -> Option<u16> {
    match bytes.get(at..at + 6)? {
        [b'\\', b'u', hex @ ..] => hex.iter().try_fold(0u16, |unit, &digit| {
            let value = char::from(digit).to_digit(16)?;
            Some((unit << 4) | u16::try_from(value).ok()?)
        }),
        _ => None,
    }
}

/// Why one item of a list was not read: where (a path such as `entry[0].changes[1].value`) and
/// what was wrong. The reason names kinds, never values, so it can be logged without carrying a
/// customer's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub path: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The same rejection seen from the list that holds the item: `prefix` is the item's path.
    pub fn within(self, prefix: &str) -> Self {
        let path = match self.path.as_str() {
            "" => prefix.to_owned(),
            inner if inner.starts_with('[') => format!("{prefix}{inner}"),
            inner => format!("{prefix}.{inner}"),
        };
        Self { path, ..self }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// One item of a list, read on its own: a provider batches many updates in one request, and an
/// item we cannot read is better skipped and reported than allowed to fail its neighbours (the
/// provider would retry the whole request, fail again, and drop them all). The list itself must
/// still be a list.
#[derive(Debug)]
pub struct Lenient<T>(pub Result<T, Rejection>);

impl<T> Lenient<T> {
    /// The item, or None after recording why it was not read; `path` is where the item sits.
    pub fn take(self, path: &str, rejected: &mut Vec<Rejection>) -> Option<T> {
        match self.0 {
            Ok(item) => Some(item),
            Err(rejection) => {
                rejected.push(rejection.within(path));
                None
            }
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::of(Value::deserialize(deserializer)?))
    }
}

impl<T: DeserializeOwned> Lenient<T> {
    /// The item read from its value, or why it could not be, with the path inside it.
    pub fn of(value: Value) -> Self {
        Self(serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let path = if path == "." { String::new() } else { path };
            Rejection::new(path, without_values(error.inner()))
        }))
    }
}

/// A deserialisation error as text without the value it quotes: `invalid type: string "…",
/// expected u64` becomes `invalid type: string, expected u64`.
fn without_values(error: &serde_json::Error) -> String {
    let text = error.to_string();
    for prefix in ["invalid type: ", "invalid value: "] {
        // The expectation comes from our types, so the last `, expected ` is serde's own.
        if let Some((unexpected, expected)) = text
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit_once(", expected "))
        {
            let kind = unexpected.split(['"', '`']).next().unwrap_or_default().trim();
            return format!("{prefix}{kind}, expected {expected}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn a_number_in_text_is_one_in_json_notation() {
        assert_eq!(number_in_text(" 75000.00 "), Some(75_000.0));
        assert_eq!(number_in_text("-3"), Some(-3.0));
        assert_eq!(number_in_text("1.5e3"), Some(1_500.0));
        for not_one in [
            "", ".5", "+3", "1,000", "5.", "NaN", "inf", "1e400", "lots", "12 13",
        ] {
            assert_eq!(number_in_text(not_one), None, "{not_one}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[allow(dead_code)]
        customers: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Item {
        #[allow(dead_code)]
        tags: Vec<String>,
    }

    #[test]
    fn json_bodies_are_refused_with_the_path_of_what_is_wrong() {
        let cases: [(&[u8], ErrorCode, Option<&str>, &str); 5] = [
            (
                b"{\"customers\": [{\"tags\": [\"a\", 1]}]}",
                ErrorCode::ValidationFailed,
                Some("customers[0].tags[1]"),
                "wrong type deep inside",
            ),
            (
                b"{\"customers\": \"x\"}",
                ErrorCode::ValidationFailed,
                Some("customers"),
                "wrong type at the top",
            ),
            (b"{}", ErrorCode::ValidationFailed, None, "missing field"),
            (
                b"{\"customers\": []} trailing",
                ErrorCode::MalformedRequest,
                None,
                "garbage after the JSON",
            ),
            (
                b"{\"customers\": [",
                ErrorCode::MalformedRequest,
                None,
                "truncated",
            ),
        ];
        for (body, code, field, description) in cases {
            let error = from_json::<Body>(body).err();
            assert_eq!(error.as_ref().map(ApiError::code), Some(code), "{description}");
            assert_eq!(
                error.and_then(|e| e.body.field),
                field.map(str::to_owned),
                "{description}"
            );
        }
        assert!(from_json::<Body>(b" {\"customers\": [{\"tags\": []}]} \n").is_ok());
    }

    #[test]
    fn a_request_body_may_not_repeat_a_name_or_hold_a_nul() {
        let cases: [(&[u8], Option<&str>, &str); 5] = [
            (
                b"{\"customers\": [{\"tags\": [], \"tags\": [\"x\"]}]}",
                Some("customers[0]"),
                "a name repeated deep inside",
            ),
            (
                b"{\"customers\": [], \"customers\": []}",
                None,
                "a name repeated at the top",
            ),
            (
                b"{\"customers\": [{\"tags\": [\"a\\u0000b\"]}]}",
                Some("customers[0].tags[0]"),
                "a NUL in a string",
            ),
            (
                b"{\"customers\": [{\"tags\": [], \"x\\u0000\": 1}]}",
                Some("customers[0]"),
                "a NUL in a name",
            ),
            (
                b"{\"customers\": [{\"tags\": []}], \"extra\": {\"a\": 1, \"a\": 2}}",
                Some("extra"),
                "a repeat in an ignored field",
            ),
        ];
        for (body, field, description) in cases {
            let error = from_request::<Body>(body).err();
            assert_eq!(
                error.as_ref().map(ApiError::code),
                Some(ErrorCode::ValidationFailed),
                "{description}"
            );
            assert_eq!(
                error.and_then(|e| e.body.field).as_deref(),
                field,
                "{description}"
            );
        }
        // The same names in different objects, and escaped text that only looks like a NUL, are fine.
        assert!(
            from_request::<Body>(b"{\"customers\": [{\"tags\": [\"\\\\u0000\"]}, {\"tags\": []}]}").is_ok()
        );
        // Past sixteen names an object's names are kept in a set: a repeat is found there too,
        // a name spelled with an escape is the same name, and forty different names are fine.
        let names = |count: usize, last: &str| {
            let fields: Vec<String> = (0..count).map(|n| format!("\"n{n}\": {n}")).collect();
            format!(
                "{{\"customers\": [{{\"tags\": [], {}, \"{last}\": 0}}]}}",
                fields.join(", ")
            )
        };
        for (body, refused, description) in [
            (names(40, "n3"), true, "the 41st name repeats the 4th"),
            (names(40, "n\\u0033"), true, "the 41st name is the 4th, escaped"),
            (names(10, "n3"), true, "the 11th name repeats the 4th"),
            (names(40, "n40"), false, "41 names, each once"),
        ] {
            let error = from_request::<Body>(body.as_bytes()).err();
            assert_eq!(error.is_some(), refused, "{description}");
            if let Some(error) = error {
                assert_eq!(error.body.field.as_deref(), Some("customers[0]"), "{description}");
            }
        }
        // A batch leaves NULs to its items, and still refuses a repeated name.
        assert!(from_batch_request::<Body>(b"{\"customers\": [{\"tags\": [\"a\\u0000b\"]}]}").is_ok());
        let repeated = from_batch_request::<Body>(b"{\"customers\": [{\"tags\": [], \"tags\": []}]}").err();
        assert_eq!(repeated.map(|e| e.code()), Some(ErrorCode::ValidationFailed));
        // Not JSON at all is still malformed, with from_json's wording.
        let garbage = from_request::<Body>(b"{\"customers\": [").err();
        assert_eq!(garbage.map(|e| e.code()), Some(ErrorCode::MalformedRequest));
    }

    /// What the rules were checked by before the byte scan, kept as the scan's reference: the
    /// parser's own pass over any JSON value, with serde_path_to_error's path to the first value
    /// that breaks one.
    fn parser_verdict<const NO_NUL: bool>(body: &[u8]) -> Option<(String, String)> {
        use serde::de::{MapAccess, SeqAccess, Visitor};

        struct Strict<const NO_NUL: bool>;
        impl<'de, const NO_NUL: bool> Deserialize<'de> for Strict<NO_NUL> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(Strict::<NO_NUL>)
            }
        }
        impl<'de, const NO_NUL: bool> Visitor<'de> for Strict<NO_NUL> {
            type Value = Strict<NO_NUL>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self, E> {
                Ok(self)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self, E> {
                Ok(self)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self, E> {
                Ok(self)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self, E> {
                Ok(self)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self, E> {
                Ok(self)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self, E> {
                if NO_NUL && text.contains('\0') {
                    return Err(E::custom("has a NUL character (\\u0000) in a string"));
                }
                Ok(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Self, A::Error> {
                while items.next_element::<Strict<NO_NUL>>()?.is_some() {}
                Ok(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Self, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = entries.next_key::<String>()? {
                    if NO_NUL && name.contains('\0') {
                        return Err(de::Error::custom("has a NUL character (\\u0000) in a name"));
                    }
                    if names.contains(&name) {
                        return Err(de::Error::custom(format!(
                            "gives the name `{name}` twice in one object"
                        )));
                    }
                    names.push(name);
                    entries.next_value::<Strict<NO_NUL>>()?;
                }
                Ok(self)
            }
        }

        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let error = serde_path_to_error::deserialize::<_, Strict<NO_NUL>>(&mut deserializer).err()?;
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let message = message.split(" at line ").next().unwrap_or_default().to_owned();
        Some((if path == "." { String::new() } else { path }, message))
    }

    #[test]
    fn the_byte_scan_finds_what_the_parser_finds_where_it_finds_it() {
        let bodies: [&[u8]; 14] = [
            br#"{"a": 1, "b": {"a": 2, "b": [{"a": 3}, {"a": 4}]}, "c": "a"}"#,
            br#"{"a": "x\"y", "b": "{\"a\": 1, \"a\": 2}", "c": ["a", "a"]}"#,
            br#"{"a": "\\", "b": "\\\"", "c": "\\\\"}"#,
            br#"[{}, {"a": {}}, [], [[{"a": 1}]], "a", "a"]"#,
            br#"{"a": 1, "b": 2, "a": 3}"#,
            br#"{"a": [1, {"b": 1, "b": 2}]}"#,
            br#"{"a": {}, "a": []}"#,
            br#"{"a": 1, "\u0061": 2}"#,
            br#"{"\u0062": 1, "c": [0, "\u0000"]}"#,
            br#"{"a": "\u0000"}"#,
            br#"{"x": [{"\u0000": 1}]}"#,
            br#"{"a": "\\u0000"}"#,
            br#"{"a": "x\\\u0000"}"#,
            br#"{"a": 1, "b": {"c": 1}, "c": 2, "b": 3}"#,
        ];
        for body in bodies {
            let text = String::from_utf8_lossy(body);
            assert_eq!(
                first_broken_rule::<true>(body),
                parser_verdict::<true>(body),
                "{text}"
            );
            assert_eq!(
                first_broken_rule::<false>(body),
                parser_verdict::<false>(body),
                "{text}"
            );
        }
        // Deeper than the parser reads: refused whole, without a frame for each bracket.
        let deep = format!(
            "{}{{\"a\": 1, \"a\": 2}}{}",
            "[".repeat(200_000),
            "]".repeat(200_000)
        );
        let refused = from_request::<Value>(deep.as_bytes()).err();
        assert_eq!(
            refused.map(|error| (error.code(), error.body.message)),
            Some((
                ErrorCode::ValidationFailed,
                "the request body is nested deeper than 128 levels".to_owned()
            ))
        );
        // Not JSON: what the scan makes of it does not matter, the parser reports it.
        for body in [
            &br#"{"a": 1, "a"#[..],
            br#"{"a": [1, 2}, "a": 3"#,
            br#"{"a": "\u0000"#,
        ] {
            assert_eq!(follows_rules::<true>(body), Ok(()));
        }
    }

    #[test]
    fn a_body_the_scan_cannot_read_to_its_end_is_refused_not_passed() {
        #[derive(Debug, serde::Deserialize)]
        struct Customer {
            #[allow(dead_code)]
            custom_fields: Option<Value>,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Send {
            #[allow(dead_code)]
            name: Option<String>,
        }
        let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        // A member the type does not name, nested past the parser's depth, before a repeated
        // name or a NUL: serde_json skips such a member at any depth, so the scan must not stop.
        let repeated = format!(
            r#"{{"zzz": {}, "custom_fields": {{"tier": "gold", "tier": "free"}}}}"#,
            nested(130)
        );
        let nul = format!(r#"{{"zzz": {}, "name": "Ann\u0000; DROP"}}"#, nested(129));
        // A name that is not text (an escape, then a byte that is not UTF-8), in a member the
        // parser skips without reading its text.
        let mut undecodable = br#"{"zzz": {"\u0041"#.to_vec();
        undecodable.push(0xFF);
        undecodable.extend_from_slice(br#"": 1}, "custom_fields": {"tier": "gold", "tier": "free"}}"#);
        let mut raw = br#"{"zzz": {""#.to_vec();
        raw.push(0xFF);
        raw.extend_from_slice(br#"": 1}, "name": "Ann"}"#);
        for (body, refused) in [
            (repeated.as_bytes(), "nested deeper than 128 levels"),
            (undecodable.as_slice(), "has a name that is not text"),
        ] {
            let error = from_request::<Customer>(body).err();
            assert!(
                error
                    .as_ref()
                    .is_some_and(|error| error.body.message.contains(refused)),
                "{error:?}"
            );
        }
        for (body, refused) in [
            (nul.as_bytes(), "nested deeper than 128 levels"),
            (raw.as_slice(), "has a name that is not text"),
        ] {
            let error = from_request::<Send>(body).err();
            assert!(
                error
                    .as_ref()
                    .is_some_and(|error| error.body.message.contains(refused)),
                "{error:?}"
            );
        }
        // At the parser's depth the scan reads on, and finds the NUL where it is.
        let found =
            from_request::<Send>(format!(r#"{{"zzz": {}, "name": "Ann\u0000"}}"#, nested(127)).as_bytes())
                .err()
                .map(|error| error.body.message);
        assert_eq!(
            found.as_deref(),
            Some("the request body has a NUL character (\\u0000) in a string")
        );
    }

    /// A number below `below`, drawn from `seed` (xorshift).
    fn draw(seed: &mut u64, below: u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed % below
    }

    /// A JSON value drawn from `seed`: objects of names from a small set (so repeats happen),
    /// strings with quotes, backslashes, escapes and brackets in them.
    fn drawn_value(seed: &mut u64, depth: usize, out: &mut String) {
        const TEXTS: [&str; 8] = [
            "a",
            "b",
            "\\u0061",
            "\\\"{",
            "\\\\",
            "]:,",
            "\\u0000",
            "\\\\u0000",
        ];
        match if depth > 3 {
            2 + draw(seed, 2)
        } else {
            draw(seed, 4)
        } {
            0 => {
                out.push('{');
                for at in 0..draw(seed, 4) {
                    if at > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("\"{}\":", TEXTS[draw(seed, 8) as usize]));
                    drawn_value(seed, depth + 1, out);
                }
                out.push('}');
            }
            1 => {
                out.push('[');
                for at in 0..draw(seed, 4) {
                    if at > 0 {
                        out.push(',');
                    }
                    drawn_value(seed, depth + 1, out);
                }
                out.push(']');
            }
            2 => out.push_str(&format!("\"{}\"", TEXTS[draw(seed, 8) as usize])),
            _ => out.push_str(["1", "true", "null", "-2.5e3"][draw(seed, 4) as usize]),
        }
    }

    #[test]
    fn the_byte_scan_finds_what_the_parser_finds_in_drawn_bodies() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let (mut clean, mut broken) = (0, 0);
        for _ in 0..20_000 {
            let mut body = String::new();
            drawn_value(&mut seed, 0, &mut body);
            let body = body.as_bytes();
            let text = String::from_utf8_lossy(body);
            let verdict = parser_verdict::<true>(body);
            assert_eq!(first_broken_rule::<true>(body), verdict, "{text}");
            assert_eq!(
                first_broken_rule::<false>(body),
                parser_verdict::<false>(body),
                "{text}"
            );
            if verdict.is_some() {
                broken += 1
            } else {
                clean += 1
            }
        }
        // Both kinds were drawn, many times.
        assert!(clean > 2_000 && broken > 2_000, "{clean} clean, {broken} broken");
    }

    fn repaired(body: &str) -> String {
        String::from_utf8_lossy(&repair_lone_surrogates(body.as_bytes())).into_owned()
    }

    #[test]
    fn lone_surrogate_escapes_become_the_replacement_character_and_everything_else_stays() {
        let cases = [
            (r#""A\ud800B""#, r#""A\ufffdB""#, "a lone high surrogate"),
            (r#""A\udc00B""#, r#""A\ufffdB""#, "a lone low surrogate"),
            (
                r#""AB\ud800""#,
                r#""AB\ufffd""#,
                "a high surrogate at the end of a string",
            ),
            (r#""\udc00\ud800""#, r#""\ufffd\ufffd""#, "a reversed pair"),
            (
                r#""\ud800\ud83d\ude00""#,
                r#""\ufffd\ud83d\ude00""#,
                "a high surrogate before a pair",
            ),
            (
                r#""\ud800\n""#,
                r#""\ufffd\n""#,
                "a high surrogate before another escape",
            ),
            (r#""A\uD800B\uDFFF""#, r#""A\ufffdB\ufffd""#, "uppercase hex"),
            (r#""\ud83d\ude00""#, r#""\ud83d\ude00""#, "a valid pair"),
            (
                r#""\uD83D\uDE00""#,
                r#""\uD83D\uDE00""#,
                "a valid pair in uppercase",
            ),
            (r#""\\ud800""#, r#""\\ud800""#, "an escaped backslash before u"),
            (
                r#""\\\ud800""#,
                r#""\\\ufffd""#,
                "an escaped backslash, then an escape",
            ),
            (
                r#""\u00e9\u0041""#,
                r#""\u00e9\u0041""#,
                "escapes of other characters",
            ),
            (
                r#""\ud80""#,
                r#""\ud80""#,
                "a truncated escape, left for the parser to refuse",
            ),
            (
                "\"ends in a backslash\\",
                "\"ends in a backslash\\",
                "a trailing backslash",
            ),
        ];
        for (body, expected, description) in cases {
            assert_eq!(repaired(body), expected, "{description}");
        }
    }

    #[test]
    fn a_body_without_lone_surrogates_is_borrowed_not_copied() {
        for body in [r#"{"name": "A\ud83d\ude00B \\ud800"}"#, "{}", ""] {
            assert!(
                matches!(repair_lone_surrogates(body.as_bytes()), Cow::Borrowed(_)),
                "{body}"
            );
        }
    }

    #[test]
    fn one_broken_item_among_many_is_read_with_the_replacement_character() {
        let items: Vec<String> = (0..1000)
            .map(|i| match i {
                500 => r#"{"name": "A\ud800B"}"#.to_owned(),
                _ => format!(r#"{{"name": "Customer {i} \ud83d\ude00"}}"#),
            })
            .collect();
        let body = format!(r#"{{"customers": [{}]}}"#, items.join(","));

        #[derive(serde::Deserialize)]
        struct Named {
            name: String,
        }
        #[derive(serde::Deserialize)]
        struct Batch {
            customers: Vec<Named>,
        }
        let batch = from_json::<Batch>(body.as_bytes()).map_err(|e| e.to_string());
        let names: Vec<String> = batch
            .map(|b| b.customers.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        assert_eq!(names.len(), 1000);
        assert_eq!(names[500], "A\u{FFFD}B");
        assert_eq!(names[499], "Customer 499 \u{1F600}");
        assert_eq!(names[501], "Customer 501 \u{1F600}");
    }

    #[derive(Debug, serde::Deserialize)]
    struct Listed {
        items: Vec<Lenient<Counted>>,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Counted {
        count: u64,
    }

    #[test]
    fn a_lenient_list_keeps_the_good_items_and_says_where_the_bad_ones_went_wrong() {
        let body = br#"{"items": [{"count": 1}, {"count": "secret words"}, "text", {"count": 3}, {}]}"#;
        let listed = from_json::<Listed>(body).map_err(|e| e.to_string());
        let seen: Vec<Result<Counted, String>> = listed
            .map(|l| {
                l.items
                    .into_iter()
                    .map(|item| item.0.map_err(|r| r.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            seen,
            vec![
                Ok(Counted { count: 1 }),
                Err("count: invalid type: string, expected u64".to_owned()),
                Err(": invalid type: string, expected struct Counted".to_owned()),
                Ok(Counted { count: 3 }),
                Err(": missing field `count`".to_owned()),
            ]
        );
    }

    #[test]
    fn a_lenient_list_must_still_be_a_list() {
        let error = from_json::<Listed>(br#"{"items": {"count": 1}}"#).err();
        assert_eq!(error.and_then(|e| e.body.field), Some("items".to_owned()));
    }

    #[test]
    fn a_rejection_is_placed_inside_the_path_of_its_item() {
        let cases = [
            ("", "entry[2]", "entry[2]", "the item itself"),
            (
                "value.messages",
                "entry[0].changes[1]",
                "entry[0].changes[1].value.messages",
                "a field",
            ),
            (
                "[3].id",
                "entry[0].messaging",
                "entry[0].messaging[3].id",
                "an index",
            ),
        ];
        for (inner, prefix, expected, description) in cases {
            assert_eq!(
                Rejection::new(inner, "x").within(prefix).path,
                expected,
                "{description}"
            );
        }
    }
}
