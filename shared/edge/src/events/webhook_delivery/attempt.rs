//! One attempt at an endpoint: the body POSTed, signed with the endpoint's secrets both ways
//! (the seed's header and the Standard Webhooks headers), within the endpoint's timeout; what
//! the answer means (delivered, retried when, or dead); and the attempt recorded in one
//! transaction: its log row, the delivery settled under its lease, the endpoint's health (a
//! success heals it, failing past its allowance disables it) and a new secret confirmed.

use crate::Env;
use crate::db::webhook_attempts::{AttemptOutcome, AttemptRecord};
use crate::db::webhook_deliveries::{Claimed, Standing};
use crate::db::webhook_endpoints::{Endpoint, Health};
use crate::db::{self, Db, Statement};
use crate::platform::bounded_fetch::{self, Failure};
use domain::error::ApiError;
use domain::ids::EventId;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhook_signing::{self, WebhookSecret};
use domain::webhooks::{self, Answer, LOGGED_BODY_BYTES, Verdict};

pub const USER_AGENT: &str = "crm-edge-webhooks/1";

/// What one attempt came to, as the log records it.
pub struct Attempted {
    pub answer: Answer,
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub millis: u64,
}

impl Attempted {
    /// The answer in a few words, for logs and reasons.
    pub fn describe(&self) -> String {
        match (&self.status_code, &self.error) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".to_owned(),
        }
    }
}

/// POSTs the body to the endpoint, signed with its current secrets at `now`, the seed header
/// with `seed_secret`.
pub async fn send(
    env: &Env,
    endpoint: &Endpoint,
    seed_secret: &WebhookSecret,
    event_id: &EventId,
    kind: &str,
    body: &str,
    now: Timestamp,
) -> Attempted {
    let signed = webhook_signing::sign(
        seed_secret,
        &endpoint.signing_secrets(now),
        event_id.as_str(),
        now.seconds(),
        body,
    );
    let timestamp = signed.timestamp.to_string();
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("user-agent", USER_AGENT.to_owned()),
        ("x-webhook-event", kind.to_owned()),
        ("x-webhook-timestamp", timestamp.clone()),
        ("x-webhook-signature", signed.x_webhook_signature),
        ("webhook-id", signed.webhook_id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signed.webhook_signature),
    ];
    let timeout_ms = u64::from(endpoint.timeout_seconds) * 1000;
    let exchange = bounded_fetch::post(
        env,
        &endpoint.url,
        &headers,
        body.as_bytes(),
        timeout_ms,
        LOGGED_BODY_BYTES,
    )
    .await;
    match exchange.result {
        Ok(reply) => Attempted {
            status_code: Some(reply.status),
            response_body: Some(webhooks::truncate_for_log(&reply.body)),
            error: None,
            millis: exchange.millis,
            answer: Answer::Status {
                code: reply.status,
                retry_after: reply
                    .retry_after
                    .as_deref()
                    .and_then(|value| domain::retry_after::seconds(value, now)),
            },
        },
        Err(Failure::TimedOut) => Attempted {
            answer: Answer::TimedOut,
            status_code: None,
            response_body: None,
            error: Some(format!(
                "timed out: no answer within {} s",
                endpoint.timeout_seconds
            )),
            millis: exchange.millis,
        },
        Err(Failure::Unreachable(error)) => Attempted {
            answer: Answer::Unreachable,
            status_code: None,
            response_body: None,
            error: Some(format!("connection failed: {error}")),
            millis: exchange.millis,
        },
    }
}

/// Makes the claimed attempt at `endpoint` (None: it was deleted) and records it. Returns the
/// outcome (a retry says when).
pub async fn attempt(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    claimed: &Claimed,
    endpoint: Option<&Endpoint>,
    now: Timestamp,
) -> Result<AttemptOutcome, ApiError> {
    let (outcome, record) = attempt_unrecorded(env, db, tenant, claimed, endpoint, now).await?;
    if !record.is_empty() {
        db.batch(record).await?;
    }
    Ok(outcome)
}

