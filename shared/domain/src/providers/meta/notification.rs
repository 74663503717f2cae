//! What one notification of Meta's webhook yields for one account: filled by the WhatsApp and
//! messaging readers, returned by [`super::webhook::parse`].

use crate::inbound::InboundBatch;
use crate::json::Rejection;

/// What a notification carried for the account, how many of its entries were about others, and
/// what in it could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notification {
    pub batch: InboundBatch,
    /// Entries (or WhatsApp changes) about another number, page or Instagram account of the app.
    pub ignored: usize,
    /// Entries, changes, messages, statuses or contacts skipped because they could not be read,
    /// each with its path (`entry[0].changes[1].value.messages[2].from`). Retrying would not
    /// make them readable, so they are reported rather than allowed to fail the notification.
    pub rejected: Vec<Rejection>,
}
