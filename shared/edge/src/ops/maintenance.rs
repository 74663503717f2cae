//! The periodic maintenance sweep, run every minute by webhook-dispatcher's cron and on demand by
//! `POST /admin/maintenance/sweep`: work the queues lost goes back on them (sends, webhook
//! deliveries, files received with messages; the D1 row is the truth; the dead-letter queues only
//! keep the raw queue messages for inspection), contacts whose
//! CRM work is overdue go back to the sync consumer, CRM links due for a fetch go to the fetcher
//! (the scheduler of the CRM links guide), and history past the retention period is
//! deleted. It looks across businesses and hands each item back
//! under its own business. Every part does a bounded amount of work per run, and a part that
//! fails does not stop the others.
//!
//! A business a move is under way for, or left a copy of, is swept only on the shard that holds
//! its settled copy (`directory::Moving`): the copy a move fills and the one it copies from must
//! not change under it (its verification would fail), and a copy left behind holds work that was
//! handed over with the business. A copy left behind that no command is deleting any more (an old
//! copy an hour after its switch, an aborted move's partial copy) is deleted here, a move step's
//! rows a shard a run.

use crate::Env;
use crate::db;
use crate::db::Db;
use crate::db::directory::{self, Moving};
use crate::events::outbox::{self, WebhookTask};
use crate::messaging::inbound_media::{self, MediaFetch};
use crate::messaging::message_status;
use crate::messaging::send_queue::QueuedSend;
use crate::runtime;
use crate::{console_error, console_log, console_warn};
use domain::error::ApiError;
use domain::idempotency;
use domain::ids::{AttachmentId, BusinessId, EventId};
use domain::maintenance::{
    BOT_TURN_REQUEUE_AFTER_SECONDS, CONSOLE_ENDED_GRACE_SECONDS, MAX_BOT_TURN_REQUEUES, MAX_SEND_REQUEUES,
    MEDIA_GIVE_UP_AFTER_SECONDS, MEDIA_REQUEUE_AFTER_SECONDS, MEDIA_ROWS_PER_RUN, ROWS_PER_RUN,
    RetentionPeriod, SSO_EXPIRED_GRACE_SECONDS, media_lost_reason, send_lost_reason,
    stuck_send_after_seconds,
};
use domain::shard_move::{Entry, abandoned};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use std::collections::BTreeMap;

/// The deployment setting that sets the retention period in days ([`RetentionPeriod`]).
pub const RETENTION_DAYS: &str = "RETENTION_DAYS";

/// Webhook work is lost once it is this late: well past any queue delay or lease.
const WEBHOOK_GRACE_SECONDS: i64 = 120;
/// An event is lost once it is this late undispatched: nothing is written before its first
/// attempts, so this must outlast the queue's delay and a dispatch's run together (no first
/// attempt starts a minute into it, and one lasts 30 s at most), or the sweep would attempt
/// again what a running dispatch has not recorded yet.
pub const UNDISPATCHED_GRACE_SECONDS: i64 = 300;

pub use domain::maintenance::SweepReport;

/// Runs every part of the sweep once, now, on every shard in turn (each part bounded per shard).
pub async fn sweep(env: &Env) -> Result<SweepReport, ApiError> {
    let db = env.db()?;
    let now = runtime::now();
    let retention = retention_period(env);
    let mut report = SweepReport {
        retention_days: retention.days(),
        ..SweepReport::default()
    };
    // Read once, on the directory's shard: the moves under way, a handful at most. Without it no
    // business is known to be settled anywhere, so nothing is swept; the next run tries again.
    let moves = match directory::unsettled(&db).await {
        Ok(moves) => moves,
        Err(error) => {
            failed(&mut report, "moves", &error);
            return Ok(report);
        }
    };
    for (number, shard) in db.each_shard().iter().enumerate() {
        let number = number as db::Shard;
        let moving = Moving::on(number, &moves);
        sweep_shard(env, shard, &moving, now, retention, &mut report).await;
        match moved_copies(&db, number, &moves, now).await {
            Ok(rows) => report.moved_copy_rows_deleted += rows,
            Err(error) => failed(&mut report, "moved_copies", &error),
        }
    }
    // Kept inbound is the deployment's, not a shard's: one bucket.
    match crate::messaging::held_inbound::delete_expired(env, now.plus_seconds(-retention.seconds())).await {
        Ok(count) => report.held_inbound_deleted += count,
        Err(error) => failed(&mut report, "held_inbound", &error),
    }
    Ok(report)
}

/// Deletes a step's rows of the first copy on `shard` that a move left behind and no command is
/// deleting any more ([`abandoned`]); the entry forgets the copy once none of it is left. Rows.
async fn moved_copies(
    db: &Db,
    shard: db::Shard,
    moves: &[(BusinessId, Entry)],
    now: Timestamp,
) -> Result<usize, ApiError> {
    let Some((business, _)) = moves
        .iter()
        .find(|(_, entry)| abandoned(entry, now.millis()) == Some(shard))
    else {
        return Ok(0);
    };
    let (rows, left) =
        crate::ops::shard_move::delete(db, shard, business, domain::shard_move::MOVED_TABLES.len() - 1)
            .await?;
    if left.is_none() {
        directory::forget_copy(db, business, shard).await?;
        console_log!("maintenance sweep: the copy of {business} on shard {shard} a move left is deleted");
    }
    Ok(rows)
}

