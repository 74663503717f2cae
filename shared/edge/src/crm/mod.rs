//! CRM connectors at runtime: calling a CRM within its budget (`client`), the sync pipeline from
//! our events to a contact's ordered work (`sync`), and each CRM's side of that work (one module
//! per CRM: `kustomer`, `krayin`), with what their work has in common here.

pub mod chatwoot;
pub mod client;
pub mod escalation;
pub mod followed;
pub mod health;
pub mod hubspot;
pub mod krayin;
pub mod kustomer;
pub mod oauth;
pub mod salesforce;
pub mod sync;
#[cfg(test)]
pub(crate) mod test_support;

use crate::Env;
use crate::db::Db;
use crate::db::crm_connectors::{self, Connector};
use crate::db::crm_sync_jobs::Job;
use crate::db::{self, crm_links};
use crate::{events::webhook_delivery, platform::http, runtime};
use client::Refusal;
use domain::crm::chatwoot::ChatwootEvent;
use domain::crm::config::ConnectorSecrets;
use domain::crm::retry::CallFailure;
pub use domain::crm::settle::Outcome;
use domain::crm::spec::{ConnectorSettings, Crm};
use domain::crm::work::{ConnectorKind, LinkKind, Routing, Work};
use domain::customer::Customer;
use domain::error::ApiError;
use domain::ids::{ConversationId, CustomerId, MessageId};
use domain::json::Malformed;
use domain::lookup::CustomerKey;
use domain::message::{Conversation, Message};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhooks::EventType;
use domain::with_crm;

/// The outcome of a call that was refused, or our own failure.
pub fn outcome_of(refusal: Refusal) -> Result<Outcome, ApiError> {
    match refusal {
        Refusal::Failed(failure) => Ok(Outcome::Failed(failure)),
        Refusal::Budget { wait_ms } => Ok(Outcome::Budget { wait_ms }),
        Refusal::Ours(error) => Err(error),
    }
}

/// A connector ready to call: its client (through its budget) and its CRM's settings, read back
/// as the admin API stored them. Each CRM's module adds its calls to its own (`Kustomer<'a>` is a
/// `Connection<'a, KustomerSettings>`).
pub struct Connection<'a, S> {
    pub client: client::Client<'a>,
    pub settings: S,
    env: &'a Env,
}

impl<'a, S: ConnectorSettings> Connection<'a, S> {
    /// The connector with its settings; Err says why they cannot be used.
    pub fn new(env: &'a Env, db: &'a Db, connector: &'a Connector) -> Result<Self, String> {
        let settings = S::parse(&connector.settings, http::allows_loopback(env))
            .map_err(|error| format!("the connector's settings are unusable: {}", error.body.message))?;
        let mut client = client::Client::new(env, db, connector, settings.api_base());
        client.oauth_app = settings.oauth_app();
        Ok(Self {
            client,
            settings,
            env,
        })
    }

    fn tenant(&self) -> &Tenant {
        &self.client.connector.tenant
    }

    fn db(&self) -> &Db {
        self.client.db
    }

    /// Keeps what was read of the CRM's configuration on the connector, if the connector is still
    /// at the revision it was read with (`crm_connectors::store_cache`).
    async fn keep_read(&self, read: &serde_json::Value) -> Result<(), Refusal> {
        let connector = self.client.connector;
        crm_connectors::store_cache(
            self.db(),
            &connector.tenant,
            &connector.id,
            connector.revision,
            read,
            runtime::now().micros(),
        )
        .await?;
        Ok(())
    }

    /// Keeps `crm_id` as the CRM's copy of our record (`kind`, `local_id`); the id kept (an
    /// earlier try's, when one linked it first).
    async fn link(&self, kind: LinkKind, local_id: &str, crm_id: &str) -> Result<String, Refusal> {
        Ok(crm_links::link(
            self.db(),
            self.tenant(),
            &self.client.connector.id,
            kind,
            local_id,
            crm_id,
            runtime::now().micros(),
        )
        .await?)
    }

