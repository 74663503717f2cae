//! The links endpoints: their declarations and the types they take and answer with.

use crate::api::{Caller::*, Signature, delete, get, post, put};

function! {
    /// `knowledge`.
    pub const KNOWLEDGE: Function<Knowledge> = "knowledge", tag "crm-links";
    /// A page's CRM links
    ///
    /// One entry per channel. 404 unless page_id is one of the business's Facebook pages.
    ListCrmLinks = get("/api/dashboard/crm-links", ApiKeyOrBearer)
        => |c| c;
    /// Add a CRM link on its channels
    ///
    /// An active api/file link is fetched at once, in the background; a webhook link answers its
    /// webhook_url and, once, its webhook_secret. 409 if the page has the URL on one of the
    /// channels. Unknown fields are refused.
    AddCrmLink = post("/api/dashboard/crm-links", ApiKeyOrBearer).idempotent()
        => |c| c;
    /// Delete a link from channels
    ///
    /// A URL left on no channel goes with its data and vectors.
    DeleteCrmLink = delete("/api/dashboard/crm-links", ApiKeyOrBearer)
        => |c| c;
    /// Activate or deactivate a link
    SetCrmLinkStatus = put("/api/dashboard/crm-links/status", ApiKeyOrBearer)
        => |c| c;
    /// Every Facebook page with its links per channel
    ListAllCrmLinks = get("/api/dashboard/crm-links/all", ApiKeyOrBearer)
        => |c| c;
    /// Fetch a link now
    ///
    /// 409 when the link is inactive everywhere or is not fetched (webhook, database).
    RefreshCrmLink = post("/api/dashboard/crm-links/refresh", ApiKeyOrBearer)
        => |c| c;
    /// Search a page's links for the bot
    ///
    /// The best pieces of the page's links active on the channel. 503 when the embedder is
    /// unavailable.
    SearchCrmLinks = get("/api/dashboard/rag/search", ApiKeyOrBearer)
        => |c| c;
    /// Search a page's links for the bot (JSON body)
    SearchCrmLinksPost = post("/api/dashboard/rag/search", ApiKeyOrBearer)
        => |c| c;
    /// What is indexed for a page
    GetCrmLinkDetails = get("/api/dashboard/rag/documents/details", ApiKeyOrBearer)
        => |c| c;
    /// A CRM pushes a webhook link's data
    ///
    /// Signed as Standard Webhooks sign: webhook-id, webhook-timestamp (within 5 minutes) and
    /// webhook-signature v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> with the link's
    /// webhook_secret. The body replaces the link's data (JSON, CSV or text, at most 4 MiB).
    PushCrmLinkData = post("/webhooks/crm-links/{link_id}", Signed(Signature::StandardWebhooks))
        => |c| c;
}
