//! The CRM links guide's dashboard API (a business links CRM endpoints per page and channel; their
//! data is fetched, indexed and searched for the bot) and the receiver of data a CRM pushes to a
//! webhook link; their declarations and the shapes they take and answer with.
//!
//! The bodies are read by `domain::links` field by field (each problem names its field, unknown
//! fields are refused), so the types below that describe them are the contract's only.

use crate::api::{Caller::*, Signature, delete, get, patch, post, put};
use crate::ids::{BusinessId, SourceId};
use crate::links::link::LinkView;
use serde::Serialize;
#[cfg(feature = "openapi")]
use {crate::api::openapi::StringOrInteger, serde_json::json};

/// The largest link body the API reads; a link is a few hundred bytes.
pub const LINK_BODY_LIMIT: usize = 1024 * 1024;

function! {
    /// CRM links and their search.
    pub const KNOWLEDGE: Function<Knowledge> = "knowledge", tag "crm-links";
    /// A page's CRM links
    ///
    /// One entry per channel. 404 unless page_id is one of the business's Facebook pages.
    ListCrmLinks = get("/api/dashboard/crm-links", ApiKeyOrBearer).console()
        => |c| c.query::<PageParameters>().ok::<LinksOut>(200).errors(&[404]);
    /// Add a CRM link on its channels
    ///
    /// An active api/file link is fetched at once, in the background; a webhook link answers its
    /// webhook_url and, once, its webhook_secret. 409 if the page has the URL on one of the
    /// channels. Unknown fields are refused.
    AddCrmLink = post("/api/dashboard/crm-links", ApiKeyOrBearer).console().idempotent().limit(LINK_BODY_LIMIT)
        => |c| c
            .json::<NewLinkIn>()
            .example(json!({
                "page_id": "123456789", "channels": ["messenger"], "name": "Shopify Customers",
                "url": "https://mystore.myshopify.com/admin/api/2024-01/customers.json", "type": "api",
                "api_key": "shppa_1234567890", "headers": { "X-Shopify-Access-Token": "shppa_1234567890" },
                "is_active": true,
            }))
            .ok::<AddedOut>(201)
            .errors(&[404]);
    /// Change a link
    ///
    /// Any of its name, channels, URL, API key and headers (a value sent back as *** keeps the
    /// stored one; an empty or null api_key removes it), description, fetch interval and holds;
    /// what is left out stays. A new URL, key, headers or holds is fetched at once; unchanged
    /// pieces are not embedded again, and a change of holds gives the pieces their new owners
    /// without embedding them. Audited. 409 if another link of the page has the new URL.
    UpdateCrmLink = patch("/api/dashboard/crm-links", ApiKeyOrBearer).console().limit(LINK_BODY_LIMIT)
        => |c| c
            .json::<LinkChangeIn>()
            .example(json!({
                "page_id": "123456789", "id": "0b1f2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b",
                "api_key": "shppa_rotated", "fetch_interval_minutes": 60,
                "holds": { "type": "customers", "field": "email", "key": "email" },
            }))
            .ok::<UpdatedOut>(200)
            .errors(&[404, 409]);
    /// The fields of a link's data
    ///
    /// Reads the first page of a link's data (a link not added yet, by its url, type and
    /// credentials; or one of the page's links, by its id) and answers the fields of its records,
    /// which of them hold a customer's key, and the holds a link of this data should say. No value
    /// of the data is answered. 502 when the CRM refuses or cannot be read.
    PreviewCrmLink = post("/api/dashboard/crm-links/preview", ApiKeyOrBearer).console().limit(LINK_BODY_LIMIT)
        => |c| c.json::<PreviewIn>().ok::<PreviewOut>(200).errors(&[404, 502]);
    /// Delete a link from channels
    ///
    /// A link left on no channel goes with its data and vectors. The link is named by its id (or
    /// by its URL exactly as it was added).
    DeleteCrmLink = delete("/api/dashboard/crm-links", ApiKeyOrBearer).console().limit(LINK_BODY_LIMIT)
        => |c| c.json::<LinkTarget>().ok::<DeletedOut>(200).errors(&[404, 503]);
    /// Activate or deactivate a link
    SetCrmLinkStatus = put("/api/dashboard/crm-links/status", ApiKeyOrBearer).console().limit(LINK_BODY_LIMIT)
        => |c| c.json::<StatusIn>().ok::<StatusOut>(200).errors(&[404]);
    /// Every Facebook page with its links per channel
    ListAllCrmLinks = get("/api/dashboard/crm-links/all", ApiKeyOrBearer).console()
        => |c| c.ok::<AllOut>(200);
    /// Fetch a link now
    ///
    /// 409 when the link is inactive everywhere or is not fetched (webhook, database).
    RefreshCrmLink = post("/api/dashboard/crm-links/refresh", ApiKeyOrBearer).console().limit(LINK_BODY_LIMIT)
        => |c| c.json::<LinkTarget>().ok::<RefreshOut>(202).errors(&[404, 409]);
    /// Search a page's links for the bot
    ///
    /// The best pieces of the page's links active on the channel. 503 when the embedder is
    /// unavailable.
    SearchCrmLinks = get("/api/dashboard/rag/search", ApiKeyOrBearer).console()
        => |c| c.query::<SearchParameters>().ok::<SearchOut>(200).errors(&[404, 503]);
    /// Search a page's links for the bot (JSON body)
    SearchCrmLinksPost = post("/api/dashboard/rag/search", ApiKeyOrBearer).console()
        => |c| c
            .json::<SearchIn>()
            .example(json!({ "page_id": "123456789", "channel": "messenger", "q": "what plan is John Doe on" }))
            .ok::<SearchOut>(200)
            .errors(&[404, 503]);
    /// What is indexed for a page
    GetCrmLinkDetails = get("/api/dashboard/rag/documents/details", ApiKeyOrBearer).console()
        => |c| c.query::<DetailsParameters>().ok::<DetailsOut>(200).errors(&[404]);
    /// A CRM pushes a webhook link's data
    ///
    /// Signed as Standard Webhooks sign: webhook-id, webhook-timestamp (within 5 minutes) and
    /// webhook-signature `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with the link's
    /// webhook_secret. The body replaces the link's data (JSON, CSV or text, at most 4 MiB).
    PushCrmLinkData = post("/webhooks/crm-links/{link_id}", Signed(Signature::StandardWebhooks))
        .limit(crate::links::fetch::MAX_PAGE_BYTES)
        => |c| c
            .tag("receivers")
            .header("webhook-id", "The push's id", false)
            .header("webhook-timestamp", "Unix seconds", false)
            .raw_literal("application/json", json!({}))
            .raw_literal("text/csv", json!({ "type": "string" }))
            .raw_literal("text/plain", json!({ "type": "string" }))
            .ok::<PushedOut>(202)
            .errors(&[400, 401, 409, 413]);
}

