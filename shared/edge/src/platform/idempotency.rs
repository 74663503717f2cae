//! `Idempotency-Key` on the POSTs that create or send: a retry of the same request gets the first
//! response again and does nothing twice (docs/api.md, "Retrying safely"). The words are in
//! `domain::idempotency`, the SQL in `db::idempotency_keys`.
//!
//! What holds, and how: the first request with a key claims it in D1 with one conditional insert,
//! so of two concurrent requests exactly one runs and the other is told to retry (409 with
//! `Retry-After: 1`); D1 is one database, so this holds across isolates and locations. The
//! response is kept once the run ends. A server error releases the key (the retry runs again),
//! and a run whose worker died holds its key for [`LEASE_SECONDS`] at most, after which a retry of
//! the same request takes it over (a live run renews its lease, however long it takes). Keys are forgotten 24 hours after their first use. A kept
//! response is sealed with the `SECRETS_KEY` keyring, which every function that takes keys holds.

use crate::Env;
use crate::console_error;
use crate::db::Db;
use crate::platform::secrets_key;
use crate::runtime::Internal;
use crate::runtime::{Delay, Headers, Request, Response};
use crate::{db, platform::http, runtime};
use domain::error::ApiError;
use domain::idempotency::{self, HEADER, IdempotencyKey, LEASE_SECONDS, RETENTION_SECONDS};
use domain::sealed::Place;
use domain::tenant::Tenant;
use futures_util::future::{Either, select};
use std::pin::pin;
use std::time::Duration;

/// The response header that marks a replayed response.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// The request's `Idempotency-Key`, if it carries one (400 when it is malformed).
pub fn key_of(req: &Request) -> Result<Option<IdempotencyKey>, ApiError> {
    IdempotencyKey::from_header(req.headers().get(HEADER).internal("reading a header")?.as_deref())
}

/// What makes two requests with one key the same request: its caller (the audit log's name of
/// them), method, path, content type and body.
pub fn fingerprint(caller: &str, req: &Request, body: &[u8]) -> Result<String, ApiError> {
    let content_type = req.headers().get("content-type").internal("reading a header")?;
    Ok(idempotency::fingerprint(
        caller,
        req.method().as_ref(),
        &req.path(),
        content_type.as_deref(),
        body,
    ))
}

/// Runs `run` if this request claims `key` first; otherwise answers as the run that holds or
/// held it answered, or tells the client to wait.
pub async fn guarded(
    env: &Env,
    tenant: &Tenant,
    key: &IdempotencyKey,
    fingerprint: &str,
    run: std::pin::Pin<Box<dyn Future<Output = Result<Response, ApiError>> + '_>>,
) -> Result<Response, ApiError> {
    let db = env.db()?;
    let now_us = runtime::now().micros();
    let claim = hex::encode(runtime::random::<16>()?);
    let claimed = db::idempotency_keys::claim(
        &db,
        tenant,
        &db::idempotency_keys::Claim {
            key,
            fingerprint,
            claim: &claim,
            now_us,
            lease_until_us: now_us + LEASE_SECONDS * 1_000_000,
            expired_before_us: now_us - RETENTION_SECONDS * 1_000_000,
        },
    )
    .await?;
    if !claimed {
        return replay(
            env,
            db::idempotency_keys::find(&db, tenant, key).await?,
            fingerprint,
        )
        .await;
    }

    // The lease is renewed while the run lives, so that a slow run (a large batch) is never taken
    // over by a retry and run twice; a run whose worker died stops renewing it.
    let renewing = pin!(renew_lease(&db, tenant, key, &claim));
    let outcome = match select(run, renewing).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(((), _)) => Err(ApiError::internal("renewing a lease", "it ended before its run")),
    };
    let response = match outcome {
        Ok(response) => response,
        Err(error) if idempotency::keeps(error.status()) => {
            http::error_response(&error).internal("making an answer")?
        }
        Err(error) => {
            release(&db, tenant, key, &claim).await;
            return Err(error);
        }
    };
    if !idempotency::keeps(response.status_code()) {
        release(&db, tenant, key, &claim).await;
        return Ok(response);
    }
    keep(env, tenant, key, &claim, response).await
}

