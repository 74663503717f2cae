//! A partner's signed request, as a handler's parameter: [`Signed<P>`] finds what the path's id
//! names (a channel account, a CRM connector, a CRM link), checks `P`'s proof over the body
//! read under the endpoint's declared limit, and only then hands the handler the owner, its
//! business and what was signed. A receiver's handler never sees the raw request, nor a
//! business, before the proof holds: 404 when the path names nothing of this partner's, 401
//! when the proof fails.
//!
//! Each partner is one type here, its proof written once: Meta's signature and its subscription
//! handshake, Twilio's, Mailgun's, Kustomer's (by path, or the integration guide's by API key),
//! HubSpot's, Salesforce's (by the URL's token), Chatwoot's (signed, or by the URL's token) and
//! a CRM link's push (Standard Webhooks). A function compiles only the partners it names.

use crate::db::channel_accounts::{self, ChannelAccount};
use crate::db::crm_connectors::{self, Connector};
use crate::db::knowledge_sources::{self, Source};
use crate::platform::call::{Call, FromCall};
use crate::runtime::Internal;
use crate::{platform::http, platform::used_tokens, runtime};
use domain::crm::work::ConnectorKind;
use domain::error::{ApiError, ErrorCode};
use domain::ids::{ConnectorId, SourceId};
use domain::providers::Provider;
use domain::providers::mailgun::signed_fields::{self, FormType};
use domain::providers::mailgun::webhook::{self as mailgun, SignedToken, UsedToken};
use domain::tenant::Tenant;

/// A partner whose requests prove they are its own.
#[allow(
    async_fn_in_trait,
    reason = "workers run one request per isolate thread: no Send bound is wanted"
)]
pub trait Partner {
    /// What the path names: the account or connector the partner signs for.
    type Owner: Owned;
    /// What the proof vouches for: the body, as the partner's proof reads it.
    type Verified;

    /// The owner the request names, through the unscoped door (the path's id is all there is to
    /// go on); 404 when it names none of this partner's.
    async fn find(call: &mut Call) -> Result<Self::Owner, ApiError>;

    /// Checks the proof; what it vouches for, or the refusal (401, or 415/413 for a body the
    /// partner never sends).
    async fn verify(owner: &Self::Owner, call: &mut Call) -> Result<Self::Verified, ApiError>;
}

/// What a partner signs for: it belongs to one business.
pub trait Owned {
    fn tenant(&self) -> &Tenant;
}

impl Owned for ChannelAccount {
    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

impl Owned for Connector {
    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

/// A CRM link, with the business it belongs to.
pub struct CrmLink {
    pub tenant: Tenant,
    pub source: Source,
}

impl Owned for CrmLink {
    fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

/// A request whose proof held: what the path names, and what the partner signed.
pub struct Signed<P: Partner> {
    pub owner: P::Owner,
    pub verified: P::Verified,
}

impl<P: Partner> Signed<P> {
    /// The business the partner signed for.
    pub fn tenant(&self) -> &Tenant {
        self.owner.tenant()
    }
}

impl<P: Partner> FromCall for Signed<P> {
    async fn from_call(call: &mut Call) -> Result<Self, ApiError> {
        let owner = P::find(call).await?;
        let verified = P::verify(&owner, call).await?;
        Ok(Signed { owner, verified })
    }
}

/// The channel account of `provider` whose webhook path the request was sent to.
async fn account(call: &Call, provider: Provider) -> Result<ChannelAccount, ApiError> {
    let env = call.env();
    let path = call.request()?.path();
    channel_accounts::for_webhook(&env.db()?, &*env.keyring()?, &path, provider).await
}

/// The connector of `kind` the path's `{connector_id}` names; 404 `missing` when there is none.
async fn connector(call: &Call, kind: ConnectorKind, missing: &'static str) -> Result<Connector, ApiError> {
    let not_found = || ApiError::not_found(missing);
    let id = ConnectorId::parse(call.params().get("connector_id")?).ok_or_else(not_found)?;
    let env = call.env();
    crm_connectors::find_any(&env.db()?, &*env.keyring()?, &id)
        .await?
        .filter(|connector| connector.kind == kind)
        .ok_or_else(not_found)
}

/// A header's value, or "" when the request has none.
fn header(call: &Call, name: &str) -> Result<String, ApiError> {
    Ok(call
        .request()?
        .headers()
        .get(name)
        .internal("reading a header")?
        .unwrap_or_default())
}

/// Meta's notifications: `X-Hub-Signature-256` over the raw body with the account's app secret.
pub struct Meta;

impl Partner for Meta {
    type Owner = ChannelAccount;
    type Verified = Vec<u8>;

