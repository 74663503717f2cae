//! The embedded inbox: the short-lived tokens a CRM gets for it, the page it puts in an iframe
//! with its assets, and the JSON the page calls with its token; their declarations and the
//! shapes they take and answer with.

use crate::api::{Caller::*, get, head, post};
use crate::channel::Channel;
use crate::embed::MessageView;
use crate::ids::{CustomerId, SsoTokenId};
use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use {crate::sso::TokenIn, serde_json::json};

function! {
    /// Tokens for the embedded inbox.
    pub const SSO_TOKEN: Function<SsoToken> = "sso-token", tag "embed";
    /// A short-lived token for the embedded inbox
    ///
    /// customer_id (ours, else the CRM's) or external_id; scope inbox (default) or inbox:reply;
    /// expires_in 60 to 86400 (default 3600).
    GenerateSsoToken = post("/api-sso-generate-token", ApiKey).idempotent()
        => |c| c
            .json::<TokenIn>()
            .example(json!({ "customer_id": "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f", "scope": "inbox", "expires_in": 3600 }))
            .ok::<TokenOut>(201)
            .links(json!({ "RevokeIt": { "operationId": "revokeSsoToken", "requestBody": { "token_id": "$response.body#/token_id" } } }))
            .errors(&[404]);
    /// Revoke an SSO token
    ///
    /// By token or token_id; idempotent; another business's token is 404.
    RevokeSsoToken = post("/api-sso-revoke-token", ApiKey)
        => |c| c
            .json::<RevokeIn>()
            .example(json!({ "token_id": "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f" }))
            .ok::<RevokedOut>(200)
            .errors(&[404]);
}

function! {
    /// The embedded inbox: its page, assets and JSON.
    pub const EMBED_INBOX: Function<EmbedInbox> = "embed-inbox", owns "/embed/", tag "embed";
    /// The inbox page a CRM puts in an iframe
    GetEmbeddedInbox = get("/embed/inbox", EmbedTokenInQuery)
        => |c| c
            .query::<PageParameters>()
            .ok_media(200, "text/html", json!({ "type": "string" }))
            .described("The page; any site may frame it until the business sets embed_frame_ancestors, which then names the only sites that may")
            .page()
            .errors(&[401, 403, 404]);
    /// The inbox page's headers
    HeadEmbeddedInbox = head("/embed/inbox", EmbedTokenInQuery)
        => |c| c.query::<PageParameters>().ok_empty(200).described("As GET, without the page").page().errors(&[401, 403, 404]);
    /// The page's inbox.css
    GetEmbedAssetCss = get("/embed/assets/inbox.css", Anyone)
        => |c| c.ok_media(200, "text/css", json!({ "type": "string" })).described("The asset").page().infallible();
    /// The headers of the page's inbox.css
    HeadEmbedAssetCss = head("/embed/assets/inbox.css", Anyone)
        => |c| c.ok_empty(200).described("As GET, without the asset").page().infallible();
    /// The page's inbox.js
    GetEmbedAssetJs = get("/embed/assets/inbox.js", Anyone)
        => |c| c.ok_media(200, "text/javascript", json!({ "type": "string" })).described("The asset").page().infallible();
    /// The headers of the page's inbox.js
    HeadEmbedAssetJs = head("/embed/assets/inbox.js", Anyone)
        => |c| c.ok_empty(200).described("As GET, without the asset").page().infallible();
    /// The customer's timeline, for the page
    ///
    /// The first load (no after) carries customer, scope and reply; later polls pass
    /// after=next_cursor.
    GetEmbedTimeline = get("/embed/api/timeline", EmbedToken)
        => |c| c.query::<TimelineParameters>().ok::<TimelineOut>(200).errors(&[403, 404]);
    /// Reply from the page (scope inbox:reply)
    PostEmbedReply = post("/embed/api/reply", EmbedToken)
        => |c| c.json::<ReplyIn>().ok::<ReplyOut>(202).errors(&[403, 404, 409, 503]);
}

/// A token, and where it opens the inbox.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TokenOut {
    pub token: String,
    pub token_id: SsoTokenId,
    pub customer_id: CustomerId,
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["inbox", "inbox:reply"])))]
    pub scope: &'static str,
    pub expires_in: i64,
    /// RFC 3339 time.
    pub expires_at: String,
    pub embed_url: String,
}

/// The token to revoke, by itself or by its id: one of the two.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(extend("minProperties" = 1, "maxProperties" = 1)))]
pub struct RevokeIn {
    #[cfg_attr(feature = "openapi", schemars(regex(pattern = r"^sso_[A-Za-z0-9_-]{43}$")))]
    pub token: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(with = "Option<SsoTokenId>"))]
    pub token_id: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RevokedOut {
    pub revoked: bool,
    pub token_id: SsoTokenId,
}

/// The page's address.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct PageParameters {
    /// The SSO token.
    token: String,
}

/// The parameters of a poll.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct TimelineParameters {
    /// The next_cursor of a previous answer.
    after: Option<String>,
    /// Comma-separated ids of queued replies to report on.
    pending: Option<String>,
}

/// The customer's timeline. The first load (no `after`) carries customer, scope and reply;
/// later polls pass `after=next_cursor`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct TimelineOut {
    /// On the first load only: who, what the page may do, and where a reply can go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["inbox", "inbox:reply"])))]
    pub scope: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyOptions>,
    /// RFC 3339 time.
    pub expires_at: String,
    pub messages: Vec<MessageView>,
    /// The current state of the queued replies the poll asked about (`pending=`).
    pub updated: Vec<MessageView>,
    pub has_more: bool,
    pub next_cursor: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CustomerView {
    pub name: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReplyOptions {
    pub channels: Vec<Channel>,
    pub default_channel: Option<Channel>,
}

/// A reply from the page.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReplyIn {
    #[cfg_attr(feature = "openapi", schemars(with = "Option<Channel>", required))]
    pub channel: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1)))]
    pub content: Option<String>,
    pub subject: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReplyOut {
    pub message: MessageView,
}
