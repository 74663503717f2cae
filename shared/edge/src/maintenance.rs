//! The periodic maintenance sweep, run every minute by webhook-dispatcher's cron and on demand by
//! `POST /admin/maintenance/sweep`: work the queues lost goes back on them (sends, webhook
//! deliveries, files received with messages; the D1 row is the truth; the dead-letter queues only
//! keep the raw queue messages for inspection), contacts whose
//! CRM work is overdue go back to the sync consumer, CRM links due for a fetch go to the fetcher
//! (the scheduler of the CRM links guide), and history past the retention period is
//! deleted. It looks across businesses and hands each item back
//! under its own business. Every part does a bounded amount of work per run, and a part that
//! fails does not stop the others.

use crate::DB;
use crate::Env;
use crate::db;
use crate::db::Db;
use crate::inbound_media::{self, INBOUND_MEDIA, MediaFetch};
use crate::message_status;
use crate::outbox::{self, WebhookTask};
use crate::runtime;
use crate::send_queue::{OUTBOUND, QueuedSend};
use crate::{console_error, console_log, console_warn};
use domain::error::ApiError;
use domain::idempotency;
use domain::ids::{AttachmentId, BusinessId, EventId};
use domain::maintenance::{
    CONSOLE_ENDED_GRACE_SECONDS, MAX_SEND_REQUEUES, MEDIA_GIVE_UP_AFTER_SECONDS, MEDIA_REQUEUE_AFTER_SECONDS,
    MEDIA_ROWS_PER_RUN, ROWS_PER_RUN, RetentionPeriod, SSO_EXPIRED_GRACE_SECONDS, media_lost_reason,
    send_lost_reason, stuck_send_after_seconds,
};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use std::collections::BTreeMap;

/// The deployment setting that sets the retention period in days ([`RetentionPeriod`]).
pub const RETENTION_DAYS: &str = "RETENTION_DAYS";

/// Webhook work is lost once it is this late: well past any queue delay or lease.
const WEBHOOK_GRACE_SECONDS: i64 = 120;

pub use domain::maintenance::SweepReport;

/// Runs every part of the sweep once, now, on every shard in turn (each part bounded per shard).
pub async fn sweep(env: &Env) -> Result<SweepReport, ApiError> {
    let db = env.d1(DB)?;
    let now = runtime::now();
    let retention = retention_period(env);
    let mut report = SweepReport {
        retention_days: retention.days(),
        ..SweepReport::default()
    };
    for shard in db.each_shard() {
        sweep_shard(env, &shard, now, retention, &mut report).await;
    }
    Ok(report)
}

/// The sweep of one shard, its counts added to `report`.
async fn sweep_shard(
    env: &Env,
    db: &Db,
    now: Timestamp,
    retention: RetentionPeriod,
    report: &mut SweepReport,
) {
    match lost_webhook_work(env, db, now).await {
        Ok(count) => report.webhook_tasks_requeued += count,
        Err(error) => failed(report, "webhooks", &error),
    }
    match lost_sends(env, db, now).await {
        Ok((requeued, given_up)) => {
            report.sends_requeued += requeued;
            report.sends_failed += given_up;
        }
        Err(error) => failed(report, "sends", &error),
    }
    match lost_media(env, db, now).await {
        Ok((requeued, given_up)) => {
            report.media_requeued += requeued;
            report.media_failed += given_up;
        }
        Err(error) => failed(report, "media", &error),
    }
    match lost_crm_work(env, db, now).await {
        Ok(count) => report.crm_contacts_handed_over += count,
        Err(error) => failed(report, "crm_sync", &error),
    }
    match due_crm_links(env, db, now).await {
        Ok(count) => report.crm_links_due += count,
        Err(error) => failed(report, "crm_links", &error),
    }
    let before = now.plus_seconds(-retention.seconds());
    match db::crm_sync_jobs::delete_settled_before(db, before.micros(), ROWS_PER_RUN).await {
        Ok(count) => report.crm_sync_jobs_deleted += count,
        Err(error) => failed(report, "crm_sync_jobs", &error),
    }
    match db::crm_inbound_events::forget_before(db, before.micros()).await {
        Ok(count) => report.crm_inbound_events_deleted += count,
        Err(error) => failed(report, "crm_inbound_events", &error),
    }
    match expired_events(db, before).await {
        Ok((events, deliveries)) => {
            report.webhook_events_deleted += events;
            report.webhook_deliveries_deleted += deliveries;
        }
        Err(error) => failed(report, "webhook_events", &error),
    }
    match db::webhook_attempts::delete_older_than(db, before, ROWS_PER_RUN).await {
        Ok(count) => report.webhook_attempts_deleted += count,
        Err(error) => failed(report, "webhook_attempts", &error),
    }
    let tokens_before = now.plus_seconds(-SSO_EXPIRED_GRACE_SECONDS);
    match db::sso_tokens::delete_expired_before(db, tokens_before, ROWS_PER_RUN).await {
        Ok(count) => report.sso_tokens_deleted += count,
        Err(error) => failed(report, "sso_tokens", &error),
    }
    let sessions_before = now.plus_seconds(-CONSOLE_ENDED_GRACE_SECONDS);
    match db::console_sessions::delete_ended(db, sessions_before, ROWS_PER_RUN).await {
        Ok(count) => report.console_sessions_deleted += count,
        Err(error) => failed(report, "console_sessions", &error),
    }
    let keys_before = now.plus_seconds(-idempotency::RETENTION_SECONDS);
    match db::idempotency_keys::delete_created_before(db, keys_before.micros(), ROWS_PER_RUN).await {
        Ok(count) => report.idempotency_keys_deleted += count,
        Err(error) => failed(report, "idempotency_keys", &error),
    }
}