/// [`attempt`], leaving its record to the caller: the outcome, and the statements that record it
/// (see [`record_statements`]), to commit in one batch with other attempts' (a dispatch records
/// the first attempts that ended together in one round trip).
pub async fn attempt_unrecorded(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    claimed: &Claimed,
    endpoint: Option<&Endpoint>,
    now: Timestamp,
) -> Result<(AttemptOutcome, Vec<Statement>), ApiError> {
    let Some(endpoint) = endpoint else {
        return Ok((AttemptOutcome::Dead, Vec::new()));
    };
    let Some(body) = claimed.payload.as_deref() else {
        return Err(ApiError::internal(
            "attempting a delivery",
            format!("the body of event {} is not fixed", claimed.event_id),
        ));
    };
    let mut record = AttemptRecord {
        endpoint_id: &endpoint.id,
        delivery_id: Some(&claimed.delivery_id),
        event_id: &claimed.event_id,
        event_type: &claimed.event_type,
        attempt: claimed.attempt,
        replay: claimed.replay,
        url: &endpoint.url,
        status_code: None,
        response_body: None,
        duration_ms: 0,
        error: None,
        outcome: AttemptOutcome::Dead,
        at: now,
    };
    if !endpoint.enabled {
        // The business turned the endpoint off, or it was disabled for failing: no attempt is
        // made, and the delivery waits among the dead for a replay once it is enabled again.
        let reason = "not sent: the endpoint is disabled";
        let abandon = db::webhook_deliveries::abandon(db, tenant, claimed, reason, now)?;
        return Ok((AttemptOutcome::Dead, vec![abandon]));
    }
    let seed_secret = endpoint.seed_secret(now, claimed.attempt);
    let attempted = send(
        env,
        endpoint,
        seed_secret,
        &claimed.event_id,
        &claimed.event_type,
        body,
        now,
    )
    .await;
    let finished = Timestamp::from_millis(now.millis() + attempted.millis.min(i64::MAX as u64) as i64);
    let signed_with_previous = seed_secret != &endpoint.secret;
    let outcome = match webhooks::verdict(
        &attempted.answer,
        claimed.attempt,
        endpoint.retry_schedule,
        signed_with_previous,
    ) {
        Verdict::Delivered => AttemptOutcome::Delivered,
        Verdict::RetryIn(seconds) => AttemptOutcome::Retrying {
            next: finished.plus_seconds(i64::from(seconds)),
        },
        Verdict::DeadLetter => AttemptOutcome::Dead,
    };
    let health = health_after(endpoint, &outcome, &attempted, finished);
    record.status_code = attempted.status_code;
    record.response_body = attempted.response_body.as_deref();
    record.error = attempted.error.as_deref();
    record.duration_ms = attempted.millis;
    record.outcome = outcome;
    let confirms = confirms_new_secret(endpoint, seed_secret, outcome);
    let statements = record_statements(db, tenant, &record, Some(claimed), &health, confirms)?;
    Ok((outcome, statements))
}

/// Whether an attempt accepted with the seed header signed by `seed_secret` shows that the
/// receiver has the endpoint's new secret, which it was not known to have.
pub fn confirms_new_secret(
    endpoint: &Endpoint,
    seed_secret: &WebhookSecret,
    outcome: AttemptOutcome,
) -> bool {
    outcome == AttemptOutcome::Delivered && !endpoint.seed_signs_new && seed_secret == &endpoint.secret
}

/// Logs the attempt, settles the delivery `claimed` for it if any (under its lease, only while
/// it is still pending under it: a late result cannot undo a later one, and delivered is final;
/// a first attempt's, by giving it a row unless it was delivered), updates the endpoint's health
/// and, when `confirms_new_secret`, records that the receiver holds the new secret, in one
/// transaction.
pub async fn record_attempt(
    db: &Db,
    tenant: &Tenant,
    record: &AttemptRecord<'_>,
    claimed: Option<&Claimed>,
    health: &Health,
    confirms_new_secret: bool,
) -> Result<(), ApiError> {
    let statements = record_statements(db, tenant, record, claimed, health, confirms_new_secret)?;
    db.batch(statements).await?;
    Ok(())
}

