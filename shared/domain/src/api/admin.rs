//! The admin API, taken by the operator's admin token: businesses, their API keys, channel
//! accounts and CRM connectors, the audit log, and the maintenance sweep now; its declarations
//! and the shapes it takes and answers with.

use crate::api::{Caller::*, delete, get, patch, post};
use crate::channel::Channel;
use crate::crm::budget::Budget;
use crate::crm::work::{ConnectorKind, JobStatus, Summary};
use crate::error::ApiError;
use crate::ids::{ApiKeyId, AuditEntryId, BusinessId, ChannelAccountId, ConnectorId, ConsoleSessionId};
use crate::rate_limit::Policy;
use crate::tenant::Tenant;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
#[cfg(feature = "openapi")]
use {
    crate::alerts::{AlertsOut, SettingsOut},
    crate::cost::{Bill, CostOut},
    crate::crm::ConnectionTest,
    crate::crm::kustomer::api::Team,
    crate::erasure::ErasureOut,
    crate::maintenance::SweepReport,
    serde_json::json,
};

/// Longest name of a business, a key or a connector.
pub const MAX_NAME_CHARS: usize = 200;

/// The largest restore page the API reads: a page's rows are at most 4 MB of JSON
/// (`domain::backup::PAGE_BYTES`, a single row at most 2 MB), with the header and the framing.
pub const RESTORE_BODY_LIMIT: usize = crate::backup::PAGE_BYTES + 1024 * 1024;

