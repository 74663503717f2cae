//! Channel accounts: the credentials a business's channels are received and sent with.
//! Secrets go in and are never shown again; responses list only which secrets are set.

use domain::api::admin::{AccountIn, AccountPatch, ChannelAccountOut, ChannelAccountsOut, ReleaseIn};
use domain::audit::Action;
use domain::channel::Channel;
use domain::destination::Destination;
use domain::email::Email;
use domain::error::ApiError;
use domain::ids::ChannelAccountId;
use domain::phone::Phone;
use domain::providers::Provider;
use edge::Env;
use edge::db::channel_accounts::{ChannelAccount, Deleted, NewAccount};
use edge::platform::audit::Audit;
use edge::platform::call::{Created, Json, Managed, OptionalJson, Path, Scope};
use edge::{db, platform::http, runtime};
use serde_json::{Map, Value};

/// An account as the admin API shows it: secrets by name only.
fn shown(account: ChannelAccount) -> ChannelAccountOut {
    ChannelAccountOut {
        secrets_set: account.secrets_set(),
        webhook_path: account.provider.webhook_path(account.id.as_str()),
        settings: account.settings,
        id: account.id,
        business_id: account.tenant.business_id,
        channel: account.channel,
        provider: account.provider.as_str(),
        address: account.address,
        name: account.name,
        paused_at: account.paused_at,
        created_at: account.created_at,
        updated_at: account.updated_at,
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

/// Settings that are URLs we send requests to. A business could otherwise point our provider
/// calls, with the account's credentials, at an internal address.
const DESTINATION_SETTINGS: [&str; 1] = ["api_base_url"];

/// Checks every destination setting that is set (null removes one in a PATCH) by the one rule
/// for configured destinations; the local stack may also point them at its loopback stubs.
fn destinations(settings: &Map<String, Value>, allow_loopback: bool) -> Result<(), ApiError> {
    for key in DESTINATION_SETTINGS {
        let Some(url) = settings.get(key).and_then(Value::as_str) else {
            continue;
        };
        let field = format!("settings.{key}");
        if url.trim().is_empty() {
            return Err(ApiError::invalid(
                &field,
                format!("{field} is empty; leave it out (or set it to null) to use the provider's own API"),
            ));
        }
        Destination::parse(&field, url, allow_loopback)
            .map_err(|reason| ApiError::invalid(&field, reason))?;
    }
    Ok(())
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

pub async fn create(
    env: Env,
    audit: Audit,
    Managed(tenant): Managed,
    Json(input): Json<AccountIn>,
) -> Result<Created<ChannelAccountOut>, ApiError> {
    let (env, business_id) = (&env, &tenant.business_id);
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
    destinations(&input.settings, http::allows_loopback(env))?;
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
    let id = ChannelAccountId::generate(runtime::random()?);
    let now = runtime::now().to_rfc3339();
    let name = input.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let account = NewAccount {
        id: &id,
        channel,
        provider,
        address: &address,
        name,
        settings: &input.settings,
        secrets: &input.secrets,
        now: &now,
    };
    let inserted = db::channel_accounts::insert(&env.db()?, &*env.keyring()?, &tenant, &account)
        .await?
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "a {channel} account with address {address} already exists"
            ))
        })?;
    let detail = serde_json::json!({
        "channel": channel.as_str(),
        "provider": provider.as_str(),
        "address": address,
        "secrets": input.secrets.keys().collect::<Vec<_>>(),
    });
    audit
        .record(
            env,
            business_id,
            Action::ChannelAccountCreated,
            Some(id.as_str()),
            detail,
        )
        .await;
    Ok(Created(shown(inserted)))
}

pub async fn list(env: Env, Managed(tenant): Managed) -> Result<Json<ChannelAccountsOut>, ApiError> {
    let channel_accounts = db::channel_accounts::list(&env.db()?, &*env.keyring()?, &tenant)
        .await?
        .into_iter()
        .map(shown)
        .collect();
    Ok(Json(ChannelAccountsOut { channel_accounts }))
}

