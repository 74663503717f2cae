//! The embed endpoints: their declarations and the types they take and answer with.

use crate::api::{Caller::*, get, head, post};

function! {
    /// `sso-token`.
    pub const SSO_TOKEN: Function<SsoToken> = "sso-token", tag "embed";
    /// A short-lived token for the embedded inbox
    ///
    /// customer_id (ours, else the CRM's) or external_id; scope inbox (default) or inbox:reply;
    /// expires_in 60 to 86400 (default 3600).
    GenerateSsoToken = post("/api-sso-generate-token", ApiKey).idempotent()
        => |c| c;
    /// Revoke an SSO token
    ///
    /// By token or token_id; idempotent; another business's token is 404.
    RevokeSsoToken = post("/api-sso-revoke-token", ApiKey)
        => |c| c;
}

function! {
    /// `embed-inbox`.
    pub const EMBED_INBOX: Function<EmbedInbox> = "embed-inbox", owns "/embed/", tag "embed";
    /// The inbox page a CRM puts in an iframe
    GetEmbeddedInbox = get("/embed/inbox", EmbedTokenInQuery)
        => |c| c;
    /// The inbox page's headers
    HeadEmbeddedInbox = head("/embed/inbox", EmbedTokenInQuery)
        => |c| c;
    /// The page's inbox.css
    GetEmbedAssetCss = get("/embed/assets/inbox.css", Anyone)
        => |c| c;
    /// The headers of the page's inbox.css
    HeadEmbedAssetCss = head("/embed/assets/inbox.css", Anyone)
        => |c| c;
    /// The page's inbox.js
    GetEmbedAssetJs = get("/embed/assets/inbox.js", Anyone)
        => |c| c;
    /// The headers of the page's inbox.js
    HeadEmbedAssetJs = head("/embed/assets/inbox.js", Anyone)
        => |c| c;
    /// The customer's timeline, for the page
    ///
    /// The first load (no after) carries customer, scope and reply; later polls pass
    /// after=next_cursor.
    GetEmbedTimeline = get("/embed/api/timeline", EmbedToken)
        => |c| c;
    /// Reply from the page (scope inbox:reply)
    PostEmbedReply = post("/embed/api/reply", EmbedToken)
        => |c| c;
}
