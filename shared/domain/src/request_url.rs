//! The URL a request arrived on, read without a URL parser, and the public origin a deployment
//! configures.
//!
//! The runtime hands every request its URL already serialized (the WHATWG URL Standard's form:
//! the scheme and host lower-case, the default port dropped, the path starting with `/`, any `?`
//! or `#` inside the path percent-encoded). Splitting that string is exact, and it keeps the `url`
//! crate's parser out of every function that reads no other URL than its own request's.

use std::borrow::Cow;

/// A request's URL in parts. Only for a URL the runtime serialized: a string from anyone else
/// goes through a real parser, unless nothing of it but its scheme and query is read
/// (`outgoing::attachment_id`, which keeps only a whole UUID from the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestUrl<'a> {
    /// What precedes `://`, as written; empty when there is no `://`.
    pub scheme: &'a str,
    /// `host[:port]`, without any user name or password.
    host: &'a str,
    /// From the first `/` after the host up to the query, `/` at the least.
    pub path: &'a str,
    /// What follows `?` up to any `#`, when there is a `?`.
    pub query: Option<&'a str>,
}

impl<'a> RequestUrl<'a> {
    pub fn split(url: &'a str) -> Self {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let (url, query) = match url.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (url, None),
        };
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (authority, path) = rest.find('/').map_or((rest, "/"), |at| rest.split_at(at));
        // A URL the runtime built from an HTTP request names no user; if one did, the origin
        // still leaves it out.
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        Self {
            scheme,
            host,
            path,
            query,
        }
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}

/// The path prefix of the guides' `BASE_URL` (`https://<project>.supabase.co/functions/v1`): the
/// same API as the origin's, so that a business copying the guides' code works unchanged.
pub const GUIDES_PREFIX: &str = "/functions/v1";

/// The request's URL without [`GUIDES_PREFIX`] before its path (`…/functions/v1/api-customers?x`
/// is `…/api-customers?x`, `…/functions/v1` is `…/`); None when its path does not begin with it
/// (`/functions/v10` does not).
pub fn without_guides_prefix(url: &str) -> Option<String> {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let path = authority + url[authority..].find('/')?;
    let after = url[path..].strip_prefix(GUIDES_PREFIX)?;
    match after.chars().next() {
        Some('/') => Some(format!("{}{after}", &url[..path])),
        None | Some('?' | '#') => Some(format!("{}/{after}", &url[..path])),
        Some(_) => None,
    }
}

/// The path as a log may show it: a Chatwoot webhook token (the segment after the connector in
/// `/webhooks/chatwoot/{connector_id}/{token}`) is a credential and is replaced by `<token>`.
pub fn loggable_path(path: &str) -> Cow<'_, str> {
    const CHATWOOT: &str = "/webhooks/chatwoot/";
    match path.strip_prefix(CHATWOOT).and_then(|rest| rest.split_once('/')) {
        Some((connector, token)) if !token.is_empty() => Cow::Owned(format!("{CHATWOOT}{connector}/<token>")),
        _ => Cow::Borrowed(path),
    }
}

