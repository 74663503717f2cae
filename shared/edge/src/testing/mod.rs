//! What edge's own tests share: a native stack with the invocation's `Env` and `Db` on it, and
//! businesses to scope statements to, made as the admin API makes them (on a shard the
//! directory names). Statements run on the data a test inserts, through the table modules
//! themselves; a test reads back with [`Fixture::rows`] (`SELECT *` on every shard).

use crate::Env;
use crate::db::{self, Db};
use crate::runtime::native::{Stack, block_on};
use domain::ids::BusinessId;
use domain::media::MediaLinks;
use domain::rate_limit::Policy;
use domain::tenant::Tenant;
use serde_json::{Map, Value};
use std::future::Future;

mod records;
#[allow(unused_imports)]
pub use records::{Must, Sent, UNLIMITED, draft, link, new_endpoint, page, random, violation};

/// Where the businesses [`Fixture::on_whatsapp`] equips take every event.
pub const HOOKS_URL: &str = "https://hooks.acme.example/in";
/// The phone-number id Meta gives the WhatsApp number of [`Fixture::whatsapp_business`].
pub const WHATSAPP_NUMBER_ID: &str = "106540352242922";
/// Ada's phone: [`Fixture::ada`] knows her by it, and she writes from it.
pub const ADA_PHONE: &str = "+353871234567";
/// The origin the API was called at, as a send or a receiver is given it.
pub const ORIGIN: &str = "https://api.example";

/// The secret the deployment signs media download links with, as [`Fixture::dispatch`] uses it.
/// The test stack's signer of download links.
pub fn media_links() -> MediaLinks {
    MediaLinks::of(Some("media-link-secret".to_owned())).unwrap_or_else(|| panic!("a signer"))
}

/// A delivery leased for an attempt, with the endpoint it goes to (None: deleted since).
pub type Due = (
    db::webhook_deliveries::Claimed,
    Option<db::webhook_endpoints::Endpoint>,
);

pub struct Fixture {
    pub stack: Stack,
    pub env: Env,
    pub db: Db,
}

impl Fixture {
    /// A new stack of two shards, and one invocation's bindings on it.
    pub fn new() -> Self {
        let stack = Stack::new();
        let env = Env::new(stack.clone(), "test");
        let db = env.db().unwrap_or_else(|error| panic!("{error}"));
        Self { stack, env, db }
    }

    /// Runs a test's async body.
    pub fn run<T>(&self, body: impl Future<Output = T>) -> T {
        block_on(body)
    }

    /// A new business in Ireland, placed as the admin API places it.
    pub async fn business(&self, name: &str) -> Tenant {
        let id = BusinessId::generate(random());
        self.create_business(id, name).await
    }

    /// A new business in Ireland that the admin API places on `shard` (its id drawn until the
    /// directory would choose that shard for it).
    pub async fn business_on(&self, name: &str, shard: db::Shard) -> Tenant {
        let id = std::iter::repeat_with(|| BusinessId::generate(random()))
            .find(|id| db::directory::choose(id, self.db.open_shards()) == shard)
            .unwrap_or_else(|| panic!("an id for shard {shard}"));
        self.create_business(id, name).await
    }

