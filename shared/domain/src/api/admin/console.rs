//! Console links and the sessions they open.

use crate::ids::ConsoleSessionId;
use serde::Serialize;

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