function! {
    /// The admin API.
    pub const ADMIN: Function<Admin> = "admin", owns "/admin/", tag "admin";
    /// Create a business
    CreateBusiness = post("/admin/businesses", Admin)
        => |c| c
            .json::<BusinessIn>()
            .example(json!({ "name": "Acme", "default_country": "IE" }))
            .ok::<Business>(201)
            .links(json!({
                "GetBusiness": { "operationId": "getBusiness", "parameters": { "business_id": "$response.body#/id" } },
                "IssueKey": { "operationId": "issueApiKey", "parameters": { "business_id": "$response.body#/id" } },
                "ListKeys": { "operationId": "listApiKeys", "parameters": { "business_id": "$response.body#/id" } },
                "CreateChannelAccount": { "operationId": "createChannelAccount", "parameters": { "business_id": "$response.body#/id" } },
                "CreateConnector": { "operationId": "createConnector", "parameters": { "business_id": "$response.body#/id" } },
                "AuditLog": { "operationId": "getAuditLog", "parameters": { "business_id": "$response.body#/id" } },
            }));
    /// One business
    GetBusiness = get("/admin/businesses/{business_id}", Admin)
        => |c| c.ok::<Business>(200),
    /// The key's business
    also GetOwnBusiness = get("/api-business", ApiKey).console();
    /// Set the sites that may frame the inbox, the API keys' rate limit, or when a returning customer gets a new conversation
    ///
    /// embed_frame_ancestors, rate_limit, new_conversation_after_hours or several (none: 422). embed_frame_ancestors: the sites
    /// that may frame the embedded inbox, as origins: https://host, https://host:port,
    /// https://*.host (and http://); at most 20; ["'none'"] alone for no site; [] (the default) for
    /// any site. rate_limit takes per_minute (1 to 100000) and/or burst (1 to 10000), a number left
    /// out keeping its value; any other name is 422 (field `rate_limit.<name>`). A changed limit
    /// applies to the keys within a minute. new_conversation_after_hours: how long (0 to 8760
    /// hours, default 96) a resolved or closed conversation stays quiet before the customer's next
    /// message opens a new one instead of reopening it.
    UpdateBusiness = patch("/admin/businesses/{business_id}", Admin)
        => |c| c
            .json::<BusinessPatch>()
            .example(json!({ "rate_limit": { "per_minute": 3000, "burst": 500 } }))
            .ok::<Business>(200),
    /// Set the sites that may frame the inbox, or when a returning customer gets a new conversation
    ///
    /// embed_frame_ancestors and new_conversation_after_hours as the admin API takes them; the
    /// rate limit is the operator's to set (403).
    also UpdateOwnBusiness = patch("/api-business", ApiKey).console()
        => |c| c
            .json::<BusinessPatch>()
            .example(json!({ "embed_frame_ancestors": ["https://crm.acme.com"] }))
            .ok::<Business>(200)
            .errors(&[403]);
    /// Admin and security actions, newest first
    ///
    /// Who (the admin token or a key prefix), what, when and from where; never a secret.
    GetAuditLog = get("/admin/businesses/{business_id}/audit-log", Admin)
        => |c| c.query::<AuditParameters>().ok::<AuditLogOut>(200),
    /// The business's admin and security actions, newest first
    also GetOwnAuditLog = get("/api-audit-log", ApiKey).console();
    /// Issue an API key
    IssueApiKey = post("/admin/businesses/{business_id}/api-keys", Admin)
        => |c| c
            .optional_json::<KeyIn>()
            .example(json!({ "name": "Salesforce production" }))
            .ok::<IssuedApiKey>(201)
            .links(json!({ "RevokeKey": { "operationId": "revokeApiKey", "parameters": { "key_id": "$response.body#/id" } } })),
    /// Issue another API key
    also IssueOwnApiKey = post("/api-keys", ApiKey).console()
        => |c| c
            .optional_json::<KeyIn>()
            .example(json!({ "name": "HubSpot staging" }))
            .ok::<IssuedApiKey>(201)
            .links(json!({ "RevokeKey": { "operationId": "revokeOwnApiKey", "parameters": { "key_id": "$response.body#/id" } } }));
    /// The business's keys, by prefix
    ListApiKeys = get("/admin/businesses/{business_id}/api-keys", Admin)
        => |c| c.ok::<ApiKeysOut>(200),
    also ListOwnApiKeys = get("/api-keys", ApiKey).console();
    /// Revoke an API key (idempotent)
    RevokeApiKey = delete("/admin/api-keys/{key_id}", Admin)
        => |c| c.ok::<ApiKey>(200),
    /// Revoke one of the business's keys (idempotent)
    also RevokeOwnApiKey = delete("/api-keys/{key_id}", ApiKey).console();
    /// The business's API usage: requests by key, endpoint and status class, per hour or day
    ///
    /// Counted off the request path and stored every 20 seconds or so: a request shows here within
    /// a minute. 404 for a key_id the business does not have.
    GetApiUsage = get("/admin/businesses/{business_id}/usage", Admin)
        => |c| c.query::<UsageParameters>().ok::<UsageOut>(200).errors(&[404]),
    also GetOwnApiUsage = get("/api-usage", ApiKey).console();
    /// What the business cost to run this month, by day and by kind of unit, and at this pace
    ///
    /// The units its calls, messages, syncs and sweeps used of what Cloudflare bills (requests,
    /// D1 rows read and written, KV, queue, R2 and Durable Object operations), each at its
    /// published price (`crm-edge prices`): what the business adds to the account's bill. Counted
    /// off the request path and stored every 20 seconds or so. Not counted per business: CPU
    /// time, Workers AI, Vectorize and storage (docs/limits.md, "What each business costs").
    GetBusinessCost = get("/admin/businesses/{business_id}/cost", Admin)
        => |c| c.ok::<CostOut>(200),
    /// What the business cost to run this month, by day and by kind of unit, and at this pace
    ///
    /// As the admin API answers it.
    also GetOwnCost = get("/api-cost", ApiKey).console();
    /// What every business cost to run this month, the account's bill at this pace, and the businesses that cost most
    GetCost = get("/admin/cost", Admin)
        => |c| c.ok::<Bill>(200);
    /// The business's alerts, newest first
    ///
    /// Raised and resolved by the alert rules every minute (docs/alerts.md); `state=open` for the
    /// open ones only (default `all`); `limit` 1 to 200, default 50.
    GetAlerts = get("/admin/businesses/{business_id}/alerts", Admin)
        => |c| c.query::<AlertsParameters>().ok::<AlertsOut>(200),
    /// The business's alerts, newest first
    ///
    /// `state=open` for the open ones only (default `all`); `limit` 1 to 200, default 50.
    also GetOwnAlerts = get("/api-alerts", ApiKey).console();
    /// The business's alert rules and whom alerts are emailed to
    GetAlertSettings = get("/admin/businesses/{business_id}/alert-settings", Admin)
        => |c| c.ok::<SettingsOut>(200),
    also GetOwnAlertSettings = get("/api-alert-settings", ApiKey).console();
    /// Change alert rules (enabled, threshold) or whom alerts are emailed to
    ///
    /// `rules`: rule names, each with `enabled` and/or `threshold` (within the rule's min and max);
    /// `email_to`: the whole list of recipients, at most 10 ([] for none). What is left out keeps
    /// its value; a bad name or value is 422 naming its field (`rules.error_rate.threshold`).
    UpdateAlertSettings = patch("/admin/businesses/{business_id}/alert-settings", Admin)
        => |c| c
            .json::<AlertSettingsPatch>()
            .example(json!({ "rules": { "connector_failing": { "threshold": 5 } }, "email_to": ["ops@acme.com"] }))
            .ok::<SettingsOut>(200),
    /// Change alert rules (enabled, threshold) or whom alerts are emailed to
    ///
    /// As the admin API takes it.
    also UpdateOwnAlertSettings = patch("/api-alert-settings", ApiKey).console()
        => |c| c
            .json::<AlertSettingsPatch>()
            .example(json!({ "rules": { "endpoint_failing": { "threshold": 60 }, "rate_limited": { "enabled": false } } }))
            .ok::<SettingsOut>(200);
    /// Add a channel account
    ///
    /// Secrets go in and are never returned. 409 when the channel already has an account at the
    /// address.
    CreateChannelAccount = post("/admin/businesses/{business_id}/channel-accounts", Admin)
        => |c| c
            .json::<AccountIn>()
            .example(json!({
                "channel": "whatsapp", "provider": "meta", "address": "106540352242922",
                "secrets": { "app_secret": "…", "verify_token": "…", "access_token": "…" },
            }))
            .ok::<ChannelAccountOut>(201)
            .links(json!({ "UpdateChannelAccount": { "operationId": "updateChannelAccount", "parameters": { "account_id": "$response.body#/id" } } }))
            .errors(&[409]),
    /// Add a channel account
    also CreateOwnChannelAccount = post("/api-channel-accounts", ApiKey).console()
        => |c| c
            .json::<AccountIn>()
            .ok::<ChannelAccountOut>(201)
            .errors(&[409]);
    /// The business's channel accounts
    ListChannelAccounts = get("/admin/businesses/{business_id}/channel-accounts", Admin)
        => |c| c.ok::<ChannelAccountsOut>(200),
    also ListOwnChannelAccounts = get("/api-channel-accounts", ApiKey).console();
    /// Rotate secrets or change settings
    ///
    /// settings and secrets merge (RFC 7396: null removes a key).
    UpdateChannelAccount = patch("/admin/channel-accounts/{account_id}", Admin)
        => |c| c
            .json::<AccountPatch>()
            .example(json!({ "secrets": { "access_token": "<rotated>" } }))
            .ok::<ChannelAccountOut>(200),
    /// Rotate a channel account's secrets or change its settings
    also UpdateOwnChannelAccount = patch("/api-channel-accounts/{account_id}", ApiKey).console()
        => |c| c.json::<AccountPatch>().ok::<ChannelAccountOut>(200);
    /// Delete a channel account, releasing its address
    ///
    /// Its address (a page, a number, a mailbox) can then be claimed by any business: how the
    /// operator ends a claim made by a business that does not own the address. 409 while
    /// conversations or CRM links refer to the account.
    DeleteChannelAccount = delete("/admin/channel-accounts/{account_id}", Admin)
        => |c| c.ok::<ChannelAccountOut>(200).errors(&[409]),
    /// Delete a channel account the business no longer uses, releasing its address
    ///
    /// 409 while conversations or CRM links refer to it.
    also DeleteOwnChannelAccount = delete("/api-channel-accounts/{account_id}", ApiKey).console();
    /// Erase a customer of the business, as a person may ask by law
    ///
    /// As `DELETE /api-customers/{customer_id}` does it for the business (its description says
    /// what is deleted and kept).
    EraseCustomer = delete("/admin/businesses/{business_id}/customers/{customer_id}", Admin)
        => |c| c
            .ok::<ErasureOut>(200).described("Erased: nothing of the customer is left")
            .ok::<ErasureOut>(202).described("Erasing: the customer can no longer be found; the rest is deleted within minutes"),
    /// Erase a customer, as a person may ask by law
    ///
    /// Deletes the customer's messages and their files, conversations, addresses on each
    /// channel, SSO tokens, bot answers, escalations, the webhook events about them and the
    /// CRM-link pieces whose subject is theirs (from the full-text index and the vectors too);
    /// their other CRM work is dropped, and each connected CRM is asked to delete the contact
    /// (`crm`: Kustomer's and Krayin's delete, HubSpot's GDPR delete), as CRM work that is retried
    /// and shows in the connector's sync log. What is kept is a tombstone with no personal data:
    /// the customer's id, when, by whom, and what was deleted. At once the customer can no longer
    /// be found by any of their keys; a customer with many messages is deleted in steps (202),
    /// the rest within minutes, and the event `customer.erased` says when it is done. Asked
    /// again, it answers where the erasure stands. A message that arrives later from the same
    /// address is a new customer's. 503 with Retry-After while the business is being moved or
    /// restored.
    also EraseOwnCustomer = delete("/api-customers/{customer_id}", ApiKey).console();
    /// Release a channel account's address, keeping the account
    ///
    /// For an account that cannot be deleted because conversations refer to them (a business that
    /// claimed an address it does not own can make some with signed inbound of its own): the
    /// account is paused, keeps its history, and no longer holds the address (it reads
    /// `released:<account id>:<address>`), which goes to
    /// `to_business_id` when given (so that no one else claims it first), else to whichever
    /// business claims it next. The operator's alone.
    ReleaseChannelAccount = post("/admin/channel-accounts/{account_id}/release", Admin)
        => |c| c
            .optional_json::<ReleaseIn>()
            .example(json!({ "to_business_id": "biz_0123456789abcdef0123456789abcdef" }))
            .ok::<ChannelAccountOut>(200);
    /// Connect a CRM
    ///
    /// Kustomer or Krayin; settings and secrets are checked (Krayin's pipeline and stages against
    /// Krayin: 502 when it fails).
    CreateConnector = post("/admin/businesses/{business_id}/connectors", Admin)
        => |c| c
            .json::<ConnectorIn>()
            .example(json!({
                "kind": "kustomer", "settings": { "subdomain": "acme", "auto_assignment": true },
                "secrets": { "api_key": "eyJ…", "webhook_secret": "<the Kustomer webhook token>" },
            }))
            .ok::<ConnectorOut>(201)
            .links(json!({
                "GetConnector": { "operationId": "getConnector", "parameters": { "connector_id": "$response.body#/id" } },
                "UpdateConnector": { "operationId": "updateConnector", "parameters": { "connector_id": "$response.body#/id" } },
                "ConnectorSyncLog": { "operationId": "getConnectorSyncLog", "parameters": { "connector_id": "$response.body#/id" } },
            }))
            .errors(&[502]),
    /// Connect a CRM
    also CreateOwnConnector = post("/api-connectors", ApiKey).console()
        => |c| c
            .json::<ConnectorIn>()
            .ok::<ConnectorOut>(201)
            .links(json!({ "GetConnector": { "operationId": "getOwnConnector", "parameters": { "connector_id": "$response.body#/id" } } }))
            .errors(&[502]);
    /// The business's connectors with their status
    ListConnectors = get("/admin/businesses/{business_id}/connectors", Admin)
        => |c| c.ok::<ConnectorsOut>(200),
    also ListOwnConnectors = get("/api-connectors", ApiKey).console();
    /// One connector
    GetConnector = get("/admin/connectors/{connector_id}", Admin)
        => |c| c.ok::<ConnectorOut>(200),
    /// One of the business's connectors
    also GetOwnConnector = get("/api-connectors/{connector_id}", ApiKey).console();
    /// Change a connector
    ///
    /// settings and secrets merge (RFC 7396) and are checked as a whole; 409 when it kept changing
    /// meanwhile.
    UpdateConnector = patch("/admin/connectors/{connector_id}", Admin)
        => |c| c
            .json::<ConnectorPatch>()
            .example(json!({ "enabled": false }))
            .ok::<ConnectorOut>(200)
            .errors(&[409, 502]),
    /// Change a connector
    also UpdateOwnConnector = patch("/api-connectors/{connector_id}", ApiKey).console()
        => |c| c.json::<ConnectorPatch>().ok::<ConnectorOut>(200).errors(&[409, 502]);
    /// Delete a connector and what it holds
    ///
    /// The CRM hears nothing more from it: its work still waiting is dropped (counted in
    /// dropped_work; disable it instead to keep the work for later), its sync log, its records'
    /// ids in the CRM and its contacts are forgotten, and its webhook URL answers 404. What the CRM
    /// already holds stays there. Satisfaction results it reported stay in the analytics.
    DeleteConnector = delete("/admin/connectors/{connector_id}", Admin)
        => |c| c.ok::<ConnectorDeletedOut>(200),
    /// Delete a connector and what it holds
    ///
    /// Its work still waiting is dropped (counted in dropped_work: disable it instead to keep the
    /// work), its sync log and links are forgotten, its webhook URL answers 404.
    also DeleteOwnConnector = delete("/api-connectors/{connector_id}", ApiKey).console();
    /// The connection test
    TestConnector = post("/admin/connectors/{connector_id}/test", Admin)
        => |c| c
            .ok::<ConnectionTest>(200)
            .example(json!({ "ok": false, "status": 401, "reason": "… check the API key …" }))
            .errors(&[422]),
    also TestOwnConnector = post("/api-connectors/{connector_id}/test", ApiKey).console()
        => |c| c.ok::<ConnectionTest>(200).errors(&[422]);
    /// Kustomer's teams
    GetConnectorTeams = get("/admin/connectors/{connector_id}/teams", Admin)
        => |c| c.ok::<TeamsOut>(200).errors(&[422, 502]),
    also GetOwnConnectorTeams = get("/api-connectors/{connector_id}/teams", ApiKey).console();
    /// Krayin's pipelines and stages
    GetConnectorPipelines = get("/admin/connectors/{connector_id}/pipelines", Admin)
        => |c| c.ok::<PipelinesOut>(200).errors(&[422, 502]),
    also GetOwnConnectorPipelines = get("/api-connectors/{connector_id}/pipelines", ApiKey).console();
    /// A customer in Kustomer by email
    ///
    /// The Kustomer guide's "Customer Lookup Test": Kustomer's own customer with this address, or
    /// null when it has none. Asked of Kustomer now; nothing is kept.
    FindConnectorCrmCustomer = get("/admin/connectors/{connector_id}/crm-customers", Admin)
        => |c| c.query::<CrmCustomerParameters>().ok::<CrmCustomerOut>(200).errors(&[422, 502]),
    /// A customer in Kustomer by email
    ///
    /// The Kustomer guide's "Customer Lookup Test": Kustomer's own customer with this address, or
    /// null when it has none.
    also FindOwnConnectorCrmCustomer = get("/api-connectors/{connector_id}/crm-customers", ApiKey).console();
    /// Open a titled conversation in Kustomer
    ///
    /// The Kustomer guide's "Ticket Creation Test": a conversation opened on a Kustomer customer
    /// (its id as the lookup answers it) with a title, answered on the channel given (chat by
    /// default); Kustomer's new conversation is answered.
    OpenConnectorCrmConversation = post("/admin/connectors/{connector_id}/crm-conversations", Admin)
        => |c| c
            .json::<CrmConversationIn>()
            .example(json!({ "customer_id": "5f1e0a2b3c4d5e6f7a8b9c0d", "title": "Test Support Request", "channel": "chat" }))
            .ok::<CrmConversationOut>(201)
            .errors(&[422, 502]),
    /// Open a titled conversation in Kustomer
    ///
    /// The Kustomer guide's "Ticket Creation Test": a conversation opened on a Kustomer customer
    /// with a title, answered on the channel given (chat by default).
    also OpenOwnConnectorCrmConversation = post("/api-connectors/{connector_id}/crm-conversations", ApiKey).console()
        => |c| c.json::<CrmConversationIn>().ok::<CrmConversationOut>(201).errors(&[422, 502]);
    /// A contact by its CRM external id
    FindConnectorContact = get("/admin/connectors/{connector_id}/contacts", Admin)
        => |c| c.query::<ContactParameters>().ok::<KrayinContact>(200),
    also FindOwnConnectorContact = get("/api-connectors/{connector_id}/contacts", ApiKey).console();
    /// A contact by its key
    GetConnectorContact = get("/admin/connectors/{connector_id}/contacts/{contact_key}", Admin)
        => |c| c.ok::<KrayinContact>(200),
    also GetOwnConnectorContact = get("/api-connectors/{connector_id}/contacts/{contact_key}", ApiKey).console();
    /// The sync log, newest first
    GetConnectorSyncLog = get("/admin/connectors/{connector_id}/sync-log", Admin)
        => |c| c.query::<SyncLogParameters>().ok::<SyncLogOut>(200),
    also GetOwnConnectorSyncLog = get("/api-connectors/{connector_id}/sync-log", ApiKey).console();
    /// Put dead or failed work back
    ReplayConnectorWork = post("/admin/connectors/{connector_id}/replay", Admin)
        => |c| c.json::<ReplayIn>().example(json!({ "statuses": ["dead"] })).ok::<ReplayOut>(200),
    also ReplayOwnConnectorWork = post("/api-connectors/{connector_id}/replay", ApiKey).console()
        => |c| c.json::<ReplayIn>().ok::<ReplayOut>(200);
    /// Run the maintenance sweep now
    RunMaintenanceSweep = post("/admin/maintenance/sweep", Admin)
        => |c| c.ok::<SweepReport>(200);
    /// Move a business to another shard, one step
    ///
    /// Each call does the move's next bounded step and answers where it stands; call again with the
    /// cursor it answered, after wait_seconds when it says so, until phase is done
    /// (`crm-edge admin businesses move` does). The business's writes are answered 503 from the
    /// pause until the switch (a minute or two, and the copy). The copy is verified row for row,
    /// every stored column. 409 when another move of the business is not finished, or the copy did
    /// not verify (the message names the table: call again without a cursor, it starts over, or
    /// abort). A step that fails names the table it was at and why.
    MoveBusiness = post("/admin/businesses/{business_id}/move", Admin)
        => |c| c
            .json::<MoveIn>()
            .example(json!({ "to_shard": 1 }))
            .ok::<MoveOut>(200)
            .errors(&[409]);
    /// Abort a move before its switch, one step
    ///
    /// The first call ends the pause (the business stays on its shard, its writes go on within
    /// the directory's minute); each call then deletes part of what was copied to the new shard
    /// and answers where it stands; call again with the cursor it answered until phase is aborted
    /// (`crm-edge admin businesses move <id> --abort` does). 409 when no move is under way, or
    /// the move has switched already (it cannot be undone: finish it with the move itself).
    AbortMove = post("/admin/businesses/{business_id}/move/abort", Admin)
        => |c| c
            .json::<MoveAbortIn>()
            .example(json!({ "cursor": null }))
            .ok::<MoveOut>(200)
            .errors(&[409]);
    /// Export a business's rows, one page
    ///
    /// Every row of every table of the business, table by table in the order a restore writes
    /// them, at most 200 rows or 4 MB a page; call again with the cursor it answered until it
    /// answers none (`crm-edge admin backup` does, writing the file). The first page answers the
    /// header: when the export began, how many rows each table holds up to then, and a check
    /// value sealed under this deployment's key. Sealed secrets are answered as stored, sealed;
    /// 409 when one is still clear text from before sealing (read it once, which seals it). A
    /// row written after the export began is not in it.
    ExportBusiness = post("/admin/businesses/{business_id}/backup", Admin)
        => |c| c
            .json::<BackupIn>()
            .example(json!({ "cursor": null }))
            .ok::<BackupOut>(200)
            .errors(&[409]);
    /// Restore a business from its backup, one page
    ///
    /// Only where the business does not exist (409 when it does). The first page (first: true)
    /// places the business as creating one does, held (its writes 503, the sweeps leaving it
    /// alone) until the last page completes it (complete: true), which checks every table's rows
    /// against the header's counts. Each page is written whole or not at all. A first page for a
    /// business whose restore broke off deletes what it wrote first, in steps (phase discarding:
    /// send the same page again). 422 when the header's key check does not open with this
    /// deployment's SECRETS_KEY, or a sealed value names a key it does not hold
    /// (`crm-edge admin restore` does all this).
    RestoreBusiness = post("/admin/businesses/{business_id}/restore", Admin).limit(RESTORE_BODY_LIMIT)
        => |c| c
            .json::<RestoreIn>()
            .example(json!({ "header": { "format": 2, "business_id": "biz_…", "taken_at": "2026-12-01T00:00:00Z", "key_id": "k1", "counts": { "businesses": 1 }, "mac": "…" }, "lines": [], "first": true, "complete": false }))
            .ok::<RestoreOut>(200)
            .errors(&[409]);
    /// Discard a restore that broke off
    ///
    /// For a restore that stopped or was refused part-way and will not be run again: deletes what
    /// it wrote, in steps (phase discarding: send it again), then lets go of the addresses its
    /// first pages claimed and of the business's place in the directory (phase discarded): the
    /// business is gone, and inbound kept for it ends. 409 when no restore of it is under way
    /// (`crm-edge admin restore --discard <business id>` does this).
    DiscardRestore = post("/admin/businesses/{business_id}/restore/discard", Admin)
        => |c| c.ok::<RestoreOut>(200).errors(&[409]);
    /// Resume a restored business
    ///
    /// A restore pauses the business's channel accounts, connectors, webhook endpoints and CRM
    /// link entries that were on in the backup (nothing it held reaches a customer, an endpoint
    /// or a CRM); this switches the parts named (every part when none is) back on, exactly those,
    /// and answers what still waits. Audited.
    ResumeBusiness = post("/admin/businesses/{business_id}/resume", Admin)
        => |c| c
            .json::<ResumeIn>()
            .example(json!({ "parts": ["webhooks", "links"] }))
            .ok::<ResumeOut>(200)
            .errors(&[404, 409]);
    /// Issue a console link
    ///
    /// A link that opens the business's console once, within 15 minutes, into a session of 8 hours
    /// that can do what the business's API key can.
    IssueConsoleLink = post("/admin/businesses/{business_id}/console-links", Admin)
        => |c| c.ok::<ConsoleLink>(201),
    /// Issue a console link for the key's business
    ///
    /// Opens the console once, within 15 minutes, into a session of 8 hours that can do what this
    /// key can.
    also IssueOwnConsoleLink = post("/api-console-links", ApiKey).console();
    /// The business's console links and sessions that have not ended
    ListConsoleSessions = get("/admin/businesses/{business_id}/console-sessions", Admin)
        => |c| c.ok::<ConsoleSessionsOut>(200),
    also ListOwnConsoleSessions = get("/api-console-sessions", ApiKey).console();
    /// Revoke a console link or session (idempotent)
    RevokeConsoleSession = delete("/admin/console-sessions/{session_id}", Admin)
        => |c| c.ok::<ConsoleSession>(200),
    also RevokeOwnConsoleSession = delete("/api-console-sessions/{session_id}", ApiKey).console();

    /// Start connecting a CRM with OAuth
    ///
    /// Answers the CRM's consent page to send the person to (HubSpot's: your app's client id and
    /// secret, the scopes the connector needs). The CRM sends them back to the console's address
    /// with a code and this state, which CompleteOwnConnectorAuthorization trades for the
    /// connector within 10 minutes. Nothing is stored before: the state carries it, sealed.
    StartOwnConnectorAuthorization = post("/api-connector-authorizations", ApiKey).console()
        => |c| c.json::<AuthorizationIn>().ok::<AuthorizationOut>(201);
    /// Finish connecting a CRM with OAuth
    ///
    /// Trades the code the CRM's consent page gave back for tokens, and makes the connector
    /// StartOwnConnectorAuthorization described; its access token is refreshed before it expires
    /// and when the CRM refuses it. 422 by `code` when the CRM refuses the code (used, expired),
    /// by `state` when the state is not one this business started in the last 10 minutes.
    CompleteOwnConnectorAuthorization = post("/api-connector-authorizations/complete", ApiKey).console()
        => |c| c
            .json::<AuthorizedIn>()
            .ok::<ConnectorOut>(201)
            .errors(&[502]);
}

