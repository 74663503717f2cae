//! HubSpot's webhooks, as its app platform sends them: a JSON array of up to 100 events per
//! request, signed with the app's client secret (`X-HubSpot-Signature-v3`: base64 of HMAC-SHA256
//! over the method, the URI as HubSpot called it, the raw body and `X-HubSpot-Request-Timestamp`,
//! milliseconds, refused when more than five minutes off).

use crate::crypto::{constant_time_eq, hmac_sha256};
use base64::Engine;
use serde::Deserialize;

pub const SIGNATURE_HEADER: &str = "X-HubSpot-Signature-v3";
pub const TIMESTAMP_HEADER: &str = "X-HubSpot-Request-Timestamp";
/// HubSpot sends at most 100 events a request, each a few hundred bytes.
pub const BODY_LIMIT: usize = 256 * 1024;
/// A delivery whose timestamp is further than this from our clock is refused (a replay).
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// The URI as HubSpot signs it: the URL it called, with these escapes decoded.
fn signed_uri(uri: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = uri.to_owned();
    for (escape, character) in DECODED {
        out = out
            .replace(escape, character)
            .replace(&escape.to_ascii_lowercase(), character);
    }
    out
}

/// The v3 signature of a request (`uri`: the full URL it was sent to).
pub fn signature(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    let mac = hmac_sha256(
        secret,
        &[
            method.as_bytes(),
            signed_uri(uri).as_bytes(),
            body,
            timestamp.as_bytes(),
        ],
    );
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// Checks a delivery: its timestamp within [`MAX_SKEW_MS`] of `now_ms` and its signature made with
/// `secret`; Err says which fails.
pub fn verify(
    secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: Option<&str>,
    presented: Option<&str>,
    now_ms: i64,
) -> Result<(), String> {
    let Some(timestamp) = timestamp.map(str::trim).filter(|t| !t.is_empty()) else {
        return Err(format!("{TIMESTAMP_HEADER} is missing"));
    };
    let at: i64 = timestamp
        .parse()
        .map_err(|_| format!("{TIMESTAMP_HEADER} is not milliseconds since 1970"))?;
    if (now_ms - at).abs() > MAX_SKEW_MS {
        return Err(format!(
            "{TIMESTAMP_HEADER} is more than five minutes from now: a stale or replayed delivery"
        ));
    }
    let expected = signature(secret, method, uri, body, timestamp);
    match presented.map(str::trim) {
        Some(presented)
            if !secret.is_empty() && constant_time_eq(expected.as_bytes(), presented.as_bytes()) =>
        {
            Ok(())
        }
        Some(_) => Err(format!(
            "{SIGNATURE_HEADER} does not match this connector's client_secret"
        )),
        None => Err(format!("{SIGNATURE_HEADER} is missing")),
    }
}

/// One event of a delivery.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: u64,
    pub subscription_type: String,
    pub object_id: u64,
    /// The HubSpot account (portal) the event happened in: one app's secret signs the events of
    /// every account that installed it.
    #[serde(default)]
    pub portal_id: Option<u64>,
    #[serde(default)]
    pub property_name: Option<String>,
    #[serde(default)]
    pub property_value: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<i64>,
    /// A merge's: the record the others were merged into, the ones merged into it, and the
    /// record the merge made when it made a new one.
    #[serde(default)]
    pub primary_object_id: Option<u64>,
    #[serde(default)]
    pub merged_object_ids: Vec<u64>,
    #[serde(default)]
    pub new_object_id: Option<u64>,
}

/// What an event means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// A ticket moved to a stage (its `hs_pipeline_stage` changed).
    TicketStage { ticket: String, stage: String },
    /// A contact deleted (or erased for privacy): a customer of ours kept there is made again.
    ContactDeleted { contact: String },
    /// Contacts merged: what was kept on any of `from` is now on `into`.
    ContactsMerged { into: String, from: Vec<String> },
    /// Anything else (a contact's property, a ticket's other property): acknowledged, not acted on.
    Other,
}

impl Event {
    pub fn followed(&self) -> Followed {
        match (
            self.subscription_type.as_str(),
            self.property_name.as_deref(),
            self.property_value.as_deref(),
        ) {
            ("ticket.propertyChange", Some("hs_pipeline_stage"), Some(stage)) if !stage.is_empty() => {
                Followed::TicketStage {
                    ticket: self.object_id.to_string(),
                    stage: stage.to_owned(),
                }
            }
            ("contact.deletion" | "contact.privacyDeletion", _, _) => Followed::ContactDeleted {
                contact: self.object_id.to_string(),
            },
            ("contact.merge", _, _) => {
                // The merge may make a new record for the result; else the primary is kept.
                let into = self
                    .new_object_id
                    .or(self.primary_object_id)
                    .unwrap_or(self.object_id);
                let mut from: Vec<u64> = self
                    .merged_object_ids
                    .iter()
                    .copied()
                    .chain(self.primary_object_id)
                    .chain([self.object_id])
                    .filter(|id| *id != into)
                    .collect();
                from.sort_unstable();
                from.dedup();
                Followed::ContactsMerged {
                    into: into.to_string(),
                    from: from.iter().map(u64::to_string).collect(),
                }
            }
            _ => Followed::Other,
        }
    }
}

