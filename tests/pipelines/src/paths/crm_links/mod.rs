//! CRM links through the dashboard API as the guide calls it (`Authorization: Bearer <API key>`),
//! natively: what tests/e2e/links/*.test.mjs assert, one test here per test there (the file and
//! test each ports are named in its doc line), and what they share (links.mjs and guide.mjs):
//! a business with Facebook pages, the guide's three example bodies (with the `holds` their
//! customers' records need), which work because the scripted CRM answers at the guide's own hosts, search and the documents view, and Standard
//! Webhooks signing for pushed data, computed here with HMAC rather than with the code under test.

mod api;
mod bounds;
mod channels;
mod failures;
mod fetch;
mod holds;
mod input;
mod isolation;
mod webhook;

use crate::app::{Answer, App, Business};
use crate::partners::crm_pages::{Crm, Sizes};
use crate::partners::hmac_sha256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::cell::Cell;

pub const LINKS: &str = "/api/dashboard/crm-links";
pub const SEARCH: &str = "/api/dashboard/rag/search";
pub const DETAILS: &str = "/api/dashboard/rag/documents/details";
/// The hosts of the guide's three examples; one scripted CRM answers at all three.
pub const SHOPIFY_HOST: &str = "mystore.myshopify.com";
pub const HUBSPOT_HOST: &str = "api.hubapi.com";
pub const CUSTOM_HOST: &str = "crm.company.com";
/// The embedder's id, as search and the documents view name it.
pub const EMBEDDER_ID: &str = "local:all-minilm-l6-v2";

/// The CRM of the guide's examples, at its three hosts (the files at the custom CRM's).
pub fn guide_crm(app: &App, sizes: Sizes) -> Crm {
    let crm = Crm::install(&app.stack, CUSTOM_HOST, sizes);
    crm.serve_at(&app.stack, SHOPIFY_HOST);
    crm.serve_at(&app.stack, HUBSPOT_HOST);
    crm
}

/// Example 1 of the guide: Shopify customer data, on `page`, saying whose records they are (the
/// guide's body as written is refused: its records name customers; `api::the_guides_customer_links_as_written_are_refused_naming_holds_and_the_field_found`).
pub fn shopify_example(page: &str) -> Value {
    json!({
        "page_id": page,
        "channels": ["messenger"],
        "name": "Shopify Customers",
        "url": format!("https://{SHOPIFY_HOST}/admin/api/2024-01/customers.json"),
        "type": "api",
        "api_key": "shppa_1234567890",
        "headers": { "X-Shopify-Access-Token": "shppa_1234567890" },
        "description": "Shopify customer database",
        "is_active": true,
        "holds": { "type": "customers", "field": "email", "key": "email" }
    })
}

/// Example 2: HubSpot contacts.
pub fn hubspot_example(page: &str) -> Value {
    json!({
        "page_id": page,
        "channels": ["facebook", "messenger"],
        "name": "HubSpot Contacts",
        "url": format!("https://{HUBSPOT_HOST}/crm/v3/objects/contacts"),
        "type": "api",
        "api_key": "pat-na1-1234567890",
        "headers": { "Content-Type": "application/json" },
        "description": "HubSpot CRM contacts",
        "is_active": true,
        "holds": { "type": "customers", "field": "properties.email", "key": "email" }
    })
}

/// Example 3: a custom CRM.
pub fn custom_example(page: &str) -> Value {
    json!({
        "page_id": page,
        "channels": ["facebook"],
        "name": "Internal CRM",
        "url": format!("https://{CUSTOM_HOST}/api/customers"),
        "type": "api",
        "headers": { "X-API-Key": "internal-key-123", "X-Client-ID": "facebook-bot" },
        "description": "Company internal CRM",
        "is_active": true,
        "holds": { "type": "customers", "field": "email", "key": "email" }
    })
}

/// `body` with some fields replaced.
pub fn with(mut body: Value, changes: Value) -> Value {
    if let (Some(body), Value::Object(changes)) = (body.as_object_mut(), changes) {
        body.extend(changes);
    }
    body
}

