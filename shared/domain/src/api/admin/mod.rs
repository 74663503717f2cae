//! The admin API, taken by the operator's admin token: businesses, their API keys, channel
//! accounts and CRM connectors, the audit log, and the maintenance sweep now; its declarations
//! here, each with its twin for a business's own key where it has one, and the shapes it takes
//! and answers with beside them by concern (`businesses`, `keys`, `accounts`, `alerts`,
//! `connectors`, `console`, `operations`).

use crate::api::{Caller::*, delete, get, patch, post};
#[cfg(feature = "openapi")]
use {
    crate::alerts::{AlertsOut, SettingsOut},
    crate::cost::{Bill, CostOut},
    crate::crm::ConnectionTest,
    crate::erasure::ErasureOut,
    crate::maintenance::SweepReport,
    serde_json::json,
};

/// Longest name of a business, a key or a connector.
pub const MAX_NAME_CHARS: usize = 200;

/// The largest restore page the API reads: a page's rows are at most 4 MB of JSON
/// (`domain::backup::PAGE_BYTES`, a single row at most 2 MB), with the header and the framing.
pub const RESTORE_BODY_LIMIT: usize = crate::backup::PAGE_BYTES + 1024 * 1024;

mod accounts;
#[cfg(feature = "openapi")]
mod alerts;
mod businesses;
mod connectors;
mod console;
mod keys;
mod operations;

pub use accounts::*;
#[cfg(feature = "openapi")]
use alerts::*;
pub use businesses::*;
pub use connectors::*;
pub use console::*;
pub use keys::*;
pub use operations::*;
// Named, for `ApiKey` is a caller too (`Caller::*`): here the type is the answer's.
pub use {console::ConsoleSession, keys::ApiKey};

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
