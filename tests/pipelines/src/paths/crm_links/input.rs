//! tests/e2e/links/input.test.mjs: what the CRM-links and search endpoints refuse, and how:
//! malformed and hostile bodies name the bad field (422 validation_failed), URLs that would point
//! our fetches at a private network or a metadata service are refused, a body over 1 MiB is 413,
//! a missing or wrong API key 401, another business's page 404 (as a page that does not exist),
//! the wrong method 405, a link that exists already 409; search refuses a top_k outside 1..20, an
//! empty q and unknown modes.

use super::{CUSTOM_HOST, DETAILS, Dashboard, LINKS, SEARCH, add_page, guide_crm, page_address, query, with};
use crate::app::{App, Business, test};
use crate::partners::crm_pages::{CSV_PATH, CUSTOM_PATH, Crm, Sizes, TEXT_PATH};
use crate::steps::api::assert_error;
use base64::Engine;
use edge::runtime::Method;
use serde_json::{Map, Value, json};

/// A business with a page, and the CRM.
async fn business_with_page(app: &App) -> (Business, String, Crm) {
    let _ = app.embedder();
    let crm = guide_crm(app, Sizes::SMALL);
    let business = app.business("Acme").await;
    let page = add_page(app, &business).await;
    (business, page, crm)
}

fn valid(page: &str) -> Value {
    json!({
        "page_id": page, "channels": ["messenger"], "name": "Customer Database",
        "url": format!("https://{CUSTOM_HOST}{CUSTOM_PATH}"), "type": "api",
        "headers": { "X-API-Key": "internal-key-123" }, "is_active": true,
        "holds": { "type": "customers", "field": "email", "key": "email" }
    })
}

fn without(page: &str, field: &str) -> Value {
    let mut body = valid(page);
    if let Some(body) = body.as_object_mut() {
        body.remove(field);
    }
    body
}

/// Bad bodies of a new link: (what is wrong, the body, the field the refusal names).
fn bad_bodies(page: &str) -> Vec<(&'static str, Value, &'static str)> {
    let url = |url: &str| with(valid(page), json!({ "url": url }));
    let many_headers: Map<String, Value> = (0..21).map(|at| (format!("X-Header-{at}"), json!("v"))).collect();
    vec![
        ("a JSON array", json!([]), "body"),
        ("no page_id", without(page, "page_id"), "page_id"),
        (
            "a page_id that is not a page id",
            with(valid(page), json!({ "page_id": "abc" })),
            "page_id",
        ),
        ("no channels", without(page, "channels"), "channels"),
        (
            "an empty channels list",
            with(valid(page), json!({ "channels": [] })),
            "channels",
        ),
        (
            "an unknown channel",
            with(valid(page), json!({ "channels": ["messenger", "email"] })),
            "channels[1]",
        ),
        (
            "channels and channel both",
            with(valid(page), json!({ "channel": "facebook" })),
            "channel",
        ),
        ("no name", without(page, "name"), "name"),
        (
            "a blank name",
            with(valid(page), json!({ "name": "   " })),
            "name",
        ),
        (
            "a name over 100 characters",
            with(valid(page), json!({ "name": "n".repeat(101) })),
            "name",
        ),
        ("no url", without(page, "url"), "url"),
        ("no is_active", without(page, "is_active"), "is_active"),
        (
            "is_active as text",
            with(valid(page), json!({ "is_active": "yes" })),
            "is_active",
        ),
        (
            "an unknown field",
            with(valid(page), json!({ "status": "active" })),
            "status",
        ),
        (
            "an unknown type",
            with(valid(page), json!({ "type": "graphql" })),
            "type",
        ),
        (
            "an api_key with \"Bearer \" in it",
            with(valid(page), json!({ "api_key": "Bearer abc" })),
            "api_key",
        ),
        (
            "an api_key with a space",
            with(valid(page), json!({ "api_key": "a b" })),
            "api_key",
        ),
        (
            "headers as a list",
            with(valid(page), json!({ "headers": ["X-A"] })),
            "headers",
        ),
        (
            "too many headers (21)",
            with(valid(page), json!({ "headers": many_headers })),
            "headers",
        ),
        (
            "a header value with a line break (header injection)",
            with(valid(page), json!({ "headers": { "X-A": "v\r\nX-Injected: 1" } })),
            "headers.X-A",
        ),
        (
            "a header name with a space",
            with(valid(page), json!({ "headers": { "X A": "v" } })),
            "headers.X A",
        ),
        (
            "a Host header",
            with(valid(page), json!({ "headers": { "Host": "evil.example" } })),
            "headers.Host",
        ),
        (
            "an Authorization header and an api_key",
            with(
                valid(page),
                json!({ "api_key": "k", "headers": { "Authorization": "Basic eDp5" } }),
            ),
            "headers.Authorization",
        ),
        (
            "fetch_interval_minutes under 5",
            with(valid(page), json!({ "fetch_interval_minutes": 4 })),
            "fetch_interval_minutes",
        ),
        (
            "fetch_interval_minutes over a day",
            with(valid(page), json!({ "fetch_interval_minutes": 1441 })),
            "fetch_interval_minutes",
        ),
        (
            "plain http to a public host",
            url("http://api.crm.example/customers"),
            "url",
        ),
        (
            "a private-network address (10.0.0.1)",
            url("https://10.0.0.1/api/customers"),
            "url",
        ),
        (
            "a private-network address (192.168.1.20)",
            url("https://192.168.1.20/customers"),
            "url",
        ),
        (
            "the cloud metadata service (169.254.169.254)",
            url("https://169.254.169.254/latest/meta-data/"),
            "url",
        ),
        (
            "the metadata service spelled as one number",
            url("https://2852039166/latest/meta-data/"),
            "url",
        ),
        (
            "a unique-local IPv6 address",
            url("https://[fd00::1]/customers"),
            "url",
        ),
        (
            "an IPv4-mapped private address",
            url("https://[::ffff:10.0.0.1]/customers"),
            "url",
        ),
        (
            "a javascript: URL",
            url("javascript:alert(document.cookie)"),
            "url",
        ),
        ("a file: URL", url("file:///etc/passwd"), "url"),
        (
            "a database connection string",
            url("postgres://db.example.com/crm"),
            "url",
        ),
        (
            "credentials in the URL",
            url("https://user:pass@crm.example.com/customers"),
            "url",
        ),
        ("a relative URL", url("/api/customers"), "url"),
    ]
}

