//! Just enough HTTP/1.1 for a local API: request line, headers, a Content-Length body,
//! `Expect: 100-continue`, keep-alive; responses with a length. No chunked bodies: the callers
//! (a worker's fetch with a JSON string, curl, the tests) always send a length.

use std::io::{self, BufRead, Read, Write};

/// Bytes of request line and headers at most.
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Method {
    Get,
    Post,
    Other,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Other => "other",
        }
    }
}

#[derive(Debug)]
pub struct Request {
    pub method: Method,
    /// The path, without the query string.
    pub path: String,
    pub body: Vec<u8>,
    /// Whether the client wants the connection kept open after the response.
    pub keep_alive: bool,
    /// The `Host` header, lowercased (empty when absent).
    pub host: String,
}

/// Why a request could not be read; each is answered (when the connection still works) and
/// the connection closed, since the stream's position in the next request is unknown.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Malformed(&'static str),
    HeadTooLarge,
    BodyTooLarge { limit: usize },
    LengthRequired,
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// Reads one request. `Ok(None)` when the client closed the connection between requests.
/// `on_continue` is written to before the body when the client waits for `100 Continue`.
pub fn read_request<R: BufRead, W: Write>(
    reader: &mut R,
    on_continue: &mut W,
    max_body: usize,
) -> Result<Option<Request>, ReadError> {
    let mut head_bytes = 0;
    let mut line = String::new();
    // Tolerate blank lines before a request line (RFC 9112, 2.2).
    loop {
        line.clear();
        let read = read_line(reader, &mut line, &mut head_bytes)?;
        if read == 0 {
            return Ok(None);
        }
        if !line.trim_end().is_empty() {
            break;
        }
    }
    let mut parts = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed(
            "the request line is not METHOD TARGET VERSION",
        ));
    };
    let http_10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(ReadError::Malformed("only HTTP/1.0 and HTTP/1.1 are spoken here")),
    };
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        _ => Method::Other,
    };
    let path = target.split('?').next().unwrap_or_default().to_owned();

    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut connection = String::new();
    let mut host = String::new();
    let mut expect_continue = false;
    loop {
        line.clear();
        if read_line(reader, &mut line, &mut head_bytes)? == 0 {
            return Err(ReadError::Malformed("the connection closed inside the headers"));
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(ReadError::Malformed("a header line has no colon"));
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let length = value
                    .parse::<usize>()
                    .map_err(|_| ReadError::Malformed("Content-Length is not a number"))?;
                if content_length.is_some_and(|previous| previous != length) {
                    return Err(ReadError::Malformed("conflicting Content-Length headers"));
                }
                content_length = Some(length);
            }
            "transfer-encoding" => chunked = true,
            "connection" => connection = value.to_ascii_lowercase(),
            "host" => host = value.to_ascii_lowercase(),
            "expect" => expect_continue = value.eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if chunked {
        return Err(ReadError::LengthRequired);
    }
    let length = content_length.unwrap_or(0);
    if length > max_body {
        return Err(ReadError::BodyTooLarge { limit: max_body });
    }
    if expect_continue && length > 0 {
        on_continue.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        on_continue.flush()?;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let keep_alive = if http_10 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    Ok(Some(Request {
        method,
        path,
        body,
        keep_alive,
        host,
    }))
}

/// One line, counted against MAX_HEAD; lines are read byte-limited so a client cannot make the
/// server buffer an endless line.
fn read_line<R: BufRead>(
    reader: &mut R,
    line: &mut String,
    head_bytes: &mut usize,
) -> Result<usize, ReadError> {
    let limit = (MAX_HEAD - *head_bytes) as u64 + 1;
    let mut bytes = Vec::new();
    let read = Read::take(&mut *reader, limit).read_until(b'\n', &mut bytes)?;
    *head_bytes += read;
    if *head_bytes > MAX_HEAD {
        return Err(ReadError::HeadTooLarge);
    }
    if read > 0 && !bytes.ends_with(b"\n") {
        return Err(ReadError::Malformed("the connection closed inside the head"));
    }
    line.push_str(std::str::from_utf8(&bytes).map_err(|_| ReadError::Malformed("the head is not UTF-8"))?);
    Ok(read)
}

pub struct Response {
    pub status: u16,
    /// The methods a 405 says the path allows.
    pub allow: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            allow: None,
            body,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

pub fn write_response<W: Write>(writer: &mut W, response: &Response, keep_alive: bool) -> io::Result<()> {
    write!(
        writer,
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {}\r\n",
        response.status,
        reason(response.status),
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    )?;
    if let Some(allow) = response.allow {
        write!(writer, "allow: {allow}\r\n")?;
    }
    writer.write_all(b"\r\n")?;
    writer.write_all(&response.body)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> (Result<Option<Request>, ReadError>, Vec<u8>) {
        let mut continued = Vec::new();
        let result = read_request(&mut raw.as_bytes(), &mut continued, 64);
        (result, continued)
    }

    #[test]
    fn a_post_with_a_body_is_read_and_kept_alive() {
        let (request, continued) = read(
            "POST /ai/run/x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody",
        );
        let Ok(Some(request)) = request else {
            panic!("refused: {request:?}")
        };
        assert_eq!(
            (request.method, request.path.as_str(), request.body.as_slice()),
            (Method::Post, "/ai/run/x", &b"body"[..])
        );
        assert!(request.keep_alive);
        assert_eq!(continued, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn connection_close_and_http_10_end_the_connection() {
        for raw in [
            "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET /health HTTP/1.0\r\n\r\n",
        ] {
            assert!(
                matches!(
                    read(raw).0,
                    Ok(Some(Request {
                        keep_alive: false,
                        ..
                    }))
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn a_closed_connection_between_requests_is_not_an_error() {
        assert!(matches!(read("").0, Ok(None)));
    }

    #[test]
    fn bad_requests_are_refused_with_their_reason() {
        let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        type Expected = fn(&ReadError) -> bool;
        let cases: [(&str, &str, Expected); 6] = [
            ("a garbled request line", "GARBAGE\r\n\r\n", |e| {
                matches!(e, ReadError::Malformed(_))
            }),
            ("an unknown version", "GET / HTTP/2\r\n\r\n", |e| {
                matches!(e, ReadError::Malformed(_))
            }),
            (
                "a bad length",
                "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                |e| matches!(e, ReadError::Malformed(_)),
            ),
            (
                "a body over the limit",
                "POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n",
                |e| matches!(e, ReadError::BodyTooLarge { limit: 64 }),
            ),
            (
                "a chunked body",
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                |e| matches!(e, ReadError::LengthRequired),
            ),
            ("a head over 16 KiB", &long_header, |e| {
                matches!(e, ReadError::HeadTooLarge)
            }),
        ];
        for (description, raw, expected) in cases {
            match read(raw).0 {
                Err(error) => assert!(expected(&error), "{description}: {error:?}"),
                Ok(request) => panic!("{description}: accepted as {request:?}"),
            }
        }
    }
}
