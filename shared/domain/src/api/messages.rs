//! The message endpoints: polling for new messages, a customer's conversations, changing a
//! conversation, sending, and the attachments that travel with messages; their declarations and
//! the shapes they take and answer with.

use crate::api::{Caller::*, get, patch, post};
use crate::customer::Customer;
use crate::ids::AttachmentId;
use crate::message::{Conversation, Message};
use serde::{Deserialize, Deserializer, Serialize};
#[cfg(feature = "openapi")]
use {crate::message::ConversationStatus, crate::outgoing::SendIn, crate::time::Timestamp, serde_json::json};

/// Room for the multipart boundaries and part headers around a file at the limit.
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The longest assignee a conversation takes, in characters (after trimming).
pub const MAX_ASSIGNEE_CHARS: usize = 200;

function! {
    /// Polling for new messages.
    pub const MESSAGES_SINCE: Function<MessagesSince> = "messages-since", tag "messages";
    /// Polling for new messages
    ///
    /// Every message of the business created strictly after `since` or `cursor`, oldest first. Give
    /// since or cursor (400 without either).
    GetMessagesSince = get("/api-messages-since", ApiKey)
        => |c| c.query::<SinceParameters>().ok::<MessagePage>(200).errors(&[400]);
}

function! {
    /// A customer's conversations.
    pub const CONVERSATIONS_BY_CUSTOMER: Function<ConversationsByCustomer> = "conversations-by-customer", tag "messages";
    /// A customer's conversations on every channel
    ///
    /// external_id (the CRM's) or customer_id (ours, else tried as the CRM's); one conversation per
    /// channel.
    GetConversationsByCustomer = get("/api-conversations-by-customer", ApiKey)
        => |c| c.query::<ConversationsParameters>().ok::<CustomerConversations>(200).errors(&[404]);
}

function! {
    /// Changing a conversation.
    pub const CONVERSATIONS: Function<Conversations> = "conversations", tag "messages";
    /// Change a conversation's status or assignee
    ///
    /// Emits conversation.status_changed / conversation.assigned. 409 when it kept changing
    /// meanwhile.
    UpdateConversation = patch("/api-conversations/{conversation_id}", ApiKey)
        => |c| c
            .json::<ChangeIn>()
            .example(json!({ "status": "resolved", "assignee": "ana@acme.com" }))
            .ok::<ConversationOut>(200)
            .errors(&[409]);
}

function! {
    /// Sending a message.
    pub const SEND_MESSAGE: Function<SendMessage> = "send-message", tag "messages";
    /// Send a message to a customer
    ///
    /// The customer is customer_id (ours, else the CRM's), email or phone. The answer comes before
    /// any provider is called; follow the message to sent or failed through /api-messages-since.
    SendMessage = post("/api-send-message", ApiKey).idempotent()
        => |c| c
            .json::<SendIn>()
            .example(json!({ "customer_id": "CRM-12345", "channel": "whatsapp", "content": "Your order has shipped" }))
            .ok::<SentOut>(202)
            .described("Stored queued and handed to the dispatcher")
            .links(json!({
                "ChangeItsConversation": { "operationId": "updateConversation",
                    "parameters": { "conversation_id": "$response.body#/message/conversation_id" } },
            }))
            .errors(&[404, 503]);
}

function! {
    /// Uploading attachments.
    pub const UPLOAD_ATTACHMENT: Function<UploadAttachment> = "upload-attachment", tag "messages";
    /// Upload a file to send with messages
    ///
    /// multipart/form-data with the file in the field `file`, at most 10 MB (413). Images, pdf,
    /// text, csv, office documents, audio and video. A file sent without a type (or as
    /// application/octet-stream, as a browser sends a File made without one) is known by its first
    /// bytes, else its name's extension; content that contradicts its type is 415, and a 415 names
    /// the accepted types.
    UploadAttachment = post("/api-upload-attachment", ApiKey)
        .idempotent()
        .limit(crate::media::MAX_ATTACHMENT_BYTES + MULTIPART_OVERHEAD)
        => |c| c
            .raw_literal("multipart/form-data", json!({
                "type": "object",
                "properties": { "file": { "type": "string", "contentMediaType": "application/octet-stream" } },
                "required": ["file"],
            }))
            .encoding(json!({ "file": {
                "contentType": "text/plain, text/csv, application/pdf, image/png, image/jpeg, image/gif, image/webp",
            }}))
            .ok::<UploadOut>(201)
            .links(json!({
                "DownloadIt": { "operationId": "downloadMedia", "parameters": { "id": "$response.body#/attachment/id" } },
            }))
            .errors(&[400, 413, 415, 422]);
}

function! {
    /// Downloading attachments.
    pub const DOWNLOAD_MEDIA: Function<DownloadMedia> = "download-media", tag "messages";
    /// Download an attachment
    ///
    /// With the owning business's x-api-key, or a signed link (id, expires, signature) for webhooks
    /// and the embedded inbox: 403 when the link is invalid or expired.
    DownloadMedia = get("/api/download-media", ApiKeyOrSignedLink)
        => |c| c
            .query::<DownloadParameters>()
            .ok_media(200, "*/*", json!({ "type": "string", "contentMediaType": "application/octet-stream" }))
            .described("The file, with its own content type")
            .errors(&[401, 403, 404]);
}

/// The parameters of `GET /api-messages-since`.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct SinceParameters {
    /// RFC 3339 time.
    #[schemars(example = &"2025-11-04T09:00:00Z")]
    since: Option<Timestamp>,
    /// The next_cursor of a previous page.
    cursor: Option<String>,
    /// 1 to 500, default 100.
    #[schemars(range(min = 1, max = crate::query::MAX_PAGE))]
    limit: Option<u32>,
    /// true or false.
    include_attachments: Option<bool>,
}

/// A page of the business's messages, oldest first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct MessagePage {
    pub messages: Vec<Message>,
    pub has_more: bool,
    /// Pass back as cursor; present whenever the page is not empty.
    pub next_cursor: Option<String>,
}

/// The parameters of `GET /api-conversations-by-customer`.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct ConversationsParameters {
    /// Our id, or else the CRM's.
    customer_id: Option<String>,
    /// The CRM's id.
    external_id: Option<String>,
    /// true or false.
    include_messages: Option<bool>,
    /// true or false.
    include_attachments: Option<bool>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CustomerConversations {
    pub customer: Customer,
    pub conversations: Vec<Conversation>,
}

/// A change of a conversation: its status, its assignee, or both.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(extend("minProperties" = 1)))]
pub struct ChangeIn {
    #[cfg_attr(feature = "openapi", schemars(with = "Option<ConversationStatus>"))]
    pub status: Option<String>,
    /// Absent: unchanged; null: unassigned.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "Option<String>", length(min = 1, max = MAX_ASSIGNEE_CHARS))
    )]
    pub assignee: Option<Option<String>>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConversationOut {
    pub conversation: Conversation,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SentOut {
    pub success: bool,
    pub message: Message,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UploadOut {
    pub success: bool,
    pub attachment: UploadedOut,
}

/// An uploaded file: its `file_url` can be sent with a message.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UploadedOut {
    pub id: AttachmentId,
    pub file_url: String,
    pub filename: String,
    #[serde(rename = "type")]
    pub mime_type: String,
    pub size: i64,
    /// RFC 3339 time.
    pub created_at: String,
}

/// The parameters of `GET /api/download-media`.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct DownloadParameters {
    /// The attachment id.
    id: AttachmentId,
    /// Signed links: Unix seconds.
    expires: Option<String>,
    /// Signed links: the HMAC.
    signature: Option<String>,
}
