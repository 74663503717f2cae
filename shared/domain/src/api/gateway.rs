//! The gateway's own endpoints: its liveness and the API's contract. Every other path is
//! forwarded to the function that declares it.

use crate::api::{Caller::*, get};
use serde::Serialize;
#[cfg(feature = "openapi")]
use serde_json::json;

function! {
    /// The gateway: the one public entry.
    pub const GATEWAY: Function<Gateway> = "gateway", tag "gateway";
    /// Liveness of the gateway
    ///
    /// Any other method is 405 with Allow: GET.
    Health = get("/health", Anyone)
        => |c| c.ok::<HealthOut>(200).example(json!({ "status": "ok" }));
    /// This document
    ///
    /// No credentials. Served by the gateway from the repository's openapi.json. Any other method
    /// is 405 with Allow: GET.
    GetOpenApiDocument = get("/openapi.json", Anyone)
        => |c| c
            .ok_media(200, "application/json", json!({ "type": "object" }))
            .described("The OpenAPI document, exactly as committed (openapi.json)");
}

/// The gateway answers: it is up.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HealthOut {
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["ok"])))]
    pub status: &'static str,
}
