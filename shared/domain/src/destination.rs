//! Where a business may make us send requests: the one rule for every URL it configures (webhook
//! endpoints, a channel account's `api_base_url`, CRM endpoints), so that no configured
//! destination points our outbound calls at this machine, a private network or a cloud metadata
//! service.
//!
//! Hosts are judged as the `url` crate parses them, which is how the Workers runtime's `fetch`
//! parses them too (WHATWG): `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` are all 127.0.0.1,
//! so no spelling of an address slips past a check written for the dotted form.
//!
//! Names are judged by their text only; a public name whose DNS answers with a private address
//! is not caught here (that needs the resolver, at send time).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// A URL that passed the rule: http(s), no credentials, and a host on the public internet (or,
/// in the local stack only, on this machine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination(Url);

impl Destination {
    /// Parses `input` as the value of `field` (named in every message). `allow_loopback` is true
    /// only in the local `wrangler dev` stack, whose test servers listen on this machine: it
    /// allows http and https to 127.0.0.0/8, ::1 and localhost, and nothing else that is internal.
    pub fn parse(field: &str, input: &str, allow_loopback: bool) -> Result<Self, String> {
        let input = input.trim();
        if input.is_empty() {
            return Err(format!("{field} is required"));
        }
        // The parser would silently drop tabs and newlines; refusing them keeps what is stored
        // and what is checked the same text.
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{field} must not contain spaces or control characters"));
        }
        let url = Url::parse(input).map_err(|error| unparsable(field, error))?;
        let secure = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(format!("{field} must use https")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{field} must not carry credentials (user:password@); put secrets where they are kept secret"
            ));
        }
        let host = url.host().ok_or_else(|| format!("{field} has no host"))?;
        match internal(&host) {
            Some(Internal::Address(Kind::Loopback)) if allow_loopback => {}
            Some(reason) => {
                return Err(format!(
                    "{field} points at {}, {reason}; it must be a host on the public internet",
                    host_text(&url)
                ));
            }
            None if secure => {}
            None if allow_loopback => {
                return Err(format!(
                    "{field} may use http only to loopback addresses in the local stack; use https"
                ));
            }
            None => return Err(format!("{field} must use https")),
        }
        Ok(Self(url))
    }

    /// The URL as parsed (normalised: lowercase scheme and host, addresses in dotted form).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }

    /// True when the host is this machine (allowed only in the local stack).
    pub fn is_loopback(&self) -> bool {
        self.0
            .host()
            .is_some_and(|host| internal(&host) == Some(Internal::Address(Kind::Loopback)))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn unparsable(field: &str, error: url::ParseError) -> String {
    match error {
        url::ParseError::RelativeUrlWithoutBase => {
            format!("{field} must be absolute, like https://crm.example.com/path")
        }
        url::ParseError::EmptyHost => format!("{field} has no host"),
        url::ParseError::InvalidPort => format!("{field} has a port that is not a number up to 65535"),
        // This build of `url` maps no Unicode (see the workspace's `idna_adapter`), so a
        // non-ASCII or percent-encoded non-ASCII host ends up here.
        url::ParseError::IdnaError => format!(
            "{field}'s host must be ASCII: write an international domain in its punycode form (xn--...)"
        ),
        other => format!("{field} is not a valid URL ({other})"),
    }
}

/// The host as the message shows it: the parsed form, so `https://2130706433` reads as the
/// 127.0.0.1 it is.
fn host_text(url: &Url) -> &str {
    url.host_str().unwrap_or_default()
}

/// Why a host is not on the public internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Internal {
    /// The host is an address (or `localhost`) of this kind.
    Address(Kind),
    /// An IPv6 address that carries an internal IPv4 one (mapped, compatible, NAT64 or 6to4),
    /// and so reaches it.
    Embedded(Ipv4Addr, Kind),
    LocalName(&'static str),
    SingleLabel,
}

/// The ranges that are not the public internet, by what they are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Loopback,
    Unspecified,
    Private,
    LinkLocal,
    CarrierNat,
    Multicast,
    Reserved,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Self::Loopback => "a loopback address (this machine)",
            Self::Unspecified => "an unspecified address",
            Self::Private => "a private-network address",
            Self::LinkLocal => "a link-local address (where cloud metadata services answer)",
            Self::CarrierNat => "a carrier-grade NAT address",
            Self::Multicast => "a multicast address",
            Self::Reserved => "a reserved or broadcast address",
        }
    }
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(kind) => f.write_str(kind.describe()),
            Self::Embedded(address, kind) => write!(
                f,
                "an IPv6 address that reaches the IPv4 address {address}, {}",
                kind.describe()
            ),
            Self::LocalName(suffix) => write!(f, "a local-network name (.{suffix})"),
            Self::SingleLabel => f.write_str("a name without a dot, which only a local network resolves"),
        }
    }
}

