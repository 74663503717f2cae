//! Requests, responses and outbound calls in the native runtime, with the methods of `worker`'s
//! types that edge and the functions use. An outbound call is answered by the script the test
//! wrote for its host (`partners`); a host without one refuses the connection.

use super::partners::{self, Outbound};
use super::{Stack, clock};
use futures_util::stream::{self, Stream, StreamExt};
use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use worker::{Error, Method, Result};

/// Header names are kept lowercased; `get` joins repeated values with ", ", as the web's do.
#[derive(Default, Debug)]
pub struct Headers(RefCell<Vec<(String, String)>>);

impl Clone for Headers {
    fn clone(&self) -> Self {
        Self(RefCell::new(self.0.borrow().clone()))
    }
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_ascii_lowercase();
        let values: Vec<String> = self
            .0
            .borrow()
            .iter()
            .filter(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
            .collect();
        Ok((!values.is_empty()).then(|| values.join(", ")))
    }

    pub fn has(&self, name: &str) -> Result<bool> {
        Ok(self.get(name)?.is_some())
    }

    pub fn set(&self, name: &str, value: &str) -> Result<()> {
        check_header(name, value)?;
        let name = name.to_ascii_lowercase();
        let mut entries = self.0.borrow_mut();
        entries.retain(|(key, _)| *key != name);
        entries.push((name, value.trim().to_owned()));
        Ok(())
    }

    pub fn append(&self, name: &str, value: &str) -> Result<()> {
        check_header(name, value)?;
        self.0
            .borrow_mut()
            .push((name.to_ascii_lowercase(), value.trim().to_owned()));
        Ok(())
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
        self.0.borrow_mut().retain(|(key, _)| *key != name);
        Ok(())
    }

    /// Every header, sorted by name, repeated values joined (the web's iteration order).
    pub fn entries(&self) -> impl Iterator<Item = (String, String)> {
        let mut names: Vec<String> = self.0.borrow().iter().map(|(key, _)| key.clone()).collect();
        names.sort();
        names.dedup();
        let joined: Vec<(String, String)> = names
            .into_iter()
            .filter_map(|name| {
                let value = self.get(&name).ok().flatten()?;
                Some((name, value))
            })
            .collect();
        joined.into_iter()
    }

    pub fn keys(&self) -> impl Iterator<Item = String> {
        self.entries().map(|(name, _)| name)
    }
}

impl<const N: usize> From<[(&str, &str); N]> for Headers {
    fn from(pairs: [(&str, &str); N]) -> Self {
        let headers = Headers::new();
        for (name, value) in pairs {
            let _ = headers.append(name, value);
        }
        headers
    }
}

/// The web refuses a header whose name is not a token or whose value holds a line break.
fn check_header(name: &str, value: &str) -> Result<()> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
    if !token || value.contains(['\r', '\n', '\0']) {
        return Err(Error::JsError(format!("TypeError: invalid header {name:?}")));
    }
    Ok(())
}

/// A body as a stream of chunks.
pub struct ByteStream {
    inner: Pin<Box<dyn Stream<Item = Result<Vec<u8>>>>>,
}

