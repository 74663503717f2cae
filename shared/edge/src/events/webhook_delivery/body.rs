//! An event's body: the seed's envelope around the record as its change left it (each in the
//! shape the API gives it), with a message event's files and their download links, signed to
//! work for a week, and what the change itself knew; written as `JSON.stringify` writes it. The
//! bodies of a chunk of events are built together, and one that cannot be built holds up none.

use crate::db;
use crate::db::webhook_events::{StoredEvent, table_of};
use domain::error::ApiError;
use domain::ids::{AttachmentId, EventId, MessageId};
use domain::media::MediaLinks;
use domain::message::Attachment;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhook_signing::to_js_json;
use domain::webhooks::{self, EventType};
use serde::Serialize;
use serde_json::{Map, Value};

/// Download links in events work this long: a receiver that is down for days can still fetch.
pub const LINK_LIFETIME_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    event: &'a str,
    timestamp: String,
    business_id: &'a str,
    data: Value,
}

/// The body of an event: the seed's envelope (`event`, `timestamp`, `business_id`, `data`)
/// and the event's `id`, as `JSON.stringify` writes it.
pub fn body(
    tenant: &Tenant,
    event_id: &EventId,
    kind: EventType,
    at: Timestamp,
    data: Value,
) -> Result<String, ApiError> {
    let envelope = Envelope {
        id: event_id.as_str(),
        event: kind.as_str(),
        timestamp: at.to_rfc3339(),
        business_id: tenant.business_id.as_str(),
        data,
    };
    let value = serde_json::to_value(&envelope).map_err(|e| ApiError::internal("serialising event", e))?;
    Ok(to_js_json(&value))
}

/// The bodies of a chunk of events: those built, and those that cannot be built (an unknown
/// type, a corrupt snapshot), each with the reason. One of the latter never holds up the rest.
#[derive(Default)]
pub struct Payloads {
    pub built: Vec<(EventId, String)>,
    pub unbuildable: Vec<(EventId, String)>,
}

/// Builds the body of each event that has none yet from its snapshot (the record as its change
/// left it), adding the attachments of message events (`files`: read with the events, in the
/// same round trip; `message.received` is held back until the files received with it are
/// fetched, so they are settled unless the sweep sent the event first, and then they show
/// `pending`) and what the change itself knew (`previous_status`, say). `links` signs the
/// attachments' download links, which work for [`LINK_LIFETIME_SECONDS`] from the event: a body
/// is the same bytes whoever builds it and when (the dispatch, or the claim of a delivery whose
/// dispatch died before keeping it), so the body kept is the body sent.
pub fn payloads(
    tenant: &Tenant,
    events: &[StoredEvent],
    files: &[Attachment],
    links: Option<&MediaLinks>,
) -> Payloads {
    let mut payloads = Payloads::default();
    for event in events.iter().filter(|event| event.payload.is_none()) {
        let Some(kind) = EventType::parse(&event.kind) else {
            payloads
                .unbuildable
                .push((event.id.clone(), format!("unknown event type {:?}", event.kind)));
            continue;
        };
        match event_body(tenant, event, kind, files, links) {
            Ok(body) => payloads.built.push((event.id.clone(), body)),
            Err(error) => payloads.unbuildable.push((
                event.id.clone(),
                format!(
                    "the event's body could not be built: {}",
                    error.detail().unwrap_or(&error.body.message)
                ),
            )),
        }
    }
    payloads
}

