//! The pre-auth scan of a Mailgun POST: its three signature fields (`timestamp`, `token`,
//! `signature`) read straight from the body bytes, without parsing the rest of the form.
//!
//! Mailgun's signature covers only `timestamp` + `token`, not the mail, so nothing else in a POST
//! is worth reading before it is checked. A form parser would materialise every file of a body of
//! up to 25 MiB for an unsigned request; this scan walks the parts by their boundary, reads only
//! part headers (bounded) and the values of the three fields (at most
//! [`MAX_SIGNATURE_FIELD_BYTES`] each), and allocates nothing per file. Parts it cannot follow
//! (a broken delimiter, a header block without its end) end the scan: the fields found before
//! them are the answer, and the full parse that runs after the signature check refuses the body.
//!
//! The values found here are the only ones the receiver uses for the three fields; the parsed
//! form's are ignored, so a form cannot show one token to the check and another to the message.

use crate::error::{ApiError, ErrorCode};
use memchr::memmem;

/// The longest value accepted for `timestamp`, `token` or `signature` (Mailgun's are 10, 50 and
/// 64 characters); a longer one is refused rather than read.
pub const MAX_SIGNATURE_FIELD_BYTES: usize = 256;
/// The longest header block of one part that is read; a longer one ends the scan.
const MAX_PART_HEADER_BYTES: usize = 8 * 1024;
/// RFC 2046: a boundary is 1 to 70 characters.
const MAX_BOUNDARY_BYTES: usize = 70;

/// The two encodings Mailgun posts a forwarded mail in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormType {
    /// `multipart/form-data`, whose parts are separated by `--` + the boundary.
    Multipart { boundary: String },
    /// `application/x-www-form-urlencoded`.
    UrlEncoded,
}

impl FormType {
    /// The form type a `content-type` header names: 415 for anything but the two form types, 400
    /// for multipart without a usable boundary.
    pub fn parse(content_type: &str) -> Result<Self, ApiError> {
        let (kind, params) = content_type.split_once(';').unwrap_or((content_type, ""));
        let kind = kind.trim();
        if kind.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Ok(Self::UrlEncoded);
        }
        if !kind.eq_ignore_ascii_case("multipart/form-data") {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Mailgun forwards mail as multipart/form-data or application/x-www-form-urlencoded",
            ));
        }
        let boundary = Params::new(params.as_bytes())
            .find(|(name, _)| name.eq_ignore_ascii_case(b"boundary"))
            .map(|(_, value)| value.bytes().collect::<Vec<u8>>())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|boundary| (1..=MAX_BOUNDARY_BYTES).contains(&boundary.len()))
            .filter(|boundary| !boundary.contains(['\r', '\n']));
        match boundary {
            Some(boundary) => Ok(Self::Multipart { boundary }),
            None => Err(ApiError::malformed(
                "a multipart/form-data body needs a boundary of 1 to 70 characters",
            )),
        }
    }
}

/// What a POST carries of the fields Mailgun signs with, as sent (absent when not sent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureFields {
    pub timestamp: Option<String>,
    pub token: Option<String>,
    pub signature: Option<String>,
}

/// The names of the signature fields, in the order [`SignatureFields::slot`] knows them.
const NAMES: [&str; 3] = ["timestamp", "token", "signature"];

impl SignatureFields {
    fn slot(&mut self, name: &str) -> &mut Option<String> {
        match name {
            "timestamp" => &mut self.timestamp,
            "token" => &mut self.token,
            _ => &mut self.signature,
        }
    }

    /// Keeps `value` as the field `name`. A field sent twice is refused: Mailgun sends each once,
    /// and two values leave it open which one was signed.
    fn set(&mut self, name: &'static str, value: &[u8]) -> Result<(), ApiError> {
        if value.len() > MAX_SIGNATURE_FIELD_BYTES {
            return Err(ApiError::malformed(format!(
                "{name} is longer than {MAX_SIGNATURE_FIELD_BYTES} bytes"
            ))
            .at(name));
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| ApiError::malformed(format!("{name} is not UTF-8 text")).at(name))?;
        let slot = self.slot(name);
        if slot.is_some() {
            return Err(ApiError::malformed(format!("the form carries {name} more than once")).at(name));
        }
        *slot = Some(value.to_owned());
        Ok(())
    }
}

