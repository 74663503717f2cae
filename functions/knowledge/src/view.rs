//! How a link is shown: the guide's link object for one channel, credentials masked, with its
//! fetch status, and a webhook link's URL.

use domain::api::links::{CrmLinkView, Indexing, LinkRef, LinkStatus};
use domain::bot::subject::Holds;
use domain::crm::health::{Health, WINDOW_HOURS, Window};
use domain::links::link::{LinkChannel, redact_url};
use edge::db::knowledge_links::Entry;
use edge::db::knowledge_sources::Source;

/// Where a webhook link's CRM pushes its data.
pub fn webhook_url(origin: &str, source: &Source) -> String {
    format!("{origin}/webhooks/crm-links/{}", source.id)
}

/// One entry: `source` on `channel`. `channels` are every channel of the page with this URL. Its
/// status says how many pieces its last complete fetch indexed (`chunks`), while a fetch reads
/// its data how far it got (`indexing`), and its fetches' KPIs from `calls` (`health`).
pub fn entry(
    source: &Source,
    channel: LinkChannel,
    is_active: bool,
    channels: &[LinkChannel],
    calls: Option<&Window>,
    origin: &str,
) -> CrmLinkView {
    let mut settings = source.link.view(channels);
    settings.is_active = is_active;
    let status = &source.status;
    CrmLinkView {
        id: source.id.clone(),
        page_id: source.page_id.as_str().to_owned(),
        channel: channel.as_str(),
        settings,
        status: LinkStatus {
            state: status.state.as_str(),
            last_fetched_at: status.last_fetched_at.clone(),
            last_http_status: status.last_http_status,
            last_error: status.last_error.clone(),
            records: status.records,
            next_fetch_at: status.next_fetch_at.clone(),
            chunks: status.pieces,
            last_embedded: status.last_embedded,
            last_removed: status.last_removed,
            records_without_key: status.without_key,
            holds_check: (source.link.holds == Holds::Unstated).then(|| source.holds_check.view()),
            indexing: source.run.as_ref().map(|run| Indexing {
                started_at: run.started_at.clone(),
                records_seen: run.records,
                records_without_key: run.without_key,
                pieces_seen: run.pieces,
                pieces_embedded: run.embedded,
                pages_read: run.next.as_ref().map(|next| next.pages),
                records_before: status.records,
            }),
            health: Health::of(calls.unwrap_or(&Window::default()), WINDOW_HOURS),
        },
        webhook_url: source
            .webhook_secret
            .is_some()
            .then(|| webhook_url(origin, source)),
        webhook_secret: None,
        created_at: source.created_at.clone(),
        updated_at: source.updated_at.clone(),
    }
}

/// The link a search hit or a document came from.
pub fn reference(source: &Source) -> LinkRef {
    LinkRef {
        id: source.id.clone(),
        name: source.link.name.clone(),
        url: redact_url(source.link.url.as_str()),
        link_type: source.link.link_type.as_str(),
    }
}

/// The channels `entries` put `source` on.
pub fn channels_of(entries: &[Entry], source: &Source) -> Vec<LinkChannel> {
    entries
        .iter()
        .filter(|entry| entry.source_id == source.id)
        .map(|entry| entry.channel)
        .collect()
}
