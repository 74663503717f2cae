//! `console_sessions`: console links and the sessions they open (`domain::console`). A link is
//! opened at most once, before it expires; a session lasts until it expires or is revoked. Only
//! hashes of the two secrets are stored, and a session is read on every request it makes (never
//! cached), so signing out or revoking applies at once.

use crate::db::Db;
use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, businesses, number, text};
use domain::api::admin::ConsoleSession;
use domain::console::SecretHash;
use domain::error::ApiError;
use domain::ids::{BusinessId, ConsoleSessionId};
use domain::rate_limit::Policy;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;

/// A link as it is issued.
pub struct NewLink<'a> {
    pub id: &'a ConsoleSessionId,
    pub issued_by: &'a str,
    pub link_hash: &'a SecretHash,
    pub link_expires_at: Timestamp,
    pub created_at: Timestamp,
}

pub async fn insert_link(db: &Db, tenant: &Tenant, link: &NewLink<'_>) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "INSERT INTO console_sessions (id, business_id, issued_by, link_hash, link_expires_ms, created_at) \
         VALUES (?2, ?1, ?3, ?4, ?5, ?6)",
    )
    .bind(&[
        text(link.id.as_str()),
        text(link.issued_by),
        text(link.link_hash.as_str()),
        number(link.link_expires_at.millis()),
        text(&link.created_at.to_rfc3339()),
    ])?
    .run()
    .await?;
    Ok(())
}

/// The name of the business the link with this hash opens, if it can still be opened at `now`:
/// issued, not opened, not revoked, not expired. A link is found by its secret alone, before anyone
/// is signed in.
pub async fn openable(db: &Db, link: &SecretHash, now: Timestamp) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        name: String,
    }
    let row = db
        .unscoped(
            "SELECT b.name FROM console_sessions s JOIN businesses b ON b.id = s.business_id \
             WHERE s.link_hash = ?1 AND s.session_hash IS NULL AND s.revoked_at IS NULL AND s.link_expires_ms > ?2",
        )
        .bind(&[text(link.as_str()), number(now.millis())])?
        .first::<Row>(None)
        .await?;
    Ok(row.map(|row| row.name))
}

/// A session just opened, and its business.
#[derive(Deserialize)]
pub struct Opened {
    pub id: ConsoleSessionId,
    pub business_id: BusinessId,
}

/// Opens the link into a session whose secret hashes to `session`, until `expires_at`: once, in
/// one statement, so that of two openings at once only one gets a session. None when the link
/// cannot be opened (unknown, opened already, revoked or expired).
pub async fn open(
    db: &Db,
    link: &SecretHash,
    session: &SecretHash,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<Option<Opened>, ApiError> {
    Ok(db
        .unscoped(
            "UPDATE console_sessions SET session_hash = ?2, opened_at = ?3, expires_ms = ?4 \
             WHERE link_hash = ?1 AND session_hash IS NULL AND revoked_at IS NULL AND link_expires_ms > ?5 \
             RETURNING id, business_id",
        )
        .bind(&[
            text(link.as_str()),
            text(session.as_str()),
            text(&now.to_rfc3339()),
            number(expires_at.millis()),
            number(now.millis()),
        ])?
        .first::<Opened>(None)
        .await?)
}

/// A live session: whom it acts for, until when.
pub struct LiveSession {
    pub id: ConsoleSessionId,
    pub tenant: Tenant,
    pub business_name: String,
    pub expires_at: Timestamp,
}

/// The rate limit of the live session whose secret hashes to `session` (its business's, as for
/// its keys), or None for a session that is not live at `now`.
pub async fn rate_limit(db: &Db, session: &SecretHash, now: Timestamp) -> Result<Option<Policy>, ApiError> {
    businesses::rate_limit_of(
        db.unscoped(
            "SELECT s.business_id, b.rate_limit_per_minute, b.rate_limit_burst FROM console_sessions s \
             JOIN businesses b ON b.id = s.business_id \
             WHERE s.session_hash = ?1 AND s.revoked_at IS NULL AND s.expires_ms > ?2",
        )
        .bind(&[text(session.as_str()), number(now.millis())])?,
    )
    .await
}

/// The session whose secret hashes to `session`, if it is live at `now` (opened, not revoked, not
/// expired). A session is found by its secret alone: it is what names its business.
pub async fn live(db: &Db, session: &SecretHash, now: Timestamp) -> Result<Option<LiveSession>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        id: ConsoleSessionId,
        business_id: String,
        default_country: Option<String>,
        name: String,
        expires_ms: i64,
    }
    let row = db
        .unscoped(
            "SELECT s.id, s.business_id, b.default_country, b.name, s.expires_ms FROM console_sessions s \
             JOIN businesses b ON b.id = s.business_id \
             WHERE s.session_hash = ?1 AND s.revoked_at IS NULL AND s.expires_ms > ?2",
        )
        .bind(&[text(session.as_str()), number(now.millis())])?
        .first::<Row>(None)
        .await?;
    row.map(|row| {
        Ok(LiveSession {
            tenant: Tenant::from_stored(&row.business_id, row.default_country.as_deref())?,
            id: row.id,
            business_name: row.name,
            expires_at: Timestamp::from_millis(row.expires_ms),
        })
    })
    .transpose()
}