/// A new business.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BusinessIn {
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    /// ISO 3166 alpha-2.
    pub default_country: Option<String>,
}

/// A business as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
    /// ISO 3166 alpha-2, as validated when the business was created.
    pub default_country: Option<String>,
    /// RFC 3339 time.
    pub created_at: String,
    /// Origins allowed to frame the embedded inbox.
    pub embed_frame_ancestors: Vec<String>,
    /// Each API key's limit (the default unless set).
    pub rate_limit: Policy,
    /// Hours a resolved or closed conversation stays quiet before the customer's next message
    /// opens a new conversation (with `conversation.created`) instead of reopening it; 96 unless
    /// set.
    pub new_conversation_after_hours: u16,
}

impl Business {
    /// The business as the tenant the operator's requests about it act for.
    pub fn tenant(&self) -> Result<Tenant, ApiError> {
        Tenant::from_stored(self.id.as_str(), self.default_country.as_deref())
    }
}

/// What may change of a business after it is made: one or both.
#[derive(Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "openapi",
    schemars(extend("anyOf" = [
        { "required": ["embed_frame_ancestors"] },
        { "required": ["rate_limit"] },
        { "required": ["new_conversation_after_hours"] },
    ]))
)]
pub struct BusinessPatch {
    #[cfg_attr(feature = "openapi", schemars(length(max = 20)))]
    pub embed_frame_ancestors: Option<Vec<String>>,
    #[cfg_attr(feature = "openapi", schemars(with = "Option<PolicyPatch>"))]
    pub rate_limit: Option<Value>,
    /// 0 (a resolved conversation is never reopened) to 8760 (a year).
    #[cfg_attr(feature = "openapi", schemars(range(min = 0, max = crate::message::NewConversationAfter::MAX_HOURS)))]
    pub new_conversation_after_hours: Option<i64>,
}