/// The events of a delivery: a JSON array (HubSpot never sends more than 100).
pub fn parse(body: &[u8]) -> Result<Vec<Event>, String> {
    let events: Vec<Event> = serde_json::from_slice(body)
        .map_err(|error| format!("the body is not an array of HubSpot webhook events: {error}"))?;
    if events.len() > 100 {
        return Err(format!(
            "{} events in one delivery; HubSpot sends at most 100",
            events.len()
        ));
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "https://api.crm-edge.test/api/webhooks/hubspot/abc";
    const BODY: &[u8] = br#"[{"eventId":1,"subscriptionType":"ticket.propertyChange","objectId":42,"propertyName":"hs_pipeline_stage","propertyValue":"4","portalId":62515,"occurredAt":1764000000000}]"#;

    fn signed(secret: &str, at: i64) -> String {
        // Computed here from the documented recipe, not with `signature`.
        let message = [
            b"POST".as_slice(),
            URI.as_bytes(),
            BODY,
            at.to_string().as_bytes(),
        ]
        .concat();
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), &[&message]))
    }

    #[test]
    fn a_fresh_delivery_signed_with_the_client_secret_is_taken_and_nothing_else() {
        let now = 1_764_000_000_000;
        let good = signed("secret", now - 1_000);
        let at = (now - 1_000).to_string();
        let check = |secret: &str, uri: &str, body: &[u8], at: Option<&str>, signature: Option<&str>| {
            verify(secret.as_bytes(), "POST", uri, body, at, signature, now)
        };
        assert_eq!(check("secret", URI, BODY, Some(&at), Some(&good)), Ok(()));
        let encoded_uri = URI.replace("https://", "https%3A%2F%2F");
        assert_eq!(
            check("secret", &encoded_uri, BODY, Some(&at), Some(&good)),
            Ok(()),
            "escapes HubSpot decodes"
        );
        let refusals = [
            check("other", URI, BODY, Some(&at), Some(&good)),
            check("secret", URI, b"[]", Some(&at), Some(&good)),
            check("secret", &format!("{URI}x"), BODY, Some(&at), Some(&good)),
            check("secret", URI, BODY, Some(&at), None),
            check("secret", URI, BODY, None, Some(&good)),
            check("", URI, BODY, Some(&at), Some(&good)),
        ];
        for (n, refusal) in refusals.iter().enumerate() {
            assert!(refusal.is_err(), "case {n}");
        }
        let stale = (now - MAX_SKEW_MS - 1).to_string();
        let replayed = signed("secret", now - MAX_SKEW_MS - 1);
        let said = check("secret", URI, BODY, Some(&stale), Some(&replayed))
            .err()
            .unwrap_or_default();
        assert!(said.contains("more than five minutes"), "{said}");
    }

    #[test]
    fn a_ticket_moved_to_a_stage_and_contacts_deleted_or_merged_are_followed_and_other_events_are_not() {
        let events = parse(BODY).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            events[0].followed(),
            Followed::TicketStage {
                ticket: "42".to_owned(),
                stage: "4".to_owned()
            }
        );
        let other = parse(br#"[{"eventId":2,"subscriptionType":"contact.propertyChange","objectId":7,"propertyName":"email","propertyValue":"a@b.c"}]"#)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(other[0].followed(), Followed::Other);
        let contacts = parse(
            br#"[{"eventId":3,"subscriptionType":"contact.deletion","objectId":7,"changeFlag":"DELETED"},
                 {"eventId":4,"subscriptionType":"contact.merge","objectId":9,"primaryObjectId":9,"mergedObjectIds":[7,8],"numberOfPropertiesMoved":3},
                 {"eventId":5,"subscriptionType":"contact.merge","objectId":9,"primaryObjectId":9,"mergedObjectIds":[7],"newObjectId":11}]"#,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            contacts[0].followed(),
            Followed::ContactDeleted {
                contact: "7".to_owned()
            }
        );
        let merged = |into: &str, from: &[&str]| Followed::ContactsMerged {
            into: into.to_owned(),
            from: from.iter().map(|id| (*id).to_owned()).collect(),
        };
        assert_eq!(contacts[1].followed(), merged("9", &["7", "8"]));
        assert_eq!(
            contacts[2].followed(),
            merged("11", &["7", "9"]),
            "a merge that made a new record moves the primary too"
        );
        assert!(parse(b"{}").is_err());
        let many = format!(
            "[{}]",
            vec![r#"{"eventId":1,"subscriptionType":"x","objectId":1}"#; 101].join(",")
        );
        assert!(parse(many.as_bytes()).is_err());
    }
}
