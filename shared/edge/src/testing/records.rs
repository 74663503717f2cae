//! The records edge's table tests start from, written through the table modules' own writes: a
//! business on the shard a test needs, a customer as the upsert writes one, a channel account as
//! the admin API creates one, a send as `send_queue` stores it (conversation and message in one
//! batch), an inbound message as `ingest` stores it, a CRM connector, a webhook endpoint as the API
//! registers one, an event, and a CRM link's source on a page's channels.

use super::Fixture;
use crate::db::webhook_endpoints::Endpoint;
use crate::db::webhook_events::{Guard, NewEvent};
use crate::db::{
    self, Violation, channel_accounts, conversations, crm_connectors, customers, knowledge_links,
    knowledge_sources, messages, webhook_endpoints, webhook_events,
};
use crate::runtime;
use domain::channel::Channel;
use domain::crm::budget::Budget;
use domain::crm::config::ConnectorSecrets;
use domain::crm::kustomer::settings::KustomerSecrets;
use domain::crm::work::ConnectorKind;
use domain::customer::CustomerDraft;
use domain::destination::Destination;
use domain::email::Email;
use domain::error::ApiError;
use domain::ids::{
    ChannelAccountId, ConnectorId, ConversationId, CustomerId, EndpointId, EventId, MessageId, SourceId,
};
use domain::links::fetch::State;
use domain::links::link::{Header, Link, LinkChannel, LinkSecret, LinkType, PageId};
use domain::providers::Provider;
use domain::tenant::Tenant;
use domain::time::Timestamp;
use domain::webhook_signing::WebhookSecret;
use domain::webhooks::{EventType, RetrySchedule};
use serde_json::{Map, json};
use std::fmt::Debug;

/// A test's way out of a `Result` (the workspace denies `unwrap` and `expect`, even in tests).
pub trait Must<T> {
    /// The value, or the test fails with the error.
    fn must(self) -> T;
}

impl<T, E: Debug> Must<T> for Result<T, E> {
    #[track_caller]
    fn must(self) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("{error:?}"),
        }
    }
}

/// Sixteen random bytes, for a new id of any kind.
pub fn random<const N: usize>() -> [u8; N] {
    runtime::random().must()
}

/// The violation D1 reported for `result`, which must have failed with one.
#[track_caller]
pub fn violation<T: Debug>(result: Result<T, ApiError>) -> Violation {
    let error = match result {
        Ok(value) => panic!("expected a violated constraint, got {value:?}"),
        Err(error) => error,
    };
    // The ApiError keeps the violation, as SQLite words it, in its detail.
    Violation::parse(error.detail().unwrap_or_default())
        .unwrap_or_else(|| panic!("not a violated constraint: {error:?}"))
}

/// A customer draft with a name and nothing else.
pub fn draft(name: &str) -> CustomerDraft {
    CustomerDraft {
        name: name.to_owned(),
        email: None,
        phone: None,
        whatsapp_number: None,
        first_name: None,
        last_name: None,
        address: None,
        notes: None,
        tags: None,
        external_id: None,
        external_system: None,
        custom_fields: None,
    }
}

/// A request budget without limits.
pub const UNLIMITED: Budget = Budget {
    per_minute: None,
    per_second: None,
    per_day: None,
};

/// A message stored as a send stores it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub created_us: i64,
}

impl Fixture {
    /// The time on the stack's clock.
    pub fn now(&self) -> Timestamp {
        runtime::now()
    }

    /// A new customer of the tenant, written as the upsert writes one.
    pub async fn customer_with(&self, tenant: &Tenant, draft: CustomerDraft) -> CustomerId {
        let id = CustomerId::generate(random());
        let write = customers::PlannedWrite {
            step: 0,
            id: &id,
            draft: &draft,
            is_new: true,
            rekeys: true,
        };
        let statements = customers::write(&self.db, tenant, self.now(), &[write]).must();
        self.db.batch(statements).await.must();
        id
    }

    /// A new customer of the tenant with a name and an email made from it.
    pub async fn customer(&self, tenant: &Tenant, name: &str) -> CustomerId {
        let local: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
        let email = format!(
            "{}.{}@example.com",
            local.to_ascii_lowercase(),
            hex::encode(&random::<16>()[..4])
        );
        self.customer_with(
            tenant,
            CustomerDraft {
                email: Some(Email::parse(&email).must()),
                ..draft(name)
            },
        )
        .await
    }

