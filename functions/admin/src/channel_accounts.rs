//! Channel accounts: the credentials a business's channels are received and sent with.
//! Secrets go in and are never shown again; responses list only which secrets are set.

use crate::businesses;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use domain::channel::{Channel, Provider};
use edge::{DB, d1, http, runtime};
use domain::email::Email;
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::phone::Phone;
use worker::{Env, Request, Response};

#[derive(Deserialize)]
struct AccountIn {
    channel: Option<String>,
    provider: Option<String>,
    address: Option<String>,
    name: Option<String>,
    #[serde(default)]
    settings: Map<String, Value>,
    #[serde(default)]
    secrets: Map<String, Value>,
}

#[derive(Deserialize)]
struct AccountPatch {
    name: Option<String>,
    /// Merged into the stored settings; a key set to null is removed.
    #[serde(default)]
    settings: Map<String, Value>,
    /// Merged into the stored secrets; a key set to null is removed.
    #[serde(default)]
    secrets: Map<String, Value>,
}

#[derive(Deserialize)]
struct AccountRow {
    id: String,
    business_id: String,
    channel: String,
    provider: String,
    address: String,
    name: Option<String>,
    settings: String,
    secrets: String,
    created_at: String,
    updated_at: String,
}

/// An account as the admin API shows it: secrets by name only.
#[derive(Serialize)]
struct AccountOut {
    id: String,
    business_id: String,
    channel: String,
    provider: String,
    address: String,
    name: Option<String>,
    settings: Value,
    secrets_set: Vec<String>,
    /// Where the provider must send webhooks, relative to this deployment's base URL.
    webhook_path: String,
    created_at: String,
    updated_at: String,
}

impl AccountRow {
    fn view(self) -> AccountOut {
        let secrets: Map<String, Value> = serde_json::from_str(&self.secrets).unwrap_or_default();
        let mut secrets_set: Vec<String> = secrets.keys().cloned().collect();
        secrets_set.sort();
        let webhook_path = Provider::parse(&self.provider)
            .map(|provider| provider.webhook_path(&self.id))
            .unwrap_or_default();
        AccountOut {
            settings: serde_json::from_str(&self.settings).unwrap_or(Value::Object(Map::new())),
            secrets_set,
            webhook_path,
            id: self.id,
            business_id: self.business_id,
            channel: self.channel,
            provider: self.provider,
            address: self.address,
            name: self.name,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Only strings are accepted as settings and secrets: every one is a token, an id or a URL.
fn strings(field: &str, map: &Map<String, Value>) -> Result<(), ApiError> {
    match map
        .iter()
        .find(|(_, value)| !(value.is_string() || value.is_null()))
    {
        Some((key, _)) => Err(ApiError::invalid(
            format!("{field}.{key}"),
            format!("{field}.{key} must be a string"),
        )),
        None => Ok(()),
    }
}

fn normalise_address(channel: Channel, provider: Provider, address: &str) -> Result<String, ApiError> {
    let address = address.trim();
    let invalid = |message: &str| ApiError::invalid("address", message);
    match (provider, channel) {
        (Provider::Twilio, _) => Phone::parse(address, None)
            .map(|phone| phone.as_str().to_owned())
            .map_err(|e| {
                invalid(&format!(
                    "a Twilio account's address is its phone number in E.164: {e}"
                ))
            }),
        (Provider::Mailgun, _) => Email::parse(address)
            .map(|email| email.as_str().to_owned())
            .map_err(|e| {
                invalid(&format!(
                    "an email account's address is the address mail arrives at: {e}"
                ))
            }),
        (Provider::Meta, _) if !address.is_empty() && address.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(address.to_owned())
        }
        (Provider::Meta, _) => Err(invalid(
            "a Meta account's address is its numeric id (phone number id, page id or Instagram account id)",
        )),
    }
}

const COLUMNS: &str =
    "id, business_id, channel, provider, address, name, settings, secrets, created_at, updated_at";

pub async fn create(mut req: Request, env: &Env, business_id: &BusinessId) -> Result<Response, ApiError> {
    let input: AccountIn = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    let channel = input.channel.as_deref().and_then(Channel::parse).ok_or_else(|| {
        ApiError::invalid(
            "channel",
            "channel is one of whatsapp, email, sms, facebook, instagram",
        )
    })?;
    let provider = input
        .provider
        .as_deref()
        .and_then(Provider::parse)
        .ok_or_else(|| ApiError::invalid("provider", "provider is one of meta, twilio, mailgun"))?;
    if !provider.carries(channel) {
        return Err(ApiError::invalid(
            "provider",
            format!("{} does not carry {channel}", provider.as_str()),
        ));
    }
    let address = normalise_address(channel, provider, input.address.as_deref().unwrap_or_default())?;
    strings("settings", &input.settings)?;
    strings("secrets", &input.secrets)?;
    for (field, map, required) in [
        ("secrets", &input.secrets, provider.required_secrets()),
        ("settings", &input.settings, provider.required_settings()),
    ] {
        if let Some(missing) = required
            .iter()
            .find(|key| map.get(**key).and_then(Value::as_str).is_none_or(str::is_empty))
        {
            return Err(ApiError::invalid(
                format!("{field}.{missing}"),
                format!("a {} account needs {field}.{missing}", provider.as_str()),
            ));
        }
    }
    businesses::find(env, business_id).await?;
    let id = domain::ids::uuid_v4(runtime::random()?);
    let now = runtime::now().to_rfc3339();
    let inserted = env
        .d1(DB)?
        .prepare(format!(
            "INSERT INTO channel_accounts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
             ON CONFLICT (channel, address) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(&[
            d1::text(&id),
            d1::text(business_id.as_str()),
            d1::text(channel.as_str()),
            d1::text(provider.as_str()),
            d1::text(&address),
            d1::optional_text(input.name.as_deref().map(str::trim).filter(|n| !n.is_empty())),
            d1::text(&Value::Object(input.settings).to_string()),
            d1::text(&Value::Object(input.secrets).to_string()),
            d1::text(&now),
        ])?
        .first::<AccountRow>(None)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "a {channel} account with address {address} already exists"
            ))
        })?;
    http::json(201, &inserted.view())
}