/// The cron's invocation: the sweep, its usage counted like any other invocation's.
pub async fn run_scheduled(env: Env) {
    run(&env).await;
    env.report();
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
                + report.webhook_attempts_deleted
                + report.sso_tokens_deleted
                + report.console_sessions_deleted
                + report.idempotency_keys_deleted
                + report.crm_contacts_handed_over
                + report.crm_sync_jobs_deleted
                + report.crm_links_due;
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

/// Events recorded over [`WEBHOOK_GRACE_SECONDS`] ago and never dispatched (the queue refused
/// them), and pending deliveries that much overdue that nobody holds (a retry message lost), go
/// back on the webhook queue. How many tasks were queued.
async fn lost_webhook_work(env: &Env, db: &Db, now: Timestamp) -> Result<usize, ApiError> {
    let before = now.plus_seconds(-WEBHOOK_GRACE_SECONDS);
    let mut by_business: BTreeMap<BusinessId, Vec<EventId>> = BTreeMap::new();
    for (business_id, event_id) in db::webhook_events::undispatched(db, before, ROWS_PER_RUN).await? {
        by_business.entry(business_id).or_default().push(event_id);
    }
    let mut tasks: Vec<WebhookTask> = by_business
        .iter()
        .flat_map(|(business_id, ids)| outbox::dispatch_tasks(business_id, ids))
        .collect();
    let overdue = db::webhook_deliveries::overdue(db, before, now, ROWS_PER_RUN).await?;
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
async fn due_crm_links(env: &Env, db: &Db, now: Timestamp) -> Result<usize, ApiError> {
    let mut due = db::knowledge_sources::take_due(db, now, ROWS_PER_RUN, CRM_LINK_HOLD_SECONDS).await?;
    let stalled_before = now.plus_seconds(-CRM_LINK_STALLED_SECONDS).to_rfc3339();
    due.extend(
        db::knowledge_sources::stalled_runs(db, &stalled_before, &now.to_rfc3339(), ROWS_PER_RUN).await?,
    );
    crate::knowledge::hand_over(env, &due).await;
    Ok(due.len())
}

/// Contacts whose CRM work is over [`WEBHOOK_GRACE_SECONDS`] overdue and that no worker holds
/// (their queue message was lost, or refused) go back to the sync consumer. How many.
async fn lost_crm_work(env: &Env, db: &Db, now: Timestamp) -> Result<usize, ApiError> {
    let before = now.plus_seconds(-WEBHOOK_GRACE_SECONDS);
    let contacts =
        db::crm_sync_jobs::overdue_contacts(db, before.micros(), now.micros(), ROWS_PER_RUN).await?;
    crate::crm::sync::hand_over(env, &contacts, 0).await;
    Ok(contacts.len())
}

/// Sends still `queued` past [`stuck_send_after_seconds`] go back on the outbound queue with the
/// subject and base URL they were accepted with; those already re-queued
/// [`MAX_SEND_REQUEUES`] times are failed instead. (requeued, failed).
async fn lost_sends(env: &Env, db: &Db, now: Timestamp) -> Result<(usize, usize), ApiError> {
    let unnoted_before = now.plus_seconds(-stuck_send_after_seconds(false));
    let noted_before = now.plus_seconds(-stuck_send_after_seconds(true));
    let lost =
        db::messages::lost_beyond_requeues(db, unnoted_before, noted_before, MAX_SEND_REQUEUES, ROWS_PER_RUN)
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
        })
        .collect();
    // Taken but not queued: counted already, so the next bound's sweep tries it again.
    crate::queue::send_all(env, OUTBOUND, &jobs, 0)
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
async fn lost_media(env: &Env, db: &Db, now: Timestamp) -> Result<(usize, usize), ApiError> {
    let give_up_before = now.plus_seconds(-MEDIA_GIVE_UP_AFTER_SECONDS).to_rfc3339();
    let reason = media_lost_reason();
    let mut given_up = 0;
    for file in db::attachments::unsettled_before(db, &give_up_before, false, MEDIA_ROWS_PER_RUN).await? {
        let tenant = Tenant::for_background(file.business_id);
        if db::attachments::settle(db, &tenant, &file.id, Err(&reason)).await? {
            console_warn!("media {}: failed by the sweep: {reason}", file.id);
            given_up += 1;
        }
        inbound_media::release_events_when_settled(env, db, &tenant, &file.message_id).await?;
    }
    let requeue_before = now.plus_seconds(-MEDIA_REQUEUE_AFTER_SECONDS).to_rfc3339();
    let lost = db::attachments::unsettled_before(db, &requeue_before, true, MEDIA_ROWS_PER_RUN).await?;
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
    crate::queue::send_all(env, INBOUND_MEDIA, &jobs, 0)
        .await
        .map_err(|error| ApiError::internal("re-queueing lost media", error))?;
    for job in &jobs {
        console_warn!("media {}: lost by the queue, put back on it", job.attachment_id);
    }
    Ok((jobs.len(), given_up))
}

/// Deletes events past retention whose deliveries are all settled, with those deliveries, in one
/// batch. (events, deliveries).
async fn expired_events(db: &Db, before: Timestamp) -> Result<(usize, usize), ApiError> {
    let statements = vec![
        db::webhook_deliveries::delete_of_events(db, db::webhook_events::expired(before, ROWS_PER_RUN))?,
        db::webhook_events::delete_expired(db, before, ROWS_PER_RUN)?,
    ];
    let results = db
        .batch(statements)
        .await
        .map_err(|error| ApiError::internal("deleting webhook events past retention", error))?;
    Ok((db::changes_at(&results, 1), db::changes_at(&results, 0)))
}