fn internal(host: &Host<&str>) -> Option<Internal> {
    match host {
        Host::Ipv4(address) => ipv4(*address).map(Internal::Address),
        Host::Ipv6(address) => ipv6(*address),
        Host::Domain(name) => domain(name),
    }
}

fn ipv4(address: Ipv4Addr) -> Option<Kind> {
    use Kind::*;
    match address.octets() {
        [127, ..] => Some(Loopback),
        [0, ..] => Some(Unspecified),
        [10, ..] | [172, 16..=31, ..] | [192, 168, ..] => Some(Private),
        [169, 254, ..] => Some(LinkLocal),
        [100, 64..=127, ..] => Some(CarrierNat),
        [224..=239, ..] => Some(Multicast),
        // 240/4 and the broadcast address; the IETF's own block, the documentation blocks and
        // the benchmarking block are never a business's server either.
        [240..=255, ..]
        | [192, 0, 0, _]
        | [192, 0, 2, _]
        | [198, 51, 100, _]
        | [203, 0, 113, _]
        | [198, 18..=19, ..] => Some(Reserved),
        _ => None,
    }
}

fn ipv6(address: Ipv6Addr) -> Option<Internal> {
    let segments = address.segments();
    let embedded = |address: Ipv4Addr| ipv4(address).map(|kind| Internal::Embedded(address, kind));
    let last_32_bits = || {
        let [.., a, b, c, d] = address.octets();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => Some(Internal::Address(Kind::Unspecified)),
        [0, 0, 0, 0, 0, 0, 0, 1] => Some(Internal::Address(Kind::Loopback)),
        // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (translated, RFC 2765) and ::a.b.c.d
        // (compatible).
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0xffff, 0, ..] | [0, 0, 0, 0, 0, 0, ..] => {
            embedded(last_32_bits())
        }
        // NAT64's well-known prefix 64:ff9b::/96 translates to the embedded address.
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => embedded(last_32_bits()),
        // 6to4 (2002::/16) carries the IPv4 address in its second and third segments.
        [0x2002, high, low, ..] => {
            let [a, b] = high.to_be_bytes();
            let [c, d] = low.to_be_bytes();
            embedded(Ipv4Addr::new(a, b, c, d))
        }
        // 64:ff9b:1::/48 is NAT64 for a local network.
        [0x64, 0xff9b, 1, ..] => Some(Internal::Address(Kind::Private)),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some(Internal::Address(Kind::Private)),
        // fec0::/10, site-local, deprecated but still private wherever it is used.
        [first, ..] if first & 0xffc0 == 0xfec0 => Some(Internal::Address(Kind::Private)),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some(Internal::Address(Kind::LinkLocal)),
        [first, ..] if first & 0xff00 == 0xff00 => Some(Internal::Address(Kind::Multicast)),
        // 2001:db8::/32 is for documentation only.
        [0x2001, 0x0db8, ..] => Some(Internal::Address(Kind::Reserved)),
        _ => None,
    }
}

/// Suffixes that only a local network (or this machine) resolves.
const LOCAL_SUFFIXES: [&str; 7] = [
    "local",
    "internal",
    "lan",
    "home.arpa",
    "intranet",
    "corp",
    "localdomain",
];