/// The signature fields of a form `body` of type `form`, read without parsing anything else.
/// Errors only for a signature field that is too long, not text, or sent twice; fields that are
/// missing are left for the signature check to refuse.
pub fn scan(form: &FormType, body: &[u8]) -> Result<SignatureFields, ApiError> {
    match form {
        FormType::Multipart { boundary } => scan_multipart(boundary.as_bytes(), body),
        FormType::UrlEncoded => scan_url_encoded(body),
    }
}

/// Walks the parts of a multipart body (RFC 2046: each delimiter is CRLF `--boundary`, the first
/// may open the body; the close delimiter ends in `--`), reading each part's headers only as far
/// as its `Content-Disposition` and the value only of a signature field that is not a file.
fn scan_multipart(boundary: &[u8], body: &[u8]) -> Result<SignatureFields, ApiError> {
    let mut found = SignatureFields::default();
    let delimiter = [b"\r\n--", boundary].concat();
    let next_delimiter = memmem::Finder::new(&delimiter);
    // Where the bytes after the current delimiter start.
    let mut at = if body.starts_with(&delimiter[2..]) {
        delimiter.len() - 2
    } else {
        match next_delimiter.find(body) {
            Some(position) => position + delimiter.len(),
            None => return Ok(found),
        }
    };
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            break; // the close delimiter
        }
        // Transport padding (spaces and tabs) may follow a delimiter before its CRLF.
        let padding = rest
            .iter()
            .take_while(|byte| matches!(byte, b' ' | b'\t'))
            .count();
        if !rest[padding..].starts_with(b"\r\n") {
            break;
        }
        let start = at + padding + 2;
        let Some(length) = next_delimiter.find(&body[start..]) else {
            break; // a part that never ends: the body is cut short
        };
        let Some((headers, value)) = split_part(&body[start..start + length]) else {
            break;
        };
        if let Some(name) = signature_field_named(headers) {
            found.set(name, value)?;
        }
        at = start + length + delimiter.len();
    }
    Ok(found)
}

/// A part's header block and its content, or None when the headers do not end (within
/// [`MAX_PART_HEADER_BYTES`]) before the part does.
fn split_part(part: &[u8]) -> Option<(&[u8], &[u8])> {
    if let Some(content) = part.strip_prefix(b"\r\n") {
        return Some((&[], content));
    }
    let searched = &part[..part.len().min(MAX_PART_HEADER_BYTES + 4)];
    let end = memmem::find(searched, b"\r\n\r\n")?;
    Some((&part[..end], &part[end + 4..]))
}

/// The signature field a part holds: its `Content-Disposition` is `form-data` with one of the
/// three names and no filename (a file is never a signature field, whatever its name).
fn signature_field_named(headers: &[u8]) -> Option<&'static str> {
    let disposition = headers.split(|byte| *byte == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|byte| *byte == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        name.trim_ascii()
            .eq_ignore_ascii_case(b"content-disposition")
            .then_some(value)
    })?;
    let (kind, params) = match disposition.iter().position(|byte| *byte == b';') {
        Some(semicolon) => (&disposition[..semicolon], &disposition[semicolon + 1..]),
        None => (disposition, &[][..]),
    };
    if !kind.trim_ascii().eq_ignore_ascii_case(b"form-data") {
        return None;
    }
    let mut field = None;
    for (name, value) in Params::new(params) {
        if name.len() >= 8 && name[..8].eq_ignore_ascii_case(b"filename") {
            return None;
        }
        if name.eq_ignore_ascii_case(b"name") {
            field = NAMES.into_iter().find(|wanted| value.bytes().eq(wanted.bytes()));
        }
    }
    field
}

