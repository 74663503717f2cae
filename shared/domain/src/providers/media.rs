//! Where a file received with a message may be fetched from, and which request carries the
//! account's credentials. The media-fetcher follows redirects itself, one hop at a time, and asks
//! [`first`] and [`redirect`] before each: a hop goes only to the provider's API or its media hosts
//! (or, in the local stack, to this machine), never to a private address, and the credentials go
//! only where the provider wants them, never across a redirect to another origin.

use super::api::Sender;
use super::{Provider, mailgun, meta, twilio};
use crate::destination::Destination;
use url::Url;

/// Redirects followed at most, as a browser would give up far later; providers use one or two.
pub const MAX_REDIRECTS: usize = 5;

/// One request of a fetch: where, and with which `Authorization` if any. Holds a credential:
/// never log it.
#[derive(Clone, PartialEq, Eq)]
pub struct Hop {
    pub url: Url,
    pub authorization: Option<String>,
}

impl std::fmt::Debug for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let credentials = if self.authorization.is_some() {
            "with"
        } else {
            "without"
        };
        write!(f, "GET {} ({credentials} credentials)", self.url)
    }
}

/// The first request for `url`, a file's address as `sender`'s provider gave it. `authorization`
/// is what the provider wants its media fetched with; it is sent only to the provider's API origin
/// and the hosts the provider names for it.
pub fn first(
    sender: &Sender,
    url: &str,
    authorization: Option<String>,
    allow_loopback: bool,
) -> Result<Hop, String> {
    let url = allowed(sender, url, allow_loopback)?;
    let authorization = authorization.filter(|_| takes_credentials(sender, &url));
    Ok(Hop { url, authorization })
}

/// The request a redirect from `from` to `location` leads to: checked like the first, and with
/// the credentials only when it stays on the same origin.
pub fn redirect(sender: &Sender, from: &Hop, location: &str, allow_loopback: bool) -> Result<Hop, String> {
    let target = from.url.join(location.trim()).map_err(|error| {
        format!(
            "{} redirected to {location:?}, which is not a URL: {error}",
            from.url
        )
    })?;
    let url = allowed(sender, target.as_str(), allow_loopback)?;
    let authorization = from
        .authorization
        .clone()
        .filter(|_| url.origin() == from.url.origin());
    Ok(Hop { url, authorization })
}

/// `url` if the account's provider may serve media there.
fn allowed(sender: &Sender, url: &str, allow_loopback: bool) -> Result<Url, String> {
    let destination = Destination::parse("the media URL", url, allow_loopback)?;
    let host = destination.url().host_str().unwrap_or_default().to_owned();
    let provider = sender.provider();
    let ok = (allow_loopback && destination.is_loopback())
        || Some(host.as_str()) == api_host(sender).as_deref()
        || media_hosts(provider).iter().any(|known| within(&host, known));
    if !ok {
        return Err(format!(
            "{host} is not one of {}'s media hosts; the file is not fetched from there",
            provider.as_str()
        ));
    }
    Ok(destination.url().clone())
}

fn takes_credentials(sender: &Sender, url: &Url) -> bool {
    let same_origin = Url::parse(base_url(sender)).is_ok_and(|api| api.origin() == url.origin());
    let named = match sender.provider() {
        Provider::Meta => meta::MEDIA_CREDENTIAL_HOSTS,
        Provider::Twilio | Provider::Mailgun => &[],
    };
    same_origin
        || (url.scheme() == "https"
            && named
                .iter()
                .any(|known| within(url.host_str().unwrap_or_default(), known)))
}

fn media_hosts(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Meta => meta::MEDIA_HOSTS,
        Provider::Twilio => twilio::MEDIA_HOSTS,
        Provider::Mailgun => mailgun::MEDIA_HOSTS,
    }
}

fn base_url(sender: &Sender) -> &str {
    match sender {
        Sender::Meta { base_url, .. }
        | Sender::Twilio { base_url, .. }
        | Sender::Mailgun { base_url, .. } => base_url,
    }
}

fn api_host(sender: &Sender) -> Option<String> {
    Url::parse(base_url(sender))
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
}