    /// A new account of the tenant on `channel` at `address`, as the admin API creates one.
    pub async fn account_at(&self, tenant: &Tenant, channel: Channel, address: &str) -> ChannelAccountId {
        let id = ChannelAccountId::generate(random());
        let provider = match channel {
            Channel::Email => Provider::Mailgun,
            Channel::Sms => Provider::Twilio,
            Channel::Whatsapp | Channel::Facebook | Channel::Instagram => Provider::Meta,
        };
        let mut secrets = Map::new();
        secrets.insert("access_token".to_owned(), json!("token"));
        let now = self.now().to_rfc3339();
        let new = channel_accounts::NewAccount {
            id: &id,
            channel,
            provider,
            address,
            name: Some("Main"),
            settings: &Map::new(),
            secrets: &secrets,
            now: &now,
        };
        let created = channel_accounts::insert(&self.db, &self.keys(), tenant, &new)
            .await
            .must();
        assert!(created.is_some(), "the address {address} on {channel} is free");
        id
    }

    /// A new account of the tenant on `channel`, at an address of its own.
    pub async fn account(&self, tenant: &Tenant, channel: Channel) -> ChannelAccountId {
        let address = format!("addr-{}", hex::encode(&random::<16>()[..6]));
        self.account_at(tenant, channel, &address).await
    }

    /// A message to `customer` on the account's channel, stored as a send stores it: its
    /// conversation opened or touched, the message queued, in one batch.
    pub async fn send(
        &self,
        tenant: &Tenant,
        customer: &CustomerId,
        channel: Channel,
        account: &ChannelAccountId,
        content: &str,
    ) -> Sent {
        let now = self.now();
        let id = MessageId::generate(random());
        let mut batch = db::Batch::default();
        batch.push([conversations::touch_for_outbound(
            &self.db,
            tenant,
            customer,
            channel,
            "",
            &ConversationId::generate(random()),
            account,
            &now.to_rfc3339(),
        )
        .must()]);
        let inserted = batch.read(
            messages::insert_outbound(
                &self.db,
                tenant,
                customer,
                channel,
                &id,
                content,
                &messages::SendOptions {
                    subject: None,
                    media_base_url: Some("https://edge.test"),
                    reply: None,
                },
                now,
            )
            .must(),
        );
        let inserted = batch
            .run(&self.db)
            .await
            .must()
            .take(inserted)
            .must()
            .unwrap_or_else(|| panic!("the send of {id} was stored"));
        Sent {
            id: inserted.id,
            conversation_id: inserted.conversation_id,
            created_us: inserted.created_us,
        }
    }

    /// A message from `address` on the account's channel, stored as `ingest` stores one: the
    /// sender's customer found or created, their address linked, their conversation opened or
    /// touched (reopened when it was resolved or closed), the message stored once. None when the
    /// provider's id was stored already.
    pub async fn receive(
        &self,
        tenant: &Tenant,
        channel: Channel,
        account: &ChannelAccountId,
        address: &str,
        content: &str,
        provider_message_id: &str,
    ) -> Option<MessageId> {
        let now = self.now();
        let now_text = now.to_rfc3339();
        let new_customer = CustomerId::generate(random());
        let message_id = MessageId::generate(random());
        let (email, phone) = match channel {
            Channel::Email => (Some(address), None),
            Channel::Whatsapp | Channel::Sms => (None, Some(address)),
            Channel::Facebook | Channel::Instagram => (None, None),
        };
        let sender = customers::NewSender {
            id: &new_customer,
            name: address,
            email,
            phone,
            whatsapp_number: phone.filter(|_| channel == Channel::Whatsapp),
        };
        let mut batch = db::Batch::default();
        batch.push([
            customers::create_sender(&self.db, tenant, &sender, channel.as_str(), address, &now_text).must(),
            db::customer_identities::link(
                &self.db,
                tenant,
                channel.as_str(),
                address,
                email,
                phone,
                &new_customer,
            )
            .must(),
            conversations::touch_for_inbound(
                &self.db,
                tenant,
                channel,
                "",
                address,
                &ConversationId::generate(random()),
                account,
                &now_text,
                provider_message_id,
                &message_id,
            )
            .must(),
        ]);
        #[derive(serde::Deserialize)]
        struct Stored {
            id: MessageId,
        }
        let stored = batch.read(db::Read::<Option<Stored>>::first(
            messages::insert_inbound(
                &self.db,
                tenant,
                channel,
                "",
                address,
                &message_id,
                content,
                provider_message_id,
                now,
            )
            .must(),
        ));
        batch
            .run(&self.db)
            .await
            .must()
            .take(stored)
            .must()
            .map(|stored| stored.id)
    }

    /// A new enabled Kustomer connector of the tenant, without a request budget.
    pub async fn connector(&self, tenant: &Tenant) -> ConnectorId {
        self.connector_with(tenant, true, UNLIMITED).await
    }