/// Renews the lease of the run `claim` every third of a lease, for as long as it is polled.
async fn renew_lease(db: &Db, tenant: &Tenant, key: &IdempotencyKey, claim: &str) {
    loop {
        Delay::from(Duration::from_secs((LEASE_SECONDS / 3) as u64)).await;
        let until = runtime::now().micros() + LEASE_SECONDS * 1_000_000;
        if let Err(error) = db::idempotency_keys::extend(db, tenant, key, claim, until).await {
            console_error!("renewing an idempotency lease failed: {}", error.body.message);
        }
    }
}

/// Where a kept response body is sealed: bound to the run that made it.
fn place(claim: &str) -> Place<'_> {
    Place {
        table: "idempotency_keys",
        column: "body",
        row_id: claim,
    }
}

/// The answer to a request whose key another run holds or held.
async fn replay(
    env: &Env,
    stored: Option<db::idempotency_keys::Stored>,
    fingerprint: &str,
) -> Result<Response, ApiError> {
    let in_progress = || {
        ApiError::conflict(format!(
            "a request with this {HEADER} is still running; retry in a second"
        ))
        .with_retry_after(1)
    };
    let Some(stored) = stored else {
        // Released or forgotten between the claim and this read: the retry will claim it.
        return Err(in_progress());
    };
    if stored.fingerprint != fingerprint {
        return Err(ApiError::invalid(
            HEADER,
            format!(
                "this {HEADER} was already used with a different request, or by another key or console session; use a new key for a new request"
            ),
        ));
    }
    match (stored.state.as_str(), stored.status, stored.body) {
        ("done", Some(status), Some(sealed)) => {
            let body = secrets_key::open(&*env.keyring()?, &place(&stored.claim), &sealed)
                .await?
                .secret;
            let headers = Headers::new();
            headers
                .set(
                    "content-type",
                    stored.content_type.as_deref().unwrap_or("application/json"),
                )
                .internal("setting a header")?;
            headers
                .set("cache-control", "no-store")
                .internal("setting a header")?;
            headers
                .set(REPLAYED_HEADER, "true")
                .internal("setting a header")?;
            Ok(Response::ok(body)
                .internal("making an answer")?
                .with_status(status)
                .with_headers(headers))
        }
        _ => Err(in_progress()),
    }
}

/// Keeps the response for replay, and returns it.
async fn keep(
    env: &Env,
    tenant: &Tenant,
    key: &IdempotencyKey,
    claim: &str,
    mut response: Response,
) -> Result<Response, ApiError> {
    let status = response.status_code();
    let headers = response.headers().clone();
    let body = response.text().await.internal("reading an answer's body")?;
    let content_type = headers.get("content-type").internal("reading a header")?;
    let kept = async {
        let sealed = secrets_key::seal(&*env.keyring()?, &place(claim), &body).await?;
        let db = env.db()?;
        db::idempotency_keys::complete(&db, tenant, key, claim, status, content_type.as_deref(), &sealed)
            .await
    };
    if let Err(error) = kept.await {
        // The work is done and its answer goes out; a retry within the lease is told to wait,
        // and one after it runs again. Logged, as the one way a key can fail to hold.
        console_error!(
            "keeping the response of {HEADER} {} failed: {error:?}",
            key.as_str()
        );
    }
    Ok(Response::ok(body)
        .internal("making an answer")?
        .with_status(status)
        .with_headers(headers))
}

/// Frees the key; a failure only means the retry waits out the lease.
async fn release(db: &Db, tenant: &Tenant, key: &IdempotencyKey, claim: &str) {
    if let Err(error) = db::idempotency_keys::release(db, tenant, key, claim).await {
        console_error!("releasing {HEADER} {} failed: {error:?}", key.as_str());
    }
}

#[cfg(test)]
mod tests {
    //! Through a real idempotent endpoint's declaration (`POST /api-sso-generate-token`), with a
    //! handler of the test's own that counts its runs, waits or fails as the body asks.
    use super::*;
    use crate::platform::call::{self, Created, Json};
    use crate::runtime::Method;
    use crate::testing::Fixture;
    use domain::api::embed::{SSO_TOKEN, SsoToken};
    use futures_util::future::join;
    use serde_json::{Value, json};
    use std::cell::Cell;
    use std::rc::Rc;

    struct Answer {
        status: u16,
        replayed: bool,
        retry_after: Option<String>,
        body: Value,
    }