/// A channel a link answers on.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "describes a field for the contract")]
enum LinkChannelName {
    Facebook,
    Messenger,
    Instagram,
    Whatsapp,
}

/// The parameters naming a page and, optionally, one channel.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct PageParameters {
    /// A Facebook page id (digits).
    #[schemars(regex(pattern = r"^[0-9]{1,32}$"))]
    page_id: String,
    /// One channel.
    channel: Option<LinkChannelName>,
}

/// A new link: one URL of one page, on one or more channels.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct NewLinkIn {
    page_id: StringOrInteger,
    #[schemars(length(min = 1))]
    channels: Option<Vec<LinkChannelName>>,
    channel: Option<LinkChannelName>,
    #[schemars(length(min = 1, max = 100))]
    name: String,
    url: String,
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["api", "file", "webhook", "database"]))]
    link_type: Option<String>,
    #[schemars(length(max = 4096))]
    api_key: Option<String>,
    #[schemars(extend("maxProperties" = crate::links::link::MAX_HEADERS))]
    headers: Option<std::collections::BTreeMap<String, String>>,
    #[schemars(length(max = 500))]
    description: Option<String>,
    is_active: bool,
    #[schemars(range(min = 5, max = crate::links::link::MAX_FETCH_INTERVAL_MINUTES))]
    fetch_interval_minutes: Option<u32>,
    /// Whose data the link is; general knowledge when absent.
    holds: Option<HoldsIn>,
}

