//! The messages endpoints: their declarations and the types they take and answer with.

use crate::api::{Caller::*, get, patch, post};

function! {
    /// `messages-since`.
    pub const MESSAGES_SINCE: Function<MessagesSince> = "messages-since", tag "messages";
    /// Polling for new messages
    ///
    /// Every message of the business created strictly after `since` or `cursor`, oldest first. Give
    /// since or cursor (400 without either).
    GetMessagesSince = get("/api-messages-since", ApiKey)
        => |c| c;
}

function! {
    /// `conversations-by-customer`.
    pub const CONVERSATIONS_BY_CUSTOMER: Function<ConversationsByCustomer> = "conversations-by-customer", tag "messages";
    /// A customer's conversations on every channel
    ///
    /// external_id (the CRM's) or customer_id (ours, else tried as the CRM's); one conversation per
    /// channel.
    GetConversationsByCustomer = get("/api-conversations-by-customer", ApiKey)
        => |c| c;
}

function! {
    /// `conversations`.
    pub const CONVERSATIONS: Function<Conversations> = "conversations", tag "messages";
    /// Change a conversation's status or assignee
    ///
    /// Emits conversation.status_changed / conversation.assigned. 409 when it kept changing
    /// meanwhile.
    UpdateConversation = patch("/api-conversations/{conversation_id}", ApiKey)
        => |c| c;
}

function! {
    /// `send-message`.
    pub const SEND_MESSAGE: Function<SendMessage> = "send-message", tag "messages";
    /// Send a message to a customer
    ///
    /// The customer is customer_id (ours, else the CRM's), email or phone. The answer comes before
    /// any provider is called; follow the message to sent or failed through /api-messages-since.
    SendMessage = post("/api-send-message", ApiKey).idempotent()
        => |c| c;
}

function! {
    /// `upload-attachment`.
    pub const UPLOAD_ATTACHMENT: Function<UploadAttachment> = "upload-attachment", tag "messages";
    /// Upload a file to send with messages
    ///
    /// multipart/form-data with the file in the field `file`, at most 10 MB (413). Images, pdf,
    /// text, csv, office documents, audio and video. A file sent without a type (or as
    /// application/octet-stream, as a browser sends a File made without one) is known by its first
    /// bytes, else its name's extension; content that contradicts its type is 415, and a 415 names
    /// the accepted types.
    UploadAttachment = post("/api-upload-attachment", ApiKey).idempotent()
        => |c| c;
}

function! {
    /// `download-media`.
    pub const DOWNLOAD_MEDIA: Function<DownloadMedia> = "download-media", tag "messages";
    /// Download an attachment
    ///
    /// With the owning business's x-api-key, or a signed link (id, expires, signature) for webhooks
    /// and the embedded inbox: 403 when the link is invalid or expired.
    DownloadMedia = get("/api/download-media", ApiKeyOrSignedLink)
        => |c| c;
}
