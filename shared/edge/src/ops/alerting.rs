//! The alert rules' part of the maintenance sweep (docs/alerts.md, `domain::alerts`): on each
//! shard, every minute, measure what the rules watch (four reads across the shard's businesses:
//! its connectors with their oldest waiting work, its webhook endpoints, its CRM links, and the
//! API usage of this hour and the last), judge the measures against the alerts open, and raise
//! and resolve alerts, each with its webhook event in the same batch; then send the alert
//! emails that are due through each business's Mailgun account.
//!
//! Raised once: the open alert of a rule and subject is unique in D1, and its `alert.raised`
//! event is recorded only when the alert row was written, so two sweeps at once (the cron's and
//! an operator's) raise it once. Resolved once: the `alert.resolved` event is recorded only by
//! the statement that resolved it.

use crate::db::directory::Moving;
use crate::db::webhook_events::{self, Guard, NewEvent};
use crate::db::{self, Batch, Db, Read};
use crate::{Env, console_warn, events::outbox, platform::provider_call, runtime};
use domain::alerts::{self, Changes, Kind, Measure, Settings};
use domain::channel::Channel;
use domain::error::ApiError;
use domain::ids::{AlertId, BusinessId, EventId};
use domain::providers::Provider;
use domain::providers::api::{Outcome, Outgoing, Sender};
use domain::providers::mailgun::api as mailgun;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use std::collections::{BTreeMap, HashMap};

/// Rows each read of a run takes at most, per shard: a rule whose read was cut resolves
/// nothing that run (an alert missing from a cut read is not over).
pub const MEASURED_PER_RUN: usize = 1000;
/// Alerts raised or resolved per shard and run, at most (two statements each, in one batch per
/// business): a storm across many businesses is worked off a minute at a time.
pub const CHANGES_PER_RUN: usize = 200;
/// Alert emails sent per shard and run, at most: each is a subrequest to Mailgun.
pub const EMAILS_PER_RUN: usize = 20;
/// Of them, at most this many of one business: the rest of a business's storm waits for the next
/// runs, and the other businesses' emails go first.
pub const EMAILS_PER_BUSINESS: usize = 5;

/// What a run did on one shard.
#[derive(Debug, Default, Clone, Copy)]
pub struct Run {
    pub raised: usize,
    pub resolved: usize,
}

/// Measures, judges and writes the shard's alerts at `now`: the rules' four reads and the open
/// alerts in one round trip, the settings of the businesses concerned in another, then a batch
/// per business with changes.
pub async fn run(env: &Env, db: &Db, moving: &Moving, now: Timestamp) -> Result<Run, ApiError> {
    let now_ms = now.millis();
    let mut batch = Batch::default();
    let connectors = batch.read(db::crm_connectors::alert_signals(
        db,
        moving,
        now.micros(),
        MEASURED_PER_RUN,
    )?);
    let endpoints = batch.read(db::webhook_endpoints::alert_signals(
        db,
        moving,
        MEASURED_PER_RUN,
    )?);
    let links = batch.read(db::knowledge_sources::alert_measures(
        db,
        moving,
        MEASURED_PER_RUN,
    )?);
    let usage = batch.read(db::api_key_usage::alert_measures(
        db,
        moving,
        now_ms,
        MEASURED_PER_RUN,
    )?);
    let open = batch.read(db::alerts::open_on_shard(db, moving, MEASURED_PER_RUN)?);
    let answers = batch.run(db).await?;
    let connectors = answers.take(connectors)?;
    let endpoints = answers.take(endpoints)?;
    let links = answers.take(links)?;
    let (usage, businesses_read) = answers.take(usage)?;
    let open = answers.take(open)?;
    let cut = |rows: usize| rows >= MEASURED_PER_RUN;
    let (connectors_cut, endpoints_cut, links_cut, usage_cut) = (
        cut(connectors.len()),
        cut(endpoints.len()),
        cut(links.len()),
        cut(businesses_read),
    );
    let mut measures: Vec<Measure> = connectors.iter().flat_map(|c| c.measures(now_ms)).collect();
    measures.extend(endpoints.iter().flat_map(|e| e.measures(now_ms)));
    measures.extend(links);
    measures.extend(usage);
    let whole = |kind: Kind| match kind.subject() {
        alerts::Subject::Connector => !connectors_cut,
        alerts::Subject::Endpoint => !endpoints_cut,
        alerts::Subject::Link => !links_cut,
        alerts::Subject::Business => !usage_cut,
    };
    let mut businesses: Vec<&BusinessId> = measures
        .iter()
        .map(|measure| &measure.business_id)
        .chain(open.iter().map(|alert| &alert.business_id))
        .collect();
    businesses.sort();
    businesses.dedup();
    let (settings, corrupt) = db::alert_settings::of(db, &businesses).await?;
    for error in corrupt {
        console_warn!(
            "alerts: a business's settings are the defaults until fixed: {}",
            error.detail().unwrap_or(&error.body.message)
        );
    }
    let defaults = Settings::default();
    let settings_of = |business: &BusinessId| settings.get(business).unwrap_or(&defaults);
    let changes = alerts::judge(&measures, whole, &open, settings_of);
    write(env, db, changes, settings_of, now).await
}