/// The statements of [`record_attempt`], for a caller's batch.
pub fn record_statements(
    db: &Db,
    tenant: &Tenant,
    record: &AttemptRecord<'_>,
    claimed: Option<&Claimed>,
    health: &Health,
    confirms_new_secret: bool,
) -> Result<Vec<Statement>, ApiError> {
    let mut statements = vec![db::webhook_attempts::insert(db, tenant, record)?];
    if confirms_new_secret {
        statements.push(db::webhook_endpoints::confirm_new_secret(
            db,
            tenant,
            record.endpoint_id,
        )?);
    }
    if let Some(claimed) = claimed {
        let (status, next) = match record.outcome {
            AttemptOutcome::Delivered => ("delivered", None),
            AttemptOutcome::Retrying { next } => ("pending", Some(next)),
            AttemptOutcome::Dead => ("dead", None),
        };
        let standing = Standing {
            status,
            attempts: record.attempt,
            next,
            last_status: record.status_code,
            last_error: record.error,
            at: record.at,
        };
        statements.extend(db::webhook_deliveries::settle(db, tenant, claimed, &standing)?);
    }
    if let Some(update) =
        db::webhook_endpoints::health_update(db, tenant, record.endpoint_id, health, record.at)?
    {
        statements.push(update);
    }
    Ok(statements)
}

