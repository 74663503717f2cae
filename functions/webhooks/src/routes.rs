//! The paths of the webhook API, matched without a router so that every id is checked on the way in.

use domain::error::ApiError;
use domain::ids::EndpointId;
use worker::Method;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Create,
    List,
    Get(EndpointId),
    Update(EndpointId),
    Delete(EndpointId),
    RotateSecret(EndpointId),
    Test(EndpointId),
    Deliveries(EndpointId),
    Replay(EndpointId),
    Attempts,
}

pub fn route(method: Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let endpoint =
        |id: &str| EndpointId::parse(id).ok_or_else(|| ApiError::not_found(format!("no webhook {id}")));
    let (route, allow) = match segments.as_slice() {
        ["api-webhooks"] => (
            match method {
                Method::Post => Some(Route::Create),
                Method::Get => Some(Route::List),
                _ => None,
            },
            "GET, POST",
        ),
        ["api-webhooks", id] => {
            let id = endpoint(id)?;
            let route = match method {
                Method::Get => Some(Route::Get(id)),
                Method::Patch => Some(Route::Update(id)),
                Method::Delete => Some(Route::Delete(id)),
                _ => None,
            };
            (route, "GET, PATCH, DELETE")
        }
        ["api-webhooks", id, action] => {
            let id = endpoint(id)?;
            let (route, allow) = match *action {
                "rotate-secret" => (Route::RotateSecret(id), "POST"),
                "test" => (Route::Test(id), "POST"),
                "replay" => (Route::Replay(id), "POST"),
                "deliveries" => (Route::Deliveries(id), "GET"),
                _ => return Err(ApiError::not_found(format!("no such path: {path}"))),
            };
            let wanted = if allow == "GET" { Method::Get } else { Method::Post };
            ((method == wanted).then_some(route), allow)
        }
        ["api-webhook-attempts"] => ((method == Method::Get).then_some(Route::Attempts), "GET"),
        _ => return Err(ApiError::not_found(format!("no such path: {path}"))),
    };
    route.ok_or_else(|| ApiError::method_not_allowed(allow))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8c5e2a8e-2f7a-4b8e-9c1d-0a1b2c3d4e5f";

    fn id() -> EndpointId {
        EndpointId::parse(ID).unwrap_or_else(|| EndpointId::generate([0; 16]))
    }

    #[test]
    fn each_path_and_method_reaches_its_handler() {
        let cases = [
            (Method::Post, "/api-webhooks".to_owned(), Some(Route::Create)),
            (Method::Get, "/api-webhooks/".to_owned(), Some(Route::List)),
            (Method::Get, format!("/api-webhooks/{ID}"), Some(Route::Get(id()))),
            (
                Method::Patch,
                format!("/api-webhooks/{ID}"),
                Some(Route::Update(id())),
            ),
            (
                Method::Delete,
                format!("/api-webhooks/{ID}"),
                Some(Route::Delete(id())),
            ),
            (
                Method::Post,
                format!("/api-webhooks/{ID}/rotate-secret"),
                Some(Route::RotateSecret(id())),
            ),
            (
                Method::Post,
                format!("/api-webhooks/{ID}/test"),
                Some(Route::Test(id())),
            ),
            (
                Method::Post,
                format!("/api-webhooks/{ID}/replay"),
                Some(Route::Replay(id())),
            ),
            (
                Method::Get,
                format!("/api-webhooks/{ID}/deliveries"),
                Some(Route::Deliveries(id())),
            ),
            (
                Method::Get,
                "/api-webhook-attempts".to_owned(),
                Some(Route::Attempts),
            ),
            (Method::Get, format!("/api-webhooks/{ID}/test"), None),
            (Method::Put, "/api-webhooks".to_owned(), None),
            (Method::Get, "/api-webhooks/not-an-id".to_owned(), None),
            (Method::Get, format!("/api-webhooks/{ID}/other"), None),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method.clone(), &path).ok(), expected, "{method:?} {path}");
        }
    }
}