/// The signature fields of a URL-encoded body: pairs split on `&`, names and the three values
/// percent-decoded (`+` is a space), every other value skipped unread.
fn scan_url_encoded(body: &[u8]) -> Result<SignatureFields, ApiError> {
    let mut found = SignatureFields::default();
    for pair in body.split(|byte| *byte == b'&') {
        let (name, value) = match pair.iter().position(|byte| *byte == b'=') {
            Some(equals) => (&pair[..equals], &pair[equals + 1..]),
            None => (pair, &[][..]),
        };
        let Some(field) = NAMES
            .into_iter()
            .find(|wanted| percent_decoded(name).eq(wanted.bytes()))
        else {
            continue;
        };
        // Each decoded byte takes at most three encoded ones: a longer value is too long decoded.
        let bound = 3 * MAX_SIGNATURE_FIELD_BYTES + 3;
        let value: Vec<u8> = percent_decoded(&value[..value.len().min(bound)]).collect();
        found.set(field, &value)?;
    }
    Ok(found)
}

/// The bytes of URL-encoded text (WHATWG `application/x-www-form-urlencoded`): `+` is a space,
/// `%` and two hex digits is that byte, and any other `%` stands for itself.
fn percent_decoded(encoded: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let byte = *encoded.get(at)?;
        at += 1;
        Some(match byte {
            b'+' => b' ',
            b'%' => match (
                encoded.get(at).copied().and_then(hex_digit),
                encoded.get(at + 1).copied().and_then(hex_digit),
            ) {
                (Some(high), Some(low)) => {
                    at += 2;
                    (high << 4) | low
                }
                _ => b'%',
            },
            other => other,
        })
    })
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// The parameters of a header value after its first `;`: `name=token` or `name="quoted"`,
/// separated by `;`. Malformed pieces are skipped; nothing is allocated.
struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Params<'a> {
    fn new(params: &'a [u8]) -> Self {
        Self { rest: params }
    }
}