    async fn post(
        fixture: &Fixture,
        runs: &Rc<Cell<u32>>,
        key: &str,
        idempotency_key: Option<&str>,
        body: Value,
    ) -> Answer {
        let mut req = Request::new("https://api.example/api-sso-generate-token", Method::Post)
            .unwrap_or_else(|error| panic!("{error}"))
            .with_header("x-api-key", key)
            .with_header("content-type", "application/json")
            .with_body(body.to_string().into_bytes());
        if let Some(idempotency_key) = idempotency_key {
            req = req.with_header(HEADER, idempotency_key);
        }
        let runs = Rc::clone(runs);
        let mut response = call::serve(
            &SSO_TOKEN,
            req,
            fixture.stack.clone(),
            async move |operation, call| match operation {
                SsoToken::GenerateSsoToken => {
                    call.run(
                        async move |Json(body): Json<Value>| -> Result<Created<Value>, ApiError> {
                            runs.set(runs.get() + 1);
                            let run = runs.get();
                            if let Some(seconds) = body["wait"].as_u64() {
                                Delay::from(Duration::from_secs(seconds)).await;
                            }
                            match body["fail"].as_u64() {
                                Some(500) => Err(ApiError::internal("running", "it broke")),
                                Some(429) => Err(ApiError::rate_limited("slow down", 3)),
                                Some(_) => Err(ApiError::invalid("customer_id", "no such customer")),
                                None => Ok(Created(json!({ "run": run, "token": format!("tok_{run}") }))),
                            }
                        },
                    )
                    .await
                }
                SsoToken::RevokeSsoToken => Err(ApiError::not_found("not here")),
            },
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        let header = |name: &str| response.headers().get(name).unwrap_or_default();
        let replayed = header(REPLAYED_HEADER).as_deref() == Some("true");
        let retry_after = header("retry-after");
        let status = response.status_code();
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            replayed,
            retry_after,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    /// A business and one of its keys.
    fn keyed(fixture: &Fixture) -> String {
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            fixture.api_key(&tenant).await.0
        })
    }

    #[test]
    fn a_retry_with_the_same_key_gets_the_first_answer_again_and_runs_nothing() {
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        let body = json!({ "customer_id": "c1" });
        let first = fixture.run(post(&fixture, &runs, &key, Some("k-1"), body.clone()));
        assert_eq!((first.status, first.replayed), (201, false));
        fixture.stack.advance(Duration::from_secs(3600));
        let retry = fixture.run(post(&fixture, &runs, &key, Some("k-1"), body));
        assert_eq!((retry.status, retry.replayed), (201, true));
        assert_eq!(retry.body, first.body);
        assert_eq!(retry.body, json!({ "run": 1, "token": "tok_1" }));
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn the_kept_answer_is_sealed_in_d1() {
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        fixture.run(post(&fixture, &runs, &key, Some("k-1"), json!({})));
        let rows = fixture.rows("idempotency_keys", "key");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["state"], "done");
        assert_eq!(rows[0]["status"], 201);
        let kept = rows[0]["body"].as_str().unwrap_or_default();
        assert!(kept.starts_with("v1:k1:") && !kept.contains("tok_1"), "{kept}");
    }

