//! One call to a connector's CRM: taken from the connector's budget first (shared by every
//! worker through D1), bounded in time and size, and logged: always by method, path without
//! lookup values, status and duration; in debug mode also with bodies, redacted
//! (`domain::crm::redact`). Credentials are never logged.

use crate::Env;
use crate::bounded_fetch::{self, Failure};
use crate::console_log;
use crate::db::Db;
use crate::db::crm_connectors::{self, Connector};
use crate::db::crm_requests;
use crate::runtime;
use crate::runtime::{Delay, Method};
use domain::crm::budget;
use domain::crm::redact;
use domain::crm::request::{self, ApiRequest};
use domain::crm::retry::{self, CallFailure};
use domain::error::ApiError;
use std::time::Duration;

/// A CRM that has not answered in this long is given up on for this try.
pub const TIMEOUT_MS: u64 = 10_000;
/// Of an answer, only this much is read: a page of JSON:API resources fits.
pub const MAX_BODY: usize = 512 * 1024;
/// A spent budget that frees up within this long is waited for in place; a longer wait puts the
/// work off (the worker is not held).
const WAIT_IN_PLACE_MS: i64 = 3_000;
/// Tries to take from the budget per call before the drain gives way.
const BUDGET_TRIES: usize = 3;

/// How a call came back when it did not: the CRM failed it, or the budget had no room.
#[derive(Debug)]
pub enum Refusal {
    Failed(CallFailure),
    /// No room in the budget (or the connector is paused) for this long.
    Budget {
        wait_ms: i64,
    },
    /// Our own failure (D1): the work is left as it was and tried again.
    Ours(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self::Ours(error)
    }
}

/// What the CRM answered (any status; the caller decides what a 404 means).
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The calling side of one connector.
pub struct Client<'a> {
    pub env: &'a Env,
    pub db: &'a Db,
    pub connector: &'a Connector,
    /// The API origin, without a trailing slash.
    pub base: String,
    pub debug: bool,
    /// Whether calls are taken from the connector's budget: all but the admin API's check of a
    /// connector's settings before it is stored.
    pub budgeted: bool,
}

impl<'a> Client<'a> {
    /// The client of `connector` at `base`, with the connector's credentials, budgeted, logging
    /// bodies when the kind's debug mode is on.
    pub fn new(env: &'a Env, db: &'a Db, connector: &'a Connector, base: String) -> Self {
        Self {
            env,
            db,
            connector,
            base,
            debug: super::debug(env, connector.kind),
            budgeted: true,
        }
    }

    /// Makes the call once the budget allows it; an answer that is not a success (a 404, a 3xx)
    /// is returned as it is.
    pub async fn send(&self, request: &ApiRequest) -> Result<Answer, Refusal> {
        if self.budgeted {
            self.take_from_budget().await?;
        }
        let method = match request.method {
            request::Method::Get => Method::Get,
            request::Method::Post => Method::Post,
            request::Method::Put => Method::Put,
            request::Method::Patch => Method::Patch,
        };
        let path = request.target();
        let body = request.body.as_ref().map(serde_json::Value::to_string);
        let mut headers = vec![
            ("authorization", self.connector.secrets.authorization()),
            ("accept", "application/json".to_owned()),
            ("user-agent", "crm-edge/1".to_owned()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        let url = format!("{}{path}", self.base);
        let exchange = bounded_fetch::send(
            self.env,
            method.clone(),
            &url,
            &headers,
            body.as_deref().map(str::as_bytes),
            TIMEOUT_MS,
            MAX_BODY,
        )
        .await;
        let shown_path = redact::path(&path);
        let kind = self.connector.kind;
        let id = &self.connector.id;
        match exchange.result {
            Ok(reply) => {
                if self.debug {
                    console_log!(
                        "[debug] {kind} {id} {method:?} {shown_path} -> {} in {} ms; sent {}; received {}",
                        reply.status,
                        exchange.millis,
                        body.as_deref()
                            .map(|body| redact::body(body.as_bytes()))
                            .unwrap_or_default(),
                        redact::body(&reply.body)
                    );
                } else {
                    console_log!(
                        "{kind} {id} {method:?} {shown_path} -> {} in {} ms",
                        reply.status,
                        exchange.millis
                    );
                }
                if (200..400).contains(&reply.status) || reply.status == 404 {
                    return Ok(Answer {
                        status: reply.status,
                        body: reply.body,
                    });
                }
                let now = runtime::now();
                let wait = reply
                    .retry_after
                    .as_deref()
                    .and_then(|value| domain::retry_after::seconds(value, now))
                    .or_else(|| {
                        let reset = reply
                            .rate_limit
                            .iter()
                            .find(|(name, _)| name == "x-ratelimit-reset")?;
                        let remaining = reply
                            .rate_limit
                            .iter()
                            .find(|(name, _)| name == "x-ratelimit-remaining");
                        // A reset says when the window ends; it is a wait only once it is spent.
                        (reply.status == 429 || remaining.is_some_and(|(_, left)| left.trim() == "0"))
                            .then(|| retry::reset_seconds(&reset.1, now.micros()))
                            .flatten()
                    });
                Err(Refusal::Failed(CallFailure::Status {
                    status: reply.status,
                    wait,
                    reason: kind_reason(self.connector, reply.status, &reply.body),
                }))
            }
            Err(Failure::TimedOut) => {
                console_log!(
                    "{kind} {id} {method:?} {shown_path} timed out after {} ms",
                    exchange.millis
                );
                Err(Refusal::Failed(CallFailure::TimedOut))
            }
            Err(Failure::Unreachable(cause)) => {
                console_log!("{kind} {id} {method:?} {shown_path} unreachable: {cause}");
                Err(Refusal::Failed(CallFailure::Unreachable(cause)))
            }
        }
    }

    /// Takes one request from the budget, waiting in place when room frees up shortly. The wait
    /// is reckoned from the budget as this drain loaded it; when the row still refuses after
    /// [`BUDGET_TRIES`] tries (its limits were lowered since), the drain stops for a second and
    /// the next one loads them anew.
    async fn take_from_budget(&self) -> Result<(), Refusal> {
        let connector = self.connector;
        for _ in 0..BUDGET_TRIES {
            let now = runtime::now().micros();
            let token = hex::encode(runtime::random::<16>()?);
            let mut batch = vec![crm_connectors::grant(
                self.db,
                &connector.tenant,
                &connector.id,
                &token,
                now,
            )?];
            batch.extend(crm_requests::record_grant(self.db, &connector.id, &token, now)?);
            let results = self.db.batch(batch).await.map_err(ApiError::from)?;
            if results
                .first()
                .is_some_and(|result| crate::db::changes(result) == 1)
            {
                return Ok(());
            }
            let spent =
                crm_connectors::spent(self.db, &connector.tenant, &connector.id, &connector.budget, now)
                    .await?;
            let wait_ms = budget::wait_ms(&connector.budget, &spent, now);
            if wait_ms > WAIT_IN_PLACE_MS {
                return Err(Refusal::Budget { wait_ms });
            }
            Delay::from(Duration::from_millis(wait_ms.max(1) as u64)).await;
        }
        Err(Refusal::Budget { wait_ms: 1_000 })
    }
}

/// What the CRM said in its error body, by kind of CRM.
fn kind_reason(connector: &Connector, status: u16, body: &[u8]) -> String {
    match connector.kind {
        domain::crm::work::ConnectorKind::Kustomer => domain::crm::kustomer::api::error_reason(status, body),
        domain::crm::work::ConnectorKind::Krayin => domain::crm::krayin::answer::error_reason(status, body),
    }
}