pub async fn list(env: &Env, business_id: &BusinessId) -> Result<Response, ApiError> {
    businesses::find(env, business_id).await?;
    let result = env
        .d1(DB)?
        .prepare(format!(
            "SELECT {COLUMNS} FROM channel_accounts WHERE business_id = ?1 ORDER BY created_at, id"
        ))
        .bind(&[d1::text(business_id.as_str())])?
        .all()
        .await?;
    let accounts: Vec<AccountOut> = result
        .results::<AccountRow>()?
        .into_iter()
        .map(AccountRow::view)
        .collect();
    http::json(200, &serde_json::json!({ "channel_accounts": accounts }))
}

/// Rotates secrets or changes settings; both merge (RFC 7396), so a rotation names only what changes.
pub async fn update(mut req: Request, env: &Env, id: &str) -> Result<Response, ApiError> {
    let patch: AccountPatch = http::read_json(&mut req, http::SMALL_BODY_LIMIT).await?;
    strings("settings", &patch.settings)?;
    strings("secrets", &patch.secrets)?;
    let updated = env
        .d1(DB)?
        .prepare(format!(
            "UPDATE channel_accounts SET name = COALESCE(?2, name), settings = json_patch(settings, ?3), \
             secrets = json_patch(secrets, ?4), updated_at = ?5 WHERE id = ?1 RETURNING {COLUMNS}"
        ))
        .bind(&[
            d1::text(id),
            d1::optional_text(patch.name.as_deref().map(str::trim).filter(|n| !n.is_empty())),
            d1::text(&Value::Object(patch.settings).to_string()),
            d1::text(&Value::Object(patch.secrets).to_string()),
            d1::text(&runtime::now().to_rfc3339()),
        ])?
        .first::<AccountRow>(None)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no channel account {id}")))?;
    http::json(200, &updated.view())
}
