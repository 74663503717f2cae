//! Facebook Page comments: the `feed` changes of a page's entry whose item is a comment. A page's
//! feed also reports posts, photos, shares, reactions and the page's own moderation; none of that
//! is a customer speaking to the business, so only comments are taken and the rest is passed over
//! without complaint.

use crate::json::Rejection;
use crate::providers::display_name;
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

impl Comment {
    /// The comment as a receiver hands it over: its author's conversation under the post.
    pub fn inbound(self) -> crate::inbound::InboundComment {
        use crate::inbound::{CommentChange, InboundComment, InboundMessage};
        InboundComment {
            thread: self.post_id,
            change: match self.verb {
                CommentVerb::Added => CommentChange::Added,
                CommentVerb::Edited => CommentChange::Edited,
                CommentVerb::Removed => CommentChange::Removed,
            },
            message: InboundMessage {
                provider_message_id: self.comment_id,
                from: self.author_id.unwrap_or_default(),
                sender_name: self.author_name,
                content: self.message,
                media: Vec::new(),
            },
        }
    }
}

/// The comment one change of a page's entry carries, when it is a comment by someone other than
/// the page `page_id`; `path` is the change's (`entry[0].changes[1]`). None for changes of other
/// fields, feed items that are not comments, and comments the page hides or shows again (verbs
/// `hide` and `unhide`, its own moderation). A comment that cannot be read is an Err with its
/// path, so the caller keeps the notification's other changes.
pub(super) fn feed_change(change: Value, page_id: &str, path: &str) -> Option<Result<Comment, Rejection>> {
    let Value::Object(mut change) = change else {
        return Some(Err(Rejection::new(path, "invalid type: a change is an object")));
    };
    if change.get("field").and_then(Value::as_str) != Some("feed") {
        return None;
    }
    let value = change.remove("value")?;
    // The item decides the shape of the rest, so only a comment is held to a comment's shape.
    if value.get("item").and_then(Value::as_str) != Some("comment") {
        return None;
    }
    let path = format!("{path}.value");
    let raw = match RawComment::read(&value, &path) {
        Ok(raw) => raw,
        Err(rejection) => return Some(Err(rejection)),
    };
    // Comments come with `add`, `edited` and `remove`; Meta's list of verbs also has `edit` and
    // `delete`, which could only mean the same of a comment.
    let verb = match raw.verb.as_str() {
        "add" => CommentVerb::Added,
        "edited" | "edit" => CommentVerb::Edited,
        "remove" | "delete" => CommentVerb::Removed,
        _ => return None,
    };
    if raw.author_id.as_deref() == Some(page_id) {
        return None;
    }
    if raw.author_id.is_none() && verb != CommentVerb::Removed {
        return Some(Err(Rejection::new(path, "missing field `from`")));
    }
    let parent_id = raw.parent_id.filter(|parent| *parent != raw.post_id);
    let message = match verb {
        CommentVerb::Removed => String::new(),
        CommentVerb::Added | CommentVerb::Edited => raw.message.unwrap_or_default(),
    };
    Some(Ok(Comment {
        verb,
        comment_id: raw.comment_id,
        post_id: raw.post_id,
        parent_id,
        author_name: raw
            .author_id
            .as_ref()
            .and(display_name(raw.author_name.as_deref())),
        author_id: raw.author_id,
        message,
        created_time: value.get("created_time").and_then(unix_seconds),
    }))
}

/// Meta writes `created_time` as a number of seconds; some of its tools write it as text.
fn unix_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A comment's fields as Meta sends them (it adds fields freely, and the rest are not read).
/// Read field by field from the value serde_json made of the notification: a derived reader,
/// with the path of what is wrong kept, cost the Meta receiver's bundle 8 KB of gzip for these
/// few fields.
struct RawComment {
    verb: String,
    comment_id: String,
    post_id: String,
    parent_id: Option<String>,
    author_id: Option<String>,
    author_name: Option<String>,
    message: Option<String>,
}

impl RawComment {
    /// The comment of the change's `value` at `path`, or what is wrong with it, where; the
    /// reason names kinds, never values, as the other readers' do.
    fn read(value: &Value, path: &str) -> Result<Self, Rejection> {
        let required = |field: Option<String>, name: &str| {
            field.ok_or_else(|| Rejection::new(path, format!("missing field `{name}`")))
        };
        let author = match value.get("from") {
            None | Some(Value::Null) => None,
            Some(from @ Value::Object(_)) => {
                let at = format!("{path}.from");
                let id = id_at(from, "id", &at)?;
                let id = id.ok_or_else(|| Rejection::new(at.clone(), "missing field `id`"))?;
                Some((id, text_at(from, "name", &at)?))
            }
            Some(_) => {
                return Err(Rejection::new(
                    format!("{path}.from"),
                    "invalid type, expected an object",
                ));
            }
        };
        let (author_id, author_name) = author.map_or((None, None), |(id, name)| (Some(id), name));
        Ok(Self {
            verb: required(text_at(value, "verb", path)?, "verb")?,
            comment_id: required(id_at(value, "comment_id", path)?, "comment_id")?,
            post_id: required(id_at(value, "post_id", path)?, "post_id")?,
            parent_id: id_at(value, "parent_id", path)?,
            author_id,
            author_name,
            message: text_at(value, "message", path)?,
        })
    }
}

/// The text `object` holds under `name`, if any; a value of another kind is rejected at its path.
fn text_at(object: &Value, name: &str, path: &str) -> Result<Option<String>, Rejection> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(Rejection::new(
            format!("{path}.{name}"),
            "invalid type, expected a string",
        )),
    }
}

/// The id `object` holds under `name`, if any: Meta writes ids as text, some of its tools as
/// numbers.
fn id_at(object: &Value, name: &str, path: &str) -> Result<Option<String>, Rejection> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) if number.is_u64() => Ok(Some(number.to_string())),
        Some(_) => Err(Rejection::new(
            format!("{path}.{name}"),
            "invalid type, expected an id",
        )),
    }
}