/// A success heals the endpoint; a failure starts or continues its failing period, and one that
/// ends a period longer than the endpoint allows disables it, saying why.
fn health_after(
    endpoint: &Endpoint,
    outcome: &AttemptOutcome,
    attempted: &Attempted,
    now: Timestamp,
) -> Health {
    if *outcome == AttemptOutcome::Delivered {
        return Health::Healthy;
    }
    let since = endpoint.failing_since_us.unwrap_or(now.micros());
    if webhooks::should_disable(since, now.micros(), endpoint.disable_after_seconds) {
        Health::Disable(format!(
            "disabled at {}: every delivery since {} failed (allowed: {} s; last answer: {}); \
             fix the receiver, then enable the endpoint and replay its dead deliveries",
            now.to_rfc3339(),
            Timestamp::from_micros(since).to_rfc3339(),
            endpoint.disable_after_seconds,
            attempted.describe()
        ))
    } else {
        Health::Failing
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HOOKS, URL, claim_attempt, customer_created};
    use super::*;
    use crate::runtime;
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};
    use std::time::Duration;

    fn hmac_sha256(key: &[u8], message: &str) -> Vec<u8> {
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|error| panic!("{error}"));
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn one_attempt_posts_the_kept_body_signed_both_ways_and_a_2xx_delivers_it() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(204, ""));
        fixture.run(async {
            let (tenant, endpoint) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            assert_eq!(fixture.attempt(&tenant, &due[0]).await, AttemptOutcome::Delivered);
            let calls = fixture.stack.calls_to(HOOKS);
            assert_eq!(calls.len(), 1);
            let call = &calls[0];
            assert_eq!((call.method.as_str(), call.url.as_str()), ("POST", URL));
            assert_eq!(Some(call.text()), due[0].0.payload, "the body fixed at dispatch");
            let body = call.json();
            assert_eq!(body["event"], "customer.created");
            assert_eq!(body["id"], due[0].0.event_id.as_str());
            assert_eq!(body["business_id"], tenant.business_id.as_str());
            assert_eq!(body["data"]["customer"]["name"], "Zoë </script>");
            assert_eq!(body["data"]["customer"]["email"], "zoe@example.com");
            let timestamp = (fixture.stack.now_ms() / 1000).to_string();
            assert_eq!(call.header("content-type"), Some("application/json"));
            assert_eq!(call.header("user-agent"), Some(USER_AGENT));
            assert_eq!(call.header("x-webhook-event"), Some("customer.created"));
            assert_eq!(call.header("webhook-id"), Some(due[0].0.event_id.as_str()));
            assert_eq!(call.header("webhook-timestamp"), Some(timestamp.as_str()));
            assert_eq!(call.header("x-webhook-timestamp"), Some(timestamp.as_str()));
            let secret = endpoint.secret.as_str();
            let key = STANDARD
                .decode(secret.strip_prefix("whsec_").unwrap_or_default())
                .unwrap_or_else(|error| panic!("{error}"));
            let signed = format!("{}.{timestamp}.{}", due[0].0.event_id, call.text());
            assert_eq!(
                call.header("webhook-signature"),
                Some(format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &signed))).as_str())
            );
            assert_eq!(
                call.header("x-webhook-signature"),
                Some(
                    hex::encode(hmac_sha256(
                        secret.as_bytes(),
                        &format!("{timestamp}.{}", call.text())
                    ))
                    .as_str()
                )
            );
            assert!(
                fixture.rows("webhook_deliveries", "id").is_empty(),
                "delivered at its first attempt: no row but the attempt's"
            );
            let listed = db::webhook_deliveries::list(&fixture.db, &tenant, &endpoint.id, None, 10)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(listed.len(), 1);
            assert_eq!(
                (
                    &listed[0].id,
                    listed[0].status.as_str(),
                    listed[0].attempts,
                    listed[0].last_status
                ),
                (&due[0].0.delivery_id, "delivered", 1, Some(204))
            );
            let attempts = fixture.rows("webhook_attempts", "id");
            assert_eq!(attempts.len(), 1);
            assert_eq!(
                (
                    attempts[0]["outcome"].as_str(),
                    attempts[0]["status_code"].as_i64()
                ),
                (Some("delivered"), Some(204))
            );
        });
    }

    #[test]
    fn a_failure_worth_retrying_is_scheduled_by_the_endpoints_schedule_or_its_retry_after() {
        let cases = [
            (Reply::text(503, "down"), 2, "a 5xx: the schedule's first wait"),
            (
                Reply::text(429, "slow").header("retry-after", "120"),
                120,
                "a 429 asks for longer",
            ),
            (
                Reply::text(500, "oops").header("retry-after", "1"),
                2,
                "a shorter Retry-After does not hurry it",
            ),
            (Reply::refused(), 2, "unreachable"),
        ];
        for (reply, wait_seconds, description) in cases {
            let fixture = Fixture::new();
            fixture.stack.partner(HOOKS, move |_| reply.clone());
            fixture.run(async {
                let (tenant, _) = customer_created(&fixture).await;
                let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
                let now = runtime::now();
                let outcome = fixture.attempt(&tenant, &due[0]).await;
                assert_eq!(
                    outcome,
                    AttemptOutcome::Retrying {
                        next: now.plus_seconds(wait_seconds)
                    },
                    "{description}"
                );
                let deliveries = fixture.rows("webhook_deliveries", "id");
                assert_eq!(deliveries[0]["status"], "pending", "{description}");
                assert_eq!(
                    deliveries[0]["next_attempt_us"].as_i64(),
                    Some(now.plus_seconds(wait_seconds).micros()),
                    "{description}"
                );
                let endpoints = fixture.rows("webhook_endpoints", "created_at");
                assert_eq!(
                    endpoints[0]["failing_since_us"].as_i64(),
                    Some(now.micros()),
                    "{description}"
                );
            });
        }
    }

    #[test]
    fn a_refused_connection_is_logged_with_its_error_and_retried() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let first = fixture.attempt(&tenant, &due[0]).await;
            let AttemptOutcome::Retrying { next } = first else {
                panic!("{first:?}");
            };
            fixture.stack.advance(Duration::from_millis(
                (next.millis() - fixture.stack.now_ms()) as u64,
            ));
            let second = claim_attempt(&fixture, &tenant, &due[0].0.delivery_id, 2).await;
            assert!(matches!(
                fixture.attempt(&tenant, &second).await,
                AttemptOutcome::Retrying { .. }
            ));
            let attempts = fixture.rows("webhook_attempts", "id");
            let log: Vec<(Option<i64>, bool, Option<&str>)> = attempts
                .iter()
                .map(|row| {
                    (
                        row["attempt"].as_i64(),
                        row["status_code"].is_null(),
                        row["outcome"].as_str(),
                    )
                })
                .collect();
            assert_eq!(
                log,
                vec![
                    (Some(1), true, Some("retrying")),
                    (Some(2), true, Some("retrying"))
                ]
            );
            for row in &attempts {
                let error = row["error"].as_str().unwrap_or_default();
                assert!(
                    error.starts_with("connection failed: ") && error.contains("refused"),
                    "{error}"
                );
            }
            let at: Vec<i64> = attempts
                .iter()
                .filter_map(|row| row["attempted_us"].as_i64())
                .collect();
            assert_eq!(at[1] - at[0], 2_000_000, "the retry waits the schedule's 2 s");
        });
    }

    #[test]
    fn a_partner_that_never_answers_times_out_at_the_endpoints_timeout() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::never());
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let started = fixture.stack.now_ms();
            let outcome = fixture.attempt(&tenant, &due[0]).await;
            assert!(matches!(outcome, AttemptOutcome::Retrying { .. }), "{outcome:?}");
            assert_eq!(fixture.stack.now_ms() - started, 15_000);
            let attempts = fixture.rows("webhook_attempts", "id");
            assert_eq!(attempts[0]["error"], "timed out: no answer within 15 s");
            assert_eq!(attempts[0]["duration_ms"], 15_000);
            let deliveries = fixture.rows("webhook_deliveries", "id");
            assert_eq!(deliveries[0]["last_error"], "timed out: no answer within 15 s");
        });
    }

    #[test]
    fn a_refusal_or_a_redirect_is_not_retried_and_the_last_retry_dead_letters_the_delivery() {
        let cases = [
            (Reply::text(400, "who are you"), 400, "400 Bad Request"),
            (Reply::text(410, "gone"), 410, "410 Gone"),
            (
                Reply::status(301).header("location", "https://elsewhere.example/in"),
                301,
                "a redirect, which is not followed",
            ),
        ];
        for (reply, status, description) in cases {
            let fixture = Fixture::new();
            fixture.stack.partner(HOOKS, move |_| reply.clone());
            fixture.run(async {
                let (tenant, _) = customer_created(&fixture).await;
                let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
                assert_eq!(
                    fixture.attempt(&tenant, &due[0]).await,
                    AttemptOutcome::Dead,
                    "{description}"
                );
                let deliveries = fixture.rows("webhook_deliveries", "id");
                assert_eq!(
                    (
                        deliveries[0]["status"].as_str(),
                        deliveries[0]["attempts"].as_i64(),
                        deliveries[0]["last_status"].as_i64()
                    ),
                    (Some("dead"), Some(1), Some(i64::from(status))),
                    "{description}"
                );
                let attempts = fixture.rows("webhook_attempts", "id");
                let log: Vec<(Option<i64>, Option<i64>, Option<&str>)> = attempts
                    .iter()
                    .map(|row| {
                        (
                            row["attempt"].as_i64(),
                            row["status_code"].as_i64(),
                            row["outcome"].as_str(),
                        )
                    })
                    .collect();
                assert_eq!(
                    log,
                    vec![(Some(1), Some(i64::from(status)), Some("dead"))],
                    "{description}"
                );
                assert!(
                    fixture.stack.calls_to("elsewhere.example").is_empty(),
                    "{description}"
                );
            });
        }
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(500, "still down"));
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let delivery = due[0].0.delivery_id.clone();
            let mut outcomes = vec![fixture.attempt(&tenant, &due[0]).await];
            for number in 2..=4 {
                let AttemptOutcome::Retrying { next } = outcomes[outcomes.len() - 1] else {
                    panic!("{outcomes:?}");
                };
                fixture.stack.advance(Duration::from_millis(
                    (next.millis() - fixture.stack.now_ms()) as u64,
                ));
                let claimed = claim_attempt(&fixture, &tenant, &delivery, number).await;
                outcomes.push(fixture.attempt(&tenant, &claimed).await);
            }
            assert_eq!(outcomes[3], AttemptOutcome::Dead, "{outcomes:?}");
            assert_eq!(
                fixture.stack.calls_to(HOOKS).len(),
                4,
                "the first try and the schedule's three retries"
            );
            let deliveries = fixture.rows("webhook_deliveries", "id");
            assert_eq!(
                (
                    deliveries[0]["status"].as_str(),
                    deliveries[0]["attempts"].as_i64()
                ),
                (Some("dead"), Some(4))
            );
        });
    }

    #[test]
    fn an_endpoint_that_keeps_failing_past_its_allowance_is_disabled_saying_why_and_then_skipped() {
        let fixture = Fixture::new();
        fixture.stack.partner(HOOKS, |_| Reply::text(502, "bad gateway"));
        fixture.run(async {
            let (tenant, endpoint) = customer_created(&fixture).await;
            fixture.execute(
                "UPDATE webhook_endpoints SET disable_after_seconds = 3 WHERE id = ?1",
                &[endpoint.id.as_str()],
            );
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            let delivery = due[0].0.delivery_id.clone();
            fixture.attempt(&tenant, &due[0]).await;
            let enabled =
                |fixture: &Fixture| fixture.rows("webhook_endpoints", "created_at")[0]["enabled"].clone();
            assert_eq!(enabled(&fixture), 1, "failing for less than its allowance");
            fixture.stack.advance(Duration::from_secs(2));
            let second = claim_attempt(&fixture, &tenant, &delivery, 2).await;
            fixture.attempt(&tenant, &second).await;
            assert_eq!(enabled(&fixture), 1, "two seconds of failing");
            fixture.stack.advance(Duration::from_secs(4));
            let third = claim_attempt(&fixture, &tenant, &delivery, 3).await;
            fixture.attempt(&tenant, &third).await;
            let endpoints = fixture.rows("webhook_endpoints", "created_at");
            assert_eq!(endpoints[0]["enabled"], 0);
            let reason = endpoints[0]["disabled_reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("every delivery since") && reason.contains("last answer: HTTP 502"),
                "{reason}"
            );
            fixture.stack.advance(Duration::from_secs(8));
            let fourth = claim_attempt(&fixture, &tenant, &delivery, 4).await;
            assert_eq!(fixture.attempt(&tenant, &fourth).await, AttemptOutcome::Dead);
            assert_eq!(
                fixture.stack.calls_to(HOOKS).len(),
                3,
                "nothing sent to a disabled endpoint"
            );
            let deliveries = fixture.rows("webhook_deliveries", "id");
            assert_eq!(deliveries[0]["status"], "dead");
            assert_eq!(deliveries[0]["last_error"], "not sent: the endpoint is disabled");
        });
    }

    #[test]
    fn a_success_heals_a_failing_endpoint() {
        let fixture = Fixture::new();
        let answers = std::cell::Cell::new(0);
        fixture.stack.partner(HOOKS, move |_| {
            answers.set(answers.get() + 1);
            if answers.get() == 1 {
                Reply::text(500, "")
            } else {
                Reply::text(200, "")
            }
        });
        fixture.run(async {
            let (tenant, _) = customer_created(&fixture).await;
            let due = fixture.dispatch(&tenant, &fixture.event_ids()).await;
            fixture.attempt(&tenant, &due[0]).await;
            assert!(fixture.rows("webhook_endpoints", "created_at")[0]["failing_since_us"].is_i64());
            fixture.stack.advance(Duration::from_secs(2));
            let again = claim_attempt(&fixture, &tenant, &due[0].0.delivery_id, 2).await;
            assert_eq!(fixture.attempt(&tenant, &again).await, AttemptOutcome::Delivered);
            assert!(fixture.rows("webhook_endpoints", "created_at")[0]["failing_since_us"].is_null());
        });
    }
}
