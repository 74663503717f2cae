//! The audit log: who acted on a business's keys, secrets, accounts and tokens. This module holds
//! the words (actors, actions, targets) and the listing's cursor; `edge::platform::audit` records entries.

use crate::api_key;
use crate::error::ApiError;
use crate::ids::ConsoleSessionId;
use crate::query::{Query, decode_cursor, encode_cursor};

/// Who acted: the operator with the admin token, a business's API key by its prefix, or a
/// business's console session by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Admin,
    Key(String),
    /// A business console session, by its id.
    Console(ConsoleSessionId),
}

impl Actor {
    /// The key that authenticated a request, by its displayed prefix (the key was accepted, so
    /// its shape is known).
    pub fn key(accepted: &str) -> Self {
        Self::Key(api_key::accepted_prefix(accepted))
    }

    pub fn label(&self) -> String {
        match self {
            Self::Admin => "admin".to_owned(),
            Self::Key(prefix) => format!("key:{prefix}"),
            Self::Console(session) => format!("console:{session}"),
        }
    }
}

/// What was done, as `<target>.<verb>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    BusinessCreated,
    BusinessUpdated,
    BusinessMoved,
    BusinessMoveAborted,
    BusinessRestored,
    BusinessResumed,
    ApiKeyIssued,
    ApiKeyRevoked,
    ChannelAccountCreated,
    ChannelAccountUpdated,
    ChannelAccountDeleted,
    ChannelAccountReleased,
    CustomerErased,
    ConnectorCreated,
    ConnectorUpdated,
    ConnectorDeleted,
    WebhookCreated,
    WebhookUpdated,
    WebhookDeleted,
    WebhookSecretRotated,
    SsoTokenIssued,
    SsoTokenRevoked,
    CrmLinkAdded,
    CrmLinkUpdated,
    CrmLinkDeleted,
    BotUpdated,
    ConsoleLinkIssued,
    ConsoleSessionOpened,
    ConsoleSessionRevoked,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BusinessCreated => "business.created",
            Self::BusinessUpdated => "business.updated",
            Self::BusinessMoved => "business.moved",
            Self::BusinessMoveAborted => "business.move_aborted",
            Self::BusinessRestored => "business.restored",
            Self::BusinessResumed => "business.resumed",
            Self::ApiKeyIssued => "api_key.issued",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::ChannelAccountCreated => "channel_account.created",
            Self::ChannelAccountUpdated => "channel_account.updated",
            Self::ChannelAccountDeleted => "channel_account.deleted",
            Self::ChannelAccountReleased => "channel_account.released",
            Self::CustomerErased => "customer.erased",
            Self::ConnectorCreated => "connector.created",
            Self::ConnectorUpdated => "connector.updated",
            Self::ConnectorDeleted => "connector.deleted",
            Self::WebhookCreated => "webhook.created",
            Self::WebhookUpdated => "webhook.updated",
            Self::WebhookDeleted => "webhook.deleted",
            Self::WebhookSecretRotated => "webhook.secret_rotated",
            Self::SsoTokenIssued => "sso_token.issued",
            Self::SsoTokenRevoked => "sso_token.revoked",
            Self::CrmLinkAdded => "crm_link.added",
            Self::CrmLinkUpdated => "crm_link.updated",
            Self::CrmLinkDeleted => "crm_link.deleted",
            Self::BotUpdated => "bot.updated",
            Self::ConsoleLinkIssued => "console_session.link_issued",
            Self::ConsoleSessionOpened => "console_session.opened",
            Self::ConsoleSessionRevoked => "console_session.revoked",
        }
    }

    /// The kind of thing acted on: the action's first word.
    pub fn target_type(self) -> &'static str {
        self.as_str().split('.').next().unwrap_or_default()
    }
}

/// Where a listing continues: entries strictly older than this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at_us: i64,
    pub id: String,
}

const CURSOR_KIND: &str = "a1.";

impl Cursor {
    pub fn encode(&self) -> String {
        encode_cursor(CURSOR_KIND, &format!("{}.{}", self.at_us, self.id))
    }

    pub fn decode(token: &str) -> Option<Self> {
        let position = decode_cursor(CURSOR_KIND, token)?;
        let (at_us, id) = position.split_once('.')?;
        let id = crate::ids::AuditEntryId::parse(id)?;
        Some(Self {
            at_us: at_us.parse().ok()?,
            id: id.as_str().to_owned(),
        })
    }
}

/// `GET /admin/businesses/{id}/audit-log?limit=&before=`: newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub before: Option<Cursor>,
    pub limit: usize,
}

impl AuditQuery {
    pub fn parse(query: &Query) -> Result<Self, ApiError> {
        let before = match query.get("before") {
            None => None,
            Some(token) => Some(Cursor::decode(token).ok_or_else(|| {
                ApiError::invalid(
                    "before",
                    "before is not a cursor this API returned; pass next_cursor back unchanged",
                )
            })?),
        };
        Ok(Self {
            before,
            limit: query.limit()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_named_without_their_secret() {
        assert_eq!(Actor::Admin.label(), "admin");
        let key = format!("cek_{}", "ab".repeat(24));
        assert_eq!(Actor::key(&key).label(), "key:cek_abababab");
        assert!(!Actor::key(&key).label().contains(&key[12..]));
        let session = ConsoleSessionId::generate([1; 16]);
        assert_eq!(
            Actor::Console(session.clone()).label(),
            format!("console:{session}")
        );
    }

    #[test]
    fn an_action_names_its_target() {
        assert_eq!(Action::WebhookSecretRotated.as_str(), "webhook.secret_rotated");
        assert_eq!(Action::WebhookSecretRotated.target_type(), "webhook");
        assert_eq!(Action::ApiKeyIssued.target_type(), "api_key");
    }

    #[test]
    fn a_cursor_survives_a_round_trip_and_a_forged_one_is_refused() {
        let cursor = Cursor {
            at_us: 1_762_246_800_123_456,
            id: "ffffffff-ffff-4fff-bfff-ffffffffffff".to_owned(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor.clone()));
        let query = Query::parse(Some(&format!("before={}&limit=2", cursor.encode())));
        assert_eq!(
            AuditQuery::parse(&query),
            Ok(AuditQuery {
                before: Some(cursor),
                limit: 2
            })
        );
        for forged in ["", "xyz", "YTEuMTIz", "YTEuMTIzLm5vdC1hbi1pZA"] {
            assert_eq!(Cursor::decode(forged), None, "{forged}");
        }
        let refused = AuditQuery::parse(&Query::parse(Some("before=xyz")));
        assert_eq!(
            refused.err().and_then(|e| e.body.field),
            Some("before".to_owned())
        );
    }
}