/// The sweep of one shard, its counts added to `report`.
async fn sweep_shard(
    env: &Env,
    db: &Db,
    moving: &Moving,
    now: Timestamp,
    retention: RetentionPeriod,
    report: &mut SweepReport,
) {
    match lost_webhook_work(env, db, moving, now).await {
        Ok(count) => report.webhook_tasks_requeued += count,
        Err(error) => failed(report, "webhooks", &error),
    }
    match lost_sends(env, db, moving, now).await {
        Ok((requeued, given_up)) => {
            report.sends_requeued += requeued;
            report.sends_failed += given_up;
        }
        Err(error) => failed(report, "sends", &error),
    }
    match lost_media(env, db, moving, now).await {
        Ok((requeued, given_up)) => {
            report.media_requeued += requeued;
            report.media_failed += given_up;
        }
        Err(error) => failed(report, "media", &error),
    }
    match lost_crm_work(env, db, moving, now).await {
        Ok(count) => report.crm_contacts_handed_over += count,
        Err(error) => failed(report, "crm_sync", &error),
    }
    match due_crm_links(env, db, moving, now).await {
        Ok(count) => report.crm_links_due += count,
        Err(error) => failed(report, "crm_links", &error),
    }
    match lost_bot_turns(env, db, moving, now).await {
        Ok((requeued, given_up)) => {
            report.bot_turns_requeued += requeued;
            report.bot_turns_given_up += given_up;
        }
        Err(error) => failed(report, "bot_turns", &error),
    }
    let before = now.plus_seconds(-retention.seconds());
    match db::crm_sync_jobs::delete_settled_before(db, moving, before.micros(), ROWS_PER_RUN).await {
        Ok(count) => report.crm_sync_jobs_deleted += count,
        Err(error) => failed(report, "crm_sync_jobs", &error),
    }
    match db::crm_inbound_events::forget_before(db, moving, before.micros()).await {
        Ok(count) => report.crm_inbound_events_deleted += count,
        Err(error) => failed(report, "crm_inbound_events", &error),
    }
    match expired_events(db, moving, before).await {
        Ok((events, deliveries)) => {
            report.webhook_events_deleted += events;
            report.webhook_deliveries_deleted += deliveries;
        }
        Err(error) => failed(report, "webhook_events", &error),
    }
    match db::webhook_attempts::delete_older_than(db, moving, before, ROWS_PER_RUN).await {
        Ok(count) => report.webhook_attempts_deleted += count,
        Err(error) => failed(report, "webhook_attempts", &error),
    }
    let tokens_before = now.plus_seconds(-SSO_EXPIRED_GRACE_SECONDS);
    match db::sso_tokens::delete_expired_before(db, moving, tokens_before, ROWS_PER_RUN).await {
        Ok(count) => report.sso_tokens_deleted += count,
        Err(error) => failed(report, "sso_tokens", &error),
    }
    match db::oauth_states::delete_expired(db, moving, now.millis(), ROWS_PER_RUN).await {
        Ok(count) => report.oauth_states_deleted += count,
        Err(error) => failed(report, "oauth_states", &error),
    }
    let sessions_before = now.plus_seconds(-CONSOLE_ENDED_GRACE_SECONDS);
    match db::console_sessions::delete_ended(db, moving, sessions_before, ROWS_PER_RUN).await {
        Ok(count) => report.console_sessions_deleted += count,
        Err(error) => failed(report, "console_sessions", &error),
    }
    // API usage, connectors' call counts and resolved alerts are kept 35 days, whatever the
    // retention period.
    let usage_before = now.millis() - domain::key_usage::KEPT_DAYS * domain::key_usage::DAY_MS;
    match db::api_key_usage::delete_before(db, moving, usage_before, ROWS_PER_RUN).await {
        Ok(count) => report.api_key_usage_deleted += count,
        Err(error) => failed(report, "api_key_usage", &error),
    }
    // Each business's usage by day is kept a year and a month (`domain::cost::KEPT_DAYS`).
    let days_before = domain::cost::day_of(now.plus_seconds(-domain::cost::KEPT_DAYS * 86_400));
    match db::business_usage::delete_before(db, moving, &days_before, ROWS_PER_RUN).await {
        Ok(count) => report.business_usage_deleted += count,
        Err(error) => failed(report, "business_usage", &error),
    }
    match db::crm_call_minutes::delete_before(db, moving, usage_before, ROWS_PER_RUN).await {
        Ok(count) => report.crm_call_minutes_deleted += count,
        Err(error) => failed(report, "crm_call_minutes", &error),
    }
    match db::alerts::delete_resolved_before(db, moving, usage_before, ROWS_PER_RUN).await {
        Ok(count) => report.alerts_deleted += count,
        Err(error) => failed(report, "alerts_deleted", &error),
    }
    // The alert rules run after the parts above have handed lost work back, and their emails
    // after them.
    match crate::ops::alerting::run(env, db, moving, now).await {
        Ok(run) => {
            report.alerts_raised += run.raised;
            report.alerts_resolved += run.resolved;
        }
        Err(error) => failed(report, "alerts", &error),
    }
    match crate::ops::alerting::send_emails(env, db, moving, now).await {
        Ok(sent) => report.alert_emails_sent += sent,
        Err(error) => failed(report, "alert_emails", &error),
    }
    let keys_before = now.plus_seconds(-idempotency::RETENTION_SECONDS);
    match db::idempotency_keys::delete_created_before(db, moving, keys_before.micros(), ROWS_PER_RUN).await {
        Ok(count) => report.idempotency_keys_deleted += count,
        Err(error) => failed(report, "idempotency_keys", &error),
    }
    // Last: it takes what is left of the invocation's share of queries.
    match crate::ops::erasure::sweep(env, db, moving).await {
        Ok(count) => report.customers_erased += count,
        Err(error) => failed(report, "erasures", &error),
    }
}

/// The cron's invocation: the sweep, its usage counted like any other invocation's.
pub async fn run_scheduled(env: Env) {
    run(&env).await;
    env.report();
    env.after_report().await;
}

