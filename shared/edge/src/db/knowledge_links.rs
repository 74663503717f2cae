//! `knowledge_links`: a source on one channel, active or not. The API's entries are these rows;
//! search reads them to know which sources answer on a page's channel.

use crate::db::Batch;
use crate::db::Db;
use crate::db::Read;
use crate::db::Rows;
use crate::db::{self, json_list, number, optional_text, text};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::link::{LinkChannel, PageId};
use domain::tenant::Tenant;
use serde::Deserialize;

/// One entry: a source on a channel.
#[derive(Debug, Clone)]
pub struct Entry {
    pub source_id: SourceId,
    pub page_id: String,
    pub channel: LinkChannel,
    pub is_active: bool,
}

#[derive(Deserialize)]
struct Row {
    source_id: SourceId,
    page_id: String,
    channel: String,
    is_active: i64,
}

impl Row {
    fn entry(self) -> Result<Entry, ApiError> {
        let channel = LinkChannel::parse(&self.channel)
            .ok_or_else(|| db::corrupt("CRM link", self.source_id.as_str(), "channel"))?;
        Ok(Entry {
            channel,
            is_active: self.is_active == 1,
            page_id: self.page_id,
            source_id: self.source_id,
        })
    }
}

/// The entries of the business (of one page, and of one channel, when given), in the order they
/// were added.
pub async fn list(
    db: &Db,
    tenant: &Tenant,
    page: Option<&PageId>,
    channel: Option<LinkChannel>,
) -> Result<Vec<Entry>, ApiError> {
    db.scoped(tenant, "SELECT source_id, page_id, channel, is_active FROM knowledge_links WHERE business_id = ?1 \
         AND (?2 IS NULL OR page_id = ?2) AND (?3 IS NULL OR channel = ?3) ORDER BY created_at, source_id, channel",
    )
    .bind(&[
        optional_text(page.map(PageId::as_str)),
        optional_text(channel.map(LinkChannel::as_str)),
    ])?
    .all()
    .await?
    .rows::<Row>()?
    .into_iter()
    .map(Row::entry)
    .collect()
}

