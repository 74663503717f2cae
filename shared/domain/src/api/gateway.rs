//! The gateway endpoints: their declarations and the types they take and answer with.

use crate::api::{Caller::*, get};

function! {
    /// `gateway`.
    pub const GATEWAY: Function<Gateway> = "gateway", tag "gateway";
    /// Liveness of the gateway
    ///
    /// Any other method is 405 with Allow: GET.
    Health = get("/health", Anyone)
        => |c| c;
    /// This document
    ///
    /// No credentials. Built into the gateway from the repository's openapi.json. Any other method
    /// is 405 with Allow: GET.
    GetOpenApiDocument = get("/openapi.json", Anyone)
        => |c| c;
}