/// A key rate limit's change: a number left out keeps its value.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes a field for the contract")]
struct PolicyPatch {
    #[schemars(range(min = 1, max = Policy::MAX_PER_MINUTE))]
    per_minute: Option<u32>,
    #[schemars(range(min = 1, max = Policy::MAX_BURST))]
    burst: Option<u32>,
}

/// The parameters of the alerts' listing.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct AlertsParameters {
    /// `open`, or `all` (the default).
    state: Option<String>,
    /// 1 to 200, default 50.
    #[schemars(range(min = 1, max = 200))]
    limit: Option<u32>,
}

/// A change to the alert settings (the handler reads it as `domain::alerts::Settings::apply`).
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct AlertSettingsPatch {
    /// Rule names (connector_failing, connector_paused, connector_budget, connector_backlog,
    /// endpoint_disabled, endpoint_failing, link_failing, error_rate, rate_limited), each with
    /// its change.
    rules: Option<std::collections::BTreeMap<String, AlertRuleChange>>,
    #[schemars(length(max = 10))]
    email_to: Option<Vec<String>>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code, reason = "describes the body for the contract")]
struct AlertRuleChange {
    enabled: Option<bool>,
    /// Within the rule's min and max (GET shows them).
    #[schemars(range(min = 0))]
    threshold: Option<u32>,
}