/// Adds the source on `channels`; false (and nothing added) when any of them has it already.
pub async fn insert(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    page: &PageId,
    channels: &[LinkChannel],
    is_active: bool,
    now: &str,
) -> Result<bool, ApiError> {
    let mut statements = Vec::with_capacity(channels.len());
    for channel in channels {
        statements.push(
            db.scoped(tenant, "INSERT INTO knowledge_links (source_id, business_id, page_id, channel, is_active, created_at, updated_at) \
                 VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?6)",
            )
            .bind(&[
                text(source.as_str()),
                text(page.as_str()),
                text(channel.as_str()),
                number(i64::from(is_active)),
                text(now)])?,
        );
    }
    match db.batch(statements).await {
        Ok(_) => Ok(true),
        Err(error) if error.is_unique_on("knowledge_links") => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Sets the source active or not on `channels`; how many entries there were.
pub async fn set_active(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    channels: &[LinkChannel],
    is_active: bool,
    now: &str,
) -> Result<usize, ApiError> {
    let result = db
        .scoped(tenant, "UPDATE knowledge_links SET is_active = ?4, updated_at = ?5 WHERE business_id = ?1 AND source_id = ?2 \
             AND channel IN (SELECT value FROM json_each(?3))",
        )
        .bind(&[
            text(source.as_str()),
            json_list(channels.iter().map(|channel| channel.as_str())),
            number(i64::from(is_active)),
            text(now),
        ])?
        .run()
        .await?;
    Ok(db::changes(&result))
}

/// Removes the source from `channels`; how many entries went, and how many are left.
pub async fn delete(
    db: &Db,
    tenant: &Tenant,
    source: &SourceId,
    channels: &[LinkChannel],
) -> Result<(usize, usize), ApiError> {
    #[derive(Deserialize)]
    struct Left {
        left: usize,
    }
    let mut batch = Batch::default();
    let deleted = batch.write(
        db.scoped(
            tenant,
            "DELETE FROM knowledge_links WHERE business_id = ?1 AND source_id = ?2 \
             AND channel IN (SELECT value FROM json_each(?3))",
        )
        .bind(&[
            text(source.as_str()),
            json_list(channels.iter().map(|channel| channel.as_str())),
        ])?,
    );
    let left = batch.read(Read::<Option<Left>>::first(
        db.scoped(
            tenant,
            "SELECT COUNT(*) AS left FROM knowledge_links WHERE business_id = ?1 AND source_id = ?2",
        )
        .bind(&[text(source.as_str())])?,
    ));
    let answers = batch.run(db).await?;
    let left = answers.take(left)?.map_or(0, |row| row.left);
    Ok((answers.changes(deleted), left))
}

/// The sources active on a page's channel, whatever they hold: the general ones, the
/// customers', then those nobody's yet (each group in the order of its ids).
pub async fn active_sources(
    db: &Db,
    tenant: &Tenant,
    page: &PageId,
    channel: LinkChannel,
) -> Result<Vec<SourceId>, ApiError> {
    let active = active_by_holds(db, tenant, page, channel).await?;
    let mut sources = active.general;
    sources.extend(active.customers);
    sources.extend(active.unchecked);
    Ok(sources)
}

/// The sources active on a page's channel by what they hold now: general knowledge (said so, or
/// unstated and seen to name no customer), and customers' records. A source whose `holds` changed
/// is in its new group at once, whatever its pieces were indexed as. A source of unstated holds
/// not yet read, or whose records name customers, is in neither: nobody's knowledge.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ActiveByHolds {
    pub general: Vec<SourceId>,
    pub customers: Vec<SourceId>,
    /// Of unstated holds, not yet read or seen to name customers: the business's own search finds
    /// them, the bot never.
    pub unchecked: Vec<SourceId>,
}

pub async fn active_by_holds(
    db: &Db,
    tenant: &Tenant,
    page: &PageId,
    channel: LinkChannel,
) -> Result<ActiveByHolds, ApiError> {
    #[derive(Deserialize)]
    struct Active {
        id: SourceId,
        kind: Option<String>,
    }
    let rows = db
        .scoped(
            tenant,
            "SELECT s.id, CASE WHEN s.holds IS NULL THEN CASE WHEN s.holds_check = 'clean' THEN 'general' END \
             WHEN json_extract(s.holds, '$.type') = 'customers' THEN 'customers' ELSE 'general' END AS kind \
             FROM knowledge_links l JOIN knowledge_sources s ON s.id = l.source_id \
             WHERE l.business_id = ?1 AND l.page_id = ?2 AND l.channel = ?3 AND l.is_active = 1 \
             AND s.business_id = ?1 ORDER BY s.id",
        )
        .bind(&[text(page.as_str()), text(channel.as_str())])?
        .all()
        .await?
        .rows::<Active>()?;
    let mut active = ActiveByHolds::default();
    for row in rows {
        match row.kind.as_deref() {
            Some("general") => active.general.push(row.id),
            Some("customers") => active.customers.push(row.id),
            _ => active.unchecked.push(row.id),
        }
    }
    Ok(active)
}

/// A restore's quarantine: every active link entry of the business is switched off (nothing is
/// fetched from a CRM until the operator resumes them).
pub fn deactivate_all(db: &Db, tenant: &Tenant) -> Result<crate::db::Statement, ApiError> {
    Ok(db.scoped(
        tenant,
        "UPDATE knowledge_links SET is_active = 0 WHERE business_id = ?1 AND is_active = 1",
    ))
}

/// The entries `pairs` (`[source id, channel]` of the tenant's) are active again.
pub fn activate_listed(
    db: &Db,
    tenant: &Tenant,
    pairs: &[(String, String)],
) -> Result<crate::db::Statement, ApiError> {
    let list: Vec<serde_json::Value> = pairs
        .iter()
        .map(|(source, channel)| serde_json::json!([source, channel]))
        .collect();
    Ok(db
        .scoped(
            tenant,
            "UPDATE knowledge_links SET is_active = 1 WHERE +business_id = ?1 AND (source_id, channel) IN \
             (SELECT value ->> 0, value ->> 1 FROM json_each(?2))",
        )
        .bind(&[text(&serde_json::Value::from(list).to_string())])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Fixture, Must, link, page};
    use domain::links::link::LinkType;
    use std::time::Duration;

    fn entries(found: Vec<Entry>) -> Vec<(SourceId, String, LinkChannel, bool)> {
        found
            .into_iter()
            .map(|e| (e.source_id, e.page_id, e.channel, e.is_active))
            .collect()
    }

    #[test]
    fn a_source_is_added_on_each_channel_once_or_not_at_all() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let id = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("A", "https://crm.example.com/a", LinkType::Api),
                    &[LinkChannel::Messenger],
                )
                .await;
            let now = fixture.now().to_rfc3339();
            let added = insert(
                &fixture.db,
                &acme,
                &id,
                &page("1001"),
                &[LinkChannel::Whatsapp, LinkChannel::Messenger],
                false,
                &now,
            )
            .await
            .must();
            assert!(!added, "Messenger has it already");
            let listed = entries(list(&fixture.db, &acme, None, None).await.must());
            assert_eq!(
                listed,
                [(id.clone(), "1001".to_owned(), LinkChannel::Messenger, true)],
                "nor was WhatsApp added"
            );
            assert!(
                insert(
                    &fixture.db,
                    &acme,
                    &id,
                    &page("1001"),
                    &[LinkChannel::Whatsapp],
                    false,
                    &now
                )
                .await
                .must()
            );
            assert_eq!(
                list(&fixture.db, &acme, None, Some(LinkChannel::Whatsapp))
                    .await
                    .must()
                    .len(),
                1
            );
        });
    }

    #[test]
    fn entries_are_listed_by_page_and_channel_and_switched_and_removed_by_channel() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let first = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("A", "https://crm.example.com/a", LinkType::Api),
                    &[LinkChannel::Messenger, LinkChannel::Whatsapp],
                )
                .await;
            fixture.stack.advance(Duration::from_secs(1));
            let second = fixture
                .source(
                    &acme,
                    &page("2002"),
                    &link("B", "https://crm.example.com/b", LinkType::Api),
                    &[LinkChannel::Messenger],
                )
                .await;
            let now = fixture.now().to_rfc3339();
            let on = |page_id: Option<&'static str>, channel| {
                let page_id = page_id.map(page);
                let db = fixture.db.clone();
                let acme = acme.clone();
                async move { entries(list(&db, &acme, page_id.as_ref(), channel).await.must()) }
            };
            let first_messenger = (first.clone(), "1001".to_owned(), LinkChannel::Messenger, true);
            let first_whatsapp = (first.clone(), "1001".to_owned(), LinkChannel::Whatsapp, true);
            let second_messenger = (second.clone(), "2002".to_owned(), LinkChannel::Messenger, true);
            assert_eq!(
                on(None, None).await,
                [
                    first_messenger.clone(),
                    first_whatsapp.clone(),
                    second_messenger.clone()
                ],
                "in the order added"
            );
            assert_eq!(
                on(Some("2002"), None).await,
                std::slice::from_ref(&second_messenger)
            );
            assert_eq!(
                on(None, Some(LinkChannel::Messenger)).await,
                [first_messenger.clone(), second_messenger]
            );
            assert!(list(&fixture.db, &globex, None, None).await.must().is_empty());

            let switched = set_active(
                &fixture.db,
                &acme,
                &first,
                &[LinkChannel::Messenger, LinkChannel::Instagram],
                false,
                &now,
            )
            .await
            .must();
            assert_eq!(switched, 1, "Instagram had no entry");
            assert_eq!(
                set_active(
                    &fixture.db,
                    &globex,
                    &first,
                    &[LinkChannel::Whatsapp],
                    false,
                    &now
                )
                .await
                .must(),
                0
            );
            assert_eq!(
                on(Some("1001"), Some(LinkChannel::Whatsapp)).await,
                [first_whatsapp],
                "another business switches nothing"
            );
            assert_eq!(
                delete(&fixture.db, &globex, &first, &[LinkChannel::Messenger])
                    .await
                    .must(),
                (0, 0)
            );
            assert_eq!(
                delete(&fixture.db, &acme, &first, &[LinkChannel::Messenger])
                    .await
                    .must(),
                (1, 1)
            );
            assert_eq!(
                delete(&fixture.db, &acme, &first, &[LinkChannel::Whatsapp])
                    .await
                    .must(),
                (1, 0)
            );
        });
    }

    #[test]
    fn a_pages_channel_is_answered_by_the_sources_active_on_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            let globex = fixture.business_on("Globex", 0).await;
            let messenger = [LinkChannel::Messenger];
            let a = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("A", "https://crm.example.com/a", LinkType::Api),
                    &messenger,
                )
                .await;
            let b = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("B", "https://crm.example.com/b", LinkType::Api),
                    &messenger,
                )
                .await;
            let off = fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("C", "https://crm.example.com/c", LinkType::Api),
                    &messenger,
                )
                .await;
            fixture
                .source(
                    &acme,
                    &page("2002"),
                    &link("D", "https://crm.example.com/d", LinkType::Api),
                    &messenger,
                )
                .await;
            fixture
                .source(
                    &acme,
                    &page("1001"),
                    &link("E", "https://crm.example.com/e", LinkType::Api),
                    &[LinkChannel::Whatsapp],
                )
                .await;
            fixture
                .source(
                    &globex,
                    &page("1001"),
                    &link("F", "https://crm.example.com/f", LinkType::Api),
                    &messenger,
                )
                .await;
            set_active(
                &fixture.db,
                &acme,
                &off,
                &messenger,
                false,
                &fixture.now().to_rfc3339(),
            )
            .await
            .must();
            let mut expected = vec![a, b];
            expected.sort();
            let mut active = active_sources(&fixture.db, &acme, &page("1001"), LinkChannel::Messenger)
                .await
                .must();
            active.sort();
            assert_eq!(active, expected);
        });
    }
}
