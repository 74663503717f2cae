//! The business console (`/console`): one page that does through the API, with a console session,
//! what the guides' settings pages describe; the API reference (`/console/reference`), openapi.json
//! rendered for a person to read; the sign-in that opens a console link into that session; and the
//! session itself (who is signed in, signing out).
//!
//! The pages and their assets answer as pages, misses included; the session's JSON answers as the
//! API does.

mod pages;
mod session;

use domain::api::Miss;
use domain::api::console::{CONSOLE, Console};
use domain::error::ApiError;
use edge::platform::call;
use edge::runtime::Internal;
use edge::runtime::{Bindings, Request, Response};

edge::http_function!(serve);

/// Serves the function's endpoints: each request one invocation.
pub async fn serve(req: Request, bindings: Bindings) -> worker::Result<Response> {
    call::serve_or(
        &CONSOLE,
        req,
        bindings,
        missed,
        async |operation, call| match operation {
            Console::GetConsolePage => pages::console().internal("making an answer"),
            Console::GetApiReference => pages::reference().internal("making an answer"),
            Console::GetConsoleSignIn => call.run(session::sign_in_page).await,
            Console::OpenConsoleLink => call.run(session::open).await,
            Console::GetConsoleSession => call.run(session::current).await,
            Console::SignOutOfConsole => call.run(session::sign_out).await,
        },
    )
    .await
}

/// A method the session's JSON does not take is the API's 405; any other miss is a page.
fn missed(miss: Miss, path: &str) -> Result<Response, ApiError> {
    match miss {
        Miss::NotAllowed(allow)
            if path.starts_with("/console/session") || path.starts_with("/console/sign-out") =>
        {
            Err(ApiError::method_not_allowed(allow))
        }
        Miss::NotAllowed(allow) => pages::not_allowed(&allow).internal("making an answer"),
        Miss::NotFound => pages::not_found().internal("making an answer"),
    }
}
