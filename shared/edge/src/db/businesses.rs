//! `businesses`: the tenants. Only the operator's admin API creates and changes them; every other
//! table names its business.

use crate::db::directory;
use crate::db::{self, text};
use crate::db::{Db, Statement};
use domain::backup::Quarantine;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::message::NewConversationAfter;
use domain::rate_limit::Policy;
use domain::sso::FrameAncestors;
use domain::tenant::Tenant;
use serde::Deserialize;

pub use domain::api::admin::Business;

/// A business as stored.
#[derive(Deserialize)]
struct Row {
    id: BusinessId,
    name: String,
    default_country: Option<String>,
    created_at: String,
    /// A JSON array.
    embed_frame_ancestors: String,
    rate_limit_per_minute: Option<i64>,
    rate_limit_burst: Option<i64>,
    new_conversation_after_hours: Option<i64>,
}

impl Row {
    fn into_business(self) -> Result<Business, ApiError> {
        let embed_frame_ancestors = serde_json::from_str(&self.embed_frame_ancestors)
            .map_err(|_| db::corrupt("businesses", self.id.as_str(), "embed_frame_ancestors"))?;
        Ok(Business {
            rate_limit: Policy::stored(self.rate_limit_per_minute, self.rate_limit_burst),
            id: self.id,
            name: self.name,
            default_country: self.default_country,
            created_at: self.created_at,
            embed_frame_ancestors,
            new_conversation_after_hours: NewConversationAfter::stored(self.new_conversation_after_hours)
                .hours(),
        })
    }
}

const COLUMNS: &str = "id, name, default_country, created_at, embed_frame_ancestors, rate_limit_per_minute, \
     rate_limit_burst, new_conversation_after_hours";

/// Creates the business on one of the shards new businesses go to, recorded in the directory
/// first (a business is never on a shard the directory does not name).
pub async fn create(db: &Db, business: &Business) -> Result<(), ApiError> {
    let shard = directory::choose(&business.id, db.open_shards());
    if db.shard_count() > 1 {
        directory::place(db, &business.id, shard).await?;
    }
    db.on_shard(shard)
        .unscoped("INSERT INTO businesses (id, name, default_country, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(&[
            text(business.id.as_str()),
            text(&business.name),
            db::optional_text(business.default_country.as_deref()),
            text(&business.created_at),
        ])?
        .run()
        .await?;
    Ok(())
}

pub async fn find(db: &Db, id: &BusinessId) -> Result<Option<Business>, ApiError> {
    db.unscoped(format!("SELECT {COLUMNS} FROM businesses WHERE id = ?1"))
        .bind(&[text(id.as_str())])?
        .first::<Row>(None)
        .await?
        .map(Row::into_business)
        .transpose()
}

/// What a business's settings change to; a field left `None` stays as it is.
#[derive(Default)]
pub struct Changes<'a> {
    /// Who may frame the embedded inbox.
    pub frame_ancestors: Option<&'a FrameAncestors>,
    /// The limit of the business's keys.
    pub rate_limit: Option<Policy>,
    /// How long a resolved conversation stays quiet before the customer's next message opens a
    /// new one.
    pub new_conversation_after: Option<NewConversationAfter>,
}

/// Writes `changes` in one statement; false when there is no such business.
pub async fn update(db: &Db, id: &BusinessId, changes: &Changes<'_>) -> Result<bool, ApiError> {
    let ancestors = changes
        .frame_ancestors
        .map(|ancestors| serde_json::to_string(ancestors.origins()))
        .transpose()?;
    let result = db
        .unscoped(
            "UPDATE businesses SET embed_frame_ancestors = coalesce(?2, embed_frame_ancestors), \
             rate_limit_per_minute = CASE WHEN ?3 IS NULL THEN rate_limit_per_minute ELSE ?3 END, \
             rate_limit_burst = CASE WHEN ?3 IS NULL THEN rate_limit_burst ELSE ?4 END, \
             new_conversation_after_hours = coalesce(?5, new_conversation_after_hours) WHERE id = ?1",
        )
        .bind(&[
            text(id.as_str()),
            db::optional_text(ancestors.as_deref()),
            db::optional_number(changes.rate_limit.map(|policy| i64::from(policy.per_minute))),
            db::optional_number(changes.rate_limit.map(|policy| i64::from(policy.burst))),
            db::optional_number(
                changes
                    .new_conversation_after
                    .map(|window| i64::from(window.hours())),
            ),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result) > 0)
}

/// The rate limit a statement finds: its business's stored `rate_limit_per_minute` and
/// `rate_limit_burst` (`… JOIN businesses b …`), as [`Policy::stored`] reads them; None when it
/// finds no row (an unknown key, a session that is not live).
pub(crate) async fn rate_limit_of(statement: Statement) -> Result<Option<Policy>, ApiError> {
    #[derive(Deserialize)]
    struct Limit {
        rate_limit_per_minute: Option<i64>,
        rate_limit_burst: Option<i64>,
    }
    let found = statement.first::<Limit>(None).await?;
    Ok(found.map(|limit| Policy::stored(limit.rate_limit_per_minute, limit.rate_limit_burst)))
}

