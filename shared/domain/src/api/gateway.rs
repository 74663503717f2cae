//! The gateway's own endpoints: its liveness, the API's contract, and the scripts and styles of the
//! console's pages (the console and the API reference), all static files of its own (`[assets]`)
//! but the first. Every other path is forwarded to the function that declares it.

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
    /// The console's console.js
    ///
    /// The console page's script, a static file (functions/console/public/), served by the
    /// gateway so that no bundle carries it.
    GetConsoleAssetJs = get("/console/assets/console.js", Anyone)
        => |c| c.ok_media(200, "text/javascript", json!({ "type": "string" })).described("The asset");
    /// The console's console.css
    ///
    /// The console page's style, served as its script is.
    GetConsoleAssetCss = get("/console/assets/console.css", Anyone)
        => |c| c.ok_media(200, "text/css", json!({ "type": "string" })).described("The asset");
    /// The API reference's reference.js
    ///
    /// The reference page's own script (functions/console/public/): it renders /openapi.json
    /// with Swagger UI.
    GetReferenceAssetJs = get("/console/reference/reference.js", Anyone)
        => |c| c.ok_media(200, "text/javascript", json!({ "type": "string" })).described("The asset");
    /// The API reference's reference.css
    ///
    /// The reference page's own style, laid over Swagger UI's.
    GetReferenceAssetCss = get("/console/reference/reference.css", Anyone)
        => |c| c.ok_media(200, "text/css", json!({ "type": "string" })).described("The asset");
    /// Swagger UI's script
    ///
    /// swagger-ui-bundle.js of the swagger-ui-dist package (package.json pins its version),
    /// copied by scripts/build: the reference page fetches nothing from elsewhere.
    GetSwaggerUiJs = get("/console/reference/swagger-ui-bundle.js", Anyone)
        => |c| c.ok_media(200, "text/javascript", json!({ "type": "string" })).described("The asset");
    /// Swagger UI's style
    ///
    /// swagger-ui.css of the same package.
    GetSwaggerUiCss = get("/console/reference/swagger-ui.css", Anyone)
        => |c| c.ok_media(200, "text/css", json!({ "type": "string" })).described("The asset");
}

/// The gateway answers: it is up.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HealthOut {
    #[cfg_attr(feature = "openapi", schemars(extend("enum" = ["ok"])))]
    pub status: &'static str,
}
