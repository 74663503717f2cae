//! `bots`: a page's bot per channel, its settings as the API wrote them
//! (`domain::bot::settings::BotSettings::written`).

use crate::db::Rows;
use crate::db::{self, Db, number, text};
use domain::bot::settings::BotSettings;
use domain::bot::target::{BotChannel, BotTarget};
use domain::error::ApiError;
use domain::links::link::PageId;
use domain::tenant::Tenant;
use serde::Deserialize;

/// A bot as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Bot {
    pub settings: BotSettings,
    pub updated_at: String,
}

#[derive(Deserialize)]
struct Row {
    page_id: String,
    channel: String,
    settings: String,
    updated_at: String,
}

impl Row {
    fn bot(self) -> Result<Bot, ApiError> {
        let id = format!("{}/{}", self.page_id, self.channel);
        let value: serde_json::Value =
            serde_json::from_str(&self.settings).map_err(|why| db::corrupt("bots", &id, why))?;
        let settings =
            BotSettings::parse(&value).map_err(|why| db::corrupt("bots", &id, why.body.message))?;
        Ok(Bot {
            settings,
            updated_at: self.updated_at,
        })
    }
}

/// The page's bot on the channel; None for one never set.
pub async fn find(db: &Db, tenant: &Tenant, target: &BotTarget) -> Result<Option<Bot>, ApiError> {
    let row: Option<Row> = db
        .scoped(
            tenant,
            "SELECT page_id, channel, settings, updated_at FROM bots WHERE business_id = ?1 AND page_id = ?2 \
             AND channel = ?3",
        )
        .bind(&[text(target.page_id.as_str()), text(target.channel.as_str())])?
        .first(None)
        .await?;
    row.map(Row::bot).transpose()
}

/// Stores the bot's settings, replacing what it had.
pub async fn put(
    db: &Db,
    tenant: &Tenant,
    target: &BotTarget,
    settings: &BotSettings,
    now: &str,
) -> Result<(), ApiError> {
    db.scoped(
        tenant,
        "INSERT INTO bots (business_id, page_id, channel, enabled, settings, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (business_id, page_id, channel) DO UPDATE SET \
         enabled = excluded.enabled, settings = excluded.settings, updated_at = excluded.updated_at",
    )
    .bind(&[
        text(target.page_id.as_str()),
        text(target.channel.as_str()),
        number(i64::from(settings.enabled)),
        text(&settings.written().to_string()),
        text(now),
    ])?
    .run()
    .await?;
    Ok(())
}

/// The channels on which the page has a bot that answers: what an inbound message on the page
/// asks before anything is queued for a bot.
pub async fn enabled_on(db: &Db, tenant: &Tenant, page: &PageId) -> Result<Vec<BotChannel>, ApiError> {
    #[derive(Deserialize)]
    struct Channel {
        channel: String,
    }
    let rows: Vec<Channel> = db
        .scoped(
            tenant,
            "SELECT channel FROM bots WHERE business_id = ?1 AND page_id = ?2 AND enabled = 1",
        )
        .bind(&[text(page.as_str())])?
        .all()
        .await?
        .rows()?;
    Ok(rows
        .iter()
        .filter_map(|row| BotChannel::parse(&row.channel))
        .collect())
}