/// The statement that adds to the business's quarantine what a restore's page is about to pause:
/// the channel accounts, connectors, webhook endpoints and link entries that are on (read across
/// their tables in this one statement, in the batch before the statements that pause them), kept
/// with what earlier pages recorded.
pub fn record_quarantine(db: &Db, tenant: &Tenant, now: &str) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE businesses SET quarantine = json_object('restored_at', ?2, \
             'channel_accounts', json((SELECT json_group_array(id) FROM (SELECT value AS id FROM \
             json_each(coalesce(json_extract(quarantine, '$.channel_accounts'), '[]')) UNION \
             SELECT id FROM channel_accounts WHERE business_id = ?1 AND paused_at IS NULL))), \
             'connectors', json((SELECT json_group_array(id) FROM (SELECT value AS id FROM \
             json_each(coalesce(json_extract(quarantine, '$.connectors'), '[]')) UNION \
             SELECT id FROM crm_connectors WHERE business_id = ?1 AND enabled = 1))), \
             'webhooks', json((SELECT json_group_array(id) FROM (SELECT value AS id FROM \
             json_each(coalesce(json_extract(quarantine, '$.webhooks'), '[]')) UNION \
             SELECT id FROM webhook_endpoints WHERE business_id = ?1 AND enabled = 1))), \
             'links', json((SELECT json_group_array(json(link)) FROM (SELECT value AS link FROM \
             json_each(coalesce(json_extract(quarantine, '$.links'), '[]')) UNION \
             SELECT json_array(source_id, channel) FROM knowledge_links WHERE business_id = ?1 AND is_active = 1)))) \
             WHERE id = ?1",
        )
        .bind(&[text(now)])?)
}

/// What a restore paused that waits to be resumed; None when nothing does.
pub async fn quarantine(db: &Db, tenant: &Tenant) -> Result<Option<Quarantine>, ApiError> {
    #[derive(Deserialize)]
    struct Held {
        quarantine: Option<String>,
    }
    let held: Option<Held> = db
        .scoped(tenant, "SELECT quarantine FROM businesses WHERE id = ?1")
        .first(None)
        .await?;
    held.and_then(|held| held.quarantine)
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|_| db::corrupt("businesses", tenant.business_id.as_str(), "quarantine"))
        })
        .transpose()
}

/// The statement that keeps `left` as the quarantine (None: nothing waits).
pub fn set_quarantine(db: &Db, tenant: &Tenant, left: Option<&Quarantine>) -> Result<Statement, ApiError> {
    let text_of = left
        .map(serde_json::to_string)
        .transpose()
        .map_err(|error| ApiError::internal("writing a quarantine", error))?;
    Ok(db
        .scoped(tenant, "UPDATE businesses SET quarantine = ?2 WHERE id = ?1")
        .bind(&[db::optional_text(text_of.as_deref())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, random};
    use serde_json::json;

    #[test]
    fn a_business_is_created_on_the_shard_the_directory_names_and_read_back_there() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 1).await;
            let found = find(&fixture.db, &acme.business_id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(
                (found.name.as_str(), found.default_country.as_deref()),
                ("Acme", Some("IE"))
            );
            assert_eq!(
                (found.rate_limit, found.embed_frame_ancestors.len()),
                (Policy::DEFAULT_KEY, 0)
            );
            let on_second: Vec<_> = fixture.stack.sql("DB_1", |connection| {
                connection
                    .prepare("SELECT id FROM businesses")
                    .and_then(|mut statement| {
                        statement
                            .query_map([], |row| row.get::<_, String>(0))?
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .must()
            });
            assert_eq!(on_second, [acme.business_id.to_string()]);
            let placed = fixture.rows("business_shards", "business_id");
            assert_eq!(
                (placed[0]["business_id"].clone(), placed[0]["shard"].clone()),
                (json!(acme.business_id.as_str()), json!(1))
            );
            assert!(
                find(&fixture.db, &BusinessId::generate(random()))
                    .await
                    .must()
                    .is_none()
            );
        });
    }

    #[test]
    fn a_business_changes_only_what_is_given_and_only_where_it_exists() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 1).await;
            let policy = Policy {
                per_minute: 600,
                burst: 50,
            };
            let limited = Changes {
                rate_limit: Some(policy),
                ..Changes::default()
            };
            assert!(update(&fixture.db, &acme.business_id, &limited).await.must());
            let origins = FrameAncestors::parse(&["https://crm.example.com".to_owned()]).must();
            let framed = Changes {
                frame_ancestors: Some(&origins),
                ..Changes::default()
            };
            assert!(update(&fixture.db, &acme.business_id, &framed).await.must());
            let found = find(&fixture.db, &acme.business_id)
                .await
                .must()
                .unwrap_or_else(|| panic!("found"));
            assert_eq!(found.rate_limit, policy, "kept when only the frame changed");
            assert_eq!(found.embed_frame_ancestors, ["https://crm.example.com"]);
            let nobody = BusinessId::generate(random());
            assert!(!update(&fixture.db, &nobody, &limited).await.must());
            assert!(!update(&fixture.db, &nobody, &framed).await.must());
        });
    }
}