    async fn create_business(&self, id: BusinessId, name: &str) -> Tenant {
        let business = db::businesses::Business {
            id: id.clone(),
            name: name.to_owned(),
            default_country: Some("IE".to_owned()),
            created_at: crate::runtime::now().to_rfc3339(),
            embed_frame_ancestors: Vec::new(),
            rate_limit: Policy::DEFAULT_KEY,
            new_conversation_after_hours: domain::message::NewConversationAfter::DEFAULT.hours(),
        };
        db::businesses::create(&self.db, &business)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        Tenant::from_stored(id.as_str(), Some("IE")).unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// A new API key of `tenant`, issued and stored as the admin API issues one: its plaintext,
    /// which exists nowhere else, and its id.
    pub async fn api_key(&self, tenant: &Tenant) -> (String, domain::ids::ApiKeyId) {
        let issued =
            domain::api_key::issue(crate::runtime::random().unwrap_or_else(|error| panic!("{error:?}")));
        let key = db::api_keys::ApiKey {
            id: domain::ids::ApiKeyId::generate(
                crate::runtime::random().unwrap_or_else(|error| panic!("{error:?}")),
            ),
            business_id: tenant.business_id.clone(),
            name: Some("test".to_owned()),
            prefix: issued.prefix,
            created_at: crate::runtime::now().to_rfc3339(),
            revoked_at: None,
            last_used_at: None,
            last_used_address: None,
            last_used_endpoint: None,
        };
        db::api_keys::insert(&self.db, tenant, &key, &issued.hash)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        (issued.plaintext, key.id)
    }

    /// A channel account of `tenant` with `secrets` and no settings, created as the admin API
    /// creates one (its secrets sealed, its address claimed in the directory).
    pub async fn channel_account(
        &self,
        tenant: &Tenant,
        channel: domain::channel::Channel,
        provider: domain::providers::Provider,
        address: &str,
        secrets: Value,
    ) -> db::channel_accounts::ChannelAccount {
        let settings = Value::Object(Map::new());
        self.configured_account(tenant, (channel, provider), address, settings, secrets)
            .await
    }

    /// [`Fixture::channel_account`], with `settings` (Twilio's `account_sid`, an `api_base_url`).
    pub async fn configured_account(
        &self,
        tenant: &Tenant,
        (channel, provider): (domain::channel::Channel, domain::providers::Provider),
        address: &str,
        settings: Value,
        secrets: Value,
    ) -> db::channel_accounts::ChannelAccount {
        let id = domain::ids::ChannelAccountId::generate(random());
        let object = |value: Value| match value {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let (settings, secrets) = (object(settings), object(secrets));
        let new = db::channel_accounts::NewAccount {
            id: &id,
            channel,
            provider,
            address,
            name: None,
            settings: &settings,
            secrets: &secrets,
            now: &crate::runtime::now().to_rfc3339(),
        };
        db::channel_accounts::insert(&self.db, &self.keys(), tenant, &new)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .unwrap_or_else(|| panic!("{channel} {address} is another account's"))
    }

    /// A webhook endpoint of `tenant` at `url` for `events`, with the API's defaults.
    pub async fn webhook_endpoint(
        &self,
        tenant: &Tenant,
        url: &str,
        events: &[domain::webhooks::EventType],
    ) -> db::webhook_endpoints::Endpoint {
        let now = crate::runtime::now().to_rfc3339();
        let endpoint = db::webhook_endpoints::Endpoint {
            id: domain::ids::EndpointId::generate(random()),
            name: "test".to_owned(),
            url: url.to_owned(),
            events: events.to_vec(),
            secret: domain::webhook_signing::WebhookSecret::generate(random()),
            previous_secret: None,
            previous_secret_until_us: None,
            enabled: true,
            disabled_reason: None,
            retry_schedule: domain::webhooks::RetrySchedule::Standard,
            timeout_seconds: domain::webhooks::DEFAULT_TIMEOUT_SECONDS,
            disable_after_seconds: domain::webhooks::DEFAULT_DISABLE_AFTER_SECONDS,
            failing_since_us: None,
            created_at: now.clone(),
            updated_at: now,
            revision: 0,
            seed_signs_new: true,
        };
        let inserted = db::webhook_endpoints::insert(&self.db, &self.keys(), tenant, &endpoint)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert!(inserted, "the business has room for another endpoint");
        endpoint
    }

    /// Customers of `tenant` written as `/api-customers-sync` writes them: `customers` is the
    /// request's list.
    pub async fn customers(&self, tenant: &Tenant, customers: Value) -> Vec<domain::customer::Customer> {
        let body: crate::messaging::customer_upsert::CustomersIn =
            serde_json::from_value(serde_json::json!({ "customers": customers }))
                .unwrap_or_else(|error| panic!("{error}"));
        let outcomes = crate::messaging::customer_upsert::run(&self.env, tenant, "https://api.example", body)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        let mut written = Vec::new();
        for outcome in outcomes {
            let decision = outcome.result.unwrap_or_else(|error| panic!("{error:?}"));
            let id = match decision {
                domain::upsert::Decision::Create(id) | domain::upsert::Decision::Update { id, .. } => id,
            };
            let key = domain::lookup::CustomerKey::Id(id);
            let customer = db::customers::find_one(&self.db, tenant, &key)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"))
                .unwrap_or_else(|| panic!("the customer written is found"));
            written.push(customer);
        }
        written
    }

    /// Equips `tenant` as a business that talks on WhatsApp: an endpoint at [`HOOKS_URL`] taking
    /// every event, and a WhatsApp number (Meta) with phone-number id `number_id`, whose account
    /// calls Meta with the token `meta-token`.
    pub async fn on_whatsapp(
        &self,
        tenant: &Tenant,
        number_id: &str,
    ) -> db::channel_accounts::ChannelAccount {
        use domain::webhooks::EventType;
        self.webhook_endpoint(tenant, HOOKS_URL, &EventType::SUBSCRIBABLE)
            .await;
        self.channel_account(
            tenant,
            domain::channel::Channel::Whatsapp,
            domain::providers::Provider::Meta,
            number_id,
            serde_json::json!({ "app_secret": "s", "verify_token": "v", "access_token": "meta-token" }),
        )
        .await
    }

    /// A new business "Acme" [on WhatsApp](Fixture::on_whatsapp) at [`WHATSAPP_NUMBER_ID`].
    pub async fn whatsapp_business(&self) -> (Tenant, db::channel_accounts::ChannelAccount) {
        let tenant = self.business("Acme").await;
        let account = self.on_whatsapp(&tenant, WHATSAPP_NUMBER_ID).await;
        (tenant, account)
    }

    /// Ada, a customer of `tenant` known by her phone ([`ADA_PHONE`]) only, written as the sync
    /// writes one.
    pub async fn ada(&self, tenant: &Tenant) -> domain::customer::Customer {
        let written = self
            .customers(tenant, serde_json::json!([{ "name": "Ada", "phone": ADA_PHONE }]))
            .await;
        written[0].clone()
    }

    /// `content` for `customer` on WhatsApp, accepted as the send API accepts it at [`ORIGIN`]:
    /// stored queued in their conversation and handed to the dispatcher.
    pub async fn accept_whatsapp(
        &self,
        tenant: &Tenant,
        customer: &domain::customer::Customer,
        content: &str,
    ) -> domain::message::Message {
        let outgoing = domain::outgoing::OutgoingMessage {
            channel: domain::channel::Channel::Whatsapp,
            content: content.to_owned(),
            subject: None,
            attachments: Vec::new(),
            reply: None,
        };
        crate::messaging::send_queue::accept_on_channel(
            &self.env, &self.db, tenant, customer, &outgoing, ORIGIN,
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// `batch` delivered to `account` as a receiver hands it over, at [`ORIGIN`]: what was made of it.
    pub async fn ingest(
        &self,
        account: &db::channel_accounts::ChannelAccount,
        batch: domain::inbound::InboundBatch,
    ) -> crate::messaging::ingest::IngestReport {
        crate::messaging::ingest::ingest(&self.env, account, batch, ORIGIN)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// `message` alone, delivered to `account` as [`Fixture::ingest`] does.
    pub async fn ingest_one(
        &self,
        account: &db::channel_accounts::ChannelAccount,
        message: domain::inbound::InboundMessage,
    ) -> crate::messaging::ingest::IngestReport {
        let batch = domain::inbound::InboundBatch {
            messages: vec![message],
            statuses: Vec::new(),
            comments: Vec::new(),
        };
        self.ingest(account, batch).await
    }

    /// The bodies waiting on the queue bound as `binding`, each read as `T`.
    pub fn queued<T: serde::de::DeserializeOwned>(&self, binding: &str) -> Vec<T> {
        self.stack
            .queued(binding)
            .iter()
            .map(|sent| serde_json::from_str(&sent.body).unwrap_or_else(|error| panic!("{error}")))
            .collect()
    }

    /// The ids of the events handed to the webhook queue to dispatch, in the order they were
    /// handed over.
    pub fn dispatched(&self) -> Vec<String> {
        self.queued(crate::events::outbox::WEBHOOKS)
            .into_iter()
            .flat_map(|task| match task {
                crate::events::outbox::WebhookTask::Dispatch { event_ids, .. } => {
                    event_ids.iter().map(ToString::to_string).collect()
                }
                crate::events::outbox::WebhookTask::Deliver { .. } => Vec::new(),
            })
            .collect()
    }

    /// The ids of the events recorded so far, oldest first.
    pub fn event_ids(&self) -> Vec<domain::ids::EventId> {
        self.rows("webhook_events", "created_us, id")
            .iter()
            .filter_map(|row| domain::ids::EventId::parse(row["id"].as_str().unwrap_or_default()))
            .collect()
    }

    /// What the webhook dispatcher does with a task naming `ids` now, but for the attempts: their
    /// bodies fixed (files linked by [`media_links`]) and the events settled; the first
    /// attempts they are due, for the caller to make ([`Fixture::attempt`]).
    pub async fn dispatch(&self, tenant: &Tenant, ids: &[domain::ids::EventId]) -> Vec<Due> {
        let now = crate::runtime::now();
        let dispatch = crate::events::webhook_delivery::dispatch(
            &self.db,
            &self.keys(),
            tenant,
            ids,
            Some(&media_links()),
            now,
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"));
        dispatch
            .finish(&self.db, tenant, &[], &[], &[])
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        dispatch.due
    }

    /// The attempt `due` is, made now and recorded: its outcome.
    pub async fn attempt(&self, tenant: &Tenant, due: &Due) -> db::webhook_attempts::AttemptOutcome {
        crate::events::webhook_delivery::attempt(
            &self.env,
            &self.db,
            tenant,
            &due.0,
            due.1.as_ref(),
            crate::runtime::now(),
        )
        .await
        .unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// Runs one statement alone, in a batch of its own: how many rows it changed.
    pub async fn changes(&self, statement: db::Statement) -> usize {
        self.db
            .batch(vec![statement])
            .await
            .unwrap_or_else(|error| panic!("{error:?}"))
            .first()
            .map_or(0, db::changes)
    }

    /// The deployment's keyring.
    pub fn keys(&self) -> std::rc::Rc<domain::sealed::Keyring> {
        self.env.keyring().unwrap_or_else(|error| panic!("{error:?}"))
    }

    /// Runs `sql` with `values` on every shard, as an operator's hand would (a row made
    /// inconsistent, a setting outside the API's range); the rows it changed.
    pub fn execute(&self, sql: &str, values: &[&str]) -> usize {
        self.stack
            .shard_bindings()
            .iter()
            .map(|binding| {
                self.stack.sql(binding, |connection| {
                    connection
                        .execute(sql, rusqlite::params_from_iter(values))
                        .unwrap_or_else(|error| panic!("{sql}: {error}"))
                })
            })
            .sum()
    }

    /// Every row of `table` on every shard, as `SELECT *` gives them (generated and hidden
    /// columns aside), in the order `order_by` says.
    pub fn rows(&self, table: &str, order_by: &str) -> Vec<Map<String, Value>> {
        let mut rows = Vec::new();
        for binding in self.stack.shard_bindings() {
            rows.extend(self.rows_on(&binding, table, order_by));
        }
        rows
    }

    /// Every row of `table` on the shard bound as `binding` (`DB`, `DB_1`), as [`Fixture::rows`]
    /// reads them.
    pub fn rows_on(&self, binding: &str, table: &str, order_by: &str) -> Vec<Map<String, Value>> {
        let mut rows = Vec::new();
        self.stack.sql(binding, |connection| {
            let sql = format!("SELECT * FROM {table} ORDER BY {order_by}");
            let mut statement = connection
                .prepare(&sql)
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            let names: Vec<String> = statement.column_names().map(str::to_owned).collect();
            let mut answer = statement
                .query([])
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            while let Some(row) = answer.next().unwrap_or_else(|error| panic!("{sql}: {error}")) {
                let mut object = Map::new();
                for (at, name) in names.iter().enumerate() {
                    let value = match row.get_ref(at).unwrap_or_else(|error| panic!("{error}")) {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(integer) => Value::from(integer),
                        rusqlite::types::ValueRef::Real(real) => Value::from(real),
                        rusqlite::types::ValueRef::Text(text) => {
                            Value::from(String::from_utf8_lossy(text).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(bytes) => Value::from(bytes.to_vec()),
                    };
                    object.insert(name.clone(), value);
                }
                rows.push(object);
            }
        });
        rows
    }
}

#[test]
fn a_business_lives_where_the_directory_says_and_its_statements_run_there() {
    let fixture = Fixture::new();
    fixture.run(async {
        let tenant = fixture.business("Acme").await;
        let found = db::businesses::find(&fixture.db, &tenant.business_id)
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(found.map(|business| business.name), Some("Acme".to_owned()));
        let placed = fixture.rows("business_shards", "business_id");
        assert_eq!(placed.len(), 1, "{placed:?}");
        let businesses = fixture.rows("businesses", "id");
        assert_eq!(businesses.len(), 1, "on one shard only: {businesses:?}");
        assert!(
            fixture.env.usage().d1_queries >= 3,
            "every statement is counted against the invocation"
        );
    });
}