/// Whose data a link is: general knowledge, the same for every customer (plans, products,
/// policies), or one record per customer, tied to the customer by the record's `field` (a path
/// inside the record, `email` or `contact.email`) holding the customer's `key`. The bot answers a
/// customer from general knowledge and their own records only; a record without a readable key is
/// not indexed.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(
    deny_unknown_fields,
    extend("if" = { "properties": { "type": { "const": "customers" } } }, "then" = { "required": ["field", "key"] })
)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct HoldsIn {
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["general", "customers"]))]
    kind: String,
    /// customers: the path inside a record of the customer's key.
    #[schemars(length(min = 1, max = 200))]
    field: Option<String>,
    /// customers: what kind of key the field holds.
    #[schemars(extend("enum" = ["email", "phone", "external_id", "page_scoped_id"]))]
    key: Option<String>,
}

/// A change to one of a page's links: what is left out stays.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct LinkChangeIn {
    page_id: StringOrInteger,
    /// The link's id, as its view shows it.
    id: SourceId,
    #[schemars(length(min = 1, max = 100))]
    name: Option<String>,
    /// Every channel the link is to be on.
    #[schemars(length(min = 1))]
    channels: Option<Vec<LinkChannelName>>,
    url: Option<String>,
    /// The new key; *** keeps it, empty or null removes it.
    #[schemars(length(max = 4096))]
    api_key: Option<String>,
    /// Every header; a value of *** keeps that header's stored value.
    #[schemars(extend("maxProperties" = crate::links::link::MAX_HEADERS))]
    headers: Option<std::collections::BTreeMap<String, String>>,
    #[schemars(length(max = 500))]
    description: Option<String>,
    #[schemars(range(min = 5, max = crate::links::link::MAX_FETCH_INTERVAL_MINUTES))]
    fetch_interval_minutes: Option<u32>,
    /// Whose data the link is (it cannot be unsaid).
    holds: Option<HoldsIn>,
}

/// The data to read the first page of: a link not added yet, or one of the page's by its id.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct PreviewIn {
    page_id: StringOrInteger,
    /// One of the page's links: its stored URL and credentials are used.
    id: Option<SourceId>,
    /// A link not added yet (with type, api_key and headers as a new link takes them).
    url: Option<String>,
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["api", "file"]))]
    link_type: Option<String>,
    #[schemars(length(max = 4096))]
    api_key: Option<String>,
    #[schemars(extend("maxProperties" = crate::links::link::MAX_HEADERS))]
    headers: Option<std::collections::BTreeMap<String, String>>,
}

/// A link of a page, by its id (or its URL as it was added), on the channels given (all of its
/// channels when none are).
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct LinkTarget {
    /// The Facebook page id (digits).
    page_id: StringOrInteger,
    /// The link's id, as its view shows it. Give the id or the url, not both.
    id: Option<SourceId>,
    /// The link's URL exactly as it was added, credentials included (a view's masked URL names
    /// no link): kept for older callers; the id is the way to name a link.
    #[schemars(length(min = 1))]
    url: Option<String>,
    channels: Option<Vec<LinkChannelName>>,
    channel: Option<LinkChannelName>,
}

/// A link target and the state to put it in.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct StatusIn {
    page_id: StringOrInteger,
    /// The link's id, as its view shows it. Give the id or the url, not both.
    id: Option<SourceId>,
    /// The link's URL exactly as it was added, credentials included: kept for older callers;
    /// the id is the way to name a link.
    #[schemars(length(min = 1))]
    url: Option<String>,
    channels: Option<Vec<LinkChannelName>>,
    channel: Option<LinkChannelName>,
    is_active: bool,
}

