//! What the CRM modules' tests share, on edge's [`Fixture`]: a Kustomer connector stored as the
//! admin API stores it, our records (a customer, their conversation, its messages, a WhatsApp
//! account to answer them on) inserted as rows, work asked of the connector, and Kustomer as a
//! script at its host that answers like Kustomer unless the test scripted the next replies.

use crate::db::crm_connectors::{self, Connector, Fields};
use crate::db::crm_sync_jobs::{self, Contact, Job, Requested};
use crate::db::{self, channel_accounts, number, optional_text, text};
use crate::runtime;
use crate::runtime::native::{Outbound, Reply, Stack};
use crate::testing::Fixture;
use domain::channel::Channel;
use domain::crm::budget::Budget;
use domain::crm::config;
use domain::crm::work::{ConnectorKind, ContactKey, Operation};
use domain::ids::{ChannelAccountId, ConnectorId, ConversationId, CustomerId, MessageId, SyncJobId};
use domain::providers::Provider;
use domain::tenant::Tenant;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Where the connectors made here reach Kustomer, and with which key.
pub(crate) const HOST: &str = "acme.api.kustomerapp.com";
pub(crate) const API_KEY: &str = "kustomer-test-key";
/// The organization the script's key belongs to.
pub(crate) const ORG: &str = "5f0000000000000000000001";

/// No request budget: calls are never held back.
pub(crate) const UNLIMITED: Budget = Budget {
    per_minute: None,
    per_second: None,
    per_day: None,
};

fn ok<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    result.unwrap_or_else(|error| panic!("{error:?}"))
}

/// A Kustomer connector of `tenant` at [`HOST`], `settings` and `secrets` added to the subdomain
/// and key, checked and stored as the admin API does.
pub(crate) async fn kustomer_connector(
    fixture: &Fixture,
    tenant: &Tenant,
    settings: Value,
    budget: Budget,
) -> Connector {
    let mut given = json!({ "subdomain": "acme" });
    for (name, value) in settings.as_object().into_iter().flatten() {
        given[name] = value.clone();
    }
    let (settings, secrets) = ok(config::checked(
        ConnectorKind::Kustomer,
        &given,
        &json!({ "api_key": API_KEY }),
        false,
    ));
    let keys = ok(fixture.env.keyring());
    let id = ConnectorId::generate(ok(runtime::random()));
    let fields = Fields {
        name: "Kustomer",
        settings: &settings,
        secrets: &secrets,
        enabled: true,
        rollout: domain::crm::rollout::Rollout::EVERYONE,
        budget,
    };
    ok(crm_connectors::insert(
        &fixture.db,
        &keys,
        tenant,
        &id,
        ConnectorKind::Kustomer,
        &fields,
        &runtime::now().to_rfc3339(),
    )
    .await)
}

/// The connector as stored now (its pause, health, budget's day).
pub(crate) async fn reloaded(fixture: &Fixture, connector: &Connector) -> Connector {
    let keys = ok(fixture.env.keyring());
    ok(crm_connectors::find(&fixture.db, &keys, &connector.tenant, &connector.id).await)
        .unwrap_or_else(|| panic!("connector {} is gone", connector.id))
}

/// A customer of ours, with a WhatsApp number.
pub(crate) async fn customer(
    fixture: &Fixture,
    tenant: &Tenant,
    name: &str,
    email: Option<&str>,
) -> CustomerId {
    let id = CustomerId::generate(ok(runtime::random()));
    let now = runtime::now().to_rfc3339();
    let [high, low] = ok(runtime::random::<2>());
    let number_of = format!("+3538712{:05}", u32::from(high) * 256 + u32::from(low));
    let inserted = fixture
        .db
        .scoped(
            tenant,
            "INSERT INTO customers (id, business_id, name, email, whatsapp_number, created_at, updated_at) \
             VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?6)",
        )
        .bind(&[
            text(id.as_str()),
            text(name),
            optional_text(email),
            text(&number_of),
            text(&now),
        ]);
    ok(ok(inserted).run().await);
    id
}

