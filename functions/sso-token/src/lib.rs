//! `POST /api-sso-generate-token` and `POST /api-sso-revoke-token`: a CRM, with its API key,
//! gets a short-lived token that opens the embedded inbox of one customer, and can revoke it.

mod tokens;

use domain::api::embed::{SSO_TOKEN, SsoToken};
use edge::Env;
use edge::call;
use edge::runtime::{Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, env: Env) -> worker::Result<Response> {
    call::serve(&SSO_TOKEN, req, env, async |operation, call| match operation {
        SsoToken::GenerateSsoToken => call.run(tokens::generate).await,
        SsoToken::RevokeSsoToken => call.run(tokens::revoke).await,
    })
    .await
}