pub async fn run(env: &Env) {
    match sweep(env).await {
        Ok(report) => {
            let worked = report.webhook_tasks_requeued
                + report.sends_requeued
                + report.sends_failed
                + report.media_requeued
                + report.media_failed
                + report.webhook_events_deleted
                + report.customers_erased
                + report.webhook_attempts_deleted
                + report.sso_tokens_deleted
                + report.console_sessions_deleted
                + report.oauth_states_deleted
                + report.idempotency_keys_deleted
                + report.api_key_usage_deleted
                + report.business_usage_deleted
                + report.crm_call_minutes_deleted
                + report.crm_contacts_handed_over
                + report.crm_sync_jobs_deleted
                + report.crm_links_due
                + report.moved_copy_rows_deleted
                + report.alerts_raised
                + report.alerts_resolved
                + report.alert_emails_sent
                + report.alerts_deleted;
            if worked > 0 {
                console_log!("maintenance sweep: {report:?}");
            }
        }
        Err(error) => console_error!(
            "maintenance sweep failed: {}",
            error.detail().unwrap_or(&error.body.message)
        ),
    }
}

fn failed(report: &mut SweepReport, part: &'static str, error: &ApiError) {
    console_error!(
        "maintenance sweep: {part} failed, the next run tries again: {}",
        error.detail().unwrap_or(&error.body.message)
    );
    // The sweep runs shard by shard: a part that fails on several is named once.
    if !report.failed.contains(&part) {
        report.failed.push(part);
    }
}

/// The retention period this deployment set, or the default (with a warning when the setting
/// is malformed).
fn retention_period(env: &Env) -> RetentionPeriod {
    let setting = env.var(RETENTION_DAYS);
    let (period, warning) = RetentionPeriod::from_setting(setting.as_deref());
    if let Some(warning) = warning {
        console_warn!("maintenance sweep: {warning}");
    }
    period
}

/// Events recorded over [`UNDISPATCHED_GRACE_SECONDS`] ago and never dispatched (the queue
/// refused them, or their dispatch ended before recording its attempts), and pending deliveries
/// [`WEBHOOK_GRACE_SECONDS`] overdue that nobody holds (a retry message lost), go back on the
/// webhook queue. How many tasks were queued.
async fn lost_webhook_work(env: &Env, db: &Db, moving: &Moving, now: Timestamp) -> Result<usize, ApiError> {
    let before = now.plus_seconds(-WEBHOOK_GRACE_SECONDS);
    let undispatched_before = now.plus_seconds(-UNDISPATCHED_GRACE_SECONDS);
    let mut by_business: BTreeMap<BusinessId, Vec<EventId>> = BTreeMap::new();
    for (business_id, event_id) in
        db::webhook_events::undispatched(db, moving, undispatched_before, ROWS_PER_RUN).await?
    {
        by_business.entry(business_id).or_default().push(event_id);
    }
    let mut tasks: Vec<WebhookTask> = by_business
        .iter()
        .flat_map(|(business_id, ids)| outbox::dispatch_tasks(business_id, ids))
        .collect();
    let overdue = db::webhook_deliveries::overdue(db, moving, before, now, ROWS_PER_RUN).await?;
    tasks.extend(
        overdue
            .into_iter()
            .map(|(business_id, delivery_id, attempt)| WebhookTask::Deliver {
                business_id,
                delivery_id,
                attempt,
            }),
    );
    let count = tasks.len();
    if count > 0 {
        outbox::enqueue(env, tasks, 0)
            .await
            .map_err(|error| ApiError::internal("re-queueing lost webhook work", error))?;
    }
    Ok(count)
}

/// A due source is held this long while it waits in the queue, so that the next sweeps do not
/// queue it again; the fetcher sets its real next time.
const CRM_LINK_HOLD_SECONDS: i64 = 10 * 60;
/// A run over a CRM link's data that has not moved for this long lost its next slice: a slice
/// ends within a minute (`domain::links::fetch::SLICE_SECONDS`) and holds its link ten at most.
const CRM_LINK_STALLED_SECONDS: i64 = 10 * 60;

/// CRM links whose fetch time has come (the scheduler of the CRM links guide), and runs over a
/// link's data that stopped moving (the queue message of their next slice lost, their worker
/// gone), to the fetcher.
async fn due_crm_links(env: &Env, db: &Db, moving: &Moving, now: Timestamp) -> Result<usize, ApiError> {
    let mut due =
        db::knowledge_sources::take_due(db, moving, now, ROWS_PER_RUN, CRM_LINK_HOLD_SECONDS).await?;
    let stalled_before = now.plus_seconds(-CRM_LINK_STALLED_SECONDS).to_rfc3339();
    due.extend(
        db::knowledge_sources::stalled_runs(db, moving, &stalled_before, &now.to_rfc3339(), ROWS_PER_RUN)
            .await?,
    );
    crate::knowledge::hand_over(env, &due).await;
    Ok(due.len())
}

/// Contacts whose CRM work is over [`WEBHOOK_GRACE_SECONDS`] overdue and that no worker holds
/// (their queue message was lost, or refused) go back to the sync consumer. How many.
async fn lost_crm_work(env: &Env, db: &Db, moving: &Moving, now: Timestamp) -> Result<usize, ApiError> {
    let before = now.plus_seconds(-WEBHOOK_GRACE_SECONDS);
    let contacts =
        db::crm_sync_jobs::overdue_contacts(db, moving, before.micros(), now.micros(), ROWS_PER_RUN).await?;
    crate::crm::sync::hand_over(env, &contacts, 0).await;
    Ok(contacts.len())
}

