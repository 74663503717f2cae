//! Facebook Page comments: the `feed` changes of a page's entry whose item is a comment. A page's
//! feed also reports posts, photos, shares, reactions and the page's own moderation; none of that
//! is a customer speaking to the business, so only comments are taken and the rest is passed over
//! without complaint.

use super::graph_id::{id, optional_id};
use super::notification::Notification;
use crate::json::{Lenient, Rejection};
use crate::providers::display_name;
use serde::Deserialize;
use serde_json::Value;

/// What happened to a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentVerb {
    /// Written on one of the page's posts, or in reply to a comment there.
    Added,
    /// Changed by its author: the comment's `message` is its new text.
    Edited,
    /// Deleted, by its author or by the page: what was kept of it should go too.
    Removed,
}

/// A comment on one of the page's posts, added, edited or removed by someone other than the page
/// (the page's own comments are its replies, not customers speaking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub verb: CommentVerb,
    /// Meta's id of the comment: the same in its edits and its removal, and the one a reply to it
    /// names.
    pub comment_id: String,
    /// The post the comment is under, directly or through the comment it answers.
    pub post_id: String,
    /// The comment this one answers; None for a comment on the post itself.
    pub parent_id: Option<String>,
    /// The author's page-scoped id. Always there for an added or edited comment (one without it
    /// is rejected); a removal may leave it out, and its comment is known by `comment_id` anyway.
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    /// The text; empty for a removal, and for a comment of only a photo, video or sticker.
    pub message: String,
    /// When the comment was written, in Unix seconds. Only informative: a time that cannot be
    /// read is left unknown rather than costing the comment.
    pub created_time: Option<i64>,
}

/// Takes one change of a page's entry into the notification when it is a comment by someone
/// other than the page `page_id`; `path` is the change's (`entry[0].changes[1]`). Changes of
/// other fields, feed items that are not comments, and comments the page hides or shows again
/// (verbs `hide` and `unhide`, its own moderation) are passed over. A comment that cannot be read
/// is rejected with its path, so the other changes of the notification are still taken.
pub(super) fn feed_change(change: Change, page_id: &str, path: &str, notification: &mut Notification) {
    if change.field.as_deref() != Some("feed") {
        return;
    }
    let Some(value) = change.value else {
        return;
    };
    // The item decides the shape of the rest, so only a comment is held to a comment's shape.
    if value.get("item").and_then(Value::as_str) != Some("comment") {
        return;
    }
    let path = format!("{path}.value");
    // Reading a `Value` as a `Lenient` cannot fail: what is wrong with the comment is inside it.
    let Ok(raw) = Lenient::<RawComment>::deserialize(value) else {
        return;
    };
    let Some(raw) = raw.take(&path, &mut notification.rejected) else {
        return;
    };
    // Comments come with `add`, `edited` and `remove`; Meta's list of verbs also has `edit` and
    // `delete`, which could only mean the same of a comment.
    let verb = match raw.verb.as_str() {
        "add" => CommentVerb::Added,
        "edited" | "edit" => CommentVerb::Edited,
        "remove" | "delete" => CommentVerb::Removed,
        _ => return,
    };
    if raw.from.as_ref().is_some_and(|author| author.id == page_id) {
        return;
    }
    if raw.from.is_none() && verb != CommentVerb::Removed {
        notification
            .rejected
            .push(Rejection::new(path, "missing field `from`"));
        return;
    }
    let parent_id = raw.parent_id.filter(|parent| *parent != raw.post_id);
    let (author_id, author_name) = match raw.from {
        Some(author) => (Some(author.id), display_name(author.name.as_deref())),
        None => (None, None),
    };
    let message = match verb {
        CommentVerb::Removed => String::new(),
        CommentVerb::Added | CommentVerb::Edited => raw.message.unwrap_or_default(),
    };
    notification.comments.push(Comment {
        verb,
        comment_id: raw.comment_id,
        post_id: raw.post_id,
        parent_id,
        author_id,
        author_name,
        message,
        created_time: raw.created_time.as_ref().and_then(unix_seconds),
    });
}

/// Meta writes `created_time` as a number of seconds; some of its tools write it as text.
fn unix_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

// The change as Meta sends it. Unknown fields are ignored: Meta adds fields freely.

/// One change of a page's entry. Its value stays unread until its field and item say what it is:
/// a page subscribed to other fields (ratings, lead ads…) gets changes of other shapes, and they
/// are not ours to reject.
#[derive(Deserialize)]
pub(super) struct Change {
    field: Option<String>,
    value: Option<Value>,
}

#[derive(Deserialize)]
struct RawComment {
    verb: String,
    #[serde(deserialize_with = "id")]
    comment_id: String,
    #[serde(deserialize_with = "id")]
    post_id: String,
    #[serde(default, deserialize_with = "optional_id")]
    parent_id: Option<String>,
    from: Option<Author>,
    message: Option<String>,
    created_time: Option<Value>,
}

#[derive(Deserialize)]
struct Author {
    #[serde(deserialize_with = "id")]
    id: String,
    name: Option<String>,
}
