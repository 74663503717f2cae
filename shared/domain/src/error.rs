//! The one error type of the API and the one JSON shape every client sees.

use serde::Serialize;
use std::fmt;

/// Stable, machine-readable error codes. Clients switch on these; messages are for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedRequest,
    ValidationFailed,
    BatchTooLarge,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    InternalError,
    /// A dependency we rely on (a queue, a provider) is failing; the client may retry.
    ServiceUnavailable,
    /// A CRM the request needed answered with an error, or not at all; the message says what it said.
    CrmFailed,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            Self::MalformedRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::ValidationFailed | Self::BatchTooLarge => 422,
            Self::RateLimited => 429,
            Self::InternalError => 500,
            Self::ServiceUnavailable => 503,
            Self::CrmFailed => 502,
        }
    }
}

/// What the client receives: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    /// Stable, machine-readable: clients switch on it.
    pub code: ErrorCode,
    /// For people. An internal error's message carries a log reference.
    pub message: String,
    /// The field or parameter at fault, as a path (`customers[3].email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Why a store could not serve a request for a moment: the request is answered 503 with
/// `Retry-After`, not 500, since the data is there, out of reach for a while, and the other
/// shards' businesses go on. `edge::db::Error` says which, and its conversion sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The database that holds the data did not answer.
    Unanswered,
    /// The business's writes are held while it is moved to another shard.
    Moving,
    /// The business's writes are held while it is restored from a backup (as a move holds them).
    Restoring,
}

impl Unavailable {
    /// Whether the business's writes are held (by a move or a restore), rather than its database
    /// out of reach.
    pub fn held(self) -> bool {
        matches!(self, Self::Moving | Self::Restoring)
    }

    fn message(self) -> &'static str {
        match self {
            Self::Unanswered => "the database that holds this data did not answer; try again shortly",
            Self::Moving => "this business's data is being moved to another database; try again shortly",
            Self::Restoring => {
                "this business is being restored from a backup; try again when the restore has finished"
            }
        }
    }
}

/// When a client may try again after a store did not answer: D1 restarts a database in seconds.
pub const RETRY_UNANSWERED_SECONDS: u32 = 10;

/// An error on its way to becoming an HTTP response.
///
/// Client errors carry their message to the client. Internal errors carry a private
/// `detail` that is logged with a reference and never sent: the client sees only
/// "internal error" and the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub body: ErrorBody,
    pub retry_after_seconds: Option<u32>,
    pub allow: Option<String>,
    detail: Option<String>,
    /// Set when a store was out of reach for a moment (a 503 to try again).
    unavailable: Option<Unavailable>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            body: ErrorBody {
                code,
                message: message.into(),
                field: None,
            },
            retry_after_seconds: None,
            allow: None,
            detail: None,
            unavailable: None,
        }
    }

    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedRequest, message)
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message).at(field)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn method_not_allowed(allow: impl Into<String>) -> Self {
        let allow = allow.into();
        let mut error = Self::new(
            ErrorCode::MethodNotAllowed,
            format!("this endpoint accepts {allow}"),
        );
        error.allow = Some(allow);
        error
    }

    /// Tells the client when it may try again.
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// A dependency is failing; `retry_after` tells the client when to try again.
    pub fn unavailable(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        let mut error = Self::new(ErrorCode::ServiceUnavailable, message);
        error.retry_after_seconds = Some(retry_after_seconds);
        error
    }

    /// A CRM called on the client's behalf failed; `message` is what it said (never our internals).
    pub fn crm_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::CrmFailed, message)
    }

    /// The caller has used its allowance; it may try again in `retry_after_seconds`.
    pub fn rate_limited(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        let mut error = Self::new(ErrorCode::RateLimited, message);
        error.retry_after_seconds = Some(retry_after_seconds);
        error
    }

    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than the limit of {limit_bytes} bytes"),
        )
    }

    /// Our fault. `context` says what we were doing, `cause` why it failed; both are logged only.
    pub fn internal(context: &str, cause: impl fmt::Display) -> Self {
        let mut error = Self::new(ErrorCode::InternalError, "internal error");
        error.detail = Some(format!("{context}: {cause}"));
        error
    }

    /// A store was out of `reason`'s reach for a moment: 503, try again in
    /// [`RETRY_UNANSWERED_SECONDS`]. `detail` (which shard, which business) is logged only.
    pub fn out_of_reach(reason: Unavailable, detail: impl fmt::Display) -> Self {
        let mut error = Self::unavailable(reason.message(), RETRY_UNANSWERED_SECONDS);
        error.detail = Some(detail.to_string());
        error.unavailable = Some(reason);
        error
    }

    /// The same error, what was being done when it happened said before its logged cause: an
    /// internal error or one out of reach stays what it is (a 503 stays a 503 however far it
    /// travels), where `internal(context, error)` would make it a 500.
    pub fn doing(mut self, context: &str) -> Self {
        self.detail = Some(match self.detail.take() {
            Some(detail) => format!("{context}: {detail}"),
            None => format!("{context}: {}", self.body.message),
        });
        self
    }

    /// The same error with `detail` logged beside it (never sent).
    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// Why a store was out of reach, when that is what this error is.
    pub fn unavailable_because(&self) -> Option<Unavailable> {
        self.unavailable
    }

    pub fn status(&self) -> u16 {
        self.body.code.status()
    }

    pub fn code(&self) -> ErrorCode {
        self.body.code
    }

    /// The logged cause of an internal error.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.body.message),
            None => f.write_str(&self.body.message),
        }
    }
}

