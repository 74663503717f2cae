//! Forms as providers and clients write them, and as a partner reads them: URL-encoded (as the
//! web's `URLSearchParams` writes it, what Twilio and Mailgun post) and `multipart/form-data`
//! written part by part (RFC 7578), so that a test decides the order of the parts and how the body
//! ends. Written here, not with the runtime's form parser, so a test never checks the parser with
//! itself.

/// The boundary of the multipart bodies written here.
pub const BOUNDARY: &str = "----crm-edge-test-boundary-3f9a1c";

/// `params` as `application/x-www-form-urlencoded`: letters, digits and `*-._` as they are, a
/// space as `+`, every other byte of the UTF-8 as `%XX`.
pub fn url_encoded<N: AsRef<str>, V: AsRef<str>>(params: &[(N, V)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name.as_ref()), encode(value.as_ref())))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                encoded.push(char::from(byte))
            }
            b' ' => encoded.push('+'),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

/// The pairs of a URL-encoded body, decoded (`+` is a space, `%XX` a byte).
pub fn read_url_encoded(body: &[u8]) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut at = 0;
        while at < bytes.len() {
            match bytes[at] {
                b'+' => decoded.push(b' '),
                b'%' if at + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[at + 1..at + 3]).ok();
                    match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                        Some(byte) => {
                            decoded.push(byte);
                            at += 2;
                        }
                        None => decoded.push(b'%'),
                    }
                }
                other => decoded.push(other),
            }
            at += 1;
        }
        String::from_utf8_lossy(&decoded).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// A multipart body, part by part.
#[derive(Default)]
pub struct Multipart {
    body: Vec<u8>,
}

impl Multipart {
    pub fn new() -> Self {
        Self::default()
    }

    /// `multipart/form-data; boundary=…` of the bodies written here.
    pub fn content_type() -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    /// A text field.
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.part(&format!("form-data; name=\"{name}\""), None, value.as_bytes());
        self
    }

    /// Text fields, in order.
    pub fn fields<N: AsRef<str>, V: AsRef<str>>(self, fields: &[(N, V)]) -> Self {
        fields.iter().fold(self, |form, (name, value)| {
            form.field(name.as_ref(), value.as_ref())
        })
    }

    /// A file.
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.part(
            &format!("form-data; name=\"{name}\"; filename=\"{filename}\""),
            Some(content_type),
            bytes,
        );
        self
    }

    /// The body, closed by the final delimiter.
    pub fn finish(self) -> Vec<u8> {
        self.finish_with(format!("--{BOUNDARY}--\r\n").as_bytes())
    }

    /// The body ended by `tail` instead of the final delimiter (a part that never ends).
    pub fn finish_with(mut self, tail: &[u8]) -> Vec<u8> {
        self.body.extend_from_slice(tail);
        self.body
    }

    fn part(&mut self, disposition: &str, content_type: Option<&str>, bytes: &[u8]) {
        let content_type = content_type
            .map(|kind| format!("\r\nContent-Type: {kind}"))
            .unwrap_or_default();
        self.body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: {disposition}{content_type}\r\n\r\n").as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
    }
}

/// One part of a multipart body as a partner read it.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// The parts of a multipart body whose `Content-Type` header is `content_type`; none when it has
/// no boundary or the body does not follow it.
pub fn read_multipart(content_type: &str, body: &[u8]) -> Vec<Part> {
    let Some(boundary) = content_type.split(';').find_map(|parameter| {
        let (key, value) = parameter.split_once('=')?;
        (key.trim() == "boundary").then(|| value.trim().trim_matches('"').to_owned())
    }) else {
        return Vec::new();
    };
    let delimiter = format!("\r\n--{boundary}");
    // A leading CRLF lets the first delimiter be found like the others.
    let mut text = b"\r\n".to_vec();
    text.extend_from_slice(body);
    let mut parts = Vec::new();
    let mut pieces = split(&text, delimiter.as_bytes()).into_iter().skip(1);
    for piece in pieces.by_ref() {
        if piece.starts_with(b"--") {
            break;
        }
        let Some(piece) = piece.strip_prefix(b"\r\n") else {
            break;
        };
        let Some(head_end) = position(piece, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&piece[..head_end]);
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            bytes: piece[head_end + 4..].to_vec(),
        };
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.eq_ignore_ascii_case("content-disposition") {
                for parameter in value.split(';').skip(1) {
                    if let Some((key, value)) = parameter.split_once('=') {
                        let value = value.trim().trim_matches('"').to_owned();
                        match key.trim() {
                            "name" => part.name = value,
                            "filename" => part.filename = Some(value),
                            _ => {}
                        }
                    }
                }
            } else if key.eq_ignore_ascii_case("content-type") {
                part.content_type = Some(value.trim().to_owned());
            }
        }
        parts.push(part);
    }
    parts
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn split<'a>(haystack: &'a [u8], needle: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = haystack;
    while let Some(at) = position(rest, needle) {
        pieces.push(&rest[..at]);
        rest = &rest[at + needle.len()..];
    }
    pieces.push(rest);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_encoded_as_the_web_encodes_it_and_read_back() {
        let params = [
            ("Body", "Is it 50% off & more?"),
            ("From", "+353 87"),
            ("é", "*-._~"),
        ];
        let encoded = url_encoded(&params);
        assert_eq!(
            encoded,
            "Body=Is+it+50%25+off+%26+more%3F&From=%2B353+87&%C3%A9=*-._%7E"
        );
        let read = read_url_encoded(encoded.as_bytes());
        let expected: Vec<(String, String)> = params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_multipart_body_is_read_back_part_by_part() {
        let body = Multipart::new()
            .field("to", "a@example.com")
            .file("attachment", "a.pdf", "application/pdf", b"%PDF\r\n--x")
            .finish();
        let parts = read_multipart(&Multipart::content_type(), &body);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(
            (parts[0].name.as_str(), parts[0].bytes.as_slice()),
            ("to", b"a@example.com".as_slice())
        );
        assert_eq!(parts[1].filename.as_deref(), Some("a.pdf"));
        assert_eq!(parts[1].content_type.as_deref(), Some("application/pdf"));
        assert_eq!(parts[1].bytes, b"%PDF\r\n--x");
    }
}