/// The parameters of the audit log.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct AuditParameters {
    /// 1 to 500, default 100.
    #[schemars(range(min = 1, max = crate::query::MAX_PAGE))]
    limit: Option<u32>,
    /// The next_cursor of a previous page.
    before: Option<String>,
}

/// One admin or security action.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub id: AuditEntryId,
    /// RFC 3339 time.
    pub at: String,
    /// admin, `key:<key prefix>`, or `console:<console session id>`.
    pub actor: String,
    /// e.g. api_key.issued.
    pub action: String,
    pub target: AuditTarget,
    /// What changed; never a secret.
    pub detail: Map<String, Value>,
    /// The address the action came from; null for the operator's actions when a business reads
    /// its own log.
    pub client_ip: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditTarget {
    #[serde(rename = "type")]
    pub target_type: String,
    pub id: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuditLogOut {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KeyIn {
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
}

/// A key as listed: by its prefix, never the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub business_id: BusinessId,
    pub name: Option<String>,
    pub prefix: String,
    /// RFC 3339 time.
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// RFC 3339 time of the key's latest request (counted off the request path: up to a minute
    /// behind); null until it is used.
    #[serde(default)]
    pub last_used_at: Option<String>,
    /// The address that request came from.
    #[serde(default)]
    pub last_used_address: Option<String>,
    /// The endpoint it was made to, as usage names it (`POST /api-customers-sync`).
    #[serde(default)]
    pub last_used_endpoint: Option<String>,
}

/// A key just issued: the key itself is in this answer only.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct IssuedApiKey {
    #[serde(flatten)]
    pub listed: ApiKey,
    /// The key in clear, shown only here.
    pub key: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ApiKeysOut {
    pub api_keys: Vec<ApiKey>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct UsageParameters {
    /// `hour`: the last 48 hours, by the hour; `day` (the default): the last 30 days, by the
    /// day (UTC).
    by: Option<String>,
    /// One key's usage only (its id); all the business's keys when absent.
    key_id: Option<ApiKeyId>,
}

/// Requests by what they were answered with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UsageCounts {
    pub requests: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// Refused by the key's rate limit (429): counted in status_4xx too.
    pub rate_limited: u64,
}

impl UsageCounts {
    /// Both counts added up.
    pub fn plus(self, other: &UsageCounts) -> UsageCounts {
        UsageCounts {
            requests: self.requests + other.requests,
            status_2xx: self.status_2xx + other.status_2xx,
            status_3xx: self.status_3xx + other.status_3xx,
            status_4xx: self.status_4xx + other.status_4xx,
            status_5xx: self.status_5xx + other.status_5xx,
            rate_limited: self.rate_limited + other.rate_limited,
        }
    }
}

/// One hour's or day's requests.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UsagePoint {
    /// RFC 3339 start of the hour or day.
    pub at: String,
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// One endpoint's requests over the period read.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct EndpointUsage {
    /// The method and the route that served it (`POST /api-customers-sync`; a route with an id
    /// in it by its prefix, `DELETE /api-keys/*`).
    pub endpoint: String,
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// One key's requests over the period read.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KeyUsage {
    pub key_id: ApiKeyId,
    pub prefix: String,
    pub name: Option<String>,
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// API usage over the last 48 hours or 30 days.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct UsageOut {
    /// `hour` or `day`.
    pub by: String,
    /// RFC 3339 start of the first period.
    pub from: String,
    /// The key read, or null for all the business's keys.
    pub key_id: Option<ApiKeyId>,
    pub totals: UsageCounts,
    /// Every period from `from` on, oldest first (those without requests at zero).
    pub series: Vec<UsagePoint>,
    /// Endpoints with requests, the most first.
    pub endpoints: Vec<EndpointUsage>,
    /// Keys with requests, the most first.
    pub keys: Vec<KeyUsage>,
}

