//! `POST /api-sso-generate-token` and `POST /api-sso-revoke-token`: a CRM, with its API key,
//! gets a short-lived token that opens the embedded inbox of one customer, and can revoke it.

mod tokens;

use domain::api::embed::{SSO_TOKEN, SsoToken};
use edge::platform::call;
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve(
        &SSO_TOKEN,
        req,
        bindings,
        async |operation, call| match operation {
            SsoToken::GenerateSsoToken => call.run(tokens::generate).await,
            SsoToken::RevokeSsoToken => call.run(tokens::revoke).await,
        },
    )
    .await
}