/// One event's body: its snapshot, its attachments (message events) and its detail, and a
/// message event's fields at the top of `data` as the core guide's receiver reads them.
fn event_body(
    tenant: &Tenant,
    event: &StoredEvent,
    kind: EventType,
    files: &[Attachment],
    links: Option<&MediaLinks>,
) -> Result<String, ApiError> {
    let at = Timestamp::from_micros(event.created_us);
    let mut data = snapshot_data(event)?;
    if table_of(kind) == "messages" {
        let linked: Vec<Value> = files
            .iter()
            .filter(|file| file.message_id.as_ref().map(MessageId::as_str) == Some(event.subject_id.as_str()))
            .map(|file| {
                let mut file = file.clone();
                file.download_url = signed_link(tenant, event.base_url.as_deref(), links, &file.id, at);
                // The guide's payload names the file's link `url` as well as `download_url`; both
                // are the signed link, which works without an API key until it expires.
                let mut shown = to_value(&file)?;
                if let (Value::Object(fields), Some(link)) = (&mut shown, &file.download_url) {
                    fields.insert("url".to_owned(), Value::String(link.clone()));
                }
                Ok::<_, ApiError>(shown)
            })
            .collect::<Result<_, _>>()?;
        data.insert("attachments".to_owned(), Value::Array(linked));
    }
    if let Some(Value::Object(detail)) = event.detail.as_deref().and_then(|d| serde_json::from_str(d).ok()) {
        data.extend(detail);
    }
    if table_of(kind) == "messages" {
        webhooks::with_flat_message_fields(&mut data);
    }
    body(tenant, &event.id, kind, at, Value::Object(data))
}

/// The event's snapshot with each record in the shape the API gives it.
fn snapshot_data(event: &StoredEvent) -> Result<Map<String, Value>, ApiError> {
    let gone = || ApiError::internal("building event", format!("event {} has no snapshot", event.id));
    let Some(Value::Object(snapshot)) = event
        .snapshot
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
    else {
        return Err(gone());
    };
    let mut data = Map::new();
    for (name, raw) in snapshot {
        let value = match (name.as_str(), raw) {
            (_, Value::Null) => Value::Null,
            ("customer", raw) => to_value(&db::customers::from_snapshot(raw)?)?,
            ("message", raw) => to_value(&db::messages::from_snapshot(raw)?)?,
            ("conversation", raw) => to_value(&db::conversations::from_snapshot(raw)?)?,
            ("alert", raw) => to_value(&db::alerts::from_snapshot(raw)?)?,
            (_, raw) => raw,
        };
        data.insert(name, value);
    }
    Ok(data)
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal("serialising event data", e))
}