    /// The CRM's id of our record, when it has one.
    async fn linked(&self, kind: LinkKind, local_id: &str) -> Result<Option<String>, Refusal> {
        Ok(crm_links::crm_id(
            self.db(),
            self.tenant(),
            &self.client.connector.id,
            kind,
            local_id,
        )
        .await?)
    }

    async fn conversation(&self, id: &ConversationId) -> Result<Conversation, Refusal> {
        db::conversations::by_ids(self.db(), self.tenant(), &[id])
            .await?
            .pop()
            .ok_or_else(|| Refusal::Failed(gone(format!("conversation {id} no longer exists"))))
    }

    async fn message(&self, id: &MessageId) -> Result<Message, Refusal> {
        db::messages::by_ids(self.db(), self.tenant(), &[id])
            .await?
            .pop()
            .ok_or_else(|| Refusal::Failed(gone(format!("message {id} no longer exists"))))
    }

    async fn customer(&self, id: &CustomerId) -> Result<Customer, Refusal> {
        db::customers::find_one(self.db(), self.tenant(), &CustomerKey::Id(id.clone()))
            .await?
            .ok_or_else(|| Refusal::Failed(gone(format!("customer {id} no longer exists"))))
    }
}

/// A CRM's runtime part, implemented in its module for its [`Crm`] (registered in
/// `domain::with_crm!`): its connection made from a connector's row.
pub trait Connected: Crm {
    type Live<'a>: Live<'a>;

    /// Whether its [`Live::prepare`] does anything: the sync consumer takes a batch's leases and
    /// reads their work ahead only for such a CRM.
    const PREPARES: bool = false;

    /// The connector ready to call; Err says why its stored settings cannot be used.
    fn connect<'a>(env: &'a Env, db: &'a Db, connector: &'a Connector) -> Result<Self::Live<'a>, String>;
}

/// What every connected CRM does: each kind of sync work (the framework reads a job's work and
/// hands it to the part that does it), the connection test, and the check of its settings against
/// the CRM when they are saved. `retrying`: an earlier try of the same work may have reached the
/// CRM, so a record it made is looked for before one is made again.
pub trait Live<'a> {
    /// The client its calls go through (the admin API's calls are made outside the budget).
    fn client(&mut self) -> &mut client::Client<'a>;

    /// A customer of ours created or changed: the CRM's contact found or made, and kept up to date.
    fn follow_customer(
        &self,
        retrying: bool,
        id: &CustomerId,
        event: EventType,
    ) -> impl Future<Output = Result<Outcome, Refusal>>;

    /// A conversation created, assigned or whose status changed.
    fn follow_conversation(
        &self,
        retrying: bool,
        id: &ConversationId,
        event: EventType,
    ) -> impl Future<Output = Result<Outcome, Refusal>>;

    /// A message received or sent.
    fn follow_message(
        &self,
        retrying: bool,
        id: &MessageId,
    ) -> impl Future<Output = Result<Outcome, Refusal>>;

    /// A conversation handed to a person, with why and where it should go.
    fn escalate(
        &self,
        retrying: bool,
        conversation: &ConversationId,
        reason: &str,
        routing: &Routing,
    ) -> impl Future<Output = Result<Outcome, Refusal>>;

    /// An escalation's priority or team changed.
    fn change_escalation(
        &self,
        conversation: &ConversationId,
        routing: &Routing,
    ) -> impl Future<Output = Result<Outcome, Refusal>>;

    /// A note on a conversation, asked through the API.
    fn note(
        &self,
        retrying: bool,
        conversation: &ConversationId,
        body: &str,
    ) -> impl Future<Output = Result<Outcome, Refusal>>;

    /// An erased customer's contact deleted in the CRM (`crate::ops::erasure`), by its CRM id.
    fn erase(&self, crm_id: &str) -> impl Future<Output = Result<Outcome, Refusal>>;

    /// An event of the platform whose webhooks feed the connector (Chatwoot's, for Krayin); a CRM
    /// no platform feeds skips it.
    fn follow_platform(&self, event: &ChatwootEvent) -> impl Future<Output = Result<Outcome, Refusal>> {
        let _ = event;
        async { skipped("no platform's webhooks feed this CRM's connectors") }
    }

    /// Several contacts' next work (their customer's id and the work), before each is done alone:
    /// a CRM with calls for several records at once (Salesforce's sObject Collections) makes or
    /// finds the customers' records that work needs in as few calls, each linked as its own work
    /// would have linked it, which then finds it. A CRM without such calls leaves each to its own
    /// work, as does a failure here: the work then does it, and says why if it fails too.
    fn prepare(&self, due: &[(CustomerId, Work)]) -> impl Future<Output = Result<(), Refusal>> {
        let _ = due;
        async { Ok(()) }
    }

    /// The seed's "Test the connection": who the credentials belong to, or why they fail.
    fn test_connection(&self) -> impl Future<Output = Result<ConnectionTest, ApiError>>;

    /// Checks the settings against the CRM as the admin API saves them; what to keep of what the
    /// CRM answered (Krayin's pipelines), None when nothing.
    fn check_settings(&self) -> impl Future<Output = Result<Option<serde_json::Value>, ApiError>>;

    /// When the key expires, as the CRM says (Kustomer's keys may expire): `Ok(None)` for a key
    /// that never does. A CRM whose keys carry no expiry is not asked.
    fn key_expiry(&self) -> impl Future<Output = Option<Result<Option<Timestamp>, Refusal>>> {
        async { None }
    }
}

