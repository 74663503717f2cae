//! One call to a CRM's REST API as both connectors build it: the method, the path under the
//! CRM's API base, an encoded query and a JSON body. The runtime sends it to
//! `api_base + path (+ "?" + query)` with the connector's credentials.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    /// Below the API base; every value put into it is [`percent_encoded`].
    pub path: String,
    /// Already encoded, without the `?`.
    pub query: Option<String>,
    pub body: Option<Value>,
}

impl ApiRequest {
    pub(crate) fn get(path: String) -> Self {
        Self {
            method: Method::Get,
            path,
            query: None,
            body: None,
        }
    }

    pub(crate) fn delete(path: String) -> Self {
        Self {
            method: Method::Delete,
            path,
            query: None,
            body: None,
        }
    }

    pub(crate) fn with(method: Method, path: String, body: Value) -> Self {
        Self {
            method,
            path,
            query: None,
            body: Some(body),
        }
    }

    pub(crate) fn query(mut self, query: String) -> Self {
        self.query = Some(query);
        self
    }

    /// The path with its query, as it goes after the API base.
    pub fn target(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded: as a path
/// segment it stays one segment whatever it holds (`a@b.c` → `a%40b.c`, `../x` → `..%2Fx`), as a
/// query value it adds no parameter (and a `+` is not read as a space).
pub fn percent_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(byte >> 4)] as char);
                out.push(HEX[usize::from(byte & 0x0f)] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay_bare() {
        assert_eq!(percent_encoded("a@b.c"), "a%40b.c");
        assert_eq!(percent_encoded("../x"), "..%2Fx");
        assert_eq!(percent_encoded("a+b c&d=é"), "a%2Bb%20c%26d%3D%C3%A9");
        assert_eq!(percent_encoded("Az09-._~"), "Az09-._~");
    }

    #[test]
    fn the_target_carries_the_query() {
        let request = ApiRequest::get("/v1/x".to_owned());
        assert_eq!(request.target(), "/v1/x");
        assert_eq!(request.query("a=1".to_owned()).target(), "/v1/x?a=1");
    }
}