/// A download link for the attachment, signed to work for [`LINK_LIFETIME_SECONDS`] from `now`;
/// None without an origin or a signer (no `MEDIA_LINK_SECRET`).
pub fn signed_link(
    tenant: &Tenant,
    base_url: Option<&str>,
    links: Option<&MediaLinks>,
    attachment_id: &AttachmentId,
    now: Timestamp,
) -> Option<String> {
    let expires = now.seconds() + LINK_LIFETIME_SECONDS;
    Some(links?.link(base_url?, &tenant.business_id, attachment_id, expires))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{URL, first_round_trip};
    use super::*;
    use crate::runtime;
    use crate::testing::{Fixture, media_links};
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn a_body_is_written_as_json_stringify_writes_it() {
        let fixture = Fixture::new();
        let tenant = fixture.run(fixture.business("Acme"));
        let event_id =
            EventId::parse("0b5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f").unwrap_or_else(|| panic!("an id"));
        let data = json!({
            "amount": 1.0,
            "big": 1e21,
            "small": 0.000001,
            "name": "Zoë \"Z\" </script>\u{2028}\n",
            "10": "an index key",
            "2": "comes first",
        });
        let body = body(
            &tenant,
            &event_id,
            EventType::CustomerCreated,
            Timestamp::from_millis(1_795_694_400_000),
            data,
        )
        .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(
            body,
            format!(
                "{{\"business_id\":\"{}\",\"data\":{{\"2\":\"comes first\",\"10\":\"an index key\",\"amount\":1,\"big\":1e+21,\
                 \"name\":\"Zoë \\\"Z\\\" </script>\u{2028}\\n\",\"small\":0.000001}},\"event\":\"customer.created\",\
                 \"id\":\"0b5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f\",\"timestamp\":\"2026-11-26T12:00:00.000Z\"}}",
                tenant.business_id
            )
        );
    }

    #[test]
    fn a_download_link_is_signed_for_a_week_and_made_only_with_an_origin_and_a_secret() {
        let fixture = Fixture::new();
        let tenant = fixture.run(fixture.business("Acme"));
        let id = AttachmentId::generate([3; 16]);
        let now = runtime::now();
        let link = signed_link(
            &tenant,
            Some("https://api.example/"),
            Some(&media_links()),
            &id,
            now,
        )
        .unwrap_or_else(|| panic!("a link"));
        assert!(
            link.starts_with("https://api.example/api/download-media?"),
            "{link}"
        );
        let expires = (now.seconds() + 7 * 24 * 3600).to_string();
        assert!(link.contains(&format!("expires={expires}")), "{link}");
        assert!(
            link.contains(id.as_str()) && link.contains("signature="),
            "{link}"
        );
        assert_eq!(signed_link(&tenant, None, Some(&media_links()), &id, now), None);
        assert_eq!(
            signed_link(&tenant, Some("https://api.example"), None, &id, now),
            None
        );
    }

    /// Acme, with an endpoint for `message.received`, and an email with an invoice received on
    /// its mail account as `provider_message_id`.
    async fn invoice_received(fixture: &Fixture, provider_message_id: &str) -> Tenant {
        let tenant = fixture.business("Acme").await;
        fixture
            .webhook_endpoint(&tenant, URL, &[EventType::MessageReceived])
            .await;
        let mail = fixture
            .channel_account(
                &tenant,
                domain::channel::Channel::Email,
                domain::providers::Provider::Mailgun,
                "support@acme.example",
                json!({ "api_key": "k" }),
            )
            .await;
        let message = domain::inbound::InboundMessage {
            provider_message_id: provider_message_id.to_owned(),
            from: "ada@example.com".to_owned(),
            sender_name: None,
            content: "Invoice attached".to_owned(),
            media: vec![domain::inbound::InboundMedia::Inline {
                filename: "invoice.pdf".to_owned(),
                mime_type: "application/pdf".to_owned(),
                bytes: b"%PDF".to_vec(),
            }],
        };
        fixture.ingest_one(&mail, message).await;
        tenant
    }

    #[test]
    fn a_message_events_body_is_the_same_bytes_whoever_builds_it_and_when() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = invoice_received(&fixture, "<m2@mail>").await;
            let recorded = fixture.stack.now_ms() / 1000;
            let ids = fixture.event_ids();
            let links = media_links();
            let secret = Some(&links);
            fixture.stack.advance(Duration::from_secs(90));
            // The dispatch builds the body, then dies before keeping it.
            let lost = first_round_trip(&fixture, &tenant, &ids, secret).await;
            let first = lost.due[0].0.payload.clone().unwrap_or_default();
            // An hour later the sweep dispatches it again, and the body is built again.
            fixture.stack.advance(Duration::from_secs(3600));
            let again = first_round_trip(&fixture, &tenant, &ids, secret).await;
            assert_eq!(
                again.due[0].0.payload.as_deref(),
                Some(first.as_str()),
                "the same bytes"
            );
            let expires = (recorded + 7 * 24 * 3600).to_string();
            assert!(
                first.contains(&format!("expires={expires}")),
                "the link works for a week from the event: {first}"
            );
        });
    }

    #[test]
    fn a_message_event_carries_its_files_with_links_signed_to_download_them() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = invoice_received(&fixture, "<m1@mail>").await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            assert_eq!(due.len(), 1, "message.received only");
            let body: Value = serde_json::from_str(due[0].0.payload.as_deref().unwrap_or_default())
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(body["event"], "message.received");
            assert_eq!(body["data"]["message"]["content"], "Invoice attached");
            let files = body["data"]["attachments"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(files.len(), 1, "{body}");
            assert_eq!(
                (files[0]["filename"].as_str(), files[0]["size"].as_i64()),
                (Some("invoice.pdf"), Some(4))
            );
            let link = files[0]["download_url"].as_str().unwrap_or_default();
            assert!(
                link.starts_with("https://api.example/api/download-media?") && link.contains("signature="),
                "{link}"
            );
            assert_eq!(files[0]["url"], files[0]["download_url"]);
        });
    }
}
