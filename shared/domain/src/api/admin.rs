//! The admin endpoints: their declarations and the types they take and answer with.

use crate::api::{Caller::*, delete, get, patch, post};

function! {
    /// `admin`.
    pub const ADMIN: Function<Admin> = "admin", owns "/admin/", tag "admin";
    /// Create a business
    CreateBusiness = post("/admin/businesses", Admin)
        => |c| c;
    /// One business
    GetBusiness = get("/admin/businesses/{business_id}", Admin)
        => |c| c;
    /// Set the sites that may frame the inbox, or the API keys' rate limit
    ///
    /// embed_frame_ancestors, rate_limit or both (neither: 422). embed_frame_ancestors: the sites
    /// that may frame the embedded inbox, as origins: https://host, https://host:port,
    /// https://*.host (and http://); at most 20; ["'none'"] alone for no site; [] (the default) for
    /// any site. rate_limit takes per_minute (1 to 100000) and/or burst (1 to 10000), a number left
    /// out keeping its value; any other name is 422 (field rate_limit.<name>). A changed limit
    /// applies to the keys within a minute.
    UpdateBusiness = patch("/admin/businesses/{business_id}", Admin)
        => |c| c;
    /// Admin and security actions, newest first
    ///
    /// Who (the admin token or a key prefix), what, when and from where; never a secret.
    GetAuditLog = get("/admin/businesses/{business_id}/audit-log", Admin)
        => |c| c;
    /// Issue an API key
    IssueApiKey = post("/admin/businesses/{business_id}/api-keys", Admin)
        => |c| c;
    /// The business's keys, by prefix
    ListApiKeys = get("/admin/businesses/{business_id}/api-keys", Admin)
        => |c| c;
    /// Revoke an API key (idempotent)
    RevokeApiKey = delete("/admin/api-keys/{key_id}", Admin)
        => |c| c;
    /// Add a channel account
    ///
    /// Secrets go in and are never returned. 409 when the channel already has an account at the
    /// address.
    CreateChannelAccount = post("/admin/businesses/{business_id}/channel-accounts", Admin)
        => |c| c;
    /// The business's channel accounts
    ListChannelAccounts = get("/admin/businesses/{business_id}/channel-accounts", Admin)
        => |c| c;
    /// Rotate secrets or change settings
    ///
    /// settings and secrets merge (RFC 7396: null removes a key).
    UpdateChannelAccount = patch("/admin/channel-accounts/{account_id}", Admin)
        => |c| c;
    /// Connect a CRM
    ///
    /// Kustomer or Krayin; settings and secrets are checked (Krayin's pipeline and stages against
    /// Krayin: 502 when it fails).
    CreateConnector = post("/admin/businesses/{business_id}/connectors", Admin)
        => |c| c;
    /// The business's connectors with their status
    ListConnectors = get("/admin/businesses/{business_id}/connectors", Admin)
        => |c| c;
    /// One connector
    GetConnector = get("/admin/connectors/{connector_id}", Admin)
        => |c| c;
    /// Change a connector
    ///
    /// settings and secrets merge (RFC 7396) and are checked as a whole; 409 when it kept changing
    /// meanwhile.
    UpdateConnector = patch("/admin/connectors/{connector_id}", Admin)
        => |c| c;
    /// The connection test
    TestConnector = post("/admin/connectors/{connector_id}/test", Admin)
        => |c| c;
    /// Kustomer's teams
    GetConnectorTeams = get("/admin/connectors/{connector_id}/teams", Admin)
        => |c| c;
    /// Krayin's pipelines and stages
    GetConnectorPipelines = get("/admin/connectors/{connector_id}/pipelines", Admin)
        => |c| c;
    /// A contact by its CRM external id
    FindConnectorContact = get("/admin/connectors/{connector_id}/contacts", Admin)
        => |c| c;
    /// A contact by its key
    GetConnectorContact = get("/admin/connectors/{connector_id}/contacts/{contact_key}", Admin)
        => |c| c;
    /// The sync log, newest first
    GetConnectorSyncLog = get("/admin/connectors/{connector_id}/sync-log", Admin)
        => |c| c;
    /// Put dead or failed work back
    ReplayConnectorWork = post("/admin/connectors/{connector_id}/replay", Admin)
        => |c| c;
    /// Run the maintenance sweep now
    RunMaintenanceSweep = post("/admin/maintenance/sweep", Admin)
        => |c| c;
}