/// Raises and resolves `changes`, a batch per business, and hands their events to the queue.
async fn write<'a>(
    env: &Env,
    db: &Db,
    changes: Changes,
    settings_of: impl Fn(&BusinessId) -> &'a Settings,
    now: Timestamp,
) -> Result<Run, ApiError> {
    let now_ms = now.millis();
    let mut by_business: BTreeMap<BusinessId, (Vec<alerts::Raise>, Vec<AlertId>)> = BTreeMap::new();
    for raise in changes.raise.into_iter().take(CHANGES_PER_RUN) {
        by_business
            .entry(raise.measure.business_id.clone())
            .or_default()
            .0
            .push(raise);
    }
    let room = CHANGES_PER_RUN.saturating_sub(by_business.values().map(|(r, _)| r.len()).sum());
    for (business, id) in changes.resolve.into_iter().take(room) {
        by_business.entry(business).or_default().1.push(id);
    }
    let mut run = Run::default();
    for (business, (raises, resolves)) in by_business {
        let tenant = Tenant::for_background(business.clone());
        let email = !settings_of(&business).email_to().is_empty();
        let mut batch = Batch::default();
        let mut raised = Vec::new();
        let mut resolved = Vec::new();
        let mut recorded = Vec::new();
        for raise in &raises {
            let id = AlertId::generate(runtime::random()?);
            raised.push(batch.write(db::alerts::raise(db, &tenant, &id, raise, email, now_ms)?));
            recorded.push(batch.read(event(
                db,
                &tenant,
                now,
                EventType::AlertRaised,
                &id,
                Guard::SubjectStored,
            )?));
        }
        for id in &resolves {
            resolved.push(batch.write(db::alerts::resolve(db, &tenant, id, now_ms)?));
            let guard = Guard::When(db::alerts::resolved_at(id, now_ms));
            recorded.push(batch.read(event(db, &tenant, now, EventType::AlertResolved, id, guard)?));
        }
        let answers = batch.run(db).await?;
        run.raised += raised.into_iter().map(|w| answers.changes(w)).sum::<usize>();
        run.resolved += resolved.into_iter().map(|w| answers.changes(w)).sum::<usize>();
        let events: Vec<EventId> = answers.take_each(recorded)?.into_iter().flatten().collect();
        outbox::publish(env, &tenant, events).await;
    }
    Ok(run)
}

/// The statement recording the alert's event of `kind`, under `guard`.
fn event(
    db: &Db,
    tenant: &Tenant,
    now: Timestamp,
    kind: EventType,
    alert: &AlertId,
    guard: Guard,
) -> Result<Read<Vec<EventId>>, ApiError> {
    let event = NewEvent::new(EventId::generate(runtime::random()?), kind, alert);
    webhook_events::record(db, tenant, None, now, &[event], guard)
}