/// The bot's turns whose queue message was lost (not taken [`BOT_TURN_REQUEUE_AFTER_SECONDS`]
/// after it was sent) go back on the bot's queue; those handed over [`MAX_BOT_TURN_REQUEUES`]
/// times already are given up. (requeued, given up).
async fn lost_bot_turns(
    env: &Env,
    db: &Db,
    moving: &Moving,
    now: Timestamp,
) -> Result<(usize, usize), ApiError> {
    let before = now.plus_seconds(-BOT_TURN_REQUEUE_AFTER_SECONDS).millis();
    let given_up = db::bot_turns::given_up(db, moving, before, MAX_BOT_TURN_REQUEUES, ROWS_PER_RUN).await?;
    for turn in &given_up {
        console_warn!(
            "the bot's turn for message {} was not taken after {MAX_BOT_TURN_REQUEUES} tries: given up",
            turn.message_id
        );
    }
    let turns = db::bot_turns::take_waiting(
        db,
        moving,
        before,
        now.millis(),
        MAX_BOT_TURN_REQUEUES,
        ROWS_PER_RUN,
    )
    .await?;
    // Taken but not queued: the next run's bound hands it over again.
    crate::platform::queue::send_all(env, &turns, 0)
        .await
        .map_err(|error| ApiError::internal("re-queueing the bot's turns", error))?;
    for turn in &turns {
        console_warn!(
            "the bot's turn for message {}: lost by the queue, put back on it",
            turn.message_id
        );
    }
    Ok((turns.len(), given_up.len()))
}

/// Sends still `queued` past [`stuck_send_after_seconds`] go back on the outbound queue with the
/// subject and base URL they were accepted with; those already re-queued
/// [`MAX_SEND_REQUEUES`] times are failed instead. (requeued, failed).
async fn lost_sends(env: &Env, db: &Db, moving: &Moving, now: Timestamp) -> Result<(usize, usize), ApiError> {
    let unnoted_before = now.plus_seconds(-stuck_send_after_seconds(false));
    let noted_before = now.plus_seconds(-stuck_send_after_seconds(true));
    let lost = db::messages::lost_beyond_requeues(
        db,
        moving,
        unnoted_before,
        noted_before,
        MAX_SEND_REQUEUES,
        ROWS_PER_RUN,
    )
    .await?;
    let reason = send_lost_reason();
    let mut given_up = 0;
    for (business_id, message_id) in lost {
        let tenant = Tenant::for_background(business_id);
        if message_status::mark_failed(db, &tenant, &message_id, &reason).await? {
            console_warn!("message {message_id}: failed by the sweep: {reason}");
            given_up += 1;
        }
    }
    let taken = db::messages::take_lost_sends(
        db,
        moving,
        unnoted_before,
        noted_before,
        MAX_SEND_REQUEUES,
        now,
        ROWS_PER_RUN,
    )
    .await?;
    let jobs: Vec<QueuedSend> = taken
        .into_iter()
        .map(|send| QueuedSend {
            business_id: send.business_id,
            message_id: send.id,
            subject: send.send_subject,
            media_base_url: send.send_media_base_url,
            accepted: None,
        })
        .collect();
    // Taken but not queued: counted already, so the next bound's sweep tries it again.
    crate::platform::queue::send_all(env, &jobs, 0)
        .await
        .map_err(|error| ApiError::internal("re-queueing lost sends", error))?;
    for job in &jobs {
        console_warn!("message {}: lost by the queue, put back on it", job.message_id);
    }
    Ok((jobs.len(), given_up))
}

/// Files received with messages still pending past [`MEDIA_REQUEUE_AFTER_SECONDS`] go back to the
/// media-fetcher once; those still pending past [`MEDIA_GIVE_UP_AFTER_SECONDS`] are failed, and
/// their messages' held-back events go out. (requeued, failed).
async fn lost_media(env: &Env, db: &Db, moving: &Moving, now: Timestamp) -> Result<(usize, usize), ApiError> {
    let give_up_before = now.plus_seconds(-MEDIA_GIVE_UP_AFTER_SECONDS).to_rfc3339();
    let reason = media_lost_reason();
    let mut given_up = 0;
    for file in
        db::attachments::unsettled_before(db, moving, &give_up_before, false, MEDIA_ROWS_PER_RUN).await?
    {
        let tenant = Tenant::for_background(file.business_id);
        if db::attachments::settle(db, &tenant, &file.id, Err(&reason)).await? {
            console_warn!("media {}: failed by the sweep: {reason}", file.id);
            given_up += 1;
        }
        inbound_media::release_events_when_settled(env, db, &tenant, &file.message_id).await?;
    }
    let requeue_before = now.plus_seconds(-MEDIA_REQUEUE_AFTER_SECONDS).to_rfc3339();
    let lost =
        db::attachments::unsettled_before(db, moving, &requeue_before, true, MEDIA_ROWS_PER_RUN).await?;
    if lost.is_empty() {
        return Ok((0, given_up));
    }
    let ids: Vec<&AttachmentId> = lost.iter().map(|file| &file.id).collect();
    db::attachments::mark_requeued(db, &ids, &now.to_rfc3339()).await?;
    let jobs: Vec<MediaFetch> = lost
        .iter()
        .map(|file| MediaFetch {
            business_id: file.business_id.clone(),
            attachment_id: file.id.clone(),
        })
        .collect();
    // Marked but not queued: the give-up above settles it in time, and the event goes out.
    crate::platform::queue::send_all(env, &jobs, 0)
        .await
        .map_err(|error| ApiError::internal("re-queueing lost media", error))?;
    for job in &jobs {
        console_warn!("media {}: lost by the queue, put back on it", job.attachment_id);
    }
    Ok((jobs.len(), given_up))
}