/// One link on one channel, as the dashboard shows it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "CrmLink"))]
pub struct CrmLinkView {
    pub id: SourceId,
    pub page_id: String,
    #[cfg_attr(feature = "openapi", schemars(with = "LinkChannelName"))]
    pub channel: &'static str,
    #[serde(flatten)]
    pub settings: LinkView,
    pub status: LinkStatus,
    /// Webhook links: where the CRM pushes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Webhook links, in the answer to the POST only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// RFC 3339 time.
    pub created_at: String,
    /// RFC 3339 time.
    pub updated_at: String,
}

/// How a link's fetches went.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LinkStatus {
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["pending", "ok", "failing", "not_fetched"])))]
    pub state: &'static str,
    pub last_fetched_at: Option<String>,
    pub last_http_status: Option<u16>,
    pub last_error: Option<String>,
    pub records: i64,
    pub next_fetch_at: Option<String>,
    /// Pieces the last complete fetch indexed: what search finds.
    pub chunks: i64,
    /// Pieces the last complete fetch embedded: new or changed ones only.
    pub last_embedded: i64,
    /// Pieces the last complete fetch removed: changed or gone from the data.
    pub last_removed: i64,
    /// Records of a link that holds customers' records that the last complete fetch left out for
    /// having no readable key in the link's field: no customer's, so never searched (0 for a
    /// general link).
    pub records_without_key: i64,
    /// A link whose holds is unstated: whether its data was seen to name customers (it is
    /// searched by the bot only as general knowledge once a fetch saw it name none). Absent when
    /// holds is said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holds_check: Option<crate::links::identifiers::HoldsCheckView>,
    /// Present while a fetch reads the link's data, page by page, in slices; search keeps
    /// answering from the previous data until it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexing: Option<Indexing>,
    /// The link's fetches from its CRM in the last 24 hours as the production checklist's KPIs,
    /// with its targets (a webhook link's pushes are not fetches: none).
    pub health: crate::crm::health::Health,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Indexing {
    pub started_at: String,
    pub records_seen: i64,
    /// Records of a customers link this fetch has left out so far for having no readable key.
    pub records_without_key: i64,
    pub pieces_seen: i64,
    pub pieces_embedded: i64,
    pub pages_read: Option<usize>,
    /// Records of the last complete fetch.
    pub records_before: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LinksOut {
    pub crm_links: Vec<CrmLinkView>,
    pub page_id: String,
    #[cfg_attr(feature = "openapi", schemars(with = "Option<LinkChannelName>"))]
    pub channel: Option<&'static str>,
    pub total: usize,
    pub active_count: usize,
    pub inactive_count: usize,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AddedOut {
    pub message: &'static str,
    pub crm_link: CrmLinkView,
    #[cfg_attr(feature = "openapi", schemars(with = "Vec<LinkChannelName>"))]
    pub channels: Vec<&'static str>,
    pub page_id: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UpdatedOut {
    pub message: &'static str,
    /// The link on each of its channels, as it is now.
    pub crm_links: Vec<CrmLinkView>,
    /// The settings that changed, by name (never their values).
    pub changed: Vec<&'static str>,
    /// Whether its data is being fetched again (a new URL, key, headers or holds).
    pub fetching: bool,
}

/// What the first page of a link's data holds: its fields, never their values.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PreviewOut {
    /// The records (items of a list) the page holds.
    pub records: usize,
    /// The fields of its records, most common first.
    pub fields: Vec<crate::links::identifiers::Field>,
    /// The holds a link of this data should say: customers by the field that holds a customer's
    /// key, or general when no record names a customer.
    pub proposed: crate::bot::subject::HoldsView,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct StatusOut {
    pub message: &'static str,
    pub updated_count: usize,
    pub url: String,
    #[cfg_attr(feature = "openapi", schemars(with = "Vec<LinkChannelName>"))]
    pub channels: Vec<&'static str>,
    pub is_active: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DeletedOut {
    pub message: &'static str,
    pub deleted_count: usize,
    pub url: String,
    #[cfg_attr(feature = "openapi", schemars(with = "Vec<LinkChannelName>"))]
    pub channels: Vec<&'static str>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RefreshOut {
    pub message: &'static str,
    pub url: String,
}

/// Every Facebook page of the business with its links by channel.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AllOut {
    pub company_id: BusinessId,
    pub company_name: String,
    pub total_pages: usize,
    pub pages_data: Vec<PageLinks>,
    pub total_crm_links: usize,
    pub total_active: usize,
    pub total_inactive: usize,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PageLinks {
    pub page_id: String,
    pub page_name: Option<String>,
    pub facebook_crm_links: Vec<CrmLinkView>,
    pub messenger_crm_links: Vec<CrmLinkView>,
    pub instagram_crm_links: Vec<CrmLinkView>,
    pub whatsapp_crm_links: Vec<CrmLinkView>,
    /// Always empty: the guide's links from before channels.
    #[cfg_attr(feature = "openapi", schemars(length(max = 0)))]
    pub legacy_crm_links: Vec<CrmLinkView>,
    pub total_active: usize,
    pub total_inactive: usize,
}

/// The parameters of a search.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct SearchParameters {
    /// A Facebook page id.
    #[schemars(regex(pattern = r"^[0-9]{1,32}$"))]
    page_id: String,
    /// One channel.
    channel: LinkChannelName,
    /// The question.
    #[schemars(length(min = 1, max = 1000), example = &"what plan is John Doe on")]
    q: String,
    /// 1 to 20, default 5.
    #[schemars(range(min = 1, max = 20))]
    top_k: Option<u32>,
    /// semantic (default), keyword or hybrid.
    #[schemars(extend("enum" = ["semantic", "keyword", "hybrid"]))]
    mode: Option<String>,
}

/// A search as a JSON body.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct SearchIn {
    page_id: StringOrInteger,
    channel: LinkChannelName,
    #[schemars(length(min = 1, max = 1000))]
    q: String,
    top_k: Option<StringOrInteger>,
    #[schemars(extend("enum" = ["semantic", "keyword", "hybrid"]))]
    mode: Option<String>,
}

/// The best pieces of the page's links active on the channel.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SearchOut {
    pub query: String,
    pub page_id: String,
    #[cfg_attr(feature = "openapi", schemars(with = "LinkChannelName"))]
    pub channel: &'static str,
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["semantic", "keyword", "hybrid"])))]
    pub mode: &'static str,
    pub embedder: &'static str,
    pub min_score: f64,
    pub count: usize,
    pub results: Vec<SearchHit>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SearchHit {
    pub score: f64,
    pub text: String,
    pub record: String,
    pub part: usize,
    pub link: Option<LinkRef>,
}