/// Sends the shard's alert emails that are due, through each business's Mailgun account (its
/// first email account): sent, tried again later on a transient failure, failed when Mailgun
/// refuses it or the tries are spent, not sent when the business has no account to send from.
/// How many were sent.
pub async fn send_emails(env: &Env, db: &Db, moving: &Moving, now: Timestamp) -> Result<usize, ApiError> {
    let now_ms = now.millis();
    let due = db::alerts::emails_due(db, moving, now_ms, EMAILS_PER_RUN, EMAILS_PER_BUSINESS).await?;
    let due = db::alerts::claim_emails(db, due, now_ms).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let keys = env.keyring()?;
    let recipients = {
        let businesses: Vec<&BusinessId> = due.iter().map(|due| &due.business_id).collect();
        db::alert_settings::of(db, &businesses).await?.0
    };
    let mut senders: HashMap<BusinessId, Result<Sender, String>> = HashMap::new();
    let mut sent = 0;
    for email in &due {
        let attempt = email.attempts + 1;
        let to = recipients
            .get(&email.business_id)
            .map(|settings| settings.email_to().join(", "))
            .unwrap_or_default();
        if !senders.contains_key(&email.business_id) {
            let tenant = Tenant::for_background(email.business_id.clone());
            let account = db::channel_accounts::sending_on(db, &keys, &tenant, Channel::Email).await?;
            let sender = match account {
                Some(account) if account.provider == Provider::Mailgun => {
                    account.sender().map_err(|lacking| lacking.to_string())
                }
                _ => Err("the business has no Mailgun account to send alert emails from".to_owned()),
            };
            senders.insert(email.business_id.clone(), sender);
        }
        let outcome = match (&senders[&email.business_id], to.is_empty()) {
            (_, true) => db::alerts::Emailed::NotSent {
                reason: "nobody is named to email alerts to (email_to)".to_owned(),
            },
            (Err(reason), _) => db::alerts::Emailed::NotSent {
                reason: reason.clone(),
            },
            (Ok(sender), false) => {
                let (subject, text) = alerts::email(&email.business_name, &email.alert, email.resolved);
                let outgoing = Outgoing {
                    channel: Channel::Email,
                    to: &to,
                    text: &text,
                    subject: Some(&subject),
                    media: &[],
                };
                let outcome = Some(send_email(env, sender, &outgoing).await);
                match outcome {
                    Some(Outcome::Sent { .. }) => {
                        sent += 1;
                        db::alerts::Emailed::Sent
                    }
                    Some(Outcome::Rejected { reason }) => db::alerts::Emailed::Failed { error: reason },
                    Some(Outcome::Transient { reason, retry_after }) => match alerts::email_retry_ms(attempt)
                    {
                        Some(wait) => db::alerts::Emailed::Retry {
                            error: reason,
                            at_ms: now_ms + wait.max(i64::from(retry_after.unwrap_or(0)) * 1000),
                        },
                        None => db::alerts::Emailed::Failed { error: reason },
                    },
                    None => db::alerts::Emailed::Failed {
                        error: "no request was made".to_owned(),
                    },
                }
            }
        };
        db::alerts::emailed(db, email, attempt, outcome, now_ms).await?;
    }
    Ok(sent)
}

/// Sends one email through Mailgun's Messages API, bounded in time as a message's send is:
/// Mailgun's own request and answer only, so the other providers' code stays out of the
/// functions that run the sweep.
async fn send_email(env: &Env, sender: &Sender, outgoing: &Outgoing<'_>) -> Outcome {
    let Sender::Mailgun {
        base_url,
        domain,
        api_key,
        from,
    } = sender
    else {
        return Outcome::Rejected {
            reason: "alert emails are sent through Mailgun only".to_owned(),
        };
    };
    let request = mailgun::request(base_url, domain, api_key, from, outgoing, "alert");
    provider_call::send(env, &request, Provider::Mailgun, mailgun::classify)
        .await
        .outcome
}