/// A parameter's value: a token, or a quoted string read with its backslash escapes.
#[derive(Clone, Copy)]
enum ParamValue<'a> {
    Token(&'a [u8]),
    Quoted(&'a [u8]),
}

impl<'a> ParamValue<'a> {
    /// The value's bytes, with a quoted string's escapes resolved.
    fn bytes(self) -> impl Iterator<Item = u8> + 'a {
        let (raw, quoted) = match self {
            Self::Token(raw) => (raw, false),
            Self::Quoted(raw) => (raw, true),
        };
        let mut at = 0;
        std::iter::from_fn(move || {
            let mut byte = *raw.get(at)?;
            at += 1;
            if quoted
                && byte == b'\\'
                && let Some(escaped) = raw.get(at)
            {
                byte = *escaped;
                at += 1;
            }
            Some(byte)
        })
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], ParamValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest.trim_ascii_start();
            if rest.is_empty() {
                self.rest = rest;
                return None;
            }
            let name_end = rest
                .iter()
                .position(|byte| matches!(byte, b'=' | b';'))
                .unwrap_or(rest.len());
            let name = rest[..name_end].trim_ascii();
            if rest.get(name_end) != Some(&b'=') {
                // A name without a value: skipped.
                self.rest = rest.get(name_end + 1..).unwrap_or_default();
                continue;
            }
            let value_start = &rest[name_end + 1..];
            let value_start = value_start.trim_ascii_start();
            let (value, after) = if let Some(quoted) = value_start.strip_prefix(b"\"") {
                let mut end = 0;
                while end < quoted.len() && quoted[end] != b'"' {
                    end += if quoted[end] == b'\\' { 2 } else { 1 };
                }
                if end >= quoted.len() {
                    // A quoted string that never closes: the rest of the header means nothing.
                    self.rest = &[];
                    return None;
                }
                (ParamValue::Quoted(&quoted[..end]), &quoted[end + 1..])
            } else {
                let end = value_start
                    .iter()
                    .position(|byte| *byte == b';')
                    .unwrap_or(value_start.len());
                (
                    ParamValue::Token(value_start[..end].trim_ascii_end()),
                    &value_start[end..],
                )
            };
            // Whatever follows the value up to the next `;` is not part of any parameter.
            self.rest = match after.iter().position(|byte| *byte == b';') {
                Some(semicolon) => &after[semicolon + 1..],
                None => &[],
            };
            return Some((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "----crm-edge-Boundary7MA4YWxk";

    fn multipart() -> FormType {
        FormType::Multipart {
            boundary: BOUNDARY.to_owned(),
        }
    }

    /// One part of a multipart body: a text field, or a file when `filename` is given.
    enum Part<'a> {
        Field(&'a str, &'a [u8]),
        File(&'a str, &'a str, &'a [u8]),
    }

    fn body(parts: &[Part]) -> Vec<u8> {
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            match part {
                Part::Field(name, value) => {
                    body.extend_from_slice(
                        format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                    );
                    body.extend_from_slice(value);
                }
                Part::File(name, filename, bytes) => {
                    body.extend_from_slice(
                        format!(
                            "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                             Content-Type: application/octet-stream\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    body.extend_from_slice(bytes);
                }
            }
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    fn signed() -> SignatureFields {
        SignatureFields {
            timestamp: Some("1700000000".to_owned()),
            token: Some("b8d0f9c6a1e24e5f9c0d7a3b2c1e0f9a8b7c6d5e4f3a2b1c0d".to_owned()),
            signature: Some("0f".repeat(32)),
        }
    }

    fn signature_parts(fields: &SignatureFields) -> [(&'static str, String); 3] {
        [
            ("timestamp", fields.timestamp.clone().unwrap_or_default()),
            ("token", fields.token.clone().unwrap_or_default()),
            ("signature", fields.signature.clone().unwrap_or_default()),
        ]
    }

    /// A large file whose bytes contain near-misses of the delimiter and of the field names.
    fn large_file() -> Vec<u8> {
        let mut file = Vec::new();
        while file.len() < 3 * 1024 * 1024 {
            file.extend_from_slice(b"\r\n--");
            file.extend_from_slice(&BOUNDARY.as_bytes()[..BOUNDARY.len() - 1]);
            file.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nforged\r\n");
            file.extend_from_slice(&[0u8, 0xff, 0xfe, b'\r', b'\n'].repeat(200));
        }
        file
    }

    #[test]
    fn the_signature_fields_are_found_wherever_they_are_among_the_parts() {
        let fields = signed();
        let [(t, tv), (k, kv), (s, sv)] = signature_parts(&fields);
        let file = large_file();
        let cases: [(&str, Vec<Part>); 4] = [
            (
                "first, before a large file",
                vec![
                    Part::Field(t, tv.as_bytes()),
                    Part::Field(k, kv.as_bytes()),
                    Part::Field(s, sv.as_bytes()),
                    Part::Field("sender", b"a@example.com"),
                    Part::File("attachment-1", "big.bin", &file),
                ],
            ),
            (
                "last, after a large file",
                vec![
                    Part::Field("sender", b"a@example.com"),
                    Part::File("attachment-1", "big.bin", &file),
                    Part::Field(t, tv.as_bytes()),
                    Part::Field(k, kv.as_bytes()),
                    Part::Field(s, sv.as_bytes()),
                ],
            ),
            (
                "between large files",
                vec![
                    Part::File("attachment-1", "a.bin", &file),
                    Part::Field(t, tv.as_bytes()),
                    Part::File("attachment-2", "b.bin", &file),
                    Part::Field(k, kv.as_bytes()),
                    Part::Field(s, sv.as_bytes()),
                    Part::File("attachment-3", "c.bin", &file),
                ],
            ),
            (
                "among fields with near-miss names",
                vec![
                    Part::Field("Token", b"upper"),
                    Part::Field("tokens", b"plural"),
                    Part::Field(t, tv.as_bytes()),
                    Part::Field(k, kv.as_bytes()),
                    Part::Field(s, sv.as_bytes()),
                    Part::Field("stimestamp", b"1"),
                ],
            ),
        ];
        for (description, parts) in cases {
            assert_eq!(
                scan(&multipart(), &body(&parts)),
                Ok(fields.clone()),
                "{description}"
            );
        }
    }

    #[test]
    fn a_file_named_like_a_signature_field_is_not_one() {
        let parts = [
            Part::File("token", "token.txt", b"from a file"),
            Part::Field("timestamp", b"1700000000"),
        ];
        let found = scan(&multipart(), &body(&parts));
        assert_eq!(
            found,
            Ok(SignatureFields {
                timestamp: Some("1700000000".to_owned()),
                ..SignatureFields::default()
            })
        );
    }

    #[test]
    fn a_value_keeps_its_own_line_breaks_and_loses_only_the_crlf_before_the_delimiter() {
        let cases: [(&[u8], &str, &str); 4] = [
            (b"abc", "abc", "a plain value"),
            (b"a\r\nb", "a\r\nb", "a CRLF inside the value"),
            (b"abc\r\n", "abc\r\n", "a CRLF ending the value itself"),
            (b"", "", "an empty value"),
        ];
        for (value, expected, description) in cases {
            let found = scan(&multipart(), &body(&[Part::Field("token", value)]));
            assert_eq!(
                found.map(|fields| fields.token),
                Ok(Some(expected.to_owned())),
                "{description}"
            );
        }
    }

    #[test]
    fn the_body_may_have_a_preamble_padding_after_delimiters_and_no_closing_crlf() {
        let raw = format!(
            "This is the preamble.\r\n--{BOUNDARY} \t\r\n\
             content-disposition: FORM-DATA; NAME=token\r\n\r\n\
             abc\r\n--{BOUNDARY}--"
        );
        let found = scan(&multipart(), raw.as_bytes());
        assert_eq!(found.map(|fields| fields.token), Ok(Some("abc".to_owned())));
    }

    #[test]
    fn a_missing_field_is_left_for_the_signature_check() {
        let parts = [
            Part::Field("timestamp", b"1700000000"),
            Part::Field("signature", b"00"),
        ];
        let found = scan(&multipart(), &body(&parts));
        assert_eq!(found.map(|fields| fields.token), Ok(None));
    }

    #[test]
    fn a_duplicated_oversized_or_binary_signature_field_is_refused() {
        let long = "a".repeat(MAX_SIGNATURE_FIELD_BYTES + 1);
        let longest = "a".repeat(MAX_SIGNATURE_FIELD_BYTES);
        let cases: [(Vec<Part>, Option<&str>, &str); 5] = [
            (
                vec![Part::Field("token", b"one"), Part::Field("token", b"two")],
                Some("token"),
                "a token sent twice",
            ),
            (
                vec![
                    Part::Field("signature", b"aa"),
                    Part::File("attachment-1", "x.bin", &[7; 4096]),
                    Part::Field("signature", b"aa"),
                ],
                Some("signature"),
                "the same signature sent twice, a file between",
            ),
            (
                vec![Part::Field("timestamp", long.as_bytes())],
                Some("timestamp"),
                "a timestamp one byte over the limit",
            ),
            (
                vec![Part::Field("token", &[0xff, 0xfe])],
                Some("token"),
                "a token that is not UTF-8",
            ),
            (
                vec![Part::Field("token", longest.as_bytes())],
                None,
                "a token exactly at the limit is accepted",
            ),
        ];
        for (parts, refused_field, description) in cases {
            let refusal = scan(&multipart(), &body(&parts)).err();
            assert_eq!(
                refusal.as_ref().map(|error| error.code()),
                refused_field.map(|_| ErrorCode::MalformedRequest),
                "{description}"
            );
            assert_eq!(
                refusal.and_then(|error| error.body.field),
                refused_field.map(str::to_owned),
                "{description}"
            );
        }
    }

    #[test]
    fn a_broken_part_ends_the_scan_with_what_was_found_before_it() {
        let valid = body(&[Part::Field("token", b"abc")]);
        let before_close = valid.len() - format!("--{BOUNDARY}--\r\n").len();
        let mut broken_tail = valid[..before_close].to_vec();
        broken_tail.extend_from_slice(format!("--{BOUNDARY}\r\nno header end, no close").as_bytes());
        let mut garbage_after_delimiter = valid[..before_close].to_vec();
        garbage_after_delimiter.extend_from_slice(format!("--{BOUNDARY}garbage\r\n").as_bytes());
        garbage_after_delimiter.extend_from_slice(&body(&[Part::Field("signature", b"ff")]));
        let mut unending_headers = valid[..before_close].to_vec();
        unending_headers.extend_from_slice(format!("--{BOUNDARY}\r\nX-Long: ").as_bytes());
        unending_headers.extend_from_slice(&[b'x'; MAX_PART_HEADER_BYTES + 10]);
        unending_headers.extend_from_slice(
            format!("\r\nContent-Disposition: form-data; name=\"signature\"\r\n\r\nff\r\n--{BOUNDARY}--")
                .as_bytes(),
        );
        for (raw, description) in [
            (broken_tail, "a last part cut short"),
            (garbage_after_delimiter, "bytes after a delimiter"),
            (unending_headers, "a header block over the limit"),
        ] {
            assert_eq!(
                scan(&multipart(), &raw),
                Ok(SignatureFields {
                    token: Some("abc".to_owned()),
                    ..SignatureFields::default()
                }),
                "{description}"
            );
        }
    }

    #[test]
    fn hostile_or_meaningless_bodies_give_no_fields_and_never_panic() {
        let boundary = format!("--{BOUNDARY}");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "an empty body"),
            (b"this is not multipart".to_vec(), "text without a delimiter"),
            (boundary.clone().into_bytes(), "only an opening delimiter"),
            (format!("{boundary}\r\n").into_bytes(), "a delimiter and its CRLF"),
            (
                format!("{boundary}\r\n\r\n").into_bytes(),
                "an unterminated empty part",
            ),
            (
                format!(
                    "{boundary}\r\nContent-Disposition: form-data; name=\"token\r\n\r\nabc\r\n{boundary}--"
                )
                .into_bytes(),
                "an unterminated quoted name",
            ),
            (
                format!(
                    "{boundary}\r\nContent-Disposition: form-data; name=\"tok\\\r\n\r\nabc\r\n{boundary}--"
                )
                .into_bytes(),
                "a name ending in a backslash",
            ),
            (
                format!(
                    "{boundary}\r\nContent-Disposition: form-data; name=; ;=; name\r\n\r\nabc\r\n{boundary}--"
                )
                .into_bytes(),
                "parameters without names or values",
            ),
            (
                format!(
                    "{boundary}\r\nContent-Disposition: attachment; name=\"token\"\r\n\r\nabc\r\n{boundary}--"
                )
                .into_bytes(),
                "a part that is not form-data",
            ),
            (
                format!("{boundary}\r\n:\r\n\r\n\r\n{boundary}\r\n\r\n\r\n{boundary}--").into_bytes(),
                "empty headers and empty parts",
            ),
            (
                format!("\r\n{boundary}").repeat(10_000).into_bytes(),
                "ten thousand delimiters",
            ),
            (
                (0..=255u8).cycle().take(1 << 20).collect(),
                "a megabyte of every byte value",
            ),
        ];
        for (raw, description) in cases {
            assert_eq!(
                scan(&multipart(), &raw),
                Ok(SignatureFields::default()),
                "{description}"
            );
        }
    }

    #[test]
    fn the_boundary_is_read_from_the_content_type_quoted_or_not() {
        let cases = [
            ("multipart/form-data; boundary=abc123", Ok("abc123"), "a token"),
            (
                "Multipart/Form-Data;BOUNDARY=\"a b;c\"",
                Ok("a b;c"),
                "quoted, with a space and a semicolon",
            ),
            (
                "multipart/form-data; charset=utf-8; boundary=\"x\\\"y\"",
                Ok("x\"y"),
                "an escaped quote",
            ),
            (
                "multipart/form-data",
                Err(ErrorCode::MalformedRequest),
                "no boundary",
            ),
            (
                "multipart/form-data; boundary=",
                Err(ErrorCode::MalformedRequest),
                "an empty boundary",
            ),
            (
                "multipart/form-data; boundary=\"\"",
                Err(ErrorCode::MalformedRequest),
                "an empty quoted boundary",
            ),
            (
                "multipart/form-data; boundary=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                Err(ErrorCode::MalformedRequest),
                "a boundary of 71 characters",
            ),
            ("application/json", Err(ErrorCode::UnsupportedMediaType), "JSON"),
            ("", Err(ErrorCode::UnsupportedMediaType), "no content type"),
        ];
        for (content_type, expected, description) in cases {
            let parsed = FormType::parse(content_type).map_err(|error| error.code());
            let expected = expected.map(|boundary| FormType::Multipart {
                boundary: boundary.to_owned(),
            });
            assert_eq!(parsed, expected, "{description}");
        }
        assert_eq!(
            FormType::parse("application/x-www-form-urlencoded; charset=utf-8"),
            Ok(FormType::UrlEncoded)
        );
    }

    #[test]
    fn a_quoted_boundary_separates_the_parts() {
        let boundary = "a b;c";
        let raw = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc\r\n--{boundary}--\r\n"
        );
        let form = FormType::parse(&format!("multipart/form-data; boundary=\"{boundary}\""));
        let found = form.and_then(|form| scan(&form, raw.as_bytes()));
        assert_eq!(found.map(|fields| fields.token), Ok(Some("abc".to_owned())));
    }

    #[test]
    fn url_encoded_signature_fields_are_percent_decoded_and_the_rest_skipped() {
        let raw = b"sender=a%40example.com&body-plain=x%zz%&tim%65stamp=1700000000\
                    &token=a+b%2Bc%25d&signature=%30%66&attachment-count=0";
        let found = scan(&FormType::UrlEncoded, raw);
        assert_eq!(
            found,
            Ok(SignatureFields {
                timestamp: Some("1700000000".to_owned()),
                token: Some("a b+c%d".to_owned()),
                signature: Some("0f".to_owned()),
            })
        );
    }

    #[test]
    fn url_encoded_bodies_that_are_odd_or_hostile_are_read_without_panic() {
        let long = format!("token={}", "%41".repeat(MAX_SIGNATURE_FIELD_BYTES + 1));
        let at_limit = format!("token={}", "%41".repeat(MAX_SIGNATURE_FIELD_BYTES));
        let decoded_at_limit = "A".repeat(MAX_SIGNATURE_FIELD_BYTES);
        /// The token found, or the field a refusal names.
        type Expected<'a> = Result<Option<&'a str>, &'a str>;
        let cases: [(&[u8], Expected, &str); 9] = [
            (b"", Ok(None), "an empty body"),
            (b"&&&==&=", Ok(None), "only separators"),
            (b"token", Ok(Some("")), "a name without a value"),
            (b"token=%", Ok(Some("%")), "a lone percent sign"),
            (b"token=%4", Ok(Some("%4")), "a cut-off escape"),
            (b"token=a&token=b", Err("token"), "a token sent twice"),
            (b"token=%ff", Err("token"), "a token that is not UTF-8"),
            (long.as_bytes(), Err("token"), "a token one byte over the limit"),
            (
                at_limit.as_bytes(),
                Ok(Some(decoded_at_limit.as_str())),
                "a token at the limit",
            ),
        ];
        for (raw, expected, description) in cases {
            let found = scan(&FormType::UrlEncoded, raw);
            let found = found
                .map(|fields| fields.token)
                .map_err(|error| error.body.field.unwrap_or_default());
            let expected = expected
                .map(|token| token.map(str::to_owned))
                .map_err(str::to_owned);
            assert_eq!(found, expected, "{description}");
        }
    }
}