/// Does `job` with the connector's CRM; with the connector's secrets as its calls left them (an
/// access token refreshed on the way), which the contact's next work starts from, so that one
/// refresh serves them all.
pub async fn perform(
    env: &Env,
    db: &Db,
    connector: &Connector,
    job: &Job,
) -> Result<(Outcome, ConnectorSecrets), ApiError> {
    with_crm!(connector.kind, C => match <C as Connected>::connect(env, db, connector) {
        Err(reason) => Ok((Outcome::Invalid(reason), connector.secrets.clone())),
        Ok(mut crm) => {
            let outcome = work_with(&crm, job).await.or_else(outcome_of)?;
            let secrets = crm.client().secrets.borrow().clone();
            Ok((outcome, secrets))
        }
    })
}

/// Does `job` with the connector as a connector of `C`: work whose connector's settings cannot be
/// used is invalid. A test's way in, with the CRM's refusal as it came.
#[cfg(test)]
pub(crate) async fn perform_with<C: Connected>(
    env: &Env,
    db: &Db,
    connector: &Connector,
    job: &Job,
) -> Result<Outcome, Refusal> {
    match C::connect(env, db, connector) {
        Ok(crm) => work_with(&crm, job).await,
        Err(reason) => Ok(Outcome::Invalid(reason)),
    }
}

/// Hands the job's work to the part of the CRM that does it.
async fn work_with<'a>(crm: &impl Live<'a>, job: &Job) -> Result<Outcome, Refusal> {
    let retrying = job.attempts > 0;
    match work(job)? {
        Work::Customer { id, event } => crm.follow_customer(retrying, &id, event).await,
        Work::Conversation { id, event } => crm.follow_conversation(retrying, &id, event).await,
        Work::Message { id } => crm.follow_message(retrying, &id).await,
        Work::Escalate {
            conversation,
            reason,
            routing,
        } => crm.escalate(retrying, &conversation, &reason, &routing).await,
        Work::ChangeEscalation {
            conversation,
            routing,
        } => crm.change_escalation(&conversation, &routing).await,
        Work::Note { conversation, body } => crm.note(retrying, &conversation, &body).await,
        Work::Chatwoot(event) => crm.follow_platform(&event).await,
        Work::Erase { crm_id } => crm.erase(&crm_id).await,
    }
}