#[test]
fn a_new_link_with_a_bad_body_is_refused_naming_the_field() {
    test(|app| async move {
        let (business, page, _crm) = business_with_page(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        for (description, body, field) in bad_bodies(&page) {
            let answer = dashboard.call(Method::Post, LINKS, Some(body)).await;
            let error = assert_error(&answer, 422, "validation_failed", description);
            assert_eq!(error["field"], field, "{description}: the field named");
        }
    });
}

#[test]
fn a_body_that_is_not_json_is_refused_with_400() {
    test(|app| async move {
        let (business, _, _crm) = business_with_page(&app).await;
        let bearer = format!("Bearer {}", business.key);
        let answer = app
            .request(
                Method::Post,
                LINKS,
                &[("authorization", &bearer), ("content-type", "application/json")],
                br#"{"page_id": "1", "name": "#.to_vec(),
            )
            .await;
        assert_error(&answer, 400, "malformed_request", "broken JSON");
    });
}

#[test]
fn a_body_over_1_mib_is_refused_with_413() {
    test(|app| async move {
        let (business, page, _crm) = business_with_page(&app).await;
        let body = with(
            valid(&page),
            json!({ "description": "d".repeat(1024 * 1024 + 10) }),
        );
        let answer = Dashboard::new(&app, &business)
            .call(Method::Post, LINKS, Some(body))
            .await;
        assert_error(&answer, 413, "payload_too_large", "a 1 MiB description");
    });
}

#[test]
fn a_refused_body_adds_nothing() {
    test(|app| async move {
        let (business, page, crm) = business_with_page(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        for (_, body, _) in bad_bodies(&page) {
            dashboard.call(Method::Post, LINKS, Some(body)).await;
        }
        let large = with(
            valid(&page),
            json!({ "description": "d".repeat(1024 * 1024 + 10) }),
        );
        dashboard.call(Method::Post, LINKS, Some(large)).await;
        assert_eq!(
            dashboard.list(&page, None).await["total"],
            0,
            "no link was stored by any refused body"
        );
        app.settle().await;
        assert!(crm.served().is_empty(), "and nothing was fetched");
    });
}

#[test]
fn loopback_is_refused_in_production_and_allowed_in_the_local_stack_by_address_and_by_name() {
    test(|app| async move {
        let (business, page, _crm) = business_with_page(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        let urls = [
            "http://127.0.0.1:8787/kb/returns-policy.txt",
            "http://localhost:8787/exports/customers.csv",
        ];
        let file = |url: &str| with(without(&page, "headers"), json!({ "url": url, "type": "file" }));
        for url in urls {
            let answer = dashboard.call(Method::Post, LINKS, Some(file(url))).await;
            assert_eq!(
                assert_error(&answer, 422, "validation_failed", url)["field"],
                "url",
                "{url} in production"
            );
        }
        app.stack.set_var("ALLOW_LOOPBACK_WEBHOOKS", "true");
        for url in urls {
            let answer = dashboard.call(Method::Post, LINKS, Some(file(url))).await;
            assert_eq!(answer.status, 201, "{url} in the local stack: {}", answer.text());
        }
    });
}

/// Every endpoint, on `page` (a body where it takes one).
fn endpoints(page: &str, url: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (
            Method::Get,
            format!("{LINKS}?{}", query(&[("page_id", page)])),
            None,
        ),
        (
            Method::Post,
            LINKS.to_owned(),
            Some(with(valid(page), json!({ "page_id": page }))),
        ),
        (
            Method::Put,
            format!("{LINKS}/status"),
            Some(json!({ "page_id": page, "url": url, "is_active": false })),
        ),
        (
            Method::Delete,
            LINKS.to_owned(),
            Some(json!({ "page_id": page, "url": url })),
        ),
        (
            Method::Post,
            format!("{LINKS}/refresh"),
            Some(json!({ "page_id": page, "url": url })),
        ),
        (
            Method::Get,
            format!(
                "{SEARCH}?{}",
                query(&[("page_id", page), ("channel", "messenger"), ("q", "John Doe")])
            ),
            None,
        ),
        (
            Method::Get,
            format!("{DETAILS}?{}", query(&[("page_id", page), ("source", "crm")])),
            None,
        ),
    ]
}

#[test]
fn without_an_api_key_or_with_a_wrong_one_every_endpoint_answers_401() {
    test(|app| async move {
        let (business, page, crm) = business_with_page(&app).await;
        let mut calls = endpoints(&page, &crm.url(CUSTOM_PATH));
        calls.push((Method::Get, format!("{LINKS}/all"), None));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("x:{}", business.key))
        );
        for (method, path, body) in calls {
            let what = format!("{method:?} {path}");
            let credentials: [(&str, &[(&str, &str)]); 4] = [
                ("without a key", &[]),
                (
                    "with a wrong Bearer key",
                    &[("authorization", "Bearer ck_wrong_key")],
                ),
                ("with a wrong x-api-key", &[("x-api-key", "ck_wrong_key")]),
                ("with Basic", &[("authorization", basic.as_str())]),
            ];
            for (how, headers) in credentials {
                let answer = app.json(method.clone(), &path, headers, body.clone()).await;
                assert_error(&answer, 401, "unauthorized", &format!("{what} {how}"));
            }
        }
    });
}