/// The customer's open WhatsApp conversation.
pub(crate) async fn conversation(
    fixture: &Fixture,
    tenant: &Tenant,
    customer: &CustomerId,
) -> ConversationId {
    let id = ConversationId::generate(ok(runtime::random()));
    let now = runtime::now().to_rfc3339();
    let inserted = fixture
        .db
        .scoped(
            tenant,
            "INSERT INTO conversations (id, business_id, customer_id, channel, status, created_at, updated_at) \
             VALUES (?2, ?1, ?3, 'whatsapp', 'open', ?4, ?4)",
        )
        .bind(&[text(id.as_str()), text(customer.as_str()), text(&now)]);
    ok(ok(inserted).run().await);
    id
}

/// A message the customer sent on the conversation now (after the business's latest, as every
/// message of a business has its own time).
pub(crate) async fn message(
    fixture: &Fixture,
    tenant: &Tenant,
    conversation: &ConversationId,
    customer: &CustomerId,
    content: &str,
) -> MessageId {
    let id = MessageId::generate(ok(runtime::random()));
    let now = runtime::now();
    let inserted = fixture
        .db
        .scoped(
            tenant,
            "INSERT INTO messages (id, business_id, conversation_id, customer_id, channel, direction, content, status, \
             created_us, updated_at) VALUES (?2, ?1, ?3, ?4, 'whatsapp', 'inbound', ?5, 'received', \
             max(?6, (SELECT coalesce(max(created_us), 0) + 1 FROM messages WHERE business_id = ?1)), ?7)",
        )
        .bind(&[
            text(id.as_str()),
            text(conversation.as_str()),
            text(customer.as_str()),
            text(content),
            number(now.micros()),
            text(&now.to_rfc3339()),
        ]);
    ok(ok(inserted).run().await);
    id
}

/// The business's WhatsApp number on Meta, so that what it tells a customer can be sent.
pub(crate) async fn whatsapp_account(fixture: &Fixture, tenant: &Tenant) {
    let keys = ok(fixture.env.keyring());
    let id = ChannelAccountId::generate(ok(runtime::random()));
    let secrets = json!({ "app_secret": "app-secret", "verify_token": "verify", "access_token": "access" });
    let settings = json!({});
    let new = channel_accounts::NewAccount {
        id: &id,
        channel: Channel::Whatsapp,
        provider: Provider::Meta,
        address: "106540352242922",
        name: None,
        settings: settings.as_object().unwrap_or_else(|| panic!("an object")),
        secrets: secrets.as_object().unwrap_or_else(|| panic!("an object")),
        now: &runtime::now().to_rfc3339(),
    };
    let inserted = ok(channel_accounts::insert(&fixture.db, &keys, tenant, &new).await);
    assert!(inserted.is_some(), "the WhatsApp account is made");
}

/// Work of `operation` on `subject` asked of the connector for `customer` (as the API asks for
/// an escalation or a note).
pub(crate) async fn work(
    fixture: &Fixture,
    connector: &Connector,
    customer: &CustomerId,
    operation: Operation,
    subject: &str,
    input: Value,
) -> Job {
    let requested = Requested {
        connector_id: &connector.id,
        customer_id: customer,
        operation,
        subject_id: subject,
        input: &input,
    };
    ok(crm_sync_jobs::insert_requested(
        &fixture.db,
        &connector.tenant,
        &SyncJobId::generate(ok(runtime::random())),
        &requested,
        runtime::now().micros(),
    )
    .await)
}

/// The contact whose work `job` is, as the queue names it.
pub(crate) fn contact_of(connector: &Connector, customer: &CustomerId) -> Contact {
    Contact {
        business_id: connector.tenant.business_id.clone(),
        connector_id: connector.id.clone(),
        key: ContactKey::Customer(customer.clone()),
    }
}

/// The sync log's rows of the connector, oldest first, as `SELECT *` gives them.
pub(crate) fn jobs(fixture: &Fixture, connector: &Connector) -> Vec<serde_json::Map<String, Value>> {
    fixture
        .rows("crm_sync_jobs", "seq")
        .into_iter()
        .filter(|row| row["connector_id"] == connector.id.as_str())
        .collect()
}

/// Kustomer at [`HOST`] as a script: the replies a test scripted come first, in order; then a
/// lookup (`email=`, `externalId=`) finds nobody (404), what is created gets a new id, the current
/// user is the key's machine user of [`ORG`], a list is one page of two teams, and anything else
/// answers its record.
#[derive(Clone)]
pub(crate) struct Script {
    scripted: Rc<RefCell<VecDeque<Reply>>>,
    stack: Stack,
}