/// The public origin a deployment configures (`PUBLIC_BASE_URL`), as the URL Standard serializes
/// it: `http` or `https`, an ASCII host (a name, an IPv4 address or a bracketed IPv6 one), an
/// optional port (dropped when it is the scheme's default), and nothing after but an optional `/`.
pub fn configured_origin(value: &str) -> Result<String, String> {
    let refused = || format!("{value:?} must be an origin such as https://api.example.com");
    let trimmed = value.trim();
    let (scheme, rest) = trimmed.split_once("://").ok_or_else(refused)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return Err(refused()),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|inner| inner.strip_suffix(']')) {
        Some(ipv6) => {
            !ipv6.is_empty()
                && ipv6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        None => {
            !host.is_empty()
                && !host.starts_with('.')
                && !host.contains("..")
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }
    };
    let port_ok = port.is_none_or(|port| {
        port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
    });
    if !host_ok || !port_ok {
        return Err(refused());
    }
    let host = host.to_ascii_lowercase();
    Ok(match port.map(|port| port.trim_start_matches('0')) {
        Some(port) if port != default_port => {
            format!("{scheme}://{host}:{}", if port.is_empty() { "0" } else { port })
        }
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    #[test]
    fn a_chatwoot_webhook_token_never_reaches_the_log() {
        let cases = [
            (
                "/webhooks/chatwoot/c1/s3cr3t-token",
                "/webhooks/chatwoot/c1/<token>",
            ),
            (
                "/webhooks/chatwoot/c1/s3cr3t/more",
                "/webhooks/chatwoot/c1/<token>",
            ),
            ("/webhooks/chatwoot/c1", "/webhooks/chatwoot/c1"),
            ("/webhooks/chatwoot/c1/", "/webhooks/chatwoot/c1/"),
            ("/api-customers", "/api-customers"),
        ];
        for (path, logged) in cases {
            assert_eq!(loggable_path(path), logged, "{path}");
        }
    }

    #[test]
    fn splits_a_serialized_url_as_the_parser_reads_it() -> Result<(), url::ParseError> {
        for raw in [
            "https://api.example.com/api-customers?email=a%40b.co&phone=%2B1",
            "http://localhost:8787/api-customers",
            "http://127.0.0.1:8799/",
            "https://api.example.com/a/b%3Fc?x=1?y=2#frag",
            "https://api.example.com/?",
            "https://[::1]:8443/path?q",
            "https://user:secret@api.example.com/path?q=1",
            "https://api.example.com",
        ] {
            let parsed = Url::parse(raw)?;
            let split = RequestUrl::split(parsed.as_str());
            assert_eq!(split.path, parsed.path(), "{raw}");
            assert_eq!(split.query, parsed.query(), "{raw}");
            assert_eq!(split.origin(), parsed.origin().ascii_serialization(), "{raw}");
        }
        Ok(())
    }

    #[test]
    fn a_configured_origin_is_serialized_as_the_parser_would() -> Result<(), url::ParseError> {
        for value in [
            "https://api.example.com",
            "https://api.example.com/",
            "HTTPS://API.Example.com:443",
            "http://localhost:8787",
            "http://localhost:80/",
            "  https://crm-edge.example.org:8443  ",
            "http://127.0.0.1:08799",
            "https://[::1]:8443",
        ] {
            let parsed = Url::parse(value.trim())?;
            assert_eq!(
                configured_origin(value),
                Ok(parsed.origin().ascii_serialization()),
                "{value}"
            );
        }
        Ok(())
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for value in [
            "",
            "api.example.com",
            "ftp://api.example.com",
            "https://",
            "https://api.example.com/v1",
            "https://api.example.com?x=1",
            "https://api.example.com#top",
            "https://user@api.example.com",
            "https://api.example.com:99999",
            "https://api.example.com:",
            "https://api example.com",
            "https://bücher.example",
            "https://a..b",
            "https://[]",
        ] {
            assert!(configured_origin(value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn the_guides_prefix_is_taken_off_the_path_and_nothing_else() {
        let cases = [
            (
                "https://api.example.com/functions/v1/api-customers?x=1",
                Some("https://api.example.com/api-customers?x=1"),
            ),
            (
                "https://api.example.com/functions/v1/api-webhooks/abc/replay",
                Some("https://api.example.com/api-webhooks/abc/replay"),
            ),
            (
                "https://api.example.com/functions/v1",
                Some("https://api.example.com/"),
            ),
            (
                "https://api.example.com/functions/v1?x=/functions/v1",
                Some("https://api.example.com/?x=/functions/v1"),
            ),
            (
                "http://127.0.0.1:8787/functions/v1/health",
                Some("http://127.0.0.1:8787/health"),
            ),
            ("https://api.example.com/functions/v10/api-customers", None),
            ("https://api.example.com/api-customers?next=/functions/v1/x", None),
            ("https://api.example.com/x/functions/v1/api-customers", None),
            ("https://api.example.com/", None),
        ];
        for (url, expected) in cases {
            assert_eq!(without_guides_prefix(url).as_deref(), expected, "{url}");
        }
    }
}