/// Deletes events past retention whose deliveries are all settled, with those deliveries, in one
/// batch. (events, deliveries).
async fn expired_events(db: &Db, moving: &Moving, before: Timestamp) -> Result<(usize, usize), ApiError> {
    let statements = vec![
        db::webhook_deliveries::delete_of_events(
            db,
            db::webhook_events::expired(moving, before, ROWS_PER_RUN),
        )?,
        db::webhook_events::delete_expired(db, moving, before, ROWS_PER_RUN)?,
    ];
    match db::write_together(db, statements)
        .await
        .map_err(|error| ApiError::from(error).doing("deleting webhook events past retention"))?[..]
    {
        [deliveries, events] => Ok((events, deliveries)),
        _ => Err(ApiError::internal(
            "deleting webhook events past retention",
            "two writes, another count",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::outbox::WEBHOOKS;
    use crate::messaging::inbound_media::INBOUND_MEDIA;
    use crate::messaging::send_queue::OUTBOUND;
    use crate::runtime::Level;
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use domain::channel::Channel;
    use domain::inbound::{InboundMedia, InboundMessage};
    use domain::outgoing::OutgoingMessage;
    use domain::webhooks::EventType;
    use serde_json::json;
    use std::time::Duration;

    async fn swept(fixture: &Fixture) -> SweepReport {
        let env = Env::new(fixture.stack.clone(), "cron");
        sweep(&env).await.unwrap_or_else(|error| panic!("{error:?}"))
    }

    fn later(fixture: &Fixture, seconds: i64) {
        fixture.stack.advance(Duration::from_secs(seconds as u64));
    }

    /// A business on `shard` with an endpoint for every event, a WhatsApp number and Ada.
    async fn business(
        fixture: &Fixture,
        shard: db::Shard,
    ) -> (
        Tenant,
        crate::db::channel_accounts::ChannelAccount,
        domain::customer::Customer,
    ) {
        let tenant = fixture.business_on("Acme", shard).await;
        let account = fixture
            .on_whatsapp(&tenant, &format!("10654035224292{shard}"))
            .await;
        let ada = fixture.ada(&tenant).await;
        (tenant, account, ada)
    }

    async fn send(
        fixture: &Fixture,
        tenant: &Tenant,
        customer: &domain::customer::Customer,
    ) -> domain::ids::MessageId {
        let outgoing = OutgoingMessage {
            channel: Channel::Whatsapp,
            content: "Hello".to_owned(),
            subject: Some("Re: order".to_owned()),
            attachments: Vec::new(),
            reply: None,
        };
        crate::messaging::send_queue::accept_on_channel(
            &fixture.env,
            &fixture.db,
            tenant,
            customer,
            &outgoing,
            "https://api.example",
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"))
        .id
    }

    #[test]
    fn events_the_queue_never_got_are_dispatched_again_once_they_are_five_minutes_late() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, _, _) = business(&fixture, 1).await;
            let events = fixture.rows("webhook_events", "id");
            assert_eq!(events.len(), 1, "customer.created");
            fixture.stack.purge(WEBHOOKS);
            later(&fixture, UNDISPATCHED_GRACE_SECONDS);
            assert_eq!(swept(&fixture).await.webhook_tasks_requeued, 0, "not late yet");
            later(&fixture, 1);
            assert_eq!(swept(&fixture).await.webhook_tasks_requeued, 1);
            match fixture.queued::<WebhookTask>(WEBHOOKS).as_slice() {
                [
                    WebhookTask::Dispatch {
                        business_id,
                        event_ids,
                    },
                ] => {
                    assert_eq!(business_id, &tenant.business_id);
                    assert_eq!(
                        event_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        vec![events[0]["id"].as_str().unwrap_or_default()]
                    );
                }
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn a_retry_whose_queue_message_was_lost_is_handed_back_at_its_attempt() {
        let fixture = Fixture::new();
        fixture
            .stack
            .partner("hooks.acme.example", |_| Reply::text(503, "down"));
        fixture.run(async {
            let (tenant, _, _) = business(&fixture, 0).await;
            let ids = fixture.event_ids();
            let due = fixture.dispatch(&tenant, &ids).await;
            fixture.attempt(&tenant, &due[0]).await;
            fixture.stack.purge(WEBHOOKS);
            later(&fixture, 2 + WEBHOOK_GRACE_SECONDS + 1);
            let report = swept(&fixture).await;
            assert_eq!(report.webhook_tasks_requeued, 1);
            match fixture.queued::<WebhookTask>(WEBHOOKS).as_slice() {
                [
                    WebhookTask::Deliver {
                        delivery_id, attempt, ..
                    },
                ] => {
                    assert_eq!((delivery_id, *attempt), (&due[0].0.delivery_id, 2));
                }
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn a_send_the_queue_lost_goes_back_with_what_it_was_accepted_with_and_is_failed_after_three_rounds() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, _, ada) = business(&fixture, 1).await;
            let id = send(&fixture, &tenant, &ada).await;
            fixture.stack.purge(OUTBOUND);
            let stuck = stuck_send_after_seconds(false);
            later(&fixture, stuck - 1);
            assert_eq!(swept(&fixture).await.sends_requeued, 0, "not stuck yet");
            for round in 1..=MAX_SEND_REQUEUES {
                later(&fixture, stuck + 1);
                let report = swept(&fixture).await;
                assert_eq!(
                    (report.sends_requeued, report.sends_failed),
                    (1, 0),
                    "round {round}"
                );
                let queued: Vec<QueuedSend> = fixture.queued(OUTBOUND);
                fixture.stack.purge(OUTBOUND);
                assert_eq!(
                    queued,
                    vec![QueuedSend {
                        business_id: tenant.business_id.clone(),
                        message_id: id.clone(),
                        subject: Some("Re: order".to_owned()),
                        media_base_url: Some("https://api.example".to_owned()),
                        accepted: None,
                    }],
                    "round {round}"
                );
                assert_eq!(
                    swept(&fixture).await.sends_requeued,
                    0,
                    "round {round}: not twice in one period"
                );
            }
            later(&fixture, stuck + 1);
            let report = swept(&fixture).await;
            assert_eq!((report.sends_requeued, report.sends_failed), (0, 1));
            let messages = fixture.rows("messages", "id");
            assert_eq!(messages[0]["status"], "failed");
            assert_eq!(messages[0]["status_reason"], send_lost_reason());
            assert!(fixture.stack.queued(OUTBOUND).is_empty());
        });
    }

    #[test]
    fn a_file_the_fetcher_lost_is_handed_back_once_then_failed_and_its_message_event_released() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, account, _) = business(&fixture, 0).await;
            let message = InboundMessage {
                provider_message_id: "wamid.1".to_owned(),
                from: "+353870000000".to_owned(),
                sender_name: None,
                content: String::new(),
                media: vec![InboundMedia::WhatsappMediaId {
                    id: "media-1".to_owned(),
                    mime_type: None,
                    filename: None,
                }],
            };
            fixture.ingest_one(&account, message).await;
            fixture.stack.purge(INBOUND_MEDIA);
            fixture.stack.purge(WEBHOOKS);
            later(&fixture, MEDIA_REQUEUE_AFTER_SECONDS + 1);
            assert_eq!(swept(&fixture).await.media_requeued, 1);
            let jobs: Vec<MediaFetch> = fixture.queued(INBOUND_MEDIA);
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].business_id, tenant.business_id);
            later(&fixture, MEDIA_REQUEUE_AFTER_SECONDS + 1);
            assert_eq!(swept(&fixture).await.media_requeued, 0, "handed back once only");
            later(&fixture, MEDIA_GIVE_UP_AFTER_SECONDS);
            let report = swept(&fixture).await;
            assert_eq!(report.media_failed, 1);
            let files = fixture.rows("attachments", "id");
            assert_eq!(
                (files[0]["status"].as_str(), files[0]["status_reason"].as_str()),
                (Some("failed"), Some(media_lost_reason().as_str()))
            );
            let received: Vec<String> = fixture
                .rows("webhook_events", "id")
                .into_iter()
                .filter(|row| row["type"] == "message.received")
                .map(|row| row["id"].as_str().unwrap_or_default().to_owned())
                .collect();
            let published = fixture.dispatched();
            assert!(published.contains(&received[0]), "{published:?}");
        });
    }

    #[test]
    fn history_past_retention_is_deleted_and_what_is_still_pending_is_kept() {
        let fixture = Fixture::new();
        fixture.stack.set_var(RETENTION_DAYS, "1");
        // The first event's first attempt is delivered, the second's fails: it stays pending.
        let mut answered = 0;
        fixture.stack.partner("hooks.acme.example", move |_| {
            answered += 1;
            if answered == 1 {
                Reply::text(200, "ok")
            } else {
                Reply::text(503, "down")
            }
        });
        fixture.run(async {
            let (tenant, _, _) = business(&fixture, 1).await;
            let ids = fixture.event_ids();
            let due = fixture.dispatch(&tenant, &ids).await;
            fixture.attempt(&tenant, &due[0]).await;
            // A second event, dispatched but still pending at its endpoint.
            fixture
                .customers(
                    &tenant,
                    json!([{ "name": "Grace", "email": "grace@example.com" }]),
                )
                .await;
            let pending: Vec<EventId> = fixture
                .event_ids()
                .into_iter()
                .filter(|id| !ids.contains(id))
                .collect();
            let due = fixture.dispatch(&tenant, &pending).await;
            fixture.attempt(&tenant, &due[0]).await;
            later(&fixture, 86_400 - 1);
            let early = swept(&fixture).await;
            assert_eq!((early.retention_days, early.webhook_events_deleted), (1, 0));
            later(&fixture, 2);
            let report = swept(&fixture).await;
            assert_eq!(
                (
                    report.webhook_events_deleted,
                    report.webhook_deliveries_deleted,
                    report.webhook_attempts_deleted
                ),
                (1, 0, 2),
                "the delivered event and both attempts; its delivery had no row but its attempt"
            );
            // The pending one is kept (beside the alert its failing endpoint raised meanwhile).
            let kept: Vec<_> = fixture
                .rows("webhook_events", "id")
                .into_iter()
                .filter(|row| row["type"] == "customer.created")
                .collect();
            assert_eq!(kept.len(), 1, "{kept:?}");
            assert_eq!(kept[0]["id"], pending[0].as_str());
            assert_eq!(fixture.rows("webhook_deliveries", "id").len(), 1);
        });
    }

    #[test]
    fn a_shard_that_does_not_answer_fails_its_parts_once_and_the_other_shard_is_swept() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (on_first, _, _) = business(&fixture, 0).await;
            business(&fixture, 1).await;
            fixture.stack.purge(WEBHOOKS);
            fixture
                .stack
                .outage("DB_1", "D1 DB is overloaded. Requests queued for too long.");
            later(&fixture, UNDISPATCHED_GRACE_SECONDS + 1);
            let report = swept(&fixture).await;
            assert_eq!(report.webhook_tasks_requeued, 1, "the first shard's event");
            assert!(matches!(
                fixture.queued::<WebhookTask>(WEBHOOKS).as_slice(),
                [WebhookTask::Dispatch { business_id, .. }] if *business_id == on_first.business_id
            ));
            assert!(report.failed.contains(&"webhooks"), "{:?}", report.failed);
            // The directory's read of the moves under way answers; the rest of its shard does not.
            fixture
                .stack
                .outage_after("DB", 1, "D1 DB is overloaded. Requests queued for too long.");
            let both = swept(&fixture).await;
            let mut once = both.failed.clone();
            once.sort_unstable();
            once.dedup();
            assert_eq!(
                once.len(),
                both.failed.len(),
                "each part named once: {:?}",
                both.failed
            );
            assert!(
                both.failed.contains(&"sends") && both.failed.contains(&"idempotency_keys"),
                "{:?}",
                both.failed
            );
            // Without the directory no business is known settled: nothing is swept.
            fixture
                .stack
                .outage("DB", "D1 DB is overloaded. Requests queued for too long.");
            fixture.stack.restore("DB_1");
            let blind = swept(&fixture).await;
            assert_eq!(blind.failed, ["moves"]);
            assert_eq!(blind.webhook_tasks_requeued, 0, "not even the answering shard's");
        });
        assert!(
            !fixture
                .stack
                .logged(Level::Error, "maintenance sweep: webhooks failed")
                .is_empty()
        );
    }

    #[test]
    fn a_retention_setting_that_is_not_a_number_of_days_is_the_default_with_a_warning() {
        let fixture = Fixture::new();
        fixture.stack.set_var(RETENTION_DAYS, "thirty");
        let report = fixture.run(swept(&fixture));
        assert_eq!(report.retention_days, 30);
        assert_eq!(fixture.stack.logged(Level::Warn, "maintenance sweep:").len(), 1);
    }

    #[test]
    fn a_run_that_worked_logs_its_report_and_one_that_did_nothing_is_quiet() {
        let fixture = Fixture::new();
        fixture.run(run_scheduled(Env::new(fixture.stack.clone(), "cron")));
        assert!(fixture.stack.logged(Level::Log, "maintenance sweep:").is_empty());
        assert_eq!(fixture.stack.logged(Level::Log, "[usage] native cron").len(), 1);
        fixture.run(async {
            let (_, _, _) = business(&fixture, 0).await;
            fixture.stack.purge(WEBHOOKS);
            later(&fixture, UNDISPATCHED_GRACE_SECONDS + 1);
            run(&Env::new(fixture.stack.clone(), "cron")).await;
        });
        let logged = fixture.stack.logged(Level::Log, "maintenance sweep:");
        assert_eq!(logged.len(), 1);
        assert!(logged[0].contains("webhook_tasks_requeued: 1"), "{}", logged[0]);
    }

    #[test]
    fn tokens_sessions_and_idempotency_keys_are_deleted_a_day_after_they_ended() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, _, ada) = business(&fixture, 1).await;
            let now = runtime::now();
            let token = domain::sso::issue([2; 32]);
            db::sso_tokens::insert(
                &fixture.db,
                &tenant,
                &db::sso_tokens::NewToken {
                    id: &domain::ids::SsoTokenId::generate([3; 16]),
                    customer_id: &ada.id,
                    scope: domain::sso::Scope::Inbox,
                    issued: &token,
                    created_at: now,
                    expires_at: now.plus_seconds(3600),
                },
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            let link = domain::console::issue_link([4; 32]);
            db::console_sessions::insert_link(
                &fixture.db,
                &tenant,
                &db::console_sessions::NewLink {
                    id: &domain::ids::ConsoleSessionId::generate([5; 16]),
                    issued_by: "admin",
                    link_hash: &link.hash,
                    link_expires_at: now.plus_seconds(3600),
                    created_at: now,
                },
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            let key = domain::idempotency::IdempotencyKey::from_header(Some("k-1"))
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("a key"));
            db::idempotency_keys::claim(
                &fixture.db,
                &tenant,
                &db::idempotency_keys::Claim {
                    key: &key,
                    fingerprint: "f",
                    claim: "c",
                    now_us: now.micros(),
                    lease_until_us: now.micros() + 60_000_000,
                    expired_before_us: 0,
                },
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            later(&fixture, 3600 + SSO_EXPIRED_GRACE_SECONDS - 1);
            let early = swept(&fixture).await;
            assert_eq!(
                (
                    early.sso_tokens_deleted,
                    early.console_sessions_deleted,
                    early.idempotency_keys_deleted
                ),
                (0, 0, 1)
            );
            later(&fixture, 2);
            let report = swept(&fixture).await;
            assert_eq!(
                (report.sso_tokens_deleted, report.console_sessions_deleted),
                (1, 1)
            );
            for table in ["sso_tokens", "console_sessions", "idempotency_keys"] {
                assert!(fixture.rows(table, "1").is_empty(), "{table}");
            }
        });
    }

    #[test]
    fn a_send_waiting_on_a_providers_retry_is_left_alone_for_longer() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, _, ada) = business(&fixture, 0).await;
            let id = send(&fixture, &tenant, &ada).await;
            fixture.stack.purge(OUTBOUND);
            message_status::note_retry(
                &fixture.db,
                &tenant,
                &id,
                "attempt 1 of 5 failed, retrying in 3600 s",
            )
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
            let (unnoted, noted) = (stuck_send_after_seconds(false), stuck_send_after_seconds(true));
            assert!(noted > unnoted);
            later(&fixture, noted - 1);
            assert_eq!(
                swept(&fixture).await.sends_requeued,
                0,
                "waiting on a provider's retry"
            );
            let messages = fixture.rows("messages", "id");
            assert_eq!(
                (
                    messages[0]["status"].as_str(),
                    messages[0]["send_requeues"].as_i64()
                ),
                (Some("queued"), Some(0))
            );
            later(&fixture, 2);
            assert_eq!(swept(&fixture).await.sends_requeued, 1);
        });
    }

    /// Every row of `business` in every moved table on each shard, as `SELECT *` gives them.
    fn everything_of(
        fixture: &Fixture,
        business: &BusinessId,
    ) -> Vec<Vec<serde_json::Map<String, serde_json::Value>>> {
        let mut all = Vec::new();
        for binding in ["DB", "DB_1"] {
            for table in &domain::shard_move::MOVED_TABLES {
                all.push(
                    fixture
                        .rows_on(binding, table.name, "rowid")
                        .into_iter()
                        .filter(|row| row.get(table.business_column) == Some(&json!(business.as_str())))
                        .collect(),
                );
            }
        }
        all
    }

    /// How many events of `business` the webhook queue holds tasks for.
    fn dispatched_for(fixture: &Fixture, business: &BusinessId) -> usize {
        fixture
            .queued::<WebhookTask>(WEBHOOKS)
            .into_iter()
            .map(|task| match task {
                WebhookTask::Dispatch {
                    business_id,
                    event_ids,
                } if business_id == *business => event_ids.len(),
                _ => 0,
            })
            .sum()
    }

    /// Steps the move of `business` to shard 1 until a step answers `phase` (waiting as each says).
    async fn move_until(
        fixture: &Fixture,
        business: &BusinessId,
        phase: &str,
        cursor: Option<String>,
    ) -> Option<String> {
        let mut cursor = cursor;
        for _ in 0..100 {
            let env = Env::new(fixture.stack.clone(), "fetch");
            let db = env.db().unwrap_or_else(|error| panic!("{error}"));
            let audit = crate::platform::audit::Audit::new(domain::audit::Actor::Admin, None);
            let at = cursor.as_deref().map(|text| {
                domain::shard_move::Cursor::parse(text).unwrap_or_else(|error| panic!("{error}"))
            });
            let out =
                crate::ops::shard_move::step(&env, &audit, &db, business, 1, at, fixture.stack.now_ms())
                    .await
                    .unwrap_or_else(|error| panic!("{error:?}"));
            fixture
                .stack
                .advance(Duration::from_secs(u64::from(out.wait_seconds)));
            cursor = out.cursor;
            if out.phase == phase || cursor.as_deref().is_some_and(|cursor| cursor.starts_with(phase)) {
                return cursor;
            }
        }
        panic!("the move never reached {phase}");
    }

    #[test]
    fn the_sweep_leaves_a_moving_businesss_copies_alone_sweeps_its_settled_copy_and_deletes_an_old_copy_left_behind()
     {
        let fixture = Fixture::new();
        fixture.run(async {
            let (moving, _, _) = business(&fixture, 0).await;
            let id = &moving.business_id;
            let other = fixture.business_on("Globex", 0).await;
            fixture
                .webhook_endpoint(
                    &other,
                    "https://hooks.globex.example/in",
                    &EventType::SUBSCRIBABLE,
                )
                .await;
            fixture
                .customers(&other, json!([{ "name": "Bob", "phone": "+353871234999" }]))
                .await;
            fixture.stack.purge(WEBHOOKS);
            let undispatched = fixture
                .rows("webhook_events", "rowid")
                .iter()
                .filter(|row| row["business_id"] == json!(id.as_str()))
                .count();
            assert!(undispatched > 0, "the business has events its queue lost");

            // Copied, not yet verified: neither the copy being filled nor its source is touched.
            let cursor = move_until(&fixture, id, "verify", None).await;
            later(&fixture, UNDISPATCHED_GRACE_SECONDS + 1);
            let before = everything_of(&fixture, id);
            let report = swept(&fixture).await;
            assert_eq!(
                everything_of(&fixture, id),
                before,
                "while it moves, no row of it changes"
            );
            assert_eq!(
                dispatched_for(&fixture, id),
                0,
                "while it moves, none of its work is handed over"
            );
            assert!(
                dispatched_for(&fixture, &other.business_id) > 0,
                "another business on the same shard is swept: {report:?}"
            );

            // Switched: the old copy is left alone, the settled one is swept, once.
            move_until(&fixture, id, "switched", cursor).await;
            fixture.stack.purge(WEBHOOKS);
            let stale: Vec<_> = everything_of(&fixture, id)
                .into_iter()
                .take(domain::shard_move::MOVED_TABLES.len())
                .collect();
            swept(&fixture).await;
            let after: Vec<_> = everything_of(&fixture, id)
                .into_iter()
                .take(domain::shard_move::MOVED_TABLES.len())
                .collect();
            assert_eq!(after, stale, "the old copy is left as it was");
            assert_eq!(
                dispatched_for(&fixture, id),
                undispatched,
                "its lost work is handed over from its new shard alone"
            );

            // The command that should have deleted the old copy stopped: an hour on, the sweep does.
            later(&fixture, domain::shard_move::ABANDONED_AFTER_MS / 1000 + 60);
            let report = swept(&fixture).await;
            assert!(report.moved_copy_rows_deleted > 0, "{report:?}");
            let left: usize = everything_of(&fixture, id)
                .iter()
                .take(domain::shard_move::MOVED_TABLES.len())
                .map(Vec::len)
                .sum();
            assert_eq!(left, 0, "nothing of the business is left on its old shard");
            let entry = db::directory::entry(&fixture.db, id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                (entry.shard, entry.moved_from),
                (1, None),
                "the directory forgot the copy"
            );
            assert!(
                fixture
                    .rows_on("DB_1", "customers", "rowid")
                    .iter()
                    .any(|row| row["business_id"] == json!(id.as_str())),
                "its settled copy is whole"
            );
        });
    }

    #[test]
    fn an_aborted_moves_partial_copy_is_deleted_by_the_sweep_when_the_abort_stops() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, _, _) = business(&fixture, 0).await;
            let id = &tenant.business_id;
            let many: Vec<serde_json::Value> = (0..domain::shard_move::ROWS_PER_STEP)
                .map(|n| json!({ "name": format!("c{n}"), "email": format!("c{n}@example.com") }))
                .collect();
            fixture.customers(&tenant, serde_json::Value::Array(many)).await;
            move_until(&fixture, id, "verify", None).await;
            let copied = |binding: &str| {
                fixture
                    .rows_on(binding, "customers", "rowid")
                    .iter()
                    .filter(|row| row["business_id"] == json!(id.as_str()))
                    .count()
            };
            assert!(copied("DB_1") > 0, "partly copied");
            // The abort's first step ends the pause; its command stops there.
            let env = Env::new(fixture.stack.clone(), "fetch");
            let db = env.db().unwrap_or_else(|error| panic!("{error}"));
            let audit = crate::platform::audit::Audit::new(domain::audit::Actor::Admin, None);
            let first = crate::ops::shard_move::abort_step(&env, &audit, &db, id, None)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(first.phase, "deleting", "a step's rows deleted, more left");
            let mut runs = 0;
            while copied("DB_1") > 0 {
                runs += 1;
                assert!(runs < 20, "the sweep deletes the copy");
                swept(&fixture).await;
            }
            let entry = db::directory::entry(&fixture.db, id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                Entry { revision: 0, ..entry },
                Entry::default(),
                "settled on its shard"
            );
            assert!(copied("DB") > 0, "its own copy is untouched");
        });
    }
}
