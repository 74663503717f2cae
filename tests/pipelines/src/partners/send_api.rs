//! The skeleton every provider's send API shares as a script (Meta's Graph API, Twilio's and
//! Mailgun's Messages resources): each call is recorded, refused if the provider would refuse it
//! whatever a test scripted (credentials it does not know), else answered with the reply a test
//! scripted for the next sends, else with the provider's own answer to an accepted send.

use edge::runtime::native::{Outbound, Reply, Stack};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// What one provider's send API answers by itself.
pub trait Provider: 'static {
    /// The provider's refusal of `call` (a path it does not serve, credentials it does not
    /// know), which comes before anything scripted; `None` for a call it takes.
    fn refusal(&self, _call: &Outbound) -> Option<Reply> {
        None
    }

    /// The provider's answer to the `nth` send it accepted (from 1) when no reply was scripted.
    fn accepted(&self, call: &Outbound, nth: u64) -> Reply;
}

/// A provider's send API at one host.
pub struct SendApi<P> {
    provider: Rc<P>,
    state: Rc<RefCell<State>>,
}

impl<P> Clone for SendApi<P> {
    fn clone(&self) -> Self {
        Self {
            provider: Rc::clone(&self.provider),
            state: Rc::clone(&self.state),
        }
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Outbound>,
    scripted: VecDeque<Reply>,
    accepted: u64,
    /// How long an accepted send takes to be answered.
    latency: std::time::Duration,
}

impl<P: Provider> SendApi<P> {
    /// `provider` answering every call to `https://{host}` from now on.
    pub fn serve(stack: &Stack, host: &str, provider: P) -> Self {
        let api = Self {
            provider: Rc::new(provider),
            state: Rc::default(),
        };
        let serving = api.clone();
        stack.partner(host, move |call| serving.answer(call));
        api
    }

    /// The next sends the provider takes are answered with these, in order.
    pub fn answer_next(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.borrow_mut().scripted.extend(replies);
    }

    /// Every send it accepts from now on is answered after `each`: sends made at once are then
    /// under way at once, as against the real API.
    pub fn latency(&self, each: std::time::Duration) {
        self.state.borrow_mut().latency = each;
    }

    /// Every call made to the API, refused or not, in order.
    pub fn sends(&self) -> Vec<Outbound> {
        self.state.borrow().calls.clone()
    }

    pub(super) fn provider(&self) -> &P {
        &self.provider
    }

    fn answer(&self, call: &Outbound) -> Reply {
        let mut state = self.state.borrow_mut();
        state.calls.push(call.clone());
        if let Some(refusal) = self.provider.refusal(call) {
            return refusal;
        }
        if let Some(reply) = state.scripted.pop_front() {
            return reply;
        }
        state.accepted += 1;
        let reply = self.provider.accepted(call, state.accepted);
        if state.latency.is_zero() {
            reply
        } else {
            reply.after(state.latency)
        }
    }
}
