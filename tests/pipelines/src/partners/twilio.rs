//! Twilio: the messaging webhook as Twilio posts it (a URL-encoded form, signed in
//! `X-Twilio-Signature` with the account's auth token: base64 HMAC-SHA1 over the URL Twilio was
//! given followed by every parameter, sorted by name, as name then value), and Programmable
//! Messaging's send endpoint (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic
//! with the account SID and auth token, a form body) as a partner script, and the status
//! callback Twilio then posts, signed the same way.

use super::send_api::{Provider, SendApi};
use super::{basic_credentials, form_fields, hmac_sha1, json_reply, unique_hex};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::json;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Twilio's API host.
pub const API_HOST: &str = "api.twilio.com";

/// `X-Twilio-Signature` of a POST of `params` to `url`, under `auth_token`.
pub fn signature<N: AsRef<str>, V: AsRef<str>>(auth_token: &str, url: &str, params: &[(N, V)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_ref(), value.as_ref()))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let signed = sorted.iter().fold(url.to_owned(), |text, (name, value)| {
        format!("{text}{name}{value}")
    });
    STANDARD.encode(hmac_sha1(auth_token.as_bytes(), signed.as_bytes()))
}

/// A message SID (`SM` and 32 hex digits) no other call returns.
pub fn message_sid() -> String {
    format!("SM{}", unique_hex(32))
}

/// An account SID (`AC` and 32 hex digits) no other call returns.
pub fn account_sid() -> String {
    format!("AC{}", unique_hex(32))
}

/// The parameters of an incoming message as Twilio posts them: `body` from `from` to `to` (a
/// WhatsApp address is `whatsapp:+353…`), with the message's SID `sid`. A test adds the
/// parameters of media, a profile name, and so on.
pub fn incoming(to: &str, from: &str, body: &str, sid: &str) -> Vec<(String, String)> {
    [
        ("ToCountry", "IE"),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("SmsSid", sid),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", to),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

/// `params` with `name` set to `value` (added, or replacing what was there).
pub fn with(mut params: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    params.retain(|(known, _)| known != name);
    params.push((name.to_owned(), value.to_owned()));
    params
}

/// An error as Twilio's API answers one (`{code, message, more_info, status}`).
pub fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
    json_reply(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status
        }),
    )
}

/// Twilio's refusal of a number it cannot send to (error 21211), which is final.
pub fn invalid_number(to: &str) -> Reply {
    twilio_error(400, 21211, &format!("Invalid 'To' Phone Number: {to}"))
}

/// Programmable Messaging's send endpoint for the accounts it knows: answers each send by an
/// account with its auth token with `201` and the message resource, or with the replies a test
/// scripted for the next sends; a send without the right credentials gets Twilio's 401 (20003).
pub type Twilio = SendApi<MessagesApi>;

/// What the Messages resource answers by itself, for the accounts it knows.
#[derive(Default)]
pub struct MessagesApi {
    /// Account SID → its auth token.
    accounts: RefCell<BTreeMap<String, String>>,
}

impl MessagesApi {
    /// The account a call is made for, from its path.
    fn account(call: &Outbound) -> Option<&str> {
        call.path()
            .strip_prefix("/2010-04-01/Accounts/")
            .and_then(|rest| rest.strip_suffix("/Messages.json"))
    }
}

impl Provider for MessagesApi {
    fn refusal(&self, call: &Outbound) -> Option<Reply> {
        let Some(account) = Self::account(call).filter(|_| call.method == "POST") else {
            return Some(twilio_error(404, 20404, "The requested resource was not found"));
        };
        let authorized = self
            .accounts
            .borrow()
            .get(account)
            .is_some_and(|token| basic_credentials(call) == Some((account.to_owned(), token.clone())));
        (!authorized).then(|| twilio_error(401, 20003, "Authenticate"))
    }

    fn accepted(&self, call: &Outbound, _nth: u64) -> Reply {
        let form = form_fields(call);
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let media = form.iter().filter(|(key, _)| key == "MediaUrl").count();
        json_reply(
            201,
            &json!({
                "sid": message_sid(),
                "account_sid": Self::account(call),
                "to": field("To"),
                "from": field("From"),
                "body": field("Body"),
                "status": "queued",
                "num_media": media.to_string(),
                "api_version": "2010-04-01"
            }),
        )
    }
}

impl Twilio {
    /// The API at `https://api.twilio.com`, knowing the account `account_sid`.
    pub fn install(stack: &Stack, account_sid: &str, auth_token: &str) -> Self {
        let twilio = Self::serve(stack, API_HOST, MessagesApi::default());
        twilio.knows(account_sid, auth_token);
        twilio
    }

    /// Another account the API answers.
    pub fn knows(&self, account_sid: &str, auth_token: &str) {
        self.provider()
            .accounts
            .borrow_mut()
            .insert(account_sid.to_owned(), auth_token.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test;
    use edge::runtime::Method;
    use std::time::Duration;

    /// The script against the product: a reply by SMS is sent to the Messages endpoint as Twilio
    /// documents it, and the script's answer is one the dispatcher takes for a send.
    #[test]
    fn an_sms_sent_through_the_api_reaches_the_messages_endpoint_with_the_accounts_credentials() {
        test(|app| async move {
            let business = app.business("Acme").await;
            let (sid, token) = (account_sid(), unique_hex(32));
            let twilio = Twilio::install(&app.stack, &sid, &token);
            app.admin(
                Method::Post,
                &format!("/admin/businesses/{}/channel-accounts", business.id),
                Some(json!({
                    "channel": "sms", "provider": "twilio", "address": "+353861110000",
                    "settings": { "account_sid": sid }, "secrets": { "auth_token": token }
                })),
            )
            .await
            .expect(201);
            app.api(
                &business.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": [{ "external_id": "CRM-1", "name": "Ada", "phone": "+353871234567" }] })),
            )
            .await
            .expect(200);
            let accepted = app
                .api(
                    &business.key,
                    Method::Post,
                    "/api-send-message",
                    Some(json!({ "customer_id": "CRM-1", "channel": "sms", "content": "Your code is 1234" })),
                )
                .await
                .expect(202)
                .json();
            app.settle_within(Duration::from_secs(60)).await;

            let sends = twilio.sends();
            assert_eq!(sends.len(), 1, "{sends:?}");
            assert_eq!(
                sends[0].path(),
                format!("/2010-04-01/Accounts/{sid}/Messages.json")
            );
            let form = form_fields(&sends[0]);
            let expected: Vec<(String, String)> = [
                ("To", "+353871234567"),
                ("From", "+353861110000"),
                ("Body", "Your code is 1234"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
            assert_eq!(form, expected);
            let page = app
                .api(
                    &business.key,
                    Method::Get,
                    "/api-messages-since?since=1970-01-01T00:00:00Z",
                    None,
                )
                .await
                .expect(200)
                .json();
            assert_eq!(page["messages"][0]["id"], accepted["message"]["id"]);
            assert_eq!(page["messages"][0]["status"], "sent", "{page}");
        });
    }

    /// The example of twilio-php's request validation guide
    /// (`docs/usage/validation.rst`), with the signature it publishes for it.
    #[test]
    fn the_signature_of_twilios_documented_example_is_the_one_twilio_publishes() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ];
        assert_eq!(
            signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }
}