    async fn find(call: &mut Call) -> Result<ChannelAccount, ApiError> {
        account(call, Provider::Meta).await
    }

    async fn verify(account: &ChannelAccount, call: &mut Call) -> Result<Vec<u8>, ApiError> {
        use domain::providers::meta::webhook as meta;
        let app_secret = account.required_secret("app_secret")?;
        let signature = call
            .request()?
            .headers()
            .get(meta::SIGNATURE_HEADER)
            .internal("reading a header")?;
        let body = call.body().await?.to_vec();
        meta::verify_signature(app_secret, signature.as_deref(), &body)?;
        Ok(body)
    }
}

/// Meta's subscription handshake: the verify token we gave it, in the query; its challenge is
/// what is vouched for (and answered as it came).
pub struct MetaHandshake;

impl Partner for MetaHandshake {
    type Owner = ChannelAccount;
    type Verified = String;

    async fn find(call: &mut Call) -> Result<ChannelAccount, ApiError> {
        account(call, Provider::Meta).await
    }

    async fn verify(account: &ChannelAccount, call: &mut Call) -> Result<String, ApiError> {
        let verify_token = account.required_secret("verify_token")?;
        domain::providers::meta::webhook::answer_handshake(&http::query(call.request()?), verify_token)
    }
}

/// Twilio's webhooks: `X-Twilio-Signature` over the public URL it called and every form
/// parameter, with the account's auth token. What is vouched for is the parameters.
pub struct Twilio;

impl Partner for Twilio {
    type Owner = ChannelAccount;
    type Verified = Vec<(String, String)>;

    async fn find(call: &mut Call) -> Result<ChannelAccount, ApiError> {
        account(call, Provider::Twilio).await
    }

    async fn verify(account: &ChannelAccount, call: &mut Call) -> Result<Vec<(String, String)>, ApiError> {
        use domain::providers::twilio::webhook as twilio;
        let auth_token = account.required_secret("auth_token")?;
        let content_type = header(call, "content-type")?;
        let is_form = content_type.split(';').next().is_some_and(|kind| {
            kind.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        if !is_form && !content_type.is_empty() {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Twilio webhooks are application/x-www-form-urlencoded",
            ));
        }
        let params = twilio::form_params(call.body().await?);
        // Twilio signs the URL it was configured with: the public URL of this request, which is
        // not the one the worker sees when a proxy or custom domain stands in front.
        let url = http::public_url(call.request()?, call.env())?;
        let signature = call
            .request()?
            .headers()
            .get(twilio::SIGNATURE_HEADER)
            .internal("reading a header")?;
        twilio::verify_signature(auth_token, &url, &params, signature.as_deref())?;
        Ok(params)
    }
}

/// Mailgun's inbound routes: the signature among the form's own fields, scanned from the raw
/// body before the form is parsed, within five minutes and its token never used before.
pub struct Mailgun;

/// A Mailgun POST whose signature held, its form not yet parsed; the token is recorded as used
/// once what it carried is stored ([`MailgunForm::used`]).
pub struct MailgunForm {
    pub content_type: String,
    pub body: Vec<u8>,
    pub token: SignedToken,
    pub used: UsedToken,
}

impl Partner for Mailgun {
    type Owner = ChannelAccount;
    type Verified = MailgunForm;

    async fn find(call: &mut Call) -> Result<ChannelAccount, ApiError> {
        account(call, Provider::Mailgun).await
    }