/// A new channel account. Settings and secrets are strings (null removes one in a change).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AccountIn {
    #[cfg_attr(feature = "openapi", schemars(with = "Channel", required))]
    pub channel: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(required, extend("enum" = ["meta", "twilio", "mailgun"])))]
    pub provider: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(required))]
    pub address: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "std::collections::BTreeMap<String, Option<String>>")
    )]
    pub settings: Map<String, Value>,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "std::collections::BTreeMap<String, Option<String>>")
    )]
    pub secrets: Map<String, Value>,
}

/// A channel account's change: settings and secrets merge into what is stored (RFC 7396).
#[derive(Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AccountPatch {
    pub name: Option<String>,
    /// Merged into the stored settings; a key set to null is removed.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "std::collections::BTreeMap<String, Option<String>>")
    )]
    pub settings: Map<String, Value>,
    /// Merged into the stored secrets; a key set to null is removed.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schemars(with = "std::collections::BTreeMap<String, Option<String>>")
    )]
    pub secrets: Map<String, Value>,
}

/// A channel account as the admin API shows it: secrets by name only.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ChannelAccount"))]
pub struct ChannelAccountOut {
    pub id: ChannelAccountId,
    pub business_id: BusinessId,
    pub channel: Channel,
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["meta", "twilio", "mailgun"])))]
    pub provider: &'static str,
    pub address: String,
    pub name: Option<String>,
    pub settings: Map<String, Value>,
    pub secrets_set: Vec<String>,
    /// Where the provider must send webhooks, relative to this deployment's base URL.
    pub webhook_path: String,
    /// RFC 3339 time: paused by a restore since then, it sends nothing until the business is
    /// resumed; null when it sends.
    pub paused_at: Option<String>,
    /// RFC 3339 time.
    pub created_at: String,
    /// RFC 3339 time.
    pub updated_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ChannelAccountsOut {
    pub channel_accounts: Vec<ChannelAccountOut>,
}

/// A new connector: its CRM, and that CRM's settings and secrets (docs/connectors.md).
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectorIn {
    #[cfg_attr(feature = "openapi", schemars(with = "ConnectorKind", required))]
    pub kind: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub settings: Value,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub secrets: Value,
    pub enabled: Option<bool>,
    /// The share of the business's customers the connector works for, in percent (default 100):
    /// a connector re-enabled after a rollback starts with a few and widens step by step. The same
    /// customers stay in while it is widened; for the others it is as if disabled.
    #[cfg_attr(feature = "openapi", schemars(range(min = 1, max = 100)))]
    pub rollout_percent: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "BudgetIn"))]
    pub rate_limit: Map<String, Value>,
}

/// A connector to be authorised with OAuth on its CRM's consent page: its CRM (`hubspot`), name
/// and settings as for a new connector, and the OAuth app it is authorised for.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizationIn {
    #[cfg_attr(feature = "openapi", schemars(with = "ConnectorKind", required))]
    pub kind: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub settings: Value,
    /// The app's client id, as the CRM shows it.
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = 256)))]
    pub client_id: Option<String>,
    /// The app's client secret: it trades codes and refresh tokens, and (HubSpot) signs the
    /// webhooks the app sends.
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = 256)))]
    pub client_secret: Option<String>,
}

/// Where to send the person to authorise the connector.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct AuthorizationOut {
    /// The CRM's consent page, with the app, the scopes, the way back and the state.
    pub authorize_url: String,
    /// Where the CRM sends them back: the app must list it among its redirect URLs.
    pub redirect_uri: String,
    /// The state the CRM gives back with the code.
    pub state: String,
    /// After this, the state is refused: start again.
    pub expires_at: Timestamp,
}

/// What the CRM's consent page gave back.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuthorizedIn {
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = 4096)))]
    pub state: Option<String>,
    #[cfg_attr(feature = "openapi", schemars(required, length(min = 1, max = 2048)))]
    pub code: Option<String>,
}

/// A connector's change: settings and secrets merge into what is stored (RFC 7396).
#[derive(Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConnectorPatch {
    #[cfg_attr(feature = "openapi", schemars(length(max = MAX_NAME_CHARS)))]
    pub name: Option<String>,
    /// Merged into the stored settings (RFC 7396).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub settings: Value,
    /// Merged into the stored secrets (RFC 7396): a rotation names only what changes.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub secrets: Value,
    pub enabled: Option<bool>,
    /// The share of the business's customers the connector works for, in percent (default 100):
    /// a connector re-enabled after a rollback starts with a few and widens step by step. The same
    /// customers stay in while it is widened; for the others it is as if disabled.
    #[cfg_attr(feature = "openapi", schemars(range(min = 1, max = 100)))]
    pub rollout_percent: Option<i64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(with = "BudgetIn"))]
    pub rate_limit: Map<String, Value>,
}

