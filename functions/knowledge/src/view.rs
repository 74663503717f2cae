//! How a link is shown: the guide's link object for one channel, credentials masked, with its
//! fetch status, and a webhook link's URL.

use domain::links::link::LinkChannel;
use edge::db::knowledge_links::Entry;
use edge::db::knowledge_sources::Source;
use serde_json::{Value, json};

/// Where a webhook link's CRM pushes its data.
pub fn webhook_url(origin: &str, source: &Source) -> String {
    format!("{origin}/webhooks/crm-links/{}", source.id)
}

/// One entry: `source` on `channel`. `channels` are every channel of the page with this URL. Its
/// status says how many pieces its last complete fetch indexed (`chunks`) and, while a fetch reads
/// its data, how far it got (`indexing`).
pub fn entry(
    source: &Source,
    channel: LinkChannel,
    is_active: bool,
    channels: &[LinkChannel],
    origin: &str,
) -> Value {
    let mut view = source.link.display_json(channels);
    let mut status = serde_json::to_value(&source.status).unwrap_or_else(|_| json!({}));
    if let Some(run) = &source.run {
        status["indexing"] = json!({
            "started_at": run.started_at,
            "records_seen": run.records,
            "pieces_seen": run.pieces,
            "pieces_embedded": run.embedded,
            "pages_read": run.next.as_ref().map(|next| next.pages),
            "records_before": source.status.records,
        });
    }
    view["id"] = json!(source.id);
    view["page_id"] = json!(source.page_id.as_str());
    view["channel"] = json!(channel.as_str());
    view["is_active"] = json!(is_active);
    view["status"] = status;
    if source.webhook_secret.is_some() {
        view["webhook_url"] = json!(webhook_url(origin, source));
    }
    view["created_at"] = json!(source.created_at);
    view["updated_at"] = json!(source.updated_at);
    view
}

/// The channels `entries` put `source` on.
pub fn channels_of(entries: &[Entry], source: &Source) -> Vec<LinkChannel> {
    entries
        .iter()
        .filter(|entry| entry.source_id == source.id)
        .map(|entry| entry.channel)
        .collect()
}