    async fn verify(account: &ChannelAccount, call: &mut Call) -> Result<MailgunForm, ApiError> {
        let signing_key = account.required_secret("signing_key")?;
        let content_type = header(call, "content-type")?;
        let form_type = FormType::parse(&content_type)?;
        let body = call.body().await?.to_vec();
        let fields = signed_fields::scan(&form_type, &body)?;
        let token = mailgun::verify_signature(signing_key, &fields, runtime::now())?;
        let used = UsedToken::new(&account.id, &token);
        if used_tokens::is_used(call.env(), &used).await? {
            return Err(UsedToken::replayed());
        }
        Ok(MailgunForm {
            content_type,
            body,
            token,
            used,
        })
    }
}

/// Kustomer's webhooks for the connector the path names: the hook's token (the connector's
/// `webhook_secret`) signs the body. What is vouched for is the event's name and the body.
pub struct Kustomer;

/// Kustomer's webhook as the integration guide sends it, to the one enabled Kustomer connector
/// of the business whose API key the request carries, signed the same way.
pub struct KustomerGuide;

/// A Kustomer delivery whose signature held.
pub struct KustomerEvent {
    /// The event's name, from its header (the guide's body carries its own).
    pub name: Option<String>,
    pub body: Vec<u8>,
}

impl Partner for Kustomer {
    type Owner = Connector;
    type Verified = KustomerEvent;

    async fn find(call: &mut Call) -> Result<Connector, ApiError> {
        connector(
            call,
            ConnectorKind::Kustomer,
            "no Kustomer connector at this webhook path",
        )
        .await
    }

    async fn verify(connector: &Connector, call: &mut Call) -> Result<KustomerEvent, ApiError> {
        kustomer_signed(connector, call).await
    }
}

impl Partner for KustomerGuide {
    type Owner = Connector;
    type Verified = KustomerEvent;

    async fn find(call: &mut Call) -> Result<Connector, ApiError> {
        let tenant = call.tenant()?;
        let none = || ApiError::not_found("this business has no enabled Kustomer connector");
        let env = call.env();
        let db = env.db()?;
        let kustomer: Vec<ConnectorId> = crm_connectors::enabled(&db, &tenant)
            .await?
            .into_iter()
            .filter(|connector| connector.kind == ConnectorKind::Kustomer)
            .map(|connector| connector.id)
            .collect();
        let id = match kustomer.as_slice() {
            [id] => id,
            [] => return Err(none()),
            several => {
                return Err(ApiError::conflict(format!(
                    "this business has {} enabled Kustomer connectors: send each one's webhooks to its own \
                     webhook_path (/api/webhooks/kustomer/{{connector_id}})",
                    several.len()
                )));
            }
        };
        crm_connectors::find(&db, &*env.keyring()?, &tenant, id)
            .await?
            .ok_or_else(none)
    }

    async fn verify(connector: &Connector, call: &mut Call) -> Result<KustomerEvent, ApiError> {
        kustomer_signed(connector, call).await
    }
}

/// The body signed with the connector's webhook secret, as Kustomer signs it.
async fn kustomer_signed(connector: &Connector, call: &mut Call) -> Result<KustomerEvent, ApiError> {
    use domain::crm::kustomer::webhook;
    let signature = header(call, webhook::SIGNATURE_HEADER)?;
    let name = call
        .request()?
        .headers()
        .get(webhook::EVENT_HEADER)
        .internal("reading a header")?;
    let body = call.body().await?.to_vec();
    let Some(secret) = connector.secrets.webhook_secret() else {
        return Err(ApiError::unauthorized(
            "this connector has no webhook_secret: set it to the token of the Kustomer webhook",
        ));
    };
    if !webhook::verify(secret.as_bytes(), &body, &signature) {
        return Err(ApiError::unauthorized(format!(
            "the {} signature is missing or does not match this connector's webhook_secret",
            webhook::SIGNATURE_HEADER
        )));
    }
    Ok(KustomerEvent { name, body })
}

/// HubSpot's webhooks: `X-HubSpot-Signature-v3` over the method, the public URL, the body and
/// the timestamp (within five minutes), with the app's client secret (the connector's
/// `client_secret`).
pub struct HubSpot;

impl Partner for HubSpot {
    type Owner = Connector;
    type Verified = Vec<u8>;

    async fn find(call: &mut Call) -> Result<Connector, ApiError> {
        connector(
            call,
            ConnectorKind::HubSpot,
            "no HubSpot connector at this webhook path",
        )
        .await
    }

