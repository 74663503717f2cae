//! What one notification of Meta's webhook yields for one account: filled by the WhatsApp,
//! messaging and page feed readers, returned by [`super::webhook::parse`].

use super::feed::Comment;
use crate::inbound::InboundBatch;
use crate::json::Rejection;

/// What a notification carried for the account, how many of its entries were about others, and
/// what in it could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notification {
    pub batch: InboundBatch,
    /// Comments on the page's posts (Facebook pages only), in the order Meta sent them. They are
    /// kept apart from `batch`: a comment is public, can be edited or removed, and is answered
    /// under the post or privately rather than in a conversation.
    pub comments: Vec<Comment>,
    /// Entries (or WhatsApp changes) about another number, page or Instagram account of the app.
    pub ignored: usize,
    /// Entries, changes, messages, statuses, contacts or comments skipped because they could not
    /// be read, each with its path (`entry[0].changes[1].value.messages[2].from`). Retrying would
    /// not make them readable, so they are reported rather than allowed to fail the notification.
    pub rejected: Vec<Rejection>,
}