/// A connector's CRM request budget; null is no limit of that kind.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[schemars(rename = "RateLimit")]
#[allow(dead_code, reason = "describes a field for the contract")]
struct BudgetIn {
    #[schemars(range(min = 1, max = 1_000_000))]
    per_minute: Option<u32>,
    #[schemars(range(min = 1, max = 1_000_000))]
    per_second: Option<u32>,
    #[schemars(range(min = 1, max = 1_000_000))]
    per_day: Option<u32>,
}

/// A connector as the admin API shows it: secrets by name only, and its status.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "Connector"))]
pub struct ConnectorOut {
    pub id: ConnectorId,
    pub business_id: BusinessId,
    pub kind: ConnectorKind,
    pub name: String,
    pub enabled: bool,
    /// The share of the business's customers it works for, in percent.
    pub rollout_percent: u8,
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub settings: Value,
    pub secrets_set: Vec<String>,
    pub rate_limit: Budget,
    /// Where the CRM must send its webhooks, below this deployment's origin.
    pub webhook_path: String,
    pub status: ConnectorStatus,
    /// RFC 3339 time.
    pub created_at: String,
    /// RFC 3339 time.
    pub updated_at: String,
}

/// How a connector's work goes.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConnectorStatus {
    /// Work waiting to be done (the backlog), and since when the oldest has waited.
    pub backlog: i64,
    pub oldest_pending_at: Option<Timestamp>,
    /// The last 24 hours: work by how it ended, and the share of CRM work that succeeded.
    pub last_24h: Summary,
    pub success_rate: Option<f64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// Calls to the CRM wait until then (it answered 429).
    pub paused_until: Option<Timestamp>,
    /// When the CRM key expires, as the CRM reported when it was saved or last tested; null when
    /// it reported none (the `connector_key_expiring` alert rule warns ahead of it).
    pub key_expires_at: Option<Timestamp>,
    /// Calls made to the CRM so far in this UTC day, against the budget's per_day.
    pub calls_today: i64,
    /// The calls to the CRM in the last 24 hours as the production checklist's KPIs, with its
    /// targets.
    pub health: crate::crm::health::Health,
}

/// A deleted connector, and what was forgotten with it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ConnectorDeleted"))]
pub struct ConnectorDeletedOut {
    pub id: ConnectorId,
    pub business_id: BusinessId,
    pub kind: ConnectorKind,
    pub name: String,
    /// Work that was still waiting (pending) and will never reach the CRM.
    pub dropped_work: usize,
    /// The other entries of its sync log (done, skipped, failed, dead), deleted with it.
    pub sync_log_entries: usize,
    /// Our customers, conversations and messages whose id in the CRM it knew.
    pub links: usize,
    /// Its contacts (their CRM records and sync leases).
    pub contacts: usize,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConnectorsOut {
    pub connectors: Vec<ConnectorOut>,
}

#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the answer for the contract")]
struct TeamsOut {
    teams: Vec<Team>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PipelinesOut {
    pub pipelines: Vec<PipelineOut>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PipelineOut {
    pub id: u64,
    pub name: String,
    pub is_default: bool,
    pub stages: Vec<StageOut>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct StageOut {
    pub id: u64,
    pub name: String,
    pub code: String,
    pub sort_order: u32,
}

/// The parameters of a lookup in the CRM.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct CrmCustomerParameters {
    /// The customer's email address.
    #[schemars(length(min = 3, max = 254))]
    email: String,
}

/// What Kustomer holds under an email address.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CrmCustomerOut {
    /// Kustomer's customer as its API answers it (JSON:API: type, id, attributes,
    /// relationships); null when it has none with this address.
    #[cfg_attr(feature = "openapi", schemars(with = "Option<Map<String, Value>>"))]
    pub customer: Option<Value>,
}

/// A conversation to open in Kustomer.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CrmConversationIn {
    /// The Kustomer customer id (24 hex digits), as the lookup answers it.
    pub customer_id: String,
    /// The conversation's title, 1 to 256 characters.
    #[cfg_attr(feature = "openapi", schemars(length(min = 1, max = 256)))]
    pub title: String,
    /// The channel it is answered on: chat (the default), email, sms, whatsapp, facebook,
    /// instagram or voice.
    pub channel: Option<String>,
}

/// The conversation Kustomer opened.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct CrmConversationOut {
    /// Kustomer's conversation as its API answers it (JSON:API: type, id, attributes,
    /// relationships).
    #[cfg_attr(feature = "openapi", schemars(with = "Map<String, Value>"))]
    pub conversation: Value,
}

/// The parameters of a contact's lookup.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct ContactParameters {
    /// The whole external id, or its first record (krayin:person:123).
    #[schemars(length(min = 1, max = 200))]
    external_id: String,
}

/// A contact of a connector with its records in Krayin.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct KrayinContact {
    pub contact: String,
    pub external_id: Option<String>,
    pub person_id: Option<u64>,
    pub lead_id: Option<u64>,
    pub organization_id: Option<u64>,
    pub activity_id: Option<u64>,
    pub stages_done: Vec<&'static str>,
}

/// The parameters of the sync log.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[allow(dead_code, reason = "describes the query for the contract")]
struct SyncLogParameters {
    /// One status.
    status: Option<JobStatus>,
    /// A customer, conversation or message id.
    record: Option<String>,
    /// 1 to 500, default 100.
    #[schemars(range(min = 1, max = crate::query::MAX_PAGE))]
    limit: Option<u32>,
    /// The seq the last page ended at.
    #[schemars(range(min = 1))]
    before: Option<i64>,
}

/// One entry of the sync log.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SyncLogEntry {
    pub id: String,
    /// Where the log is continued from (`before`).
    pub seq: i64,
    pub operation: &'static str,
    pub customer_id: String,
    pub record_id: String,
    pub event_id: Option<String>,
    pub status: JobStatus,
    pub attempts: u32,
    pub crm_id: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub duration_ms: Option<i64>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SyncLogOut {
    pub entries: Vec<SyncLogEntry>,
    pub next_before: Option<i64>,
}

/// Which work to put back.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ConnectorReplayIn"))]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// Which work to put back: dead (the default) and/or failed.
    #[cfg_attr(
        feature = "openapi",
        schemars(length(min = 1), extend("items" = { "type": "string", "enum": ["dead", "failed"] }))
    )]
    pub statuses: Option<Vec<String>>,
    /// Work created in [from, to); RFC 3339.
    pub from: Option<String>,
    /// RFC 3339 time.
    pub to: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "ConnectorReplayOut"))]
pub struct ReplayOut {
    pub contacts: usize,
    pub statuses: Vec<JobStatus>,
}