    async fn verify(connector: &Connector, call: &mut Call) -> Result<Vec<u8>, ApiError> {
        use domain::crm::hubspot::webhook;
        let url = http::public_url(call.request()?, call.env())?;
        let timestamp = call
            .request()?
            .headers()
            .get(webhook::TIMESTAMP_HEADER)
            .internal("reading a header")?;
        let signature = call
            .request()?
            .headers()
            .get(webhook::SIGNATURE_HEADER)
            .internal("reading a header")?;
        let body = call.body().await?.to_vec();
        let Some(secret) = connector.secrets.webhook_secret() else {
            return Err(ApiError::unauthorized(
                "this connector has no client_secret: set it to the client secret of the HubSpot app whose webhooks come here",
            ));
        };
        webhook::verify(
            secret.as_bytes(),
            "POST",
            &url,
            &body,
            timestamp.as_deref(),
            signature.as_deref(),
            runtime::now().millis(),
        )
        .map_err(ApiError::unauthorized)?;
        Ok(body)
    }
}

/// Salesforce's Outbound Messages, which sign nothing: the URL's last segment `{token}` is the
/// connector's `outbound_token`, compared in constant time; what is vouched for is the body,
/// which must be XML. (Which org sent it is checked against the connector's once it is read.)
pub struct SalesforceOutbound;

impl Partner for SalesforceOutbound {
    type Owner = Connector;
    type Verified = Vec<u8>;

    async fn find(call: &mut Call) -> Result<Connector, ApiError> {
        connector(
            call,
            ConnectorKind::Salesforce,
            "no Salesforce connector at this Outbound Message path",
        )
        .await
    }

    async fn verify(connector: &Connector, call: &mut Call) -> Result<Vec<u8>, ApiError> {
        use domain::crm::salesforce::outbound;
        let Some(expected) = connector.secrets.webhook_token() else {
            return Err(ApiError::unauthorized(
                "this connector has no outbound_token: set one (32 or more letters, digits, - and _) and end \
                 the Outbound Message's endpoint URL with it",
            ));
        };
        if !outbound::token_matches(expected, call.params().get("token")?) {
            return Err(ApiError::unauthorized(
                "the last segment of this URL is not the connector's outbound_token",
            ));
        }
        let content_type = header(call, "content-type")?;
        let xml = content_type.split(';').next().is_some_and(|kind| {
            let kind = kind.trim();
            kind.eq_ignore_ascii_case("text/xml") || kind.eq_ignore_ascii_case("application/soap+xml")
        });
        if !xml {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Salesforce's Outbound Messages are text/xml",
            ));
        }
        Ok(call.body().await?.to_vec())
    }
}

/// Chatwoot's account webhooks to a Krayin connector: `X-Chatwoot-Signature` over
/// `"{timestamp}.{body}"` with the connector's `webhook_secret`, the timestamp within five minutes.
pub struct Chatwoot;

/// Chatwoot before 4.11.2, which signs nothing: the URL's `{token}` is the connector's
/// `webhook_token` (and a signature, when one comes and a secret is set, must hold too).
pub struct ChatwootToken;

/// A Chatwoot delivery whose proof held.
pub struct ChatwootDelivery {
    pub body: Vec<u8>,
    /// `X-Chatwoot-Delivery`: a redelivery carries the same.
    pub delivery: String,
}

impl Partner for Chatwoot {
    type Owner = Connector;
    type Verified = ChatwootDelivery;

    async fn find(call: &mut Call) -> Result<Connector, ApiError> {
        connector(
            call,
            ConnectorKind::Krayin,
            "no Krayin connector at this webhook path",
        )
        .await
    }

    async fn verify(connector: &Connector, call: &mut Call) -> Result<ChatwootDelivery, ApiError> {
        chatwoot_delivery(connector, call, true).await
    }
}

impl Partner for ChatwootToken {
    type Owner = Connector;
    type Verified = ChatwootDelivery;

    async fn find(call: &mut Call) -> Result<Connector, ApiError> {
        Chatwoot::find(call).await
    }