impl ByteStream {
    pub(crate) fn new(stream: impl Stream<Item = Result<Vec<u8>>> + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    pub(crate) fn of(bytes: Vec<u8>) -> Self {
        Self::new(stream::iter((!bytes.is_empty()).then_some(Ok(bytes))))
    }

    /// Every chunk, joined.
    pub(crate) async fn read_all(mut self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        while let Some(chunk) = self.next().await {
            bytes.extend(chunk?);
        }
        Ok(bytes)
    }
}

impl Stream for ByteStream {
    type Item = Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// A request a function is handed, or makes.
pub struct Request {
    method: Method,
    /// The method as sent, where `worker::Method` has no name for it (it reads those as GET).
    unknown_method: Option<String>,
    url: String,
    headers: Headers,
    body: Option<Vec<u8>>,
}

impl Request {
    /// A request to `url` (absolute) with no body.
    pub fn new(url: &str, method: Method) -> Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::JsError(format!("TypeError: invalid URL {url:?}")));
        }
        Ok(Self {
            method,
            unknown_method: None,
            url: url.to_owned(),
            headers: Headers::new(),
            body: Some(Vec::new()),
        })
    }

    /// The request with the header `name` set (native: how a test writes one).
    pub fn with_header(self, name: &str, value: &str) -> Self {
        let _ = self.headers.set(name, value);
        self
    }

    /// The request with `body` (native: how a test writes one).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The request sent with a method `worker::Method` has no name for (native: how a test sends
    /// `QUERY`); `method()` then reads GET, as the `worker` crate does.
    pub fn with_unknown_method(mut self, name: &str) -> Self {
        self.method = Method::from(name.to_owned());
        self.unknown_method = Some(name.to_owned());
        self
    }

    pub fn method(&self) -> Method {
        self.method.clone()
    }

    /// The method as sent.
    pub fn method_name(&self) -> String {
        self.unknown_method
            .clone()
            .unwrap_or_else(|| self.method.as_ref().to_owned())
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> Result<&mut Headers> {
        Ok(&mut self.headers)
    }

    /// The request as it is, at another (absolute) URL.
    pub fn moved_to(mut self, url: &str) -> Result<Self> {
        let at = Self::new(url, self.method.clone())?;
        self.url = at.url;
        Ok(self)
    }

    /// The URL's path, without its query.
    pub fn path(&self) -> String {
        let after_scheme = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        let path = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]);
        path.split(['?', '#']).next().unwrap_or("/").to_owned()
    }

    pub(crate) fn url_text(&self) -> &str {
        &self.url
    }

    fn take_body(&mut self) -> Result<Vec<u8>> {
        self.body.take().ok_or(Error::BodyUsed)
    }

    pub async fn bytes(&mut self) -> Result<Vec<u8>> {
        self.take_body()
    }

    pub async fn text(&mut self) -> Result<String> {
        String::from_utf8(self.take_body()?).map_err(|error| Error::RustError(error.to_string()))
    }

    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        Ok(serde_json::from_slice(&self.take_body()?)?)
    }

    /// The body as a stream (one chunk).
    pub fn stream(&mut self) -> Result<ByteStream> {
        Ok(ByteStream::of(self.take_body()?))
    }

    /// The body read as a form (`multipart/form-data` or `application/x-www-form-urlencoded`).
    pub async fn form_data(&mut self) -> Result<FormData> {
        let content_type = self.headers.get("content-type")?.unwrap_or_default();
        FormData::parse(&content_type, &self.take_body()?)
    }

    /// A copy of the request, its body read whole (what the native runtime sends a partner).
    fn copy(&self) -> Request {
        Request {
            method: self.method.clone(),
            unknown_method: self.unknown_method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }
}

/// A response's body.
pub enum ResponseBody {
    Empty,
    Body(Vec<u8>),
    Stream(ByteStream),
}

/// A response a function answers with, or a partner answered.
pub struct Response {
    status: u16,
    headers: Headers,
    body: ResponseBody,
}

impl Response {
    fn fixed(status: u16, headers: Headers, body: Vec<u8>) -> Self {
        Self {
            status,
            headers,
            body: ResponseBody::Body(body),
        }
    }

    pub fn ok(body: impl Into<String>) -> Result<Self> {
        let headers = Headers::new();
        headers.set("content-type", "text/plain; charset=utf-8")?;
        Ok(Self::fixed(200, headers, body.into().into_bytes()))
    }

    pub fn empty() -> Result<Self> {
        Ok(Self {
            status: 200,
            headers: Headers::new(),
            body: ResponseBody::Empty,
        })
    }

    pub fn error(message: impl Into<String>, status: u16) -> Result<Self> {
        if !(400..=599).contains(&status) {
            return Err(Error::RustError(
                "error status codes must be in the 400-599 range".into(),
            ));
        }
        Ok(Self::fixed(status, Headers::new(), message.into().into_bytes()))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        let headers = Headers::new();
        headers.set("content-type", "application/octet-stream")?;
        Ok(Self::fixed(200, headers, bytes))
    }

    pub fn from_html(html: impl AsRef<str>) -> Result<Self> {
        let headers = Headers::new();
        headers.set("content-type", "text/html; charset=utf-8")?;
        Ok(Self::fixed(200, headers, html.as_ref().as_bytes().to_vec()))
    }

