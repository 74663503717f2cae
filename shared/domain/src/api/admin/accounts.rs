//! A business's channel accounts, and where a released account's address goes.

use crate::channel::Channel;
use crate::ids::{BusinessId, ChannelAccountId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

/// Where a released account's address goes.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReleaseIn {
    /// The business the address is handed to (its owner); absent: the address is free.
    #[serde(default)]
    pub to_business_id: Option<BusinessId>,
}