    #[test]
    fn the_same_key_with_another_request_is_refused_and_runs_nothing() {
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        fixture.run(post(
            &fixture,
            &runs,
            &key,
            Some("k-1"),
            json!({ "customer_id": "c1" }),
        ));
        let other = fixture.run(post(
            &fixture,
            &runs,
            &key,
            Some("k-1"),
            json!({ "customer_id": "c2" }),
        ));
        assert_eq!(other.status, 422);
        assert_eq!(other.body["error"]["field"], HEADER);
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn a_key_another_request_still_holds_is_a_409_to_retry_in_a_second() {
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        let body = json!({ "wait": 5 });
        let (first, second) = fixture.run(join(
            post(&fixture, &runs, &key, Some("k-1"), body.clone()),
            post(&fixture, &runs, &key, Some("k-1"), body),
        ));
        assert_eq!(first.status, 201);
        assert_eq!((second.status, second.retry_after.as_deref()), (409, Some("1")));
        assert_eq!(second.body["error"]["code"], "conflict");
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn a_slow_run_keeps_its_key_past_the_lease_by_renewing_it() {
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        let body = json!({ "wait": 180 });
        let later = async {
            Delay::from(Duration::from_secs(150)).await;
            post(&fixture, &runs, &key, Some("k-1"), body.clone()).await
        };
        let (first, second) = fixture.run(join(
            post(&fixture, &runs, &key, Some("k-1"), body.clone()),
            later,
        ));
        assert_eq!(first.status, 201);
        assert_eq!(
            second.status, 409,
            "two and a half leases on, the run still holds its key"
        );
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn a_key_whose_run_died_is_taken_over_by_a_retry_once_its_lease_is_out() {
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        let body = json!({ "customer_id": "c1" });
        // A run that claimed the key as the guard does, and whose worker died before it finished.
        let tenant = fixture.run(async {
            crate::platform::auth::authenticate(
                &Request::new("https://api.example/x", Method::Get)
                    .unwrap_or_else(|error| panic!("{error}"))
                    .with_header("x-api-key", &key),
                &fixture.env,
            )
            .await
            .map(|found| found.tenant)
            .unwrap_or_else(|error| panic!("{error:?}"))
        });
        let claimed_key = IdempotencyKey::from_header(Some("k-1"))
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("a key"));
        let caller = domain::audit::Actor::Key(domain::api_key::accepted_prefix(&key)).label();
        let fingerprint = idempotency::fingerprint(
            &caller,
            "POST",
            "/api-sso-generate-token",
            Some("application/json"),
            body.to_string().as_bytes(),
        );
        let now_us = runtime::now().micros();
        let claimed = fixture.run(db::idempotency_keys::claim(
            &fixture.db,
            &tenant,
            &db::idempotency_keys::Claim {
                key: &claimed_key,
                fingerprint: &fingerprint,
                claim: "dead-run",
                now_us,
                lease_until_us: now_us + LEASE_SECONDS * 1_000_000,
                expired_before_us: now_us - RETENTION_SECONDS * 1_000_000,
            },
        ));
        assert_eq!(claimed.ok(), Some(true));
        let within = fixture.run(post(&fixture, &runs, &key, Some("k-1"), body.clone()));
        assert_eq!(within.status, 409, "within the lease");
        fixture
            .stack
            .advance(Duration::from_secs(LEASE_SECONDS as u64 + 1));
        let after = fixture.run(post(&fixture, &runs, &key, Some("k-1"), body));
        assert_eq!((after.status, after.replayed), (201, false));
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn what_the_request_decided_is_kept_and_a_server_error_or_a_rate_limit_runs_again() {
        let cases = [
            (json!({ "fail": 422 }), 422, true, "a refusal of the request"),
            (json!({ "fail": 500 }), 500, false, "our fault"),
            (json!({ "fail": 429 }), 429, false, "a rate limit"),
        ];
        for (body, status, kept, description) in cases {
            let fixture = Fixture::new();
            let key = keyed(&fixture);
            let runs = Rc::new(Cell::new(0));
            let first = fixture.run(post(&fixture, &runs, &key, Some("k-1"), body.clone()));
            assert_eq!(first.status, status, "{description}");
            let retry = fixture.run(post(&fixture, &runs, &key, Some("k-1"), body));
            assert_eq!(retry.status, status, "{description}");
            assert_eq!(retry.replayed, kept, "{description}");
            assert_eq!(runs.get(), if kept { 1 } else { 2 }, "{description}");
        }
    }

    #[test]
    fn another_key_of_the_business_is_not_replayed_what_the_first_was_answered() {
        let fixture = Fixture::new();
        let first = keyed(&fixture);
        let tenant = fixture.run(async {
            crate::platform::auth::authenticate(
                &Request::new("https://api.example/x", Method::Get)
                    .unwrap_or_else(|error| panic!("{error}"))
                    .with_header("x-api-key", &first),
                &fixture.env,
            )
            .await
            .map(|found| found.tenant)
            .unwrap_or_else(|error| panic!("{error:?}"))
        });
        let second = fixture.run(async { fixture.api_key(&tenant).await.0 });
        let runs = Rc::new(Cell::new(0));
        let body = json!({});
        let answered = fixture.run(post(&fixture, &runs, &first, Some("k-1"), body.clone()));
        assert_eq!((answered.status, answered.replayed), (201, false));
        let other = fixture.run(post(&fixture, &runs, &second, Some("k-1"), body.clone()));
        assert_eq!(
            (other.status, other.replayed),
            (422, false),
            "another key's request with the same Idempotency-Key is refused, not handed the first answer"
        );
        let retry = fixture.run(post(&fixture, &runs, &first, Some("k-1"), body));
        assert_eq!(
            (retry.status, retry.replayed),
            (201, true),
            "the first key's retry is replayed"
        );
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn a_key_is_the_businesss_own_and_a_request_without_one_is_not_guarded() {
        let fixture = Fixture::new();
        let acme = keyed(&fixture);
        let globex = fixture.run(async {
            let tenant = fixture.business("Globex").await;
            fixture.api_key(&tenant).await.0
        });
        let runs = Rc::new(Cell::new(0));
        let body = json!({});
        fixture.run(post(&fixture, &runs, &acme, Some("k-1"), body.clone()));
        let other = fixture.run(post(&fixture, &runs, &globex, Some("k-1"), body.clone()));
        assert_eq!((other.status, other.replayed), (201, false));
        fixture.run(post(&fixture, &runs, &acme, None, body.clone()));
        fixture.run(post(&fixture, &runs, &acme, None, body));
        assert_eq!(runs.get(), 4);
    }

    #[test]
    fn a_malformed_key_is_a_400_before_anything_runs() {
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        for (idempotency_key, description) in [
            ("", "empty"),
            ("two words", "a space"),
            (&"k".repeat(256)[..], "too long"),
        ] {
            let answer = fixture.run(post(&fixture, &runs, &key, Some(idempotency_key), json!({})));
            assert_eq!(answer.status, 400, "{description}");
            assert_eq!(answer.body["error"]["field"], HEADER, "{description}");
        }
        assert_eq!(runs.get(), 0);
    }

    #[test]
    fn a_multipart_retry_is_the_same_request_whatever_boundary_the_client_drew() {
        let _fixture = Fixture::new();
        let with = |boundary: &str| {
            let req = Request::new("https://api.example/api-upload-attachment", Method::Post)
                .unwrap_or_else(|error| panic!("{error}"))
                .with_header(
                    "content-type",
                    &format!("multipart/form-data; boundary={boundary}"),
                );
            let body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--{boundary}--\r\n"
            );
            fingerprint("key:cek_1a2b3c4d", &req, body.as_bytes()).unwrap_or_else(|error| panic!("{error:?}"))
        };
        assert_eq!(with("aaa111"), with("zzz999"));
    }

    #[test]
    fn the_same_key_on_another_endpoint_is_refused() {
        use domain::api::customers::{CUSTOMERS_SYNC, CustomersSync};
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        fixture.run(post(&fixture, &runs, &key, Some("k-1"), json!({})));
        let req = Request::new("https://api.example/api-customers-sync", Method::Post)
            .unwrap_or_else(|error| panic!("{error}"))
            .with_header("x-api-key", &key)
            .with_header("content-type", "application/json")
            .with_header(HEADER, "k-1")
            .with_body(b"{}".to_vec());
        let status = fixture.run(async {
            call::serve(
                &CUSTOMERS_SYNC,
                req,
                fixture.stack.clone(),
                async |operation, call| match operation {
                    CustomersSync::SyncCustomers => {
                        call.run(async |Json(body): Json<Value>| -> Result<Json<Value>, ApiError> {
                            Ok(Json(body))
                        })
                        .await
                    }
                },
            )
            .await
            .map(|response| response.status_code())
            .unwrap_or_else(|error| panic!("{error}"))
        });
        assert_eq!(status, 422);
    }

    #[test]
    fn the_api_key_is_checked_before_the_idempotency_key() {
        let fixture = Fixture::new();
        keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        let answer = fixture.run(post(&fixture, &runs, "", Some("k-1"), json!({})));
        assert_eq!(answer.status, 401);
        assert!(fixture.rows("idempotency_keys", "key").is_empty());
    }

    #[test]
    fn an_oversized_body_is_a_413_that_claims_nothing() {
        let fixture = Fixture::new();
        let key = keyed(&fixture);
        let runs = Rc::new(Cell::new(0));
        let huge = json!({ "notes": "x".repeat(http::SMALL_BODY_LIMIT) });
        let refused = fixture.run(post(&fixture, &runs, &key, Some("k-1"), huge));
        assert_eq!((refused.status, refused.replayed), (413, false));
        assert!(
            fixture.rows("idempotency_keys", "key").is_empty(),
            "nothing claimed"
        );
        let small = fixture.run(post(&fixture, &runs, &key, Some("k-1"), json!({})));
        assert_eq!(
            (small.status, small.replayed),
            (201, false),
            "the key is still free"
        );
        assert_eq!(runs.get(), 1);
    }
}
