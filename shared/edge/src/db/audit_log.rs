//! `audit_log`: one row per admin or security action on a business, newest first.

use crate::db::Db;
use crate::db::{number, optional_text, text};
use domain::audit::{Action, AuditQuery, Cursor};
use domain::error::ApiError;
use domain::ids::{AuditEntryId, BusinessId};
use domain::tenant::Tenant;
use serde::{Deserialize, Serialize};

pub struct NewEntry<'a> {
    pub id: &'a AuditEntryId,
    pub business_id: &'a BusinessId,
    pub at_us: i64,
    pub actor: &'a str,
    pub action: Action,
    pub target_id: Option<&'a str>,
    /// A JSON object.
    pub detail: &'a str,
    pub client_ip: Option<&'a str>,
}

pub async fn insert(db: &Db, entry: &NewEntry<'_>) -> Result<(), ApiError> {
    db.scoped(
        &Tenant::for_background(entry.business_id.clone()),
        "INSERT INTO audit_log (business_id, id, at_us, actor, action, target_type, target_id, detail, client_ip) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .bind(&[
        text(entry.id.as_str()),
        number(entry.at_us),
        text(entry.actor),
        text(entry.action.as_str()),
        text(entry.action.target_type()),
        optional_text(entry.target_id),
        text(entry.detail),
        optional_text(entry.client_ip),
    ])?
    .run()
    .await?;
    Ok(())
}

/// An entry as stored; `detail` is the JSON text it was recorded with.
#[derive(Deserialize, Serialize)]
pub struct Row {
    pub id: AuditEntryId,
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub detail: String,
    pub client_ip: Option<String>,
}

/// Later than any entry: the largest time a bound number holds exactly (2^53 - 1 µs, year 2255).
const NEWEST_US: i64 = (1 << 53) - 1;

/// A page of the business's entries, newest first, and whether more follow.
pub async fn page(db: &Db, tenant: &Tenant, query: &AuditQuery) -> Result<(Vec<Row>, bool), ApiError> {
    let (before_us, before_id) = match &query.before {
        Some(Cursor { at_us, id }) => (number(*at_us), text(id)),
        None => (number(NEWEST_US), text("")),
    };
    let mut rows = db
        .scoped(
            tenant,
            "SELECT id, at_us, actor, action, target_type, target_id, detail, client_ip FROM audit_log \
             WHERE business_id = ?1 AND (at_us < ?2 OR (at_us = ?2 AND id < ?3)) \
             ORDER BY at_us DESC, id DESC LIMIT ?4",
        )
        .bind(&[before_us, before_id, number(query.limit as i64 + 1)])?
        .all()
        .await?
        .results::<Row>()
        .map_err(|error| ApiError::internal("reading the audit log", error))?;
    let more = rows.len() > query.limit;
    rows.truncate(query.limit);
    Ok((rows, more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};

    async fn note(fixture: &Fixture, business: &BusinessId, at_us: i64, action: Action) -> AuditEntryId {
        let id = AuditEntryId::generate(random());
        let entry = NewEntry {
            id: &id,
            business_id: business,
            at_us,
            actor: "key:ck_live_abcd",
            action,
            target_id: Some("target-1"),
            detail: "{\"fields\":[\"name\"]}",
            client_ip: Some("203.0.113.7"),
        };
        insert(&fixture.db, &entry).await.must();
        id
    }

    #[test]
    fn entries_are_paged_newest_first_and_only_to_their_business() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let now = fixture.now().micros();
            let oldest = note(&fixture, &acme.business_id, now, Action::ApiKeyIssued).await;
            let (a, b) = (
                note(&fixture, &acme.business_id, now + 5, Action::WebhookCreated).await,
                note(&fixture, &acme.business_id, now + 5, Action::WebhookUpdated).await,
            );
            let (high, low) = if a > b { (a, b) } else { (b, a) };
            let newest = note(
                &fixture,
                &acme.business_id,
                now + 9,
                Action::ConsoleSessionRevoked,
            )
            .await;
            note(&fixture, &globex.business_id, now + 7, Action::ApiKeyIssued).await;
            let ids = |rows: &[Row]| rows.iter().map(|row| row.id.clone()).collect::<Vec<_>>();

            let (first, more) = page(
                &fixture.db,
                &acme,
                &AuditQuery {
                    before: None,
                    limit: 2,
                },
            )
            .await
            .must();
            assert_eq!((ids(&first), more), (vec![newest.clone(), high.clone()], true));
            let cursor = |row: &Row| {
                Some(Cursor {
                    at_us: row.at_us,
                    id: row.id.to_string(),
                })
            };
            let (second, more) = page(
                &fixture.db,
                &acme,
                &AuditQuery {
                    before: cursor(&first[1]),
                    limit: 2,
                },
            )
            .await
            .must();
            assert_eq!(
                (ids(&second), more),
                (vec![low.clone(), oldest.clone()], false),
                "entries of one moment by id"
            );
            let (none, more) = page(
                &fixture.db,
                &acme,
                &AuditQuery {
                    before: cursor(&second[1]),
                    limit: 2,
                },
            )
            .await
            .must();
            assert!(none.is_empty() && !more);

            let row = &first[0];
            assert_eq!(
                (row.action.as_str(), row.target_type.as_str()),
                ("console_session.revoked", "console_session")
            );
            assert_eq!(
                (
                    row.actor.as_str(),
                    row.target_id.as_deref(),
                    row.client_ip.as_deref()
                ),
                ("key:ck_live_abcd", Some("target-1"), Some("203.0.113.7"))
            );
            assert_eq!(row.detail, "{\"fields\":[\"name\"]}");
            let (theirs, _) = page(
                &fixture.db,
                &globex,
                &AuditQuery {
                    before: None,
                    limit: 10,
                },
            )
            .await
            .must();
            assert_eq!(theirs.len(), 1);
        });
    }
}
