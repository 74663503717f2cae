//! The operator's work on a whole business: moving it to another shard, backing it up,
//! restoring and resuming it.

use crate::ids::BusinessId;
use serde::{Deserialize, Serialize};

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