/// Whether connectors of `kind` do several contacts' work together ([`Connected::PREPARES`]).
pub fn prepares(kind: ConnectorKind) -> bool {
    with_crm!(kind, C => <C as Connected>::PREPARES)
}

/// Hands several contacts' next work to the connector's CRM together ([`Live::prepare`]); what it
/// refused is logged and left to the work itself.
pub async fn prepare(
    env: &Env,
    db: &Db,
    connector: &Connector,
    due: &[(CustomerId, Work)],
) -> Result<(), ApiError> {
    let prepared = with_crm!(connector.kind, C => match <C as Connected>::connect(env, db, connector) {
        Ok(crm) => crm.prepare(due).await,
        Err(_) => Ok(()),
    });
    match prepared {
        Err(Refusal::Ours(error)) => Err(error),
        Err(refusal) => {
            let said = refusal_error(connector.kind.as_str(), refusal);
            crate::console_log!(
                "connector {}: {} customers' records were not made together ({}); each one's own work makes it",
                connector.id,
                due.len(),
                said.body.message
            );
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// The connector's connection test, made outside its budget. The key's expiry it read (or that
/// it has none, when the test passed) is kept for the `connector_key_expiring` alert rule.
pub async fn test_connection(env: &Env, db: &Db, connector: &Connector) -> Result<ConnectionTest, ApiError> {
    let unusable = |reason: String| ApiError::invalid("settings", reason);
    let test = with_crm!(connector.kind, C => {
        let crm = <C as Connected>::connect(env, db, connector).map_err(unusable)?;
        crm.test_connection().await
    })?;
    if test.ok || test.expires_at.is_some() {
        keep_key_expiry(db, connector, test.expires_at).await?;
    }
    Ok(test)
}

/// Reads and keeps when the connector's key expires, as a credential is saved: the expiry of the
/// key it replaced is forgotten first, so a CRM that cannot be asked now leaves none rather than
/// the old key's. A CRM whose keys carry no expiry is not called.
pub async fn read_key_expiry(env: &Env, db: &Db, connector: &Connector) -> Result<(), ApiError> {
    let unusable = |reason: String| ApiError::invalid("settings", reason);
    let read = with_crm!(connector.kind, C => {
        let mut crm = <C as Connected>::connect(env, db, connector).map_err(unusable)?;
        crm.client().budgeted = false;
        crm.key_expiry().await
    });
    match read {
        None => Ok(()),
        Some(Ok(expires_at)) => keep_key_expiry(db, connector, expires_at).await,
        Some(Err(refusal)) => {
            crate::console_log!(
                "connector {}: the key's expiry could not be read ({refusal:?}); the next connection test reads it",
                connector.id
            );
            keep_key_expiry(db, connector, None).await
        }
    }
}

async fn keep_key_expiry(
    db: &Db,
    connector: &Connector,
    expires_at: Option<Timestamp>,
) -> Result<(), ApiError> {
    crate::db::crm_connectors::record_key_expiry(
        db,
        &connector.tenant,
        &connector.id,
        connector.revision,
        expires_at.map(Timestamp::micros),
    )
    .await
}

/// The connector's settings checked against its CRM, outside its budget: what to keep of the
/// CRM's answer, None when nothing.
pub async fn check_settings(
    env: &Env,
    db: &Db,
    connector: &Connector,
) -> Result<Option<serde_json::Value>, ApiError> {
    let unusable = |reason: String| ApiError::invalid("settings", reason);
    with_crm!(connector.kind, C => {
        let mut crm = <C as Connected>::connect(env, db, connector).map_err(unusable)?;
        crm.client().budgeted = false;
        crm.check_settings().await
    })
}

/// Whether the debug log is on for connectors of `kind` (`KUSTOMER_DEBUG=true`, `KRAYIN_DEBUG=true`): bodies are
/// logged, redacted.
pub fn debug(env: &Env, kind: ConnectorKind) -> bool {
    let name = format!("{}_DEBUG", kind.as_str().to_ascii_uppercase());
    env.var(&name)
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// A failure for a record of ours that is gone: nothing to send, retrying cannot help.
pub(crate) fn gone(reason: String) -> CallFailure {
    CallFailure::Status {
        status: 404,
        wait: None,
        reason,
    }
}

/// A CRM answer we could not read: retrying will not make it readable.
pub(crate) fn unreadable(crm: &str, reason: Malformed) -> Refusal {
    Refusal::Failed(CallFailure::Status {
        status: 502,
        wait: None,
        reason: format!("{crm}'s answer could not be read: {reason}"),
    })
}

/// How a CRM answered the deletion of an erased customer's contact: deleted, or gone already
/// (404), or refused as `failure` reads the answer.
pub(crate) fn erased(
    answer: &client::Answer,
    crm_id: &str,
    crm: &str,
    failure: impl FnOnce(&client::Answer) -> Refusal,
) -> Result<Outcome, Refusal> {
    match answer.status {
        200..=299 => synced(crm_id.to_owned()),
        404 | 410 => Ok(Outcome::Skipped(format!(
            "the contact {crm_id} was no longer in {crm}"
        ))),
        _ => Err(failure(answer)),
    }
}

pub(crate) fn skipped(reason: &str) -> Result<Outcome, Refusal> {
    Ok(Outcome::Skipped(reason.to_owned()))
}

pub(crate) fn synced(crm_id: String) -> Result<Outcome, Refusal> {
    Ok(Outcome::Synced { crm_id: Some(crm_id) })
}

/// The job's work, read whole from its row: a row that is no work of its operation is damaged
/// (our fault).
pub(crate) fn work(job: &Job) -> Result<Work, Refusal> {
    Work::read(job.operation, &job.subject_id, job.input.as_ref())
        .map_err(|reason| Refusal::Ours(db::corrupt("sync job", job.id.as_str(), reason)))
}

/// The message's files as (name, signed download link); without a configured origin or signing
/// secret the names alone are listed.
pub(crate) async fn attachment_links(
    env: &Env,
    db: &Db,
    tenant: &Tenant,
    message: &Message,
) -> Result<Vec<(String, String)>, Refusal> {
    let files = db::attachments::of_messages(db, tenant, &[&message.id]).await?;
    let origin = http::configured_origin(env)?;
    let links = env.media_links();
    let now = runtime::now();
    Ok(files
        .iter()
        .map(|file| {
            let link =
                webhook_delivery::signed_link(tenant, origin.as_deref(), links.as_deref(), &file.id, now);
            (file.filename.clone(), link.unwrap_or_default())
        })
        .collect())
}

pub use domain::crm::ConnectionTest;

/// What a refused test call says; our own failure stays ours.
pub fn refused_test(crm: &str, refusal: Refusal) -> Result<ConnectionTest, ApiError> {
    Ok(match refusal {
        Refusal::Ours(error) => return Err(error),
        Refusal::Budget { wait_ms } => ConnectionTest::failed(
            None,
            format!(
                "the connector's request budget is spent; try again in {} s",
                wait_ms / 1000 + 1
            ),
        ),
        Refusal::Failed(CallFailure::Status { status, reason, .. }) => {
            ConnectionTest::failed(Some(status), reason)
        }
        Refusal::Failed(CallFailure::TimedOut) => ConnectionTest::failed(
            None,
            format!("{crm} did not answer within {} s", client::TIMEOUT_MS / 1000),
        ),
        Refusal::Failed(CallFailure::Unreachable(cause)) => ConnectionTest::failed(
            None,
            format!("{crm} could not be reached ({cause}); check the connector's address"),
        ),
    })
}

/// A refusal as the API's client sees it: the CRM's own failure is a 502 (or 503 while the
/// budget is spent), with what the CRM said.
pub fn refusal_error(crm: &str, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Ours(error) => error,
        Refusal::Budget { wait_ms } => {
            let seconds = (wait_ms / 1000 + 1).clamp(1, i64::from(u32::MAX)) as u32;
            ApiError::rate_limited(
                format!(
                    "the connector's request budget for {crm} is spent; it allows the next call in {seconds} s"
                ),
                seconds,
            )
        }
        Refusal::Failed(failure) => ApiError::crm_failed(match failure {
            // The CRM's reason says "<CRM> answered <status>: …" itself.
            CallFailure::Status { reason, .. } => reason,
            CallFailure::TimedOut => format!("{crm} did not answer in time"),
            CallFailure::Unreachable(cause) => format!("{crm} could not be reached: {cause}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::test_support::{UNLIMITED, conversation, customer, kustomer_connector, message};
    use crate::testing::Fixture;
    use domain::error::ErrorCode;
    use serde_json::json;

    fn failed(status: u16, reason: &str) -> Refusal {
        Refusal::Failed(CallFailure::Status {
            status,
            wait: None,
            reason: reason.to_owned(),
        })
    }

    #[test]
    fn a_refused_connection_test_says_what_happened_in_words_an_operator_can_act_on() {
        let cases: [(Refusal, Option<u16>, &str, &str); 4] = [
            (
                failed(401, "Kustomer answered 401: Invalid or expired API key"),
                Some(401),
                "Kustomer answered 401: Invalid or expired API key",
                "the CRM's own reason",
            ),
            (
                Refusal::Budget { wait_ms: 4_500 },
                None,
                "the connector's request budget is spent; try again in 5 s",
                "the budget",
            ),
            (
                Refusal::Failed(CallFailure::TimedOut),
                None,
                "Kustomer did not answer within 10 s",
                "a timeout",
            ),
            (
                Refusal::Failed(CallFailure::Unreachable("connection refused".to_owned())),
                None,
                "Kustomer could not be reached (connection refused); check the connector's address",
                "nobody there",
            ),
        ];
        for (refusal, status, reason, why) in cases {
            let test = refused_test("Kustomer", refusal).unwrap_or_else(|error| panic!("{why}: {error:?}"));
            assert!(!test.ok, "{why}");
            assert_eq!(
                (test.status, test.reason.as_deref()),
                (status, Some(reason)),
                "{why}"
            );
        }
        let ours = refused_test(
            "Kustomer",
            Refusal::Ours(ApiError::internal("reading", "D1 is down")),
        );
        assert!(ours.is_err(), "our own failure stays ours");
    }

    #[test]
    fn a_refusal_reaches_the_api_client_as_a_502_with_the_crms_words_or_a_429_while_the_budget_is_spent() {
        let cases: [(Refusal, ErrorCode, &str, Option<u32>, &str); 4] = [
            (
                failed(500, "Kustomer answered 500: oops"),
                ErrorCode::CrmFailed,
                "Kustomer answered 500: oops",
                None,
                "the CRM's failure",
            ),
            (
                Refusal::Failed(CallFailure::TimedOut),
                ErrorCode::CrmFailed,
                "Kustomer did not answer in time",
                None,
                "a timeout",
            ),
            (
                Refusal::Failed(CallFailure::Unreachable("refused".to_owned())),
                ErrorCode::CrmFailed,
                "Kustomer could not be reached: refused",
                None,
                "nobody there",
            ),
            (
                Refusal::Budget { wait_ms: 1_200 },
                ErrorCode::RateLimited,
                "the connector's request budget for Kustomer is spent; it allows the next call in 2 s",
                Some(2),
                "the budget",
            ),
        ];
        for (refusal, code, message, retry_after, why) in cases {
            let error = refusal_error("Kustomer", refusal);
            assert_eq!(
                (
                    error.body.code,
                    error.body.message.as_str(),
                    error.retry_after_seconds
                ),
                (code, message, retry_after),
                "{why}"
            );
        }
    }

    #[test]
    fn debug_mode_is_on_only_for_true_and_only_for_its_kind() {
        let fixture = Fixture::new();
        let cases = [
            ("true", true, false),
            (" TRUE ", true, false),
            ("yes", false, false),
            ("1", false, false),
        ];
        for (value, kustomer, krayin) in cases {
            fixture.stack.set_var("KUSTOMER_DEBUG", value);
            assert_eq!(
                (
                    debug(&fixture.env, ConnectorKind::Kustomer),
                    debug(&fixture.env, ConnectorKind::Krayin)
                ),
                (kustomer, krayin),
                "KUSTOMER_DEBUG={value:?}"
            );
        }
        fixture.stack.remove_var("KUSTOMER_DEBUG");
        assert!(!debug(&fixture.env, ConnectorKind::Kustomer), "off when unset");
    }

    #[test]
    fn a_refused_call_becomes_its_outcome_and_our_own_failure_stays_an_error() {
        let failure = CallFailure::Status {
            status: 503,
            wait: Some(4),
            reason: "busy".to_owned(),
        };
        assert_eq!(
            outcome_of(Refusal::Failed(failure.clone())).ok(),
            Some(Outcome::Failed(failure))
        );
        assert_eq!(
            outcome_of(Refusal::Budget { wait_ms: 800 }).ok(),
            Some(Outcome::Budget { wait_ms: 800 })
        );
        assert!(outcome_of(Refusal::Ours(ApiError::internal("x", "y"))).is_err());
    }

    #[test]
    fn a_messages_files_are_listed_as_signed_links_or_by_name_alone_without_an_origin() {
        let fixture = Fixture::new();
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            kustomer_connector(&fixture, &tenant, json!({}), UNLIMITED).await;
            let ada = customer(&fixture, &tenant, "Ada", None).await;
            let talk = conversation(&fixture, &tenant, &ada).await;
            let id = message(&fixture, &tenant, &talk, &ada, "my receipt").await;
            let attachment = domain::ids::AttachmentId::generate([9; 16]);
            let inserted = fixture
                .db
                .scoped(
                    &tenant,
                    "INSERT INTO attachments (id, business_id, message_id, filename, mime_type, size, storage_key, created_at) \
                     VALUES (?2, ?1, ?3, 'receipt.png', 'image/png', 10, 'k', '2026-11-26T12:00:00.000Z')",
                )
                .bind(&[crate::db::text(attachment.as_str()), crate::db::text(id.as_str())])
                .unwrap_or_else(|error| panic!("{error:?}"));
            inserted.run().await.unwrap_or_else(|error| panic!("{error:?}"));
            let message = db::messages::by_ids(&fixture.db, &tenant, &[&id])
                .await
                .unwrap_or_else(|error| panic!("{error:?}"))
                .pop()
                .unwrap_or_else(|| panic!("the message"));

            let unsigned = attachment_links(&fixture.env, &fixture.db, &tenant, &message)
                .await
                .unwrap_or_else(|refusal| panic!("{refusal:?}"));
            assert_eq!(unsigned, [("receipt.png".to_owned(), String::new())], "no origin configured");

            fixture.stack.set_var("PUBLIC_BASE_URL", "https://api.crm-edge.test");
            let signed = attachment_links(&fixture.env, &fixture.db, &tenant, &message)
                .await
                .unwrap_or_else(|refusal| panic!("{refusal:?}"));
            assert_eq!(signed.len(), 1);
            let (name, link) = &signed[0];
            assert_eq!(name, "receipt.png");
            assert!(
                link.starts_with("https://api.crm-edge.test/api/download-media?") && link.contains("signature="),
                "{link}"
            );
            assert!(link.contains(attachment.as_str()), "{link}");
        });
    }
}