/// The link a piece came from.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LinkRef {
    pub id: SourceId,
    pub name: String,
    pub url: String,
    #[serde(rename = "type")]
    pub link_type: &'static str,
}

/// The parameters of the documents' details.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct DetailsParameters {
    /// A Facebook page id.
    #[schemars(regex(pattern = r"^[0-9]{1,32}$"))]
    page_id: String,
    /// crm (the only one).
    #[schemars(extend("enum" = ["crm"]))]
    source: Option<String>,
}

/// Per link, what was fetched and indexed, and how its last fetch went.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DetailsOut {
    pub page_id: String,
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["crm"])))]
    pub source: &'static str,
    pub embedder: &'static str,
    pub vector_store: VectorStore,
    pub documents: Vec<DocumentOut>,
    pub total_documents: usize,
    pub total_chunks: i64,
    pub total_embeddings: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct VectorStore {
    pub store: &'static str,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DocumentOut {
    pub link: LinkRef,
    pub channels: Vec<&'static str>,
    pub active_channels: Vec<&'static str>,
    pub state: &'static str,
    pub last_fetched_at: Option<String>,
    pub last_http_status: Option<u16>,
    pub last_error: Option<String>,
    pub next_fetch_at: Option<String>,
    pub records: i64,
    /// Records of a customers link left out for having no readable key (see the link's status).
    pub records_without_key: i64,
    pub chunks: i64,
    pub embeddings: i64,
    pub embedder: &'static str,
    pub chunk_samples: Vec<ChunkSample>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ChunkSample {
    pub record: String,
    pub part: usize,
    pub text: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PushedOut {
    pub message: &'static str,
    pub link_id: SourceId,
}