/// Rotates secrets or changes settings; both merge (RFC 7396), so a rotation names only what changes.
pub async fn update(
    env: Env,
    audit: Audit,
    scope: Scope,
    Path(id): Path<ChannelAccountId>,
    Json(patch): Json<AccountPatch>,
) -> Result<Json<ChannelAccountOut>, ApiError> {
    let (env, id) = (&env, &id);
    let db = env.db()?;
    let missing = || ApiError::not_found(format!("no channel account {id}"));
    let tenant = scope
        .owner(async || db::channel_accounts::owner(&db, id).await, missing)
        .await?;
    strings("settings", &patch.settings)?;
    strings("secrets", &patch.secrets)?;
    destinations(&patch.settings, http::allows_loopback(env))?;
    let name = patch.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let now = runtime::now().to_rfc3339();
    let change = db::channel_accounts::Change {
        name,
        settings: &patch.settings,
        secrets: &patch.secrets,
        now: &now,
    };
    let updated = db::channel_accounts::update(&db, &*env.keyring()?, &tenant, id, &change)
        .await?
        .ok_or_else(missing)?;
    let account = shown(updated);
    audit
        .record_update(
            env,
            &account.business_id,
            Action::ChannelAccountUpdated,
            id.as_str(),
            &patch,
        )
        .await;
    Ok(Json(account))
}

/// Deletes an account nothing refers to any more, and releases its address for any business to
/// claim: a business's own, or for the operator any business's (an address claimed by one that
/// does not own it).
pub async fn delete(
    env: Env,
    audit: Audit,
    scope: Scope,
    Path(id): Path<ChannelAccountId>,
) -> Result<Json<ChannelAccountOut>, ApiError> {
    let (env, id) = (&env, &id);
    let db = env.db()?;
    let missing = || ApiError::not_found(format!("no channel account {id}"));
    let tenant = scope
        .owner(async || db::channel_accounts::owner(&db, id).await, missing)
        .await?;
    let account = match db::channel_accounts::delete(&db, &*env.keyring()?, &tenant, id).await? {
        Deleted::Gone(account) => shown(*account),
        Deleted::Missing => return Err(missing()),
        Deleted::InUse { conversations, links } => {
            return Err(ApiError::conflict(format!(
                "channel account {id} is in use ({conversations} conversations, {links} CRM links refer to it); \
                 it can be deleted once nothing does"
            )));
        }
    };
    let detail = serde_json::json!({ "channel": account.channel, "address": account.address });
    audit
        .record(
            env,
            &account.business_id,
            Action::ChannelAccountDeleted,
            Some(id.as_str()),
            detail,
        )
        .await;
    Ok(Json(account))
}

/// The operator's: pauses an account a business made for an address it does not own, keeping its
/// conversations, and hands the address to its owner (or frees it). For the account that cannot
/// be deleted because conversations refer to it (N7b: signed inbound of the squatter's own).
pub async fn release(
    env: Env,
    audit: Audit,
    Path(id): Path<ChannelAccountId>,
    OptionalJson(body): OptionalJson<ReleaseIn>,
) -> Result<Json<ChannelAccountOut>, ApiError> {
    let (env, id) = (&env, &id);
    let db = env.db()?;
    let missing = || ApiError::not_found(format!("no channel account {id}"));
    let tenant = db::channel_accounts::owner(&db, id).await?.ok_or_else(missing)?;
    if let Some(owner) = &body.to_business_id
        && db::businesses::find(&db, owner).await?.is_none()
    {
        return Err(ApiError::invalid(
            "to_business_id",
            format!("no business {owner}"),
        ));
    }
    let now = runtime::now().to_rfc3339();
    let released = db::channel_accounts::release(
        &db,
        &*env.keyring()?,
        &tenant,
        id,
        body.to_business_id.as_ref(),
        &now,
    )
    .await?
    .ok_or_else(missing)?;
    let account = shown(released);
    let detail = serde_json::json!({
        "channel": account.channel, "address": account.address, "to_business_id": body.to_business_id,
    });
    audit
        .record(
            env,
            &account.business_id,
            Action::ChannelAccountReleased,
            Some(id.as_str()),
            detail,
        )
        .await;
    Ok(Json(account))
}