impl Script {
    pub(crate) fn install(stack: &Stack) -> Self {
        let script = Self {
            scripted: Rc::new(RefCell::new(VecDeque::new())),
            stack: stack.clone(),
        };
        let serving = script.clone();
        let mut next = 0u32;
        stack.partner(HOST, move |call| {
            serving.scripted.borrow_mut().pop_front().unwrap_or_else(|| {
                next += 1;
                like_kustomer(call, next)
            })
        });
        script
    }

    /// The next calls are answered with these, in order.
    pub(crate) fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.scripted.borrow_mut().extend(replies);
    }

    /// Every call Kustomer got, in order.
    pub(crate) fn calls(&self) -> Vec<Outbound> {
        self.stack.calls_to(HOST)
    }

    /// `METHOD /path` of every call, in order.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|call| format!("{} {}", call.method, call.path()))
            .collect()
    }
}

/// A Kustomer record of `kind` with `id`, as a success answers it.
pub(crate) fn record(status: u16, kind: &str, id: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "data": { "type": kind, "id": id, "attributes": {}, "relationships": { "org": { "data": { "type": "org", "id": ORG } } } } }),
    )
}

/// Kustomer's error document.
pub(crate) fn kustomer_error(status: u16, detail: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "errors": [{ "status": status.to_string(), "code": "error", "title": "Error", "detail": detail }] }),
    )
}

fn like_kustomer(call: &Outbound, next: u32) -> Reply {
    let path = call.path();
    let id = format!("{:024x}", 0x5f00_0000_0000_0000_u64 + u64::from(next));
    let kind_of = |path: &str| match path.trim_start_matches("/v1/").split('/').next() {
        Some("customers") => "customer",
        Some("conversations") if path.ends_with("/messages") => "message",
        Some("conversations") if path.ends_with("/notes") => "note",
        Some("conversations") => "conversation",
        _ => "record",
    };
    match call.method.as_str() {
        "GET" if path.contains("/email=") || path.contains("/externalId=") => {
            kustomer_error(404, "No customer found")
        }
        "GET" if path == "/v1/users/current" => Reply::json(
            200,
            &json!({ "data": { "type": "user", "id": "5f00000000000000000000aa",
                "attributes": { "name": "ChatBot Integration", "email": "bot@acme.example" },
                "relationships": { "org": { "data": { "type": "org", "id": ORG } } } } }),
        ),
        // The key holds every role the setup guide's permissions need.
        "GET" if path == "/v1/auth/tokens/current" => Reply::json(
            200,
            &json!({ "data": { "type": "authToken", "id": "5f00000000000000000000ab",
                "attributes": { "name": "ChatBot Integration", "roles": [
                    "org.permission.customer.read", "org.permission.customer.create",
                    "org.permission.customer.update", "org.permission.conversation.read",
                    "org.permission.conversation.create", "org.permission.conversation.update",
                    "org.permission.message.create", "org.permission.note.create",
                    "org.permission.team.read"
                ] } } }),
        ),
        "GET" if path == "/v1/teams" => Reply::json(
            200,
            &json!({ "data": [
                { "type": "team", "id": "5f00000000000000000000b1", "attributes": { "name": "Support" } },
                { "type": "team", "id": "5f00000000000000000000b2", "attributes": { "name": "Billing" } }
            ], "links": { "next": null } }),
        ),
        "POST" => record(201, kind_of(path), &id),
        _ => {
            let own = path.rsplit('/').next().unwrap_or_default();
            record(200, kind_of(path), own)
        }
    }
}

/// Rows `SELECT *` gives for `table`, of `tenant` only.
pub(crate) fn rows_of(
    fixture: &Fixture,
    table: &str,
    order_by: &str,
    tenant: &Tenant,
) -> Vec<serde_json::Map<String, Value>> {
    fixture
        .rows(table, order_by)
        .into_iter()
        .filter(|row| row.get("business_id").and_then(Value::as_str) == Some(tenant.business_id.as_str()))
        .collect()
}

/// Links a record of ours to its Kustomer id, as a synced record is.
pub(crate) async fn linked(
    fixture: &Fixture,
    connector: &Connector,
    kind: domain::crm::work::LinkKind,
    ours: &str,
    theirs: &str,
) {
    ok(db::crm_links::link(
        &fixture.db,
        &connector.tenant,
        &connector.id,
        kind,
        ours,
        theirs,
        runtime::now().micros(),
    )
    .await);
}