#[test]
fn the_key_is_taken_as_x_api_key_as_well_as_bearer() {
    test(|app| async move {
        let (business, page, _crm) = business_with_page(&app).await;
        let path = format!("{LINKS}?{}", query(&[("page_id", &page)]));
        app.api(&business.key, Method::Get, &path, None).await.expect(200);
        Dashboard::new(&app, &business)
            .call(Method::Get, &path, None)
            .await
            .expect(200);
    });
}

#[test]
fn another_businesss_page_is_not_found_exactly_like_a_page_that_does_not_exist() {
    test(|app| async move {
        let (business, _, crm) = business_with_page(&app).await;
        let other = app.business("Other").await;
        let other_page = add_page(&app, &other).await;
        let dashboard = Dashboard::new(&app, &business);
        for (whose, page) in [
            ("another business's page", other_page.clone()),
            ("an unknown page", page_address()),
        ] {
            for (method, path, body) in endpoints(&page, &crm.url(CUSTOM_PATH)) {
                let what = format!("{method:?} {path} for {whose}");
                let answer = dashboard.call(method, &path, body).await;
                assert_error(&answer, 404, "not_found", &what);
            }
        }
        let theirs = Dashboard::new(&app, &other).list(&other_page, None).await;
        assert_eq!(theirs["total"], 0, "nothing was added to the other business");
    });
}

