//! Twilio's Programmable Messaging API, the sending side, as a partner script:
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic (the account SID and its
//! auth token) and a form body (`To`, `From`, `Body`, `MediaUrl`); errors as Twilio writes them
//! (`{code, message, more_info, status}`). And the status callback Twilio then posts, signed as it
//! signs (`X-Twilio-Signature`).

use super::{basic_credentials, form_fields, json_reply};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::json;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Twilio's API host.
pub const TWILIO_HOST: &str = "api.twilio.com";

/// The Messages resource: answers each send as accepted (`201`, a new `SM…` sid), or with the
/// replies a test scripted for the next sends.
#[derive(Clone)]
pub struct TwilioSend {
    state: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    sends: Vec<Outbound>,
    scripted: VecDeque<Reply>,
    next: u64,
}

impl TwilioSend {
    pub fn install(stack: &Stack) -> Self {
        let twilio = Self {
            state: Rc::new(RefCell::new(State::default())),
        };
        let serving = twilio.clone();
        stack.partner(TWILIO_HOST, move |call| serving.answer(call));
        twilio
    }

    /// The next sends are answered with these, in order.
    pub fn answer_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.borrow_mut().scripted.extend(replies);
    }

    pub fn sends(&self) -> Vec<Outbound> {
        self.state.borrow().sends.clone()
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let mut state = self.state.borrow_mut();
        state.sends.push(call.clone());
        if let Some(reply) = state.scripted.pop_front() {
            return reply;
        }
        state.next += 1;
        accepted(&format!("SM{:032x}", state.next), call)
    }
}

/// Twilio's `201 Created` for the send `call`, as message `sid`.
pub fn accepted(sid: &str, call: &Outbound) -> Reply {
    let fields = form_fields(call);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let account_sid = basic_credentials(call).map(|(user, _)| user).unwrap_or_default();
    json_reply(
        201,
        &json!({
            "sid": sid,
            "account_sid": account_sid,
            "to": field("To"),
            "from": field("From"),
            "body": field("Body"),
            "status": "queued",
            "num_media": fields.iter().filter(|(key, _)| key == "MediaUrl").count().to_string(),
            "api_version": "2010-04-01"
        }),
    )
}

/// A Twilio error (`{code, message, more_info, status}`) with `status`.
pub fn error(status: u16, code: u32, message: &str) -> Reply {
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
    error(400, 21211, &format!("Invalid 'To' Phone Number: {to}"))
}

/// `X-Twilio-Signature` of a callback to `url` with the form `params`: base64 of the HMAC-SHA1,
/// keyed with the auth token, of the URL followed by every parameter's name and value, sorted by
/// name (Twilio's documented scheme).
pub fn signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use hmac::{Hmac, Mac};
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut signed = url.to_owned();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|error| panic!("{error}"));
    mac.update(signed.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A form body of `params`, encoded as Twilio encodes its callbacks.
pub fn form_body(params: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
        .into_bytes()
}
