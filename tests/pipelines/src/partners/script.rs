//! What a test tells a partner to do before it answers as itself: refuse connections while it is
//! down, never answer the next calls, answer scripted replies to the calls they match, and take
//! its time to answer. The partners that script faults this way (Kustomer, HubSpot) hold one.

use edge::runtime::native::{Outbound, Reply};
use std::time::Duration;

/// A scripted failure: the next `times` calls for which `matches` holds answer `reply`.
struct Fault {
    times: usize,
    matches: Box<dyn Fn(&Outbound) -> bool>,
    reply: Reply,
}

#[derive(Default)]
pub struct Script {
    faults: Vec<Fault>,
    hangs: usize,
    down: bool,
    latency: Duration,
}

impl Script {
    /// The next `times` calls for which `matches` holds are answered `reply`; faults are tried in
    /// the order scripted, and a call takes at most one.
    pub fn fail(&mut self, times: usize, matches: impl Fn(&Outbound) -> bool + 'static, reply: Reply) {
        self.faults.push(Fault {
            times,
            matches: Box::new(matches),
            reply,
        });
    }

    /// The next `times` calls are never answered: the caller's own timeout must end them.
    pub fn hang(&mut self, times: usize) {
        self.hangs += times;
    }

    /// Connections refused (true) or taken again (false).
    pub fn set_down(&mut self, down: bool) {
        self.down = down;
    }

    /// Every answer from now on comes after `each`.
    pub fn set_latency(&mut self, each: Duration) {
        self.latency = each;
    }

    /// What the script answers `call` with instead of the partner: a refused connection while
    /// down, no answer while calls hang, a fault's reply; None lets the partner answer.
    pub fn scripted(&mut self, call: &Outbound) -> Option<Reply> {
        if self.down {
            return Some(Reply::refused());
        }
        if self.hangs > 0 {
            self.hangs -= 1;
            return Some(Reply::never());
        }
        let at = self
            .faults
            .iter()
            .position(|fault| fault.times > 0 && (fault.matches)(call))?;
        self.faults[at].times -= 1;
        let reply = self.faults[at].reply.clone();
        self.faults.retain(|fault| fault.times > 0);
        Some(reply)
    }

    /// `reply` as it reaches the caller: after the latency, unless it is refused or already
    /// delayed.
    pub fn delayed(&self, reply: Reply) -> Reply {
        if reply.refused.is_none() && reply.delay_ms == 0 && !self.latency.is_zero() {
            reply.after(self.latency)
        } else {
            reply
        }
    }
}

/// The status a caller saw for `reply`: None when it was refused or never answered.
pub fn status_seen(reply: &Reply) -> Option<u16> {
    (reply.refused.is_none() && reply.delay_ms < 3_600_000).then_some(reply.status)
}