#[test]
fn a_method_an_endpoint_does_not_have_is_405() {
    test(|app| async move {
        let (business, _, _crm) = business_with_page(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        let wrong = [
            (Method::Put, LINKS.to_owned()),
            (Method::Get, format!("{LINKS}/preview")),
            (Method::Get, format!("{LINKS}/status")),
            (Method::Delete, format!("{LINKS}/status")),
            (Method::Post, format!("{LINKS}/all")),
            (Method::Get, format!("{LINKS}/refresh")),
            (Method::Delete, SEARCH.to_owned()),
            (Method::Post, DETAILS.to_owned()),
        ];
        for (method, path) in wrong {
            let body = (method != Method::Get).then(|| json!({}));
            let what = format!("{method:?} {path}");
            let answer = dashboard.call(method, &path, body).await;
            assert_error(&answer, 405, "method_not_allowed", &what);
        }
    });
}

#[test]
fn the_same_url_on_the_same_page_and_channel_twice_is_409_and_another_channel_adds_it_with_the_new_settings()
{
    test(|app| async move {
        let (business, page, _crm) = business_with_page(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        let body = valid(&page);
        dashboard.add(body.clone()).await;
        assert_error(
            &dashboard.call(Method::Post, LINKS, Some(body.clone())).await,
            409,
            "conflict",
            "the same link again",
        );
        assert_error(
            &dashboard
                .call(
                    Method::Post,
                    LINKS,
                    Some(with(body.clone(), json!({ "name": "Renamed" }))),
                )
                .await,
            409,
            "conflict",
            "the same url and channel with another name",
        );
        let more = dashboard
            .call(
                Method::Post,
                LINKS,
                Some(with(
                    body,
                    json!({ "channels": ["facebook"], "name": "Renamed CRM" }),
                )),
            )
            .await;
        assert_eq!(more.status, 201, "adding facebook: {}", more.text());
        let links = dashboard.list(&page, None).await["crm_links"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(links.len(), 2, "one entry per channel");
        for link in &links {
            assert_eq!(
                link["name"], "Renamed CRM",
                "{}: the new settings apply to every channel",
                link["channel"]
            );
            assert_eq!(
                super::sorted(&link["channels"]),
                ["facebook", "messenger"],
                "{}: channels",
                link["channel"]
            );
        }
    });
}

#[test]
fn status_delete_and_refresh_of_a_url_the_page_does_not_have_are_404_and_bad_bodies_422() {
    test(|app| async move {
        let (business, page, crm) = business_with_page(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        let text = crm.url(TEXT_PATH);
        dashboard
            .add(with(
                without(&page, "headers"),
                json!({ "url": text, "type": "file" }),
            ))
            .await;
        let missing = format!("https://{CUSTOM_HOST}/not-linked");
        let calls = [
            (
                "status of an unknown url",
                Method::Put,
                format!("{LINKS}/status"),
                json!({ "page_id": page, "url": missing, "is_active": false }),
            ),
            (
                "delete of an unknown url",
                Method::Delete,
                LINKS.to_owned(),
                json!({ "page_id": page, "url": missing }),
            ),
            (
                "refresh of an unknown url",
                Method::Post,
                format!("{LINKS}/refresh"),
                json!({ "page_id": page, "url": missing }),
            ),
        ];
        for (description, method, path, body) in calls {
            assert_error(
                &dashboard.call(method, &path, Some(body)).await,
                404,
                "not_found",
                description,
            );
        }
        let no_active = dashboard
            .call(
                Method::Put,
                &format!("{LINKS}/status"),
                Some(json!({ "page_id": page, "url": text })),
            )
            .await;
        assert_eq!(
            assert_error(&no_active, 422, "validation_failed", "status without is_active")["field"],
            "is_active"
        );
        let no_page = dashboard.call(Method::Get, LINKS, None).await;
        assert_eq!(
            assert_error(&no_page, 422, "validation_failed", "a list without page_id")["field"],
            "page_id"
        );
        let bad_channel = dashboard
            .call(
                Method::Get,
                &format!("{LINKS}?{}", query(&[("page_id", &page), ("channel", "email")])),
                None,
            )
            .await;
        assert_eq!(
            assert_error(
                &bad_channel,
                422,
                "validation_failed",
                "a list of an unknown channel"
            )["field"],
            "channel"
        );
    });
}

/// A business whose page has the returns policy and the customers' CSV export linked and
/// fetched (as the end-to-end test's page had: a keyword search weighs only the words that fewer
/// than half of the pieces hold, so a page of one piece is never found by keyword).
async fn policy_linked(app: &App) -> (Business, String) {
    let (business, page, crm) = business_with_page(app).await;
    let dashboard = Dashboard::new(app, &business);
    let general = json!({ "type": "general" });
    let customers = json!({ "type": "customers", "field": "email", "key": "email" });
    for (path, holds) in [(TEXT_PATH, general), (CSV_PATH, customers)] {
        dashboard
            .add(with(
                without(&page, "headers"),
                json!({ "url": crm.url(path), "type": "file", "holds": holds }),
            ))
            .await;
    }
    app.settle().await;
    (business, page)
}

#[test]
fn a_search_with_bad_parameters_is_refused_naming_the_field() {
    test(|app| async move {
        let (business, page) = policy_linked(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        let cases: [(&str, &str, Option<&str>, &str); 10] = [
            ("top_k 0", "top_k", Some("0"), "top_k"),
            ("top_k 21", "top_k", Some("21"), "top_k"),
            ("top_k -1", "top_k", Some("-1"), "top_k"),
            ("top_k as a word", "top_k", Some("five"), "top_k"),
            ("an empty q", "q", Some(""), "q"),
            ("a blank q", "q", Some("   "), "q"),
            ("no q", "q", None, "q"),
            ("an unknown mode", "mode", Some("fuzzy"), "mode"),
            ("an unknown channel", "channel", Some("email"), "channel"),
            ("no page_id", "page_id", None, "page_id"),
        ];
        for (description, name, value, field) in cases {
            let mut params = vec![
                ("page_id", page.as_str()),
                ("channel", "messenger"),
                ("q", "refund"),
            ];
            params.retain(|(param, _)| *param != name);
            params.extend(value.map(|value| (name, value)));
            let answer = dashboard
                .call(Method::Get, &format!("{SEARCH}?{}", query(&params)), None)
                .await;
            assert_eq!(
                assert_error(&answer, 422, "validation_failed", &format!("GET: {description}"))["field"],
                field,
                "GET: {description}"
            );
            let mut body = Map::new();
            for (param, value) in &params {
                let value = match (*param, value.parse::<i64>()) {
                    ("top_k", Ok(number)) => json!(number),
                    _ => json!(value),
                };
                body.insert((*param).to_owned(), value);
            }
            let posted = dashboard
                .call(Method::Post, SEARCH, Some(Value::Object(body)))
                .await;
            assert_eq!(
                assert_error(&posted, 422, "validation_failed", &format!("POST: {description}"))["field"],
                field,
                "POST: {description}"
            );
        }
    });
}

#[test]
fn top_k_1_and_20_are_the_bounds_and_post_takes_the_same_fields_as_json() {
    test(|app| async move {
        let (business, page) = policy_linked(&app).await;
        let dashboard = Dashboard::new(&app, &business);
        for top_k in ["1", "20"] {
            let found = dashboard
                .search(&[
                    ("page_id", &page),
                    ("channel", "messenger"),
                    ("q", "refund"),
                    ("top_k", top_k),
                ])
                .await;
            let count = found["results"].as_array().map_or(0, Vec::len);
            assert!(
                count <= top_k.parse().unwrap_or(0),
                "top_k {top_k}: at most that many results ({count})"
            );
        }
        let posted = dashboard
            .call(
                Method::Post,
                SEARCH,
                Some(json!({ "page_id": page, "channel": "messenger", "q": "refund", "top_k": 3, "mode": "hybrid" })),
            )
            .await
            .expect(200)
            .json();
        assert_eq!(posted["mode"], "hybrid");
        assert!(
            posted["results"]
                .as_array()
                .is_some_and(|results| results.iter().any(|result| result["text"]
                    .as_str()
                    .is_some_and(|text| text.contains("30 days")))),
            "the returns policy is found: {posted}"
        );
    });
}