/// `host` is `domain` or one of its subdomains.
fn within(host: &str, domain: &str) -> bool {
    host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twilio(base_url: &str) -> Sender {
        Sender::Twilio {
            base_url: base_url.to_owned(),
            account_sid: "AC1".to_owned(),
            auth_token: "token".to_owned(),
            from: "+15550001111".to_owned(),
        }
    }

    fn meta() -> Sender {
        Sender::Meta {
            base_url: "https://graph.facebook.com/v21.0".to_owned(),
            sender_id: "1".to_owned(),
            access_token: "token".to_owned(),
        }
    }

    const BASIC: &str = "Basic QUMxOnRva2Vu";

    #[test]
    fn twilio_media_is_fetched_from_its_api_with_credentials_and_its_cdn_redirect_without() {
        let sender = twilio("https://api.twilio.com");
        let url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1";
        let hop = first(&sender, url, Some(BASIC.to_owned()), false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hop.authorization.as_deref(), Some(BASIC));
        for location in [
            "https://s3-external-1.amazonaws.com/media.twiliocdn.com/AC1/abc",
            "https://mms.twiliocdn.com/AC1/abc",
        ] {
            let next = redirect(&sender, &hop, location, false).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                next.authorization, None,
                "{location}: credentials stay with the API"
            );
        }
        let same = redirect(&sender, &hop, "/2010-04-01/other", false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            same.authorization.as_deref(),
            Some(BASIC),
            "a redirect within the API keeps them"
        );
        assert_eq!(same.url.as_str(), "https://api.twilio.com/2010-04-01/other");
    }

    #[test]
    fn hosts_outside_the_providers_list_and_internal_addresses_are_refused() {
        let sender = twilio("https://api.twilio.com");
        for url in [
            "https://example.com/file.jpg",
            "https://twilio.com.example.com/file.jpg",
            "https://eviltwilio.com/file.jpg",
            "http://api.twilio.com/insecure",
            "https://10.0.0.7/file.jpg",
            "https://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:8080/file.jpg",
        ] {
            assert!(first(&sender, url, None, false).is_err(), "{url} is refused");
        }
        let hop = first(&sender, "https://api.twilio.com/m", None, false).unwrap_or_else(|e| panic!("{e}"));
        for location in [
            "http://127.0.0.1/x",
            "https://192.168.1.1/x",
            "https://example.org/x",
            "ftp://twilio.com/x",
        ] {
            assert!(
                redirect(&sender, &hop, location, false).is_err(),
                "a redirect to {location} is refused"
            );
        }
    }

    #[test]
    fn whatsapp_downloads_carry_the_token_to_metas_lookaside_host_only() {
        let sender = meta();
        let token = Some("Bearer token".to_owned());
        let download = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1";
        let hop = first(&sender, download, token.clone(), false).unwrap_or_else(|e| panic!("{e}"));
        assert!(hop.authorization.is_some());
        let cdn = first(
            &sender,
            "https://scontent.xx.fbcdn.net/v/t1/abc.jpg",
            token,
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cdn.authorization, None, "the CDN gets no token");
    }

    #[test]
    fn the_local_stack_reaches_this_machine_and_credentials_follow_the_api_origin() {
        let sender = twilio("http://127.0.0.1:9000");
        let hop = first(
            &sender,
            "http://127.0.0.1:9000/files/1",
            Some(BASIC.to_owned()),
            true,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(hop.authorization.is_some());
        let moved =
            redirect(&sender, &hop, "http://localhost:9000/files/1", true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(moved.authorization, None, "another origin, even on this machine");
        let other = first(
            &sender,
            "http://127.0.0.1:9001/files/1",
            Some(BASIC.to_owned()),
            true,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(other.authorization, None, "another port is another origin");
        assert!(first(&sender, "http://10.1.2.3/files/1", None, true).is_err());
    }

    #[test]
    fn a_hop_prints_without_its_credentials() {
        let hop = first(
            &twilio("https://api.twilio.com"),
            "https://api.twilio.com/m",
            Some(BASIC.to_owned()),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{hop:?}").contains("QUMx"));
    }
}