const COLUMNS: &str = "id, issued_by, created_at, link_expires_ms, opened_at, expires_ms, revoked_at";

#[derive(Deserialize)]
struct Row {
    id: ConsoleSessionId,
    issued_by: String,
    created_at: String,
    link_expires_ms: i64,
    opened_at: Option<String>,
    expires_ms: Option<i64>,
    revoked_at: Option<String>,
}

impl Row {
    fn view(self) -> ConsoleSession {
        ConsoleSession {
            id: self.id,
            issued_by: self.issued_by,
            created_at: self.created_at,
            link_expires_at: Timestamp::from_millis(self.link_expires_ms).to_rfc3339(),
            opened_at: self.opened_at,
            expires_at: self.expires_ms.map(|ms| Timestamp::from_millis(ms).to_rfc3339()),
            revoked_at: self.revoked_at,
        }
    }
}

/// The tenant's links and sessions that have not ended by `now`, newest first: what could still
/// be used, and so what there is to revoke.
pub async fn current(db: &Db, tenant: &Tenant, now: Timestamp) -> Result<Vec<ConsoleSession>, ApiError> {
    let result = db
        .scoped(
            tenant,
            format!(
                "SELECT {COLUMNS} FROM console_sessions WHERE business_id = ?1 AND revoked_at IS NULL \
                 AND COALESCE(expires_ms, link_expires_ms) > ?2 ORDER BY created_at DESC, id"
            ),
        )
        .bind(&[number(now.millis())])?
        .all()
        .await?;
    Ok(result.rows::<Row>()?.into_iter().map(Row::view).collect())
}

/// Revokes the tenant's link or session `id` (once: a second revoke keeps the first time); None
/// when the tenant has no such session.
pub async fn revoke(
    db: &Db,
    tenant: &Tenant,
    id: &ConsoleSessionId,
    now: Timestamp,
) -> Result<Option<ConsoleSession>, ApiError> {
    let row = db
        .scoped(
            tenant,
            format!(
                "UPDATE console_sessions SET revoked_at = COALESCE(revoked_at, ?3) WHERE business_id = ?1 AND id = ?2 \
                 RETURNING {COLUMNS}"
            ),
        )
        .bind(&[text(id.as_str()), text(&now.to_rfc3339())])?
        .first::<Row>(None)
        .await?;
    Ok(row.map(Row::view))
}

/// The business of session `id`, for the operator, whose path names only the session.
pub async fn owner(db: &Db, id: &ConsoleSessionId) -> Result<Option<Tenant>, ApiError> {
    db::owner(
        db.unscoped(
            "SELECT b.id AS business_id, b.default_country FROM console_sessions s \
             JOIN businesses b ON b.id = s.business_id WHERE s.id = ?1",
        )
        .bind(&[text(id.as_str())])?,
    )
    .await
}