/// JSON we made that does not serialise, or JSON we stored that does not read back: ours, answered
/// 500. A client's JSON is read where it arrives and refused there with a 400 (`crate::json`).
///
/// No other error becomes an `ApiError` by `?` on its own: each kind converts explicitly, where
/// its meaning is decided (a database failure in `edge::db::Error`, a partner's answer in
/// `crate::json::Malformed`, the Workers runtime's own with `edge::runtime::Internal`), so that a
/// new kind of failure is classified by whoever adds it rather than answered 500 silently.
impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> Self {
        Self::internal("serde_json", error)
    }
}

/// The one error shape of every JSON error answer.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "Error", example = error_example()))]
pub struct ErrorEnvelope<'a> {
    pub error: &'a ErrorBody,
}

#[cfg(feature = "openapi")]
fn error_example() -> serde_json::Value {
    serde_json::json!({
        "error": { "code": "validation_failed", "message": "email is not an email address", "field": "email" }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_out_of_reach_is_a_503_to_try_again_wherever_it_was_carried() {
        let error = ApiError::out_of_reach(
            Unavailable::Unanswered,
            "shard 1: D1_ERROR: Network connection lost.",
        )
        .doing("reading a key")
        .doing("syncing customers");
        assert_eq!(error.status(), 503);
        assert_eq!(error.code(), ErrorCode::ServiceUnavailable);
        assert_eq!(error.retry_after_seconds, Some(RETRY_UNANSWERED_SECONDS));
        assert!(!error.body.message.contains("shard"), "{}", error.body.message);
        assert_eq!(
            error.detail(),
            Some("syncing customers: reading a key: shard 1: D1_ERROR: Network connection lost.")
        );
        assert_eq!(error.unavailable_because(), Some(Unavailable::Unanswered));
        let moving = ApiError::out_of_reach(Unavailable::Moving, "business b1");
        assert_eq!(moving.status(), 503);
        assert!(
            moving.body.message.contains("being moved"),
            "{}",
            moving.body.message
        );
        assert!(moving.unavailable_because().is_some_and(Unavailable::held));
        let restoring = ApiError::out_of_reach(Unavailable::Restoring, "business b1");
        assert_eq!(restoring.status(), 503);
        assert!(
            restoring.body.message.contains("being restored from a backup"),
            "{}",
            restoring.body.message
        );
        assert!(restoring.unavailable_because().is_some_and(Unavailable::held));
        let internal = ApiError::internal("syncing customers", "D1_ERROR: disk I/O").doing("a batch");
        assert_eq!((internal.status(), internal.unavailable_because()), (500, None));
    }

    #[test]
    fn an_internal_error_hides_its_cause_from_the_client() {
        let error = ApiError::internal("loading customers", "D1_ERROR: disk I/O");
        let json = serde_json::to_string(&ErrorEnvelope { error: &error.body }).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"error":{"code":"internal_error","message":"internal error"}}"#
        );
        assert_eq!(error.detail(), Some("loading customers: D1_ERROR: disk I/O"));
        assert_eq!(error.status(), 500);
    }

    #[test]
    fn a_validation_error_names_the_field_at_fault() {
        let error = ApiError::invalid("customers[2].email", "not an email address");
        let json = serde_json::to_value(ErrorEnvelope { error: &error.body }).unwrap_or_default();
        assert_eq!(json["error"]["field"], "customers[2].email");
        assert_eq!(json["error"]["code"], "validation_failed");
        assert_eq!(error.status(), 422);
    }
}