/// The guide's "Processed Text Format" for its John Doe, at record `index`.
pub fn guide_john_doe(index: usize) -> String {
    [
        format!("customers[{index}].id: cust-123"),
        format!("customers[{index}].name: John Doe"),
        format!("customers[{index}].email: john@example.com"),
        format!("customers[{index}].subscription: Premium"),
        format!("customers[{index}].support_level: Gold"),
    ]
    .join("\n")
}

thread_local! {
    static PAGES: Cell<u64> = const { Cell::new(0) };
}

/// A Facebook page id as Meta writes them (15 digits), a new one each call.
pub fn page_address() -> String {
    let n = PAGES.with(|pages| {
        pages.set(pages.get() + 1);
        pages.get()
    });
    format!("{}", 104_729_000_000_000 + n * 7_919)
}

/// Adds a Facebook page (a channel account) to the business; its page id.
pub async fn add_page(app: &App, business: &Business) -> String {
    let address = page_address();
    app.admin(
        Method::Post,
        &format!("/admin/businesses/{}/channel-accounts", business.id),
        Some(json!({
            "channel": "facebook",
            "provider": "meta",
            "address": address,
            "secrets": { "app_secret": "a", "verify_token": "v", "access_token": "t" }
        })),
    )
    .await
    .expect(201);
    address
}

/// A query string, each value percent-encoded.
pub fn query(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A business's dashboard calls, with its key as the guide sends it.
pub struct Dashboard<'a> {
    pub app: &'a App,
    pub key: String,
}

impl<'a> Dashboard<'a> {
    pub fn new(app: &'a App, business: &Business) -> Self {
        Self {
            app,
            key: business.key.clone(),
        }
    }

    /// A call with `Authorization: Bearer <key>`.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let bearer = format!("Bearer {}", self.key);
        self.app
            .json(method, path, &[("authorization", &bearer)], body)
            .await
    }

    /// Adds a link; asserts the 201 and returns the answer's body.
    pub async fn add(&self, body: Value) -> Value {
        self.call(Method::Post, LINKS, Some(body))
            .await
            .expect(201)
            .json()
    }

    /// The page's links (of one channel), as GET lists them.
    pub async fn list(&self, page: &str, channel: Option<&str>) -> Value {
        let mut params = vec![("page_id", page)];
        params.extend(channel.map(|channel| ("channel", channel)));
        self.call(Method::Get, &format!("{LINKS}?{}", query(&params)), None)
            .await
            .expect(200)
            .json()
    }

    /// The entry of `url` on `page` for `channel`.
    pub async fn entry(&self, page: &str, url: &str, channel: &str) -> Option<Value> {
        self.list(page, Some(channel)).await["crm_links"]
            .as_array()
            .and_then(|links| links.iter().find(|link| link["url"] == url).cloned())
    }

    /// The status of the entry of `url` on `page` for `channel` (which must exist).
    pub async fn status(&self, page: &str, url: &str, channel: &str) -> Value {
        self.entry(page, url, channel)
            .await
            .unwrap_or_else(|| panic!("{url} is not listed on {channel}"))["status"]
            .clone()
    }

    /// Searches; asserts the 200 and returns the body.
    pub async fn search(&self, params: &[(&str, &str)]) -> Value {
        self.call(Method::Get, &format!("{SEARCH}?{}", query(params)), None)
            .await
            .expect(200)
            .json()
    }

    /// The results of a search that came from the link `link_id`.
    pub async fn results_of(&self, params: &[(&str, &str)], link_id: &Value) -> Vec<Value> {
        self.search(params).await["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|result| result["link"]["id"] == *link_id)
            .collect()
    }

    /// The results, of up to 20 by keyword and 20 by meaning for `q`, whose text holds `text`.
    pub async fn texts_containing(&self, page: &str, channel: &str, text: &str, q: &str) -> Vec<Value> {
        let mut found = Vec::new();
        for mode in ["keyword", "semantic"] {
            let answer = self
                .search(&[
                    ("page_id", page),
                    ("channel", channel),
                    ("q", q),
                    ("top_k", "20"),
                    ("mode", mode),
                ])
                .await;
            found.extend(
                answer["results"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|result| result["text"].as_str().is_some_and(|found| found.contains(text))),
            );
        }
        found
    }

    /// Whether a search on `channel` (by keyword and by meaning, 20 results) finds anything of
    /// `url`.
    pub async fn finds_anything_of(&self, page: &str, channel: &str, url: &str, q: &str) -> bool {
        for mode in ["keyword", "semantic"] {
            let answer = self
                .search(&[
                    ("page_id", page),
                    ("channel", channel),
                    ("q", q),
                    ("top_k", "20"),
                    ("mode", mode),
                ])
                .await;
            if answer["results"]
                .as_array()
                .is_some_and(|results| results.iter().any(|result| result["link"]["url"] == url))
            {
                return true;
            }
        }
        false
    }

    /// The page's CRM documents.
    pub async fn documents(&self, page: &str) -> Value {
        self.call(
            Method::Get,
            &format!("{DETAILS}?{}", query(&[("page_id", page), ("source", "crm")])),
            None,
        )
        .await
        .expect(200)
        .json()
    }

    /// The document of the link `link_id`.
    pub async fn document_of(&self, page: &str, link_id: &Value) -> Option<Value> {
        self.documents(page).await["documents"]
            .as_array()
            .and_then(|documents| {
                documents
                    .iter()
                    .find(|document| document["link"]["id"] == *link_id)
                    .cloned()
            })
    }

    /// Asks for a fetch now; asserts the 202.
    pub async fn refresh(&self, page: &str, url: &str) -> Value {
        self.call(
            Method::Post,
            &format!("{LINKS}/refresh"),
            Some(json!({ "page_id": page, "url": url })),
        )
        .await
        .expect(202)
        .json()
    }

    /// Switches the link on or off on `channels` (every channel when None); asserts the 200.
    pub async fn set_active(&self, page: &str, url: &str, active: bool, channels: Option<&[&str]>) -> Value {
        let mut body = json!({ "page_id": page, "url": url, "is_active": active });
        if let Some(channels) = channels {
            body["channels"] = json!(channels);
        }
        self.call(Method::Put, &format!("{LINKS}/status"), Some(body))
            .await
            .expect(200)
            .json()
    }
}