    /// A new Kustomer connector of the tenant, enabled or not, with `budget`.
    pub async fn connector_with(&self, tenant: &Tenant, enabled: bool, budget: Budget) -> ConnectorId {
        let id = ConnectorId::generate(random());
        let secrets = ConnectorSecrets::from(KustomerSecrets {
            api_key: "kustomer-api-key".to_owned(),
            webhook_secret: None,
        });
        let fields = crm_connectors::Fields {
            name: "Kustomer",
            settings: &json!({"base_url": "https://api.kustomer.test"}),
            secrets: &secrets,
            enabled,
            rollout: domain::crm::rollout::Rollout::EVERYONE,
            budget,
        };
        crm_connectors::insert(
            &self.db,
            &self.keys(),
            tenant,
            &id,
            ConnectorKind::Kustomer,
            &fields,
            &self.now().to_rfc3339(),
        )
        .await
        .must();
        id
    }

    /// A new enabled endpoint of the tenant subscribed to `events`, as the API registers one.
    pub async fn endpoint(&self, tenant: &Tenant, events: &[EventType]) -> Endpoint {
        let endpoint = new_endpoint(self.now(), events);
        let stored = webhook_endpoints::insert(&self.db, &self.keys(), tenant, &endpoint)
            .await
            .must();
        assert!(stored, "the business has room for another endpoint");
        endpoint
    }

    /// Records an event of `kind` about `subject` now, whenever the batch commits (as long as
    /// someone listens); its id, if it was recorded.
    pub async fn event(&self, tenant: &Tenant, kind: EventType, subject: &str) -> Option<EventId> {
        let event = NewEvent::new(EventId::generate(random()), kind, subject);
        let statement = webhook_events::record(
            &self.db,
            tenant,
            Some("https://edge.test"),
            self.now(),
            &[event],
            Guard::Always,
        )
        .must();
        statement.run().await.must().into_iter().next()
    }
}

/// An endpoint as the API makes one, enabled, with a new secret, subscribed to `events`.
pub fn new_endpoint(now: Timestamp, events: &[EventType]) -> Endpoint {
    let mut secret = [0u8; 24];
    secret[..16].copy_from_slice(&random::<16>());
    Endpoint {
        id: EndpointId::generate(random()),
        name: "Orders".to_owned(),
        url: "https://hooks.example.com/crm".to_owned(),
        events: events.to_vec(),
        secret: WebhookSecret::generate(secret),
        previous_secret: None,
        previous_secret_until_us: None,
        enabled: true,
        disabled_reason: None,
        retry_schedule: RetrySchedule::Standard,
        timeout_seconds: 10,
        disable_after_seconds: 432_000,
        failing_since_us: None,
        created_at: now.to_rfc3339(),
        updated_at: now.to_rfc3339(),
        revision: 0,
        seed_signs_new: true,
    }
}

/// A CRM link as the API takes one: `name` at `url`, of `link_type`, fetched hourly.
pub fn link(name: &str, url: &str, link_type: LinkType) -> Link {
    Link {
        name: name.to_owned(),
        url: Destination::parse("url", url, false).must(),
        link_type,
        api_key: Some(LinkSecret::stored("link-api-key".to_owned())),
        headers: vec![Header {
            name: "X-Tenant".to_owned(),
            value: LinkSecret::stored("header-secret".to_owned()),
        }],
        description: Some("the shop's customers".to_owned()),
        is_active: true,
        fetch_interval_minutes: 60,
        holds: domain::bot::subject::Holds::General,
    }
}

/// The page a business's CRM links belong to.
pub fn page(id: &str) -> PageId {
    PageId::parse(&json!(id)).must()
}

impl Fixture {
    /// A new CRM link source of the tenant on `page`, pending, due now, on `channels` (active),
    /// as the CRM links API adds one: its id.
    pub async fn source(
        &self,
        tenant: &Tenant,
        page: &PageId,
        link: &Link,
        channels: &[LinkChannel],
    ) -> SourceId {
        let id = SourceId::generate(random());
        let now = self.now().to_rfc3339();
        let fields = knowledge_sources::Fields {
            link,
            state: State::Pending,
            next_fetch_at: Some(&now),
            webhook_secret: None,
        };
        let added = knowledge_sources::insert(&self.db, &self.keys(), tenant, &id, page, &fields, &now)
            .await
            .must();
        assert!(added, "the page has no link at {}", link.url.as_str());
        let linked = knowledge_links::insert(&self.db, tenant, &id, page, channels, true, &now)
            .await
            .must();
        assert!(linked, "the source is new on {channels:?}");
        id
    }
}