/// Deletes up to `limit` links and sessions that ended before `before`, of every business; how
/// many it deleted.
pub async fn delete_ended(
    db: &Db,
    moving: &Moving,
    before: Timestamp,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM console_sessions WHERE id IN (SELECT id FROM console_sessions \
             WHERE COALESCE(expires_ms, link_expires_ms) < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?3)) LIMIT ?2)",
        )
        .bind(&[number(before.millis()), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

/// A restore's: every console link and session of the business the backup held is revoked.
pub fn revoke_all(db: &Db, tenant: &Tenant, now: &str) -> Result<crate::db::Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE console_sessions SET revoked_at = ?2 WHERE business_id = ?1 AND revoked_at IS NULL",
        )
        .bind(&[text(now)])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use domain::console::{Issued, SECRET_BYTES, issue_link, issue_session};
    use std::time::Duration;

    fn secret() -> [u8; SECRET_BYTES] {
        crate::runtime::random().must()
    }

    /// Issues a link for the tenant now, valid for 15 minutes.
    async fn link(fixture: &Fixture, tenant: &Tenant) -> (ConsoleSessionId, Issued) {
        let id = ConsoleSessionId::generate(random());
        let issued = issue_link(secret());
        let now = fixture.now();
        let new = NewLink {
            id: &id,
            issued_by: "key:ck_live_abcd",
            link_hash: &issued.hash,
            link_expires_at: now.plus_seconds(900),
            created_at: now,
        };
        insert_link(&fixture.db, tenant, &new).await.must();
        (id, issued)
    }

    async fn open_now(fixture: &Fixture, link: &SecretHash, session: &SecretHash) -> Option<Opened> {
        let now = fixture.now();
        open(&fixture.db, link, session, now, now.plus_seconds(8 * 3600))
            .await
            .must()
    }

    #[test]
    fn a_link_opens_one_session_once_before_it_expires() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 1).await;
            let (id, link) = link(&fixture, &acme).await;
            assert_eq!(
                openable(&fixture.db, &link.hash, fixture.now())
                    .await
                    .must()
                    .as_deref(),
                Some("Acme")
            );
            let (first, second) = (issue_session(secret()), issue_session(secret()));
            let opened = open_now(&fixture, &link.hash, &first.hash)
                .await
                .unwrap_or_else(|| panic!("opened"));
            assert_eq!(
                (opened.id, opened.business_id),
                (id.clone(), acme.business_id.clone())
            );
            assert!(
                open_now(&fixture, &link.hash, &second.hash).await.is_none(),
                "opened once"
            );
            assert_eq!(
                openable(&fixture.db, &link.hash, fixture.now()).await.must(),
                None
            );
            let live_now = live(&fixture.db, &first.hash, fixture.now())
                .await
                .must()
                .unwrap_or_else(|| panic!("live"));
            assert_eq!(
                (live_now.id, live_now.tenant, live_now.business_name.as_str()),
                (id, acme, "Acme")
            );
            assert_eq!(live_now.expires_at, fixture.now().plus_seconds(8 * 3600));
            assert!(
                live(&fixture.db, &second.hash, fixture.now())
                    .await
                    .must()
                    .is_none()
            );

            fixture.stack.advance(Duration::from_secs(8 * 3600));
            assert!(
                live(&fixture.db, &first.hash, fixture.now())
                    .await
                    .must()
                    .is_none(),
                "the session ended"
            );
        });
    }

    #[test]
    fn a_link_not_opened_in_time_opens_nothing() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let (_, link) = link(&fixture, &acme).await;
            fixture.stack.advance(Duration::from_secs(900));
            assert_eq!(
                openable(&fixture.db, &link.hash, fixture.now()).await.must(),
                None
            );
            assert!(
                open_now(&fixture, &link.hash, &issue_session(secret()).hash)
                    .await
                    .is_none()
            );
        });
    }

    #[test]
    fn a_revoked_link_or_session_opens_nothing_and_keeps_its_first_revocation() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let (unopened, link_a) = link(&fixture, &acme).await;
            let (opened, link_b) = link(&fixture, &acme).await;
            let session = issue_session(secret());
            open_now(&fixture, &link_b.hash, &session.hash).await;
            assert!(
                revoke(&fixture.db, &globex, &opened, fixture.now())
                    .await
                    .must()
                    .is_none(),
                "another business's"
            );
            assert!(
                live(&fixture.db, &session.hash, fixture.now())
                    .await
                    .must()
                    .is_some()
            );
            let first = fixture.now().to_rfc3339();
            for id in [&unopened, &opened] {
                let revoked = revoke(&fixture.db, &acme, id, fixture.now()).await.must();
                assert_eq!(revoked.and_then(|view| view.revoked_at), Some(first.clone()));
            }
            assert_eq!(
                openable(&fixture.db, &link_a.hash, fixture.now()).await.must(),
                None
            );
            assert!(
                open_now(&fixture, &link_a.hash, &issue_session(secret()).hash)
                    .await
                    .is_none()
            );
            assert!(
                live(&fixture.db, &session.hash, fixture.now())
                    .await
                    .must()
                    .is_none(),
                "signed out at once"
            );
            fixture.stack.advance(Duration::from_secs(5));
            let again = revoke(&fixture.db, &acme, &opened, fixture.now()).await.must();
            assert_eq!(again.and_then(|view| view.revoked_at), Some(first));
            assert_eq!(owner(&fixture.db, &opened).await.must(), Some(acme));
        });
    }

    #[test]
    fn what_could_still_be_used_is_listed_newest_first() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            link(&fixture, &acme).await;
            fixture.stack.advance(Duration::from_secs(600));
            let (open_session, link_b) = link(&fixture, &acme).await;
            open_now(&fixture, &link_b.hash, &issue_session(secret()).hash).await;
            fixture.stack.advance(Duration::from_secs(1));
            let (fresh, _) = link(&fixture, &acme).await;
            fixture.stack.advance(Duration::from_secs(1));
            let (revoked, _) = link(&fixture, &acme).await;
            revoke(&fixture.db, &acme, &revoked, fixture.now()).await.must();
            link(&fixture, &globex).await;
            fixture.stack.advance(Duration::from_secs(300));
            let listed: Vec<ConsoleSessionId> = current(&fixture.db, &acme, fixture.now())
                .await
                .must()
                .into_iter()
                .map(|s| s.id)
                .collect();
            assert_eq!(
                listed,
                [fresh, open_session.clone()],
                "not the expired link, not the revoked one"
            );
            let views = current(&fixture.db, &acme, fixture.now()).await.must();
            let session = views
                .iter()
                .find(|view| view.id == open_session)
                .unwrap_or_else(|| panic!("listed"));
            assert!(session.opened_at.is_some() && session.expires_at.is_some());
            assert_eq!(session.issued_by, "key:ck_live_abcd");
        });
    }

    #[test]
    fn ended_links_and_sessions_are_deleted_on_each_shard() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 1).await;
            let (_, opened_link) = link(&fixture, &acme).await;
            open_now(&fixture, &opened_link.hash, &issue_session(secret()).hash).await;
            link(&fixture, &acme).await;
            link(&fixture, &globex).await;
            fixture.stack.advance(Duration::from_secs(3600));
            let shards = fixture.db.each_shard();
            let now = fixture.now();
            assert_eq!(
                delete_ended(&shards[0], &Moving::NONE, now, 10).await.must(),
                1,
                "the link that was never opened"
            );
            assert_eq!(delete_ended(&shards[1], &Moving::NONE, now, 10).await.must(), 1);
            fixture.stack.advance(Duration::from_secs(8 * 3600));
            assert_eq!(
                delete_ended(&shards[0], &Moving::NONE, fixture.now(), 10)
                    .await
                    .must(),
                1,
                "the session, once it ended"
            );
            assert!(fixture.rows("console_sessions", "id").is_empty());
        });
    }
}