/// Names are lowercase ASCII here: the parser lowercases them and refuses non-ASCII.
fn domain(name: &str) -> Option<Internal> {
    // `localhost.` is `localhost`: a trailing dot only marks the name as fully qualified.
    let name = name.strip_suffix('.').unwrap_or(name);
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(Internal::Address(Kind::Loopback));
    }
    if let Some(suffix) = LOCAL_SUFFIXES.iter().find(|suffix| {
        name == **suffix
            || name
                .strip_suffix(**suffix)
                .is_some_and(|rest| rest.ends_with('.'))
    }) {
        return Some(Internal::LocalName(suffix));
    }
    if !name.contains('.') {
        return Some(Internal::SingleLabel);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(url: &str, allow_loopback: bool) -> Option<String> {
        Destination::parse("url", url, allow_loopback).err()
    }

    #[test]
    fn every_spelling_of_an_internal_host_is_refused_with_the_reason() {
        let cases = [
            ("https://127.0.0.1/", "loopback", "dotted loopback"),
            ("https://127.1/", "loopback", "short form 127.1"),
            ("https://127.0.1/", "loopback", "short form 127.0.1"),
            ("https://2130706433/", "loopback", "decimal 2130706433"),
            ("https://0177.0.0.1/", "loopback", "octal 0177.0.0.1"),
            ("https://0x7f.1/", "loopback", "hex 0x7f.1"),
            ("https://0x7F000001/", "loopback", "hex in one number"),
            (
                "https://127.0.0.1./",
                "loopback",
                "an address with a trailing dot",
            ),
            ("https://127%2e0%2e0%2e1/", "loopback", "percent-encoded dots"),
            ("https://localhost/", "loopback", "localhost"),
            ("https://LOCALHOST/", "loopback", "uppercase LOCALHOST"),
            ("https://localhost./", "loopback", "localhost with a trailing dot"),
            ("https://api.localhost/", "loopback", "a name under .localhost"),
            ("https://[::1]/", "loopback", "IPv6 loopback"),
            (
                "https://[0:0:0:0:0:0:0:1]:8443/",
                "loopback",
                "IPv6 loopback written long",
            ),
            (
                "https://crm.example.com@127.0.0.1/",
                "credentials",
                "userinfo before a loopback host",
            ),
            ("https://0.0.0.0/", "unspecified", "0.0.0.0"),
            ("https://0/", "unspecified", "0 as a number"),
            ("https://[::]/", "unspecified", "IPv6 unspecified"),
            ("https://10.0.0.5/", "private", "10/8"),
            ("https://172.16.0.1/", "private", "172.16/12, first"),
            ("https://172.31.255.255/", "private", "172.16/12, last"),
            ("https://192.168.1.1/", "private", "192.168/16"),
            ("https://3232235777/", "private", "192.168.1.1 as a number"),
            ("https://[fc00::1]/", "private", "unique local fc00::/7"),
            ("https://[FD12:3456::1]/", "private", "unique local in uppercase"),
            (
                "https://169.254.169.254/latest/meta-data/",
                "link-local",
                "the metadata address",
            ),
            ("https://0xa9fea9fe/", "link-local", "the metadata address in hex"),
            (
                "https://0251.0376.0251.0376/",
                "link-local",
                "the metadata address in octal",
            ),
            (
                "https://169.254.43518/",
                "link-local",
                "the metadata address in a short form",
            ),
            ("https://[fe80::1]/", "link-local", "IPv6 link-local"),
            ("https://100.64.0.1/", "carrier-grade NAT", "100.64/10, first"),
            ("https://100.127.255.254/", "carrier-grade NAT", "100.64/10, last"),
            ("https://224.0.0.1/", "multicast", "224/4"),
            ("https://[ff02::1]/", "multicast", "ff00::/8"),
            ("https://240.0.0.1/", "reserved", "240/4"),
            ("https://255.255.255.255/", "reserved", "broadcast"),
            (
                "https://[::ffff:127.0.0.1]/",
                "reaches the IPv4 address 127.0.0.1",
                "IPv4-mapped loopback",
            ),
            (
                "https://[::ffff:7f00:1]/",
                "reaches the IPv4 address 127.0.0.1",
                "IPv4-mapped in hex",
            ),
            (
                "https://[::ffff:169.254.169.254]/",
                "link-local",
                "IPv4-mapped metadata",
            ),
            (
                "https://[::10.0.0.5]/",
                "reaches the IPv4 address 10.0.0.5",
                "IPv4-compatible",
            ),
            (
                "https://[::ffff:0:10.0.0.5]/",
                "reaches the IPv4 address 10.0.0.5",
                "IPv4-translated",
            ),
            (
                "https://[::ffff:0:7f00:1]/",
                "reaches the IPv4 address 127.0.0.1",
                "IPv4-translated in hex",
            ),
            (
                "https://[64:ff9b::a9fe:a9fe]/",
                "reaches the IPv4 address 169.254.169.254",
                "NAT64",
            ),
            (
                "https://[2002:7f00:1::]/",
                "reaches the IPv4 address 127.0.0.1",
                "6to4",
            ),
            (
                "https://metadata.google.internal/",
                ".internal",
                "the GCP metadata name",
            ),
            (
                "https://METADATA.GOOGLE.INTERNAL./",
                ".internal",
                "uppercase with a trailing dot",
            ),
            ("https://printer.local/", ".local", "mDNS"),
            ("https://nas.lan/", ".lan", ".lan"),
            ("https://router.home.arpa/", ".home.arpa", ".home.arpa"),
            ("https://wiki.intranet/", ".intranet", ".intranet"),
            ("https://crm.corp/", ".corp", ".corp"),
            ("https://metadata/", "without a dot", "a single label"),
            ("https://intranet./", ".intranet", "a bare suffix"),
            ("https://%6c%6fcalhost/", "loopback", "percent-encoded localhost"),
        ];
        for (url, reason, description) in cases {
            let refused = refusal(url, false);
            assert!(
                refused.as_deref().is_some_and(|message| message.contains(reason)),
                "{description} ({url}) should be refused for {reason:?}, got {refused:?}"
            );
        }
    }

    #[test]
    fn public_hosts_are_accepted() {
        for url in [
            "https://crm.example.com/hooks",
            "HTTPS://CRM.Example.com:8443/hooks?x=1",
            "https://93.184.216.34/x",
            "https://[2606:4700::1111]/",
            "https://[::ffff:93.184.216.34]/",
            "https://xn--bcher-kva.example/hooks",
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "https://localhost.example.com/",
            "https://internal.example.com/",
        ] {
            let parsed = Destination::parse("url", url, false);
            assert!(parsed.is_ok(), "{url} should be accepted, got {parsed:?}");
        }
    }

    #[test]
    fn the_message_shows_the_address_a_strange_spelling_stands_for() {
        let refused = refusal("https://2130706433/", false);
        assert_eq!(
            refused.as_deref(),
            Some(
                "url points at 127.0.0.1, a loopback address (this machine); it must be a host on the public internet"
            )
        );
    }

    #[test]
    fn the_local_stack_may_reach_loopback_over_http_or_https_and_nothing_else_internal() {
        let cases = [
            ("http://127.0.0.1:9000/hooks", true),
            ("https://127.0.0.1:9000/hooks", true),
            ("http://127.1:9000/", true),
            ("http://localhost:9000/", true),
            ("http://localhost.:9000/", true),
            ("http://[::1]:9000/", true),
            ("http://10.0.0.1/", false),
            ("https://10.0.0.1/", false),
            ("http://169.254.169.254/", false),
            ("http://[::ffff:127.0.0.1]/", false),
            ("http://metadata.google.internal/", false),
            ("http://crm.example.com/", false),
            ("https://crm.example.com/", true),
        ];
        for (url, accepted) in cases {
            assert_eq!(
                Destination::parse("url", url, true).is_ok(),
                accepted,
                "{url} in the local stack"
            );
        }
        assert!(refusal("http://127.0.0.1:9000/", false).is_some_and(|m| m.contains("loopback")));
        assert!(refusal("https://localhost/", false).is_some_and(|m| m.contains("loopback")));
    }

    #[test]
    fn only_http_and_https_urls_without_credentials_are_destinations() {
        let cases = [
            ("http://crm.example.com/", "must use https"),
            ("ftp://crm.example.com/", "must use https"),
            ("file:///etc/passwd", "must use https"),
            ("gopher://2130706433/", "must use https"),
            ("https://user:pw@crm.example.com/", "credentials"),
            ("https://user@crm.example.com/", "credentials"),
            ("crm.example.com/hooks", "absolute"),
            ("/hooks", "absolute"),
            ("", "required"),
            ("https://crm example.com/", "spaces"),
            ("https://crm.example.com/\thooks", "spaces"),
            ("https://crm.example.com:99999/", "port"),
            ("https://bücher.example/hooks", "punycode"),
            ("https://b%C3%BCcher.example/hooks", "punycode"),
        ];
        for (url, reason) in cases {
            let refused = refusal(url, false);
            assert!(
                refused.as_deref().is_some_and(|message| message.contains(reason)),
                "{url:?} should be refused for {reason:?}, got {refused:?}"
            );
        }
    }

    #[test]
    fn messages_name_the_field_they_are_about() {
        let refused = Destination::parse("settings.api_base_url", "https://10.0.0.5", false).err();
        assert!(
            refused.is_some_and(|m| m.starts_with("settings.api_base_url points at 10.0.0.5, a private"))
        );
    }
}
