//! One call to a connector's CRM: taken from the connector's budget first (shared by every
//! worker through D1), bounded in time and size, and logged: always by method, path without
//! lookup values, status and duration; in debug mode also with bodies, redacted
//! (`domain::crm::redact`). Credentials are never logged.

use crate::Env;
use crate::console_log;
use crate::db::Db;
use crate::db::crm_connectors::{self, Connector};
use crate::db::crm_requests;
use crate::platform::bounded_fetch::{self, Failure};
use crate::runtime;
use crate::runtime::{Delay, Method};
use domain::crm::budget;
use domain::crm::config::ConnectorSecrets;
use domain::crm::oauth::OAuthApp;
use domain::crm::redact;
use domain::crm::request::{self, ApiRequest};
use domain::crm::retry::{self, CallFailure};
use domain::error::ApiError;
use std::cell::RefCell;
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
    /// What the CRM said of its limits (`x-ratelimit-*`, `sforce-limit-info`), names lowercased.
    pub rate_limit: Vec<(String, String)>,
}

impl Answer {
    /// The limit header `name` (lowercase), when the CRM sent it.
    pub fn limit_header(&self, name: &str) -> Option<&str> {
        self.rate_limit
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }
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
    /// The CRM's OAuth app (its token endpoint, how long its tokens last), for a connector
    /// authorised with OAuth (`super::oauth`).
    pub oauth_app: Option<OAuthApp>,
    /// The connector's secrets as this client last had them: its access token refreshed here
    /// replaces the one it was loaded with.
    pub(super) secrets: RefCell<ConnectorSecrets>,
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
            oauth_app: None,
            secrets: RefCell::new(connector.secrets.clone()),
        }
    }

    /// Makes the call once the budget allows it; an answer that is not a success (a 404, a 3xx)
    /// is returned as it is. With OAuth, the access token is refreshed first when it is about to
    /// expire, and once more when the CRM refuses it (401) before the call is made again.
    pub async fn send(&self, request: &ApiRequest) -> Result<Answer, Refusal> {
        // With OAuth (a token endpoint and a grant): whether the access token is about to expire.
        let (oauth, due) = match (&self.oauth_app, self.secrets.borrow().grant()) {
            (Some(_), Some(grant)) => (true, grant.due(runtime::now().millis())),
            _ => (false, false),
        };
        if due {
            self.refresh().await?;
        }
        match self.send_once(request).await {
            Err(Refusal::Failed(CallFailure::Status { status: 401, .. })) if oauth && !due => {
                self.refresh().await?;
                self.send_once(request).await
            }
            answered => answered,
        }
    }

    async fn send_once(&self, request: &ApiRequest) -> Result<Answer, Refusal> {
        if self.budgeted {
            self.take_from_budget().await?;
        }
        let method = match request.method {
            request::Method::Get => Method::Get,
            request::Method::Post => Method::Post,
            request::Method::Put => Method::Put,
            request::Method::Patch => Method::Patch,
            request::Method::Delete => Method::Delete,
        };
        let path = request.target();
        let body = request.body.as_ref().map(serde_json::Value::to_string);
        let mut headers = vec![
            ("authorization", self.secrets.borrow().authorization().to_owned()),
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
        let answered = matches!(&exchange.result, Ok(reply) if (200..400).contains(&reply.status) || reply.status == 404);
        super::health::record(
            &self.connector.tenant,
            self.connector.id.as_str(),
            exchange.millis,
            !answered,
        );
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
                if answered {
                    return Ok(Answer {
                        status: reply.status,
                        body: reply.body,
                        rate_limit: reply.rate_limit,
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
                Err(Refusal::Failed(kind_failure(
                    self.connector,
                    reply.status,
                    &reply.body,
                    wait,
                )))
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

    /// Trades the refresh token for a new access token, which this client's calls carry from now
    /// on and which is kept for the connector's next invocations (unless an administrator changed
    /// the connector meanwhile). A refusal of the token endpoint fails the work with what it said.
    async fn refresh(&self) -> Result<(), Refusal> {
        let (Some(app), Some(grant)) = (&self.oauth_app, self.secrets.borrow().grant().cloned()) else {
            return Ok(());
        };
        let connector = self.connector;
        let tokens = super::oauth::post_form(
            self.env,
            &app.token_url,
            &grant.refresh_form(),
            connector.kind.display_name(),
        )
        .await
        .map_err(Refusal::Failed)?
        .lasting(app.token_seconds);
        let now_ms = runtime::now().millis();
        let Some(refreshed) = self.secrets.borrow().refreshed(&tokens, now_ms) else {
            return Ok(());
        };
        let keys = self.env.keyring()?;
        let kept = crm_connectors::store_refreshed(
            self.db,
            &keys,
            &connector.tenant,
            &connector.id,
            connector.revision,
            &refreshed,
        )
        .await?;
        if !kept {
            console_log!(
                "{} {}: the refreshed access token is used by this invocation only: the connector was changed since it was read",
                connector.kind,
                connector.id
            );
        }
        *self.secrets.borrow_mut() = refreshed;
        Ok(())
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

/// What the CRM's answer that is not a success means, by kind of CRM.
fn kind_failure(connector: &Connector, status: u16, body: &[u8], wait: Option<u32>) -> CallFailure {
    domain::with_crm!(connector.kind, C => <C as domain::crm::spec::Crm>::call_failure(status, body, wait))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::test_support::{
        API_KEY, HOST, Script, UNLIMITED, kustomer_connector, kustomer_error, record, reloaded,
    };
    use crate::runtime::Level;
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use domain::crm::budget::Budget;
    use domain::crm::kustomer::api;
    use serde_json::{Map, json};

    fn client<'a>(fixture: &'a Fixture, connector: &'a Connector) -> Client<'a> {
        Client::new(&fixture.env, &fixture.db, connector, format!("https://{HOST}"))
    }

    /// The wait a refused call carries, or why it was not a CRM's failure.
    fn failure(result: Result<Answer, Refusal>) -> CallFailure {
        match result {
            Err(Refusal::Failed(failure)) => failure,
            Err(other) => panic!("not the CRM's failure: {other:?}"),
            Ok(answer) => panic!("answered {}", answer.status),
        }
    }

    #[test]
    fn a_budget_of_two_a_second_holds_the_third_call_in_place_until_a_second_has_passed() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let budget = Budget {
                per_second: Some(2),
                ..UNLIMITED
            };
            let connector = kustomer_connector(&fixture, &tenant, json!({}), budget).await;
            let script = Script::install(&fixture.stack);
            let client = client(&fixture, &connector);
            for _ in 0..3 {
                let answer = client.send(&api::current_user()).await;
                assert!(answer.is_ok_and(|answer| answer.status == 200));
            }
            let at: Vec<i64> = script.calls().iter().map(|call| call.at_ms).collect();
            assert_eq!(at[1] - at[0], 0, "two at once: {at:?}");
            assert_eq!(at[2] - at[0], 1000, "the third a second later: {at:?}");
            let grants = fixture.rows("crm_requests", "at_us");
            assert_eq!(grants.len(), 3, "each call granted once: {grants:?}");
        });
    }

    #[test]
    fn a_budget_spent_for_longer_than_three_seconds_puts_the_work_off_without_calling() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let budget = Budget {
                per_minute: Some(1),
                ..UNLIMITED
            };
            let connector = kustomer_connector(&fixture, &tenant, json!({}), budget).await;
            let script = Script::install(&fixture.stack);
            let client = client(&fixture, &connector);
            assert!(client.send(&api::current_user()).await.is_ok());
            fixture.stack.advance(Duration::from_secs(20));
            match client.send(&api::current_user()).await {
                Err(Refusal::Budget { wait_ms }) => {
                    assert_eq!(wait_ms, 40_000, "until the first grant leaves the minute")
                }
                other => panic!("put off: {:?}", other.map(|answer| answer.status)),
            }
            assert_eq!(script.calls().len(), 1, "the refused call was not made");
        });
    }

    #[test]
    fn a_paused_connector_makes_no_call_until_the_pause_is_over() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            let now = runtime::now().micros();
            crm_connectors::pause(&fixture.db, &tenant, &connector.id, now + 30_000_000)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let connector = reloaded(&fixture, &connector).await;
            let client = client(&fixture, &connector);
            match client.send(&api::current_user()).await {
                Err(Refusal::Budget { wait_ms }) => assert_eq!(wait_ms, 30_000),
                other => panic!("held back: {:?}", other.map(|answer| answer.status)),
            }
            assert!(script.calls().is_empty(), "no call while paused");
            fixture.stack.advance(Duration::from_secs(30));
            assert!(
                client.send(&api::current_user()).await.is_ok(),
                "called once the pause is over"
            );
        });
    }

    #[test]
    fn what_kustomer_asks_to_wait_becomes_the_failures_wait() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            // The stack's clock starts on Thursday 2026-11-26 at 12:00 UTC: two minutes on.
            let in_two_minutes = "Thu, 26 Nov 2026 12:02:00 GMT";
            let cases: [(Reply, u16, Option<u32>, &str); 7] = [
                (
                    kustomer_error(429, "slow down").header("retry-after", "7"),
                    429,
                    Some(7),
                    "Retry-After in seconds",
                ),
                (
                    kustomer_error(503, "maintenance").header("retry-after", in_two_minutes),
                    503,
                    Some(120),
                    "Retry-After as a date",
                ),
                (
                    kustomer_error(429, "org budget")
                        .header("x-ratelimit-reset", "30")
                        .header("x-ratelimit-remaining", "0"),
                    429,
                    Some(30),
                    "the window's reset once the budget is spent",
                ),
                (
                    kustomer_error(429, "org budget").header("x-ratelimit-reset", "12"),
                    429,
                    Some(12),
                    "a 429's reset",
                ),
                (
                    kustomer_error(500, "oops")
                        .header("x-ratelimit-reset", "30")
                        .header("x-ratelimit-remaining", "5"),
                    500,
                    None,
                    "a reset with budget left is no wait",
                ),
                (
                    kustomer_error(400, "emails/0/email is not valid"),
                    400,
                    None,
                    "a refusal",
                ),
                (
                    kustomer_error(429, "no headers"),
                    429,
                    None,
                    "a 429 that says nothing",
                ),
            ];
            let client = client(&fixture, &connector);
            for (reply, status, wait, why) in cases {
                script.then([reply]);
                match failure(client.send(&api::current_user()).await) {
                    CallFailure::Status {
                        status: got,
                        wait: waited,
                        reason,
                    } => {
                        assert_eq!((got, waited), (status, wait), "{why}: {reason}");
                        assert!(
                            reason.starts_with(&format!("Kustomer answered {status}")),
                            "{why}: {reason}"
                        );
                    }
                    other => panic!("{why}: {other:?}"),
                }
            }
        });
    }

    #[test]
    fn a_404_and_a_redirect_are_answers_for_the_caller_to_read() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            script.then([
                kustomer_error(404, "No customer"),
                Reply::status(302).header("location", "https://elsewhere.example/"),
            ]);
            let client = client(&fixture, &connector);
            for status in [404, 302] {
                let answer = client
                    .send(&api::find_customer_by_email("ada@example.com"))
                    .await
                    .unwrap_or_else(|refusal| panic!("{status}: {refusal:?}"));
                assert_eq!(answer.status, status);
                assert!(!answer.is_success());
            }
            assert_eq!(script.calls().len(), 2, "the redirect is not followed");
        });
    }

    #[test]
    fn a_crm_that_does_not_answer_is_given_up_after_ten_seconds_and_one_nobody_answers_is_unreachable() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            script.then([Reply::never()]);
            let client = client(&fixture, &connector);
            let started = runtime::now().millis();
            assert_eq!(
                failure(client.send(&api::current_user()).await),
                CallFailure::TimedOut
            );
            assert_eq!(
                runtime::now().millis() - started,
                TIMEOUT_MS as i64,
                "given up at the timeout"
            );
            let nowhere = Client::new(
                &fixture.env,
                &fixture.db,
                &connector,
                "https://nobody.kustomer.test".to_owned(),
            );
            assert!(matches!(
                failure(nowhere.send(&api::current_user()).await),
                CallFailure::Unreachable(_)
            ));
            assert_eq!(script.calls().len(), 1);
        });
    }

    #[test]
    fn a_call_carries_the_key_and_the_log_shows_neither_the_key_nor_bodies_nor_lookup_values() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            let client = client(&fixture, &connector);
            assert!(!client.debug, "debug mode is off unless asked for");
            let _ = client.send(&api::find_customer_by_email("ada@example.com")).await;
            let mut body = Map::new();
            body.insert("name".into(), json!("Ada Lovelace"));
            body.insert("emails".into(), json!([{ "email": "ada@example.com" }]));
            let _ = client.send(&api::create_customer(body)).await;
            let calls = script.calls();
            assert_eq!(
                calls[0].header("authorization"),
                Some(format!("Bearer {API_KEY}").as_str())
            );
            assert_eq!(calls[0].header("accept"), Some("application/json"));
            assert_eq!(calls[0].header("content-type"), None, "a GET has no body");
            assert_eq!(calls[1].header("content-type"), Some("application/json"));
            let lines = fixture
                .stack
                .logged(Level::Log, &format!("kustomer {}", connector.id));
            assert_eq!(
                lines,
                [
                    format!(
                        "kustomer {} Get /v1/customers/email=[redacted] -> 404 in 0 ms",
                        connector.id
                    ),
                    format!("kustomer {} Post /v1/customers -> 201 in 0 ms", connector.id),
                ]
            );
            let everything: Vec<String> = fixture.stack.logs().into_iter().map(|(_, line)| line).collect();
            for secret in [API_KEY, "ada@example.com", "ada%40example.com", "Ada Lovelace"] {
                assert!(
                    everything.iter().all(|line| !line.contains(secret)),
                    "{secret} is not logged: {everything:#?}"
                );
            }
        });
    }

    #[test]
    fn in_debug_mode_bodies_are_logged_redacted_and_the_key_still_never() {
        let fixture = Fixture::new();
        fixture.run(async {
            fixture.stack.set_var("KUSTOMER_DEBUG", " TRUE ");
            let tenant = fixture.business("Acme").await;
            let connector = kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let script = Script::install(&fixture.stack);
            script.then([record(201, "customer", "5f00000000000000000000c1")]);
            let client = client(&fixture, &connector);
            assert!(client.debug);
            let mut body = Map::new();
            body.insert("name".into(), json!("Ada Lovelace"));
            body.insert(
                "emails".into(),
                json!([{ "type": "home", "email": "ada@example.com" }]),
            );
            let _ = client.send(&api::create_customer(body)).await;
            let lines = fixture.stack.logged(Level::Log, "[debug] kustomer");
            assert_eq!(lines.len(), 1, "{lines:#?}");
            let line = &lines[0];
            for shown in [
                "Post /v1/customers -> 201",
                "\"home\"",
                "[12 chars]",
                "[15 chars]",
                "5f00000000000000000000c1",
            ] {
                assert!(line.contains(shown), "{shown} in {line}");
            }
            for hidden in [API_KEY, "Ada Lovelace", "ada@example.com"] {
                assert!(!line.contains(hidden), "{hidden} not in {line}");
            }
        });
    }

    #[test]
    fn a_call_outside_the_budget_takes_nothing_from_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let budget = Budget {
                per_minute: Some(1),
                ..UNLIMITED
            };
            let connector = kustomer_connector(&fixture, &tenant, json!({}), budget).await;
            let script = Script::install(&fixture.stack);
            let mut client = client(&fixture, &connector);
            client.budgeted = false;
            for _ in 0..3 {
                assert!(client.send(&api::current_user()).await.is_ok());
            }
            assert_eq!(script.calls().len(), 3);
            assert!(
                fixture.rows("crm_requests", "at_us").is_empty(),
                "no grant recorded"
            );
        });
    }
}