    pub fn from_body(body: ResponseBody) -> Result<Self> {
        Ok(Self {
            status: 200,
            headers: Headers::new(),
            body,
        })
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    pub fn status_code(&self) -> u16 {
        self.status
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    pub async fn bytes(&mut self) -> Result<Vec<u8>> {
        match std::mem::replace(&mut self.body, ResponseBody::Empty) {
            ResponseBody::Empty => Ok(Vec::new()),
            ResponseBody::Body(bytes) => {
                self.body = ResponseBody::Body(bytes.clone());
                Ok(bytes)
            }
            ResponseBody::Stream(stream) => stream.read_all().await,
        }
    }

    pub async fn text(&mut self) -> Result<String> {
        String::from_utf8(self.bytes().await?).map_err(|error| Error::RustError(error.to_string()))
    }

    pub async fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        Ok(serde_json::from_slice(&self.bytes().await?)?)
    }

    /// The body as a stream: only a body that came as one (a partner's answer), as on Workers.
    pub fn stream(&mut self) -> Result<ByteStream> {
        match std::mem::replace(&mut self.body, ResponseBody::Empty) {
            ResponseBody::Stream(stream) => Ok(stream),
            other => {
                self.body = other;
                Err(Error::RustError("body is not streamable".into()))
            }
        }
    }
}

/// A form's entry: a text field or a file.
pub enum FormEntry {
    Field(String),
    File(File),
}

/// A file of a multipart form.
pub struct File {
    name: String,
    content_type: String,
    bytes: Vec<u8>,
}

impl File {
    pub fn name(&self) -> String {
        self.name.clone()
    }

    pub fn type_(&self) -> String {
        self.content_type.clone()
    }

    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    pub async fn bytes(&self) -> Result<Vec<u8>> {
        Ok(self.bytes.clone())
    }
}

/// A form read from a request's body.
#[derive(Default)]
pub struct FormData(Vec<(String, Rc<FormEntryData>)>);

enum FormEntryData {
    Field(String),
    File {
        name: String,
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl FormData {
    pub fn get(&self, name: &str) -> Option<FormEntry> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, entry)| match entry.as_ref() {
                FormEntryData::Field(value) => FormEntry::Field(value.clone()),
                FormEntryData::File {
                    name,
                    content_type,
                    bytes,
                } => FormEntry::File(File {
                    name: name.clone(),
                    content_type: content_type.clone(),
                    bytes: bytes.clone(),
                }),
            })
    }

    /// The text field `name` (a file is not one).
    pub fn get_field(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            FormEntry::Field(value) => Some(value),
            FormEntry::File(_) => None,
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// Parses a body as the runtime's form parser does; a body it cannot read is a `TypeError`.
    pub(crate) fn parse(content_type: &str, body: &[u8]) -> Result<Self> {
        let refused = |why: &str| Error::JsError(format!("TypeError: {why}"));
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/x-www-form-urlencoded" => {
                let text = std::str::from_utf8(body).map_err(|_| refused("the form is not UTF-8"))?;
                let entries = domain::query::Query::parse(Some(text))
                    .pairs()
                    .iter()
                    .map(|(name, value)| (name.clone(), Rc::new(FormEntryData::Field(value.clone()))))
                    .collect();
                Ok(Self(entries))
            }
            "multipart/form-data" => {
                let boundary = parameter(content_type, "boundary").ok_or_else(|| refused("no boundary"))?;
                multipart(body, &boundary).ok_or_else(|| refused("the multipart body cannot be parsed"))
            }
            _ => Err(refused("the content type is not a form's")),
        }
    }
}

/// A parameter of a header value (`boundary` of `multipart/form-data; boundary=x`), unquoted.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|part| {
        let (key, found) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| found.trim().trim_matches('"').to_owned())
    })
}