/// Where to move a business, and where the move stands.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MoveIn {
    /// The shard to move to: its place in the deployment's list of shards, the first being 0.
    pub to_shard: u16,
    /// The cursor the last step answered; none to start, or to start the copy over.
    pub cursor: Option<String>,
}

/// Where an abort of a move stands.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MoveAbortIn {
    /// The cursor the last abort step answered; none to start (or to start the deletion over).
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Where a move (or its abort) stands after a step.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct MoveOut {
    pub business_id: BusinessId,
    /// The shard the business lives on now.
    pub shard: u16,
    /// The shard the business moves to (of an abort: the shard whose partial copy it deletes).
    pub to_shard: u16,
    /// pausing (waiting until every isolate holds the business's writes), copying, verifying,
    /// switched (waiting until every isolate reads the new shard), deleting (the old copy; of an
    /// abort, the partial one), done; of an abort, aborted at the end.
    #[cfg_attr(
        feature = "openapi",
        schemars(extend("enum" = ["pausing", "copying", "verifying", "switched", "deleting", "done", "aborted"]))
    )]
    pub phase: &'static str,
    /// Call again after this long.
    pub wait_seconds: u32,
    /// Rows this step copied or deleted.
    pub rows: usize,
    /// Hand it to the next step; none when the move is done.
    pub cursor: Option<String>,
}

/// Where an export stands.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct BackupIn {
    /// The cursor the last page answered; none for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One page of a business's export.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct BackupOut {
    /// The first page's only: the header as the export began (its counts, the rows it would
    /// hold if none were deleted meanwhile).
    pub header: Option<crate::backup::Header>,
    /// The last page's only: the file's first line, with the counts of the rows the export wrote
    /// (write it before them).
    pub last_header: Option<crate::backup::Header>,
    /// The page's rows, in the order a restore writes them.
    pub lines: Vec<crate::backup::Line>,
    /// Hand it to the next page; none after the last.
    pub cursor: Option<String>,
}

/// A page of a backup to restore.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RestoreIn {
    /// The file's first line, with every page.
    pub header: crate::backup::Header,
    /// The page's rows, in the file's order: at most 200.
    #[serde(default)]
    pub lines: Vec<crate::backup::Line>,
    /// The file's first page: the business is placed (or a restore that broke off discarded).
    #[serde(default)]
    pub first: bool,
    /// The file's last page: every table's rows are checked against the header, and the
    /// business's writes begin.
    #[serde(default)]
    pub complete: bool,
    /// A page after the first: the MAC of the file's line before it (the previous page's last
    /// line's), which its first line's MAC is made after.
    #[serde(default)]
    pub chain: Option<String>,
    /// The file's line number of the page's first row (2 for the first page), to name a line
    /// that does not check.
    #[serde(default)]
    pub first_line: Option<usize>,
    /// Checks the page (its lines' MACs, its rows' business and sealed values) and writes
    /// nothing: a restore checks the whole file so before its first write.
    #[serde(default)]
    pub verify_only: bool,
    /// The last page's: keep the API keys, console sessions and embedding tokens the backup holds
    /// (by default each is revoked: a restore never widens access, and a key revoked after the
    /// backup was taken would otherwise work again).
    #[serde(default)]
    pub keep_access: bool,
}

/// Where a restore stands after a page.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RestoreOut {
    pub business_id: BusinessId,
    /// The shard the business is restored on.
    pub shard: u16,
    /// verified (checked, nothing written), discarding (a restore that broke off is being deleted:
    /// send the same page again), restoring (the page is written), restored (complete).
    #[cfg_attr(
        feature = "openapi",
        schemars(extend("enum" = ["verified", "discarding", "discarded", "restoring", "restored"]))
    )]
    pub phase: &'static str,
    /// Rows this page wrote (or deleted, discarding; or checked, verified).
    pub rows: usize,
    /// The MAC of the page's last line: the next page's `chain`.
    pub chain: String,
    /// Each written page's: what the page's rows were paused, failed, dead-lettered and revoked
    /// as, in the batch that wrote them, so that nothing the backup held reaches a customer, an
    /// endpoint or a CRM until it is resumed, not even while the restore runs (the CLI adds the
    /// pages' up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<Quarantined>,
}

/// What a restore's quarantine did, by kind.
#[derive(Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Quarantined {
    /// Paused until resumed (`POST /admin/businesses/{id}/resume`).
    pub channel_accounts_paused: usize,
    pub connectors_disabled: usize,
    pub webhooks_disabled: usize,
    pub link_entries_paused: usize,
    /// Outbound messages still queued in the backup, failed (never sent).
    pub sends_failed: usize,
    /// Webhook deliveries and CRM work still pending in the backup, dead-lettered (listed as
    /// dead; replay what is still wanted once resumed).
    pub deliveries_dead: usize,
    pub crm_jobs_dead: usize,
    /// The bot's turns the backup held, dropped.
    pub bot_turns_dropped: usize,
    /// Revoked unless `keep_access` was asked.
    pub api_keys_revoked: usize,
    pub console_sessions_revoked: usize,
    pub sso_tokens_revoked: usize,
}

/// Where a released account's address goes.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseIn {
    /// The business the address is handed to (its owner); absent: the address is free.
    #[serde(default)]
    pub to_business_id: Option<BusinessId>,
}

/// The parts of a restored business to resume.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResumeIn {
    /// Any of channel_accounts, connectors, webhooks, links; absent: every part.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schemars(extend("items" = { "type": "string", "enum": ["channel_accounts", "connectors", "webhooks", "links"] }))
    )]
    pub parts: Option<Vec<String>>,
}

/// What a resume did, and what still waits.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ResumeOut {
    #[cfg_attr(
        feature = "openapi",
        schemars(extend("items" = { "type": "string", "enum": ["channel_accounts", "connectors", "webhooks", "links"] }))
    )]
    pub resumed: Vec<&'static str>,
    /// What the restore paused that is still paused; null when nothing is.
    pub waiting: Option<crate::backup::Quarantine>,
}

/// A console link just issued: the link is in this answer only.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConsoleLink {
    /// The console session the link opens, by id (to revoke it).
    pub id: ConsoleSessionId,
    /// Opens the console; shown only here.
    pub url: String,
    /// RFC 3339 time: the link opens nothing after it.
    pub expires_at: String,
}

/// A console link and the session it opened, if it did: never either secret.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConsoleSession {
    pub id: ConsoleSessionId,
    /// admin, or `key:<key prefix>`.
    pub issued_by: String,
    /// RFC 3339 times.
    pub created_at: String,
    pub link_expires_at: String,
    /// When the link was opened into a session; null while it has not been.
    pub opened_at: Option<String>,
    /// When the session ends; null while the link has not been opened.
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ConsoleSessionsOut {
    pub sessions: Vec<ConsoleSession>,
}
