//! A business's webhook endpoint: it takes each delivery, checks both signatures as a receiver
//! would (Standard Webhooks' `webhook-signature` with the endpoint's `whsec_` secret, and the
//! guide's `X-Webhook-Signature`), keeps what it got, and answers what the test scripted (200
//! unless told otherwise).

use super::hmac_sha256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// One delivery as the endpoint got it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub call: Outbound,
    pub body: Value,
    /// Both signatures verified under the secret the endpoint knows.
    pub signed: bool,
}

#[derive(Clone)]
pub struct Endpoint {
    host: String,
    state: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    secret: String,
    deliveries: Vec<Delivery>,
    /// Answers for the next deliveries, in order; 200 once they run out.
    scripted: VecDeque<Reply>,
}

impl Endpoint {
    /// An endpoint at `https://{host}/hooks`.
    pub fn install(stack: &Stack, host: &str) -> Self {
        let endpoint = Self {
            host: host.to_owned(),
            state: Rc::new(RefCell::new(State::default())),
        };
        let serving = endpoint.clone();
        stack.partner(host, move |call| serving.answer(call));
        endpoint
    }

    pub fn url(&self) -> String {
        format!("https://{}/hooks", self.host)
    }

    /// The endpoint's secret, as the API showed it once (`whsec_…`).
    pub fn knows_secret(&self, secret: &str) {
        self.state.borrow_mut().secret = secret.to_owned();
    }

    /// The next deliveries are answered with these replies, in order.
    pub fn answer_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.borrow_mut().scripted.extend(replies);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.borrow().deliveries.clone()
    }

    /// The deliveries of events of `kind` (`message.received`).
    pub fn of_event(&self, kind: &str) -> Vec<Delivery> {
        self.deliveries()
            .into_iter()
            .filter(|delivery| delivery.body["event"] == kind)
            .collect()
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let mut state = self.state.borrow_mut();
        let signed = verify(&state.secret, call);
        let body = serde_json::from_slice(&call.body).unwrap_or_default();
        state.deliveries.push(Delivery {
            call: call.clone(),
            body,
            signed,
        });
        state
            .scripted
            .pop_front()
            .unwrap_or_else(|| Reply::text(200, "ok"))
    }
}

/// True when both headers sign the body: Standard Webhooks' over `{id}.{timestamp}.{body}` with
/// the secret's decoded key, and the guide's over `{timestamp}.{body}` with the secret's text.
pub fn verify(secret: &str, call: &Outbound) -> bool {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        call.header("webhook-id"),
        call.header("webhook-timestamp"),
        call.header("webhook-signature"),
    ) else {
        return false;
    };
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
    else {
        return false;
    };
    let body = String::from_utf8_lossy(&call.body);
    let expected = format!(
        "v1,{}",
        STANDARD.encode(hmac_sha256(&key, format!("{id}.{timestamp}.{body}").as_bytes()))
    );
    let standard = signatures.split(' ').any(|signature| signature == expected);
    let seed = call.header("x-webhook-signature")
        == Some(
            hex::encode(hmac_sha256(
                secret.as_bytes(),
                format!("{timestamp}.{body}").as_bytes(),
            ))
            .as_str(),
        );
    standard && seed && call.header("x-webhook-timestamp") == Some(timestamp)
}