    async fn verify(connector: &Connector, call: &mut Call) -> Result<ChatwootDelivery, ApiError> {
        use domain::crm::chatwoot::webhook;
        webhook::verify_token(connector.secrets.webhook_token(), call.params().get("token")?)
            .map_err(|refusal| ApiError::unauthorized(refusal.to_string()))?;
        chatwoot_delivery(connector, call, false).await
    }
}

/// The delivery, its signature checked when `signed` says it must be, or when one came and the
/// connector has a secret to check it with.
async fn chatwoot_delivery(
    connector: &Connector,
    call: &mut Call,
    signed: bool,
) -> Result<ChatwootDelivery, ApiError> {
    use domain::crm::chatwoot::webhook;
    let signature = header(call, webhook::SIGNATURE_HEADER)?;
    let timestamp = header(call, webhook::TIMESTAMP_HEADER)?;
    let delivery = header(call, webhook::DELIVERY_HEADER)?;
    let secret = connector.secrets.webhook_secret().unwrap_or_default();
    let body = call.body().await?.to_vec();
    if signed || (!signature.trim().is_empty() && !secret.is_empty()) {
        webhook::verify(
            secret.as_bytes(),
            &timestamp,
            &body,
            &signature,
            runtime::now().seconds(),
        )
        .map_err(|refusal| ApiError::unauthorized(refusal.to_string()))?;
    }
    Ok(ChatwootDelivery { body, delivery })
}

/// A CRM's push to a webhook link, signed as Standard Webhooks sign (`webhook-id`,
/// `webhook-timestamp` within five minutes, `webhook-signature: v1,<base64 HMAC>`) with the
/// link's own secret.
pub struct LinkPush;

/// A push whose signature held.
pub struct Push {
    pub webhook_id: String,
    /// When it was signed (unix seconds).
    pub signed_at: i64,
    pub content_type: String,
    pub text: String,
}

/// How far a push's timestamp may be from our clock (Standard Webhooks' usual five minutes).
const PUSH_TOLERANCE_SECONDS: i64 = 300;

impl Partner for LinkPush {
    type Owner = CrmLink;
    type Verified = Push;

    async fn find(call: &mut Call) -> Result<CrmLink, ApiError> {
        let unknown = || ApiError::not_found("no such CRM link");
        let id = SourceId::parse(call.params().get("link_id")?).ok_or_else(unknown)?;
        let env = call.env();
        let db = env.db()?;
        let business = knowledge_sources::business_of(&db, &id)
            .await?
            .ok_or_else(unknown)?;
        let tenant = Tenant::for_background(business);
        let source = knowledge_sources::find(&db, &*env.keyring()?, &tenant, &id)
            .await?
            .ok_or_else(unknown)?;
        Ok(CrmLink { tenant, source })
    }