/// The parts of a multipart body (RFC 7578): each part's headers, a blank line, its bytes.
fn multipart(body: &[u8], boundary: &str) -> Option<FormData> {
    let delimiter = format!("--{boundary}");
    let mut entries = Vec::new();
    let mut rest = body.get(find(body, delimiter.as_bytes())? + delimiter.len()..)?;
    loop {
        if rest.starts_with(b"--") {
            return Some(FormData(entries));
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        let content = &rest[head_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        let bytes = content[..end].to_vec();
        rest = &content[end + 2 + delimiter.len()..];
        let mut name = None;
        let mut filename = None;
        let mut content_type = "application/octet-stream".to_owned();
        for line in head.split("\r\n") {
            let (key, value) = line.split_once(':')?;
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                name = parameter(value, "name");
                filename = parameter(value, "filename");
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                content_type = value.trim().to_owned();
            }
        }
        let entry = match filename {
            Some(name) => FormEntryData::File {
                name,
                content_type,
                bytes,
            },
            None => FormEntryData::Field(String::from_utf8(bytes).ok()?),
        };
        entries.push((name?, Rc::new(entry)));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// What a request or response body is made from.
pub enum Data {
    Empty,
    Bytes(Vec<u8>),
    Text(String),
    Stream(ByteStream),
}

impl Data {
    pub(crate) async fn into_bytes(self) -> Result<Vec<u8>> {
        match self {
            Data::Empty => Ok(Vec::new()),
            Data::Bytes(bytes) => Ok(bytes),
            Data::Text(text) => Ok(text.into_bytes()),
            Data::Stream(stream) => stream.read_all().await,
        }
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Self {
        Data::Bytes(bytes)
    }
}

impl From<String> for Data {
    fn from(text: String) -> Self {
        Data::Text(text)
    }
}

impl From<&str> for Data {
    fn from(text: &str) -> Self {
        Data::Text(text.to_owned())
    }
}

/// A stream whose length is declared before it is sent (what R2 needs to store a stream); a
/// stream that ends short of its length, or runs past it, fails the write.
pub struct FixedLengthStream {
    stream: ByteStream,
    length: u64,
}

impl FixedLengthStream {
    pub fn wrap(stream: ByteStream, length: u64) -> Self {
        Self { stream, length }
    }
}

impl From<FixedLengthStream> for Data {
    fn from(fixed: FixedLengthStream) -> Self {
        let length = fixed.length;
        let checked = stream::unfold(
            (fixed.stream, 0u64, false),
            move |(mut stream, seen, ended)| async move {
                if ended {
                    return None;
                }
                let refused = |why: String| Error::JsError(format!("TypeError: {why}"));
                match stream.next().await {
                    Some(Ok(chunk)) => {
                        let seen = seen + chunk.len() as u64;
                        if seen > length {
                            let error =
                                refused(format!("the stream is longer than its declared {length} bytes"));
                            return Some((Err(error), (stream, seen, true)));
                        }
                        Some((Ok(chunk), (stream, seen, false)))
                    }
                    Some(Err(error)) => Some((Err(error), (stream, seen, true))),
                    None if seen == length => None,
                    None => {
                        let error = refused(format!(
                            "the stream ended after {seen} of its declared {length} bytes"
                        ));
                        Some((Err(error), (stream, seen, true)))
                    }
                }
            },
        );
        Data::Stream(ByteStream::new(checked))
    }
}

/// Aborts the calls that were given its signal.
#[derive(Default)]
pub struct AbortController {
    signal: AbortSignal,
}

impl AbortController {
    pub fn signal(&self) -> AbortSignal {
        self.signal.clone()
    }

    pub fn abort(self) {
        self.signal.0.set(true);
    }
}

#[derive(Clone, Default)]
pub struct AbortSignal(Rc<Cell<bool>>);

impl AbortSignal {
    pub fn aborted(&self) -> bool {
        self.0.get()
    }
}

/// An outbound call.
pub enum Fetch {
    Request(Request),
}

impl Fetch {
    pub async fn send(&self) -> Result<Response> {
        self.send_with_signal(&AbortSignal::default()).await
    }

    /// Asks the partner script of the request's host. The call and its answer take the time the
    /// script says (the clock's, not the machine's); its body comes in the script's chunks, and
    /// stops with an error once the signal is aborted.
    pub async fn send_with_signal(&self, signal: &AbortSignal) -> Result<Response> {
        let Fetch::Request(request) = self;
        let mut copy = request.copy();
        let body = copy.take_body()?;
        let outbound = Outbound {
            method: copy.method.to_string(),
            url: copy.url.clone(),
            headers: copy.headers.entries().collect(),
            body,
            at_ms: clock::now_ms(),
        };
        let reply = partners::answer(&Stack::current(), outbound);
        if reply.delay_ms > 0 {
            clock::Delay::from(Duration::from_millis(reply.delay_ms)).await;
        }
        if let Some(refused) = reply.refused {
            return Err(Error::JsError(refused));
        }
        let headers = Headers::new();
        for (name, value) in &reply.headers {
            headers.append(name, value)?;
        }
        let signal = signal.clone();
        let pause = reply.chunk_delay_ms;
        let chunks = reply.chunks();
        let body = stream::iter(chunks).then(move |chunk| {
            let signal = signal.clone();
            async move {
                if pause > 0 {
                    clock::Delay::from(Duration::from_millis(pause)).await;
                }
                if signal.aborted() {
                    return Err(Error::JsError("AbortError: the call was aborted".to_owned()));
                }
                chunk
            }
        });
        Ok(Response {
            status: reply.status,
            headers,
            body: ResponseBody::Stream(ByteStream::new(body)),
        })
    }
}

/// An invocation's context: work it hands [`Context::wait_until`] goes on after its answer,
/// kept on the stack until the test runs it (`Stack::run_background`).
#[derive(Default)]
pub struct Context;

impl Context {
    pub fn wait_until<F: std::future::Future<Output = ()> + 'static>(&self, future: F) {
        Stack::current().keep_background(Box::pin(future));
    }
}

/// A Worker bound as a service (or the static assets): its requests go to the native function
/// the test registered under the binding's name.
pub struct Fetcher {
    pub(crate) binding: String,
}

impl Fetcher {
    pub async fn fetch_request(&self, request: Request) -> Result<Response> {
        Stack::current().call_service(&self.binding, request).await
    }
}

/// A Durable Object namespace: each object by name is the instance the test's factory made for
/// it, kept for the stack's life.
pub struct ObjectNamespace {
    pub(crate) binding: String,
}

impl ObjectNamespace {
    pub fn get_by_name(&self, name: &str) -> Result<Stub> {
        Ok(Stub {
            binding: self.binding.clone(),
            name: name.to_owned(),
        })
    }
}

/// One Durable Object, by name.
pub struct Stub {
    binding: String,
    name: String,
}

impl Stub {
    pub async fn fetch_with_request(&self, request: Request) -> Result<Response> {
        Stack::current()
            .call_object(&self.binding, &self.name, request)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::block_on;

    #[test]
    fn headers_are_case_insensitive_repeated_values_join_and_a_line_break_is_refused() {
        let headers = Headers::new();
        headers
            .append("Accept", "text/html")
            .unwrap_or_else(|error| panic!("{error}"));
        headers
            .append("accept", "application/json")
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            headers.get("ACCEPT").ok().flatten().as_deref(),
            Some("text/html, application/json")
        );
        headers
            .set("accept", "*/*")
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(headers.get("accept").ok().flatten().as_deref(), Some("*/*"));
        assert!(headers.set("x-evil", "a\r\nset-cookie: b").is_err());
        assert!(headers.set("bad name", "a").is_err());
        let copy = headers.clone();
        copy.set("accept", "text/plain")
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            headers.get("accept").ok().flatten().as_deref(),
            Some("*/*"),
            "a clone is a copy"
        );
    }

    #[test]
    fn a_multipart_form_is_read_as_the_runtime_reads_it() {
        let body = "--b\r\ncontent-disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
                    --b\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\ncontent-type: text/plain\r\n\r\nbytes\r\n\
                    --b--\r\n";
        let form = FormData::parse("multipart/form-data; boundary=b", body.as_bytes())
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(form.get_field("note").as_deref(), Some("hello"));
        let Some(FormEntry::File(file)) = form.get("file") else {
            panic!("the file is a file");
        };
        assert_eq!(
            (file.name(), file.type_()),
            ("a.txt".to_owned(), "text/plain".to_owned())
        );
        assert_eq!(block_on(file.bytes()).ok(), Some(b"bytes".to_vec()));
        let urlencoded = FormData::parse("application/x-www-form-urlencoded", b"a=1&b=two+words")
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(urlencoded.get_field("b").as_deref(), Some("two words"));
        assert!(FormData::parse("multipart/form-data; boundary=b", b"no parts here").is_err());
        assert!(FormData::parse("application/json", b"{}").is_err());
    }

    #[test]
    fn a_fixed_length_stream_that_ends_short_or_runs_long_fails() {
        let read = |chunks: Vec<&'static str>, length: u64| {
            let stream = ByteStream::new(stream::iter(
                chunks.into_iter().map(|chunk| Ok(chunk.as_bytes().to_vec())),
            ));
            block_on(Data::from(FixedLengthStream::wrap(stream, length)).into_bytes())
        };
        assert_eq!(read(vec!["ab", "cd"], 4).ok(), Some(b"abcd".to_vec()));
        assert!(read(vec!["ab"], 4).is_err(), "short");
        assert!(read(vec!["ab", "cde"], 4).is_err(), "long");
    }

    #[test]
    fn a_request_has_its_path_without_the_query_and_its_body_is_read_once() {
        let mut request = Request::new("https://api.example.com/a/b?c=d#e", Method::Post)
            .unwrap_or_else(|error| panic!("{error}"))
            .with_body("x");
        assert_eq!(request.path(), "/a/b");
        assert_eq!(block_on(request.text()).ok().as_deref(), Some("x"));
        assert!(block_on(request.text()).is_err(), "a body is read once");
        assert!(Request::new("/relative", Method::Get).is_err());
    }
}