/// Standard Webhooks' headers for `body` (the exact bytes sent): `webhook-id`,
/// `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>` over
/// `{id}.{timestamp}.{body}`, keyed with the base64-decoded part of the secret after `whsec_`.
pub fn standard_webhook_headers(secret: &str, body: &str, id: &str, timestamp: i64) -> Vec<(String, String)> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .unwrap_or_else(|| panic!("not a Standard Webhooks secret: {secret}"));
    let signature = STANDARD.encode(hmac_sha256(&key, format!("{id}.{timestamp}.{body}").as_bytes()));
    vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        ("webhook-signature".to_owned(), format!("v1,{signature}")),
    ]
}

/// Pushes `body` to a link's `webhook_url` (at the deployment, with the URL's path) with
/// `headers`.
pub async fn push(
    app: &App,
    webhook_url: &str,
    body: &str,
    content_type: &str,
    headers: &[(String, String)],
) -> Answer {
    let path = webhook_url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
        .unwrap_or(webhook_url);
    let mut all: Vec<(&str, &str)> = vec![("content-type", content_type)];
    all.extend(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    app.request(Method::Post, path, &all, body.as_bytes().to_vec())
        .await
}

/// The stack's clock in Unix seconds.
pub fn now_seconds(app: &App) -> i64 {
    app.stack.now_ms() / 1000
}

/// The strings of a JSON list, sorted.
pub fn sorted(value: &Value) -> Vec<String> {
    let mut list: Vec<String> = value
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    list.sort();
    list
}

/// A field of every item of a JSON list, sorted.
pub fn sorted_field(list: &Value, field: &str) -> Vec<String> {
    let mut values: Vec<String> = list
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|item| item[field].as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    values.sort();
    values
}