    async fn verify(link: &CrmLink, call: &mut Call) -> Result<Push, ApiError> {
        use domain::webhook_signing::{WebhookSecret, verify_standard};
        let secret = link
            .source
            .webhook_secret
            .as_ref()
            .and_then(|secret| WebhookSecret::parse(secret.expose()))
            .ok_or_else(|| ApiError::not_found("this CRM link is not a webhook link"))?;
        let required = |name: &str| -> Result<String, ApiError> {
            let value = header(call, name)?;
            match value.trim() {
                "" => Err(ApiError::unauthorized(format!("missing {name} header"))),
                _ => Ok(value),
            }
        };
        let (webhook_id, timestamp, signature) = (
            required("webhook-id")?,
            required("webhook-timestamp")?,
            required("webhook-signature")?,
        );
        let signed_at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| ApiError::unauthorized("webhook-timestamp is not unix seconds"))?;
        if (runtime::now().seconds() - signed_at).abs() > PUSH_TOLERANCE_SECONDS {
            return Err(ApiError::unauthorized(
                "webhook-timestamp is more than 5 minutes away: sign each push when it is sent",
            ));
        }
        let content_type = call
            .request()?
            .headers()
            .get("content-type")
            .internal("reading a header")?
            .unwrap_or_else(|| "application/json".to_owned());
        let body = call.body().await?.to_vec();
        let text = String::from_utf8(body).map_err(|_| ApiError::malformed("the body is not UTF-8 text"))?;
        if !verify_standard(&secret, webhook_id.trim(), timestamp.trim(), &text, &signature) {
            return Err(ApiError::unauthorized(
                "the webhook-signature does not match this link's secret",
            ));
        }
        Ok(Push {
            webhook_id: webhook_id.trim().to_owned(),
            signed_at,
            content_type,
            text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::call::{self, Json};
    use crate::runtime::{Method, Request};
    use crate::testing::{Fixture, Must};
    use domain::api::receivers::{RECEIVER_META, ReceiverMeta};
    use domain::channel::Channel;
    use domain::providers::meta::webhook as meta;
    use serde_json::{Value, json};

    /// What the handler was handed: the business, and the body the proof vouched for.
    async fn given(signed: Signed<Meta>) -> Result<Json<Value>, ApiError> {
        Ok(Json(json!({
            "business_id": signed.tenant().business_id,
            "body": String::from_utf8_lossy(&signed.verified),
        })))
    }

    async fn challenge(handshake: Signed<MetaHandshake>) -> Result<Json<Value>, ApiError> {
        Ok(Json(json!({ "challenge": handshake.verified })))
    }

    async fn send(fixture: &Fixture, req: Request) -> (u16, Value) {
        let mut response = call::serve(
            &RECEIVER_META,
            req,
            fixture.stack.clone(),
            async |operation, call| match operation {
                ReceiverMeta::ReceiveMetaWebhook => call.run(given).await,
                ReceiverMeta::VerifyMetaWebhook => call.run(challenge).await,
            },
        )
        .await
        .must();
        let text = response.text().await.unwrap_or_default();
        (
            response.status_code(),
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn signature(secret: &str, body: &str) -> String {
        format!(
            "sha256={}",
            hex::encode(domain::crypto::hmac_sha256(secret.as_bytes(), &[body.as_bytes()]))
        )
    }

    #[test]
    fn the_handler_is_handed_the_business_only_once_the_partners_proof_holds() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let secrets = json!({ "app_secret": "app-secret", "verify_token": "verify-me" });
            let account = fixture
                .channel_account(&acme, Channel::Whatsapp, Provider::Meta, "+353851234567", secrets)
                .await;
            let twilio = fixture
                .channel_account(&acme, Channel::Sms, Provider::Twilio, "+353851230000", json!({}))
                .await;
            let body = r#"{"object":"whatsapp_business_account","entry":[]}"#;
            let post = |id: &str, signed: Option<String>| {
                let req = Request::new(&format!("https://api.example/webhooks/meta/{id}"), Method::Post)
                    .must()
                    .with_body(body);
                match signed {
                    Some(signature) => req.with_header(meta::SIGNATURE_HEADER, &signature),
                    None => req,
                }
            };
            let (status, given) = send(&fixture, post(account.id.as_str(), Some(signature("app-secret", body)))).await;
            assert_eq!(status, 200, "{given}");
            assert_eq!(given["business_id"], acme.business_id.as_str());
            assert_eq!(given["body"], body);

            let refused = [
                (post(account.id.as_str(), Some(signature("another-secret", body))), 401, "signed with another secret"),
                (post(account.id.as_str(), None), 401, "not signed"),
                (post(twilio.id.as_str(), Some(signature("app-secret", body))), 404, "another provider's account"),
                (post("8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f", Some(signature("app-secret", body))), 404, "no account"),
            ];
            for (req, expected, description) in refused {
                let (status, answer) = send(&fixture, req).await;
                assert_eq!(status, expected, "{description}: {answer}");
                assert!(answer.get("business_id").is_none(), "{description}: the handler never ran");
            }

            let handshake = |token: &str| {
                Request::new(
                    &format!(
                        "https://api.example/webhooks/meta/{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
                        account.id
                    ),
                    Method::Get,
                )
                .must()
            };
            let (status, answer) = send(&fixture, handshake("verify-me")).await;
            assert_eq!((status, &answer["challenge"]), (200, &json!("1158201444")));
            let (status, answer) = send(&fixture, handshake("guessed")).await;
            assert!(status >= 400 && answer.get("challenge").is_none(), "{status} {answer}");
        });
    }
}
