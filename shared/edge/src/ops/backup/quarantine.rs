//! A restored business's quarantine: in each page's batch, its channel accounts paused, its
//! connectors, webhook endpoints and link entries switched off, its queued sends failed, pending
//! deliveries and CRM work dead-lettered, the bot's turns dropped, and (unless access is kept)
//! its keys, console sessions and embedding tokens revoked, the revoked keys' cached lookups
//! forgotten; and its parts switched back on, exactly what was switched off, when resumed.

use crate::db::{self, Answers, Batch, Db, Handle, Written};
use crate::platform::env::Env;
use domain::api::admin::Quarantined;
use domain::api_key::ApiKeyHash;
use domain::backup::{Part, Quarantine};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::tenant::Tenant;
use domain::time::Timestamp;

/// How many revoked keys' cached lookups a restore forgets; a key beyond them stops working
/// within a minute, when its cached lookup is no longer trusted (`auth::CACHE_FRESHNESS_MS`).
const FORGOTTEN_AT_MOST: usize = 1_000;

/// Forgets the cached lookups of the keys the quarantine revoked, so that they stop working at
/// once where the restore ran. A cache that does not answer is logged: its entries are trusted
/// for a minute at most.
pub(super) async fn forget_revoked(env: &Env, hashes: Vec<ApiKeyHash>) {
    for hash in hashes.iter().take(FORGOTTEN_AT_MOST) {
        if let Err(error) = crate::platform::auth::forget_cached_key(env, hash).await {
            crate::console_error!("a revoked key's cached lookup was not forgotten: {error:?}");
        }
    }
}

/// Why a restored send, delivery or piece of CRM work was not done.
const RESTORED: &str = "not done: the business was restored from a backup, which holds work of another moment \
     (send or replay it again if it is still wanted)";

/// What a page's batch reads back of the quarantine it holds.
pub(super) struct Quarantining {
    paused: Written,
    connectors: Written,
    webhooks: Written,
    links: Written,
    sends: Written,
    deliveries: Written,
    crm_jobs: Written,
    bot_turns: Written,
    /// The keys revoked (their hashes), the console sessions and the embedding tokens.
    access: Option<(Handle<Vec<ApiKeyHash>>, Written, Written)>,
}

impl Quarantining {
    /// How much each part switched off, and the hashes of the keys revoked.
    pub(super) fn counted(self, answers: &Answers) -> (Quarantined, Vec<ApiKeyHash>) {
        let (keys, sessions, tokens) = match self.access {
            None => (Vec::new(), 0, 0),
            Some((keys, sessions, tokens)) => {
                let keys = answers.take(keys).unwrap_or_else(|error| {
                    crate::console_error!("the restore's revoked keys were not read: {error:?}");
                    Vec::new()
                });
                (keys, answers.changes(sessions), answers.changes(tokens))
            }
        };
        let quarantined = Quarantined {
            channel_accounts_paused: answers.changes(self.paused),
            connectors_disabled: answers.changes(self.connectors),
            webhooks_disabled: answers.changes(self.webhooks),
            link_entries_paused: answers.changes(self.links),
            sends_failed: answers.changes(self.sends),
            deliveries_dead: answers.changes(self.deliveries),
            crm_jobs_dead: answers.changes(self.crm_jobs),
            bot_turns_dropped: answers.changes(self.bot_turns),
            api_keys_revoked: keys.len(),
            console_sessions_revoked: sessions,
            sso_tokens_revoked: tokens,
        };
        (quarantined, keys)
    }
}

/// The statements that put a restored business in quarantine, run after each page's rows in the
/// same batch: what is on is added to what earlier pages recorded; its channel accounts paused,
/// connectors, webhook endpoints and link entries switched off; its pieces marked for their
/// vectors to be written again; its queued sends failed, pending deliveries and CRM work
/// dead-lettered, the bot's turns dropped; unless `keep_access`, its keys, console sessions and
/// embedding tokens revoked.
pub(super) fn quarantine(
    db: &Db,
    tenant: &Tenant,
    now: Timestamp,
    keep_access: bool,
    batch: &mut Batch,
) -> Result<Quarantining, ApiError> {
    let stamp = now.to_rfc3339();
    batch.push([db::businesses::record_quarantine(db, tenant, &stamp)?]);
    let paused = batch.write(db::channel_accounts::pause_all(db, tenant, &stamp)?);
    let connectors = batch.write(db::crm_connectors::disable_all(db, tenant)?);
    let webhooks = batch.write(db::webhook_endpoints::disable_all(db, tenant)?);
    let links = batch.write(db::knowledge_links::deactivate_all(db, tenant)?);
    batch.push([db::knowledge_chunks::mark_restored(db, tenant)?]);
    let sends = batch.write(db::messages::fail_queued(db, tenant, RESTORED, &stamp)?);
    let deliveries = batch.write(db::webhook_deliveries::kill_pending(
        db,
        tenant,
        RESTORED,
        now.micros(),
    )?);
    let crm_jobs = batch.write(db::crm_sync_jobs::kill_pending(
        db,
        tenant,
        RESTORED,
        now.micros(),
    )?);
    let bot_turns = batch.write(db::bot_turns::drop_all(db, tenant)?);
    let access = if keep_access {
        None
    } else {
        Some((
            batch.read(db::api_keys::revoke_all(db, tenant, &stamp)?),
            batch.write(db::console_sessions::revoke_all(db, tenant, &stamp)?),
            batch.write(db::sso_tokens::revoke_all(db, tenant, &stamp)?),
        ))
    };
    Ok(Quarantining {
        paused,
        connectors,
        webhooks,
        links,
        sends,
        deliveries,
        crm_jobs,
        bot_turns,
        access,
    })
}

/// Switches the parts of a restored business's quarantine named (every part when none is) back
/// on, exactly what the restore switched off: the parts resumed, and what still waits.
pub async fn resume(
    db: &Db,
    tenant: &Tenant,
    parts: &[Part],
) -> Result<(Vec<Part>, Option<Quarantine>, Vec<SourceId>), ApiError> {
    let Some(mut left) = db::businesses::quarantine(db, tenant).await? else {
        return Ok((Vec::new(), None, Vec::new()));
    };
    let mut statements = Vec::new();
    let mut resumed = Vec::new();
    let mut sources = Vec::new();
    for part in left
        .waiting()
        .into_iter()
        .filter(|part| parts.is_empty() || parts.contains(part))
    {
        statements.push(match part {
            Part::ChannelAccounts => db::channel_accounts::resume(db, tenant, &left.channel_accounts)?,
            Part::Connectors => db::crm_connectors::enable_listed(db, tenant, &left.connectors)?,
            Part::Webhooks => db::webhook_endpoints::enable_listed(db, tenant, &left.webhooks)?,
            Part::Links => {
                sources = left
                    .links
                    .iter()
                    .filter_map(|(source, _)| SourceId::parse(source))
                    .collect();
                sources.dedup();
                db::knowledge_links::activate_listed(db, tenant, &left.links)?
            }
        });
        left = left.without(part);
        resumed.push(part);
    }
    let waiting = Some(left).filter(|left| !left.waiting().is_empty());
    statements.push(db::businesses::set_quarantine(db, tenant, waiting.as_ref())?);
    db.batch(statements).await?;
    Ok((resumed, waiting, sources))
}
