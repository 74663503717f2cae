//! Mailgun's Messages API, the sending side, as a partner script: `POST /v3/{domain}/messages`
//! with HTTP Basic (user `api`, the API key as password) and a form body (`from`, `to`,
//! `subject`, `text`, `attachment` files in a multipart one); answers `{id, message}`, or
//! `{message}` with the error.

use super::json_reply;
use edge::runtime::native::{Outbound, Reply, Stack};
use serde_json::json;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Mailgun's API host (its US region).
pub const MAILGUN_HOST: &str = "api.mailgun.net";

/// The Messages resource: answers each send as queued, or with the replies a test scripted for
/// the next sends.
#[derive(Clone)]
pub struct MailgunSend {
    state: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    sends: Vec<Outbound>,
    scripted: VecDeque<Reply>,
    next: u64,
}

impl MailgunSend {
    pub fn install(stack: &Stack) -> Self {
        let mailgun = Self {
            state: Rc::new(RefCell::new(State::default())),
        };
        let serving = mailgun.clone();
        stack.partner(MAILGUN_HOST, move |call| serving.answer(call));
        mailgun
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
        let domain = call
            .path()
            .strip_prefix("/v3/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_owned();
        json_reply(
            200,
            &json!({ "id": format!("<20261126120000.{}@{domain}>", state.next), "message": "Queued. Thank you." }),
        )
    }
}

/// Mailgun's answer to a sender over its rate: 429 with `Retry-After: 1`.
pub fn rate_limited() -> Reply {
    json_reply(429, &json!({ "message": "Too many requests" })).header("retry-after", "1")
}
