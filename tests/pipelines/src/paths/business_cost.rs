//! Each business's bill (docs/limits.md, "What each business costs"): the units of every
//! invocation that served it, counted as the invocations end, stored off the request path, and
//! read priced by `GET /admin/businesses/{id}/cost`, the business's own `GET /api-cost` and the
//! operator's `GET /admin/cost`.

use crate::app::{App, Business, test};
use crate::partners::webhook_endpoint::Endpoint;
use crate::steps::webhooks::with_endpoint;
use domain::pricing::Meter;
use edge::runtime::{Level, Method};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The business's cost this month, as the operator reads it.
async fn cost(app: &App, business: &Business) -> Value {
    app.admin(
        Method::Get,
        &format!("/admin/businesses/{}/cost", business.id),
        None,
    )
    .await
    .expect(200)
    .json()
}

/// This month's units of a cost answer, by meter.
fn units(cost: &Value) -> BTreeMap<String, u64> {
    cost["units"]
        .as_array()
        .map(|units| {
            units
                .iter()
                .map(|u| {
                    (
                        u["meter"].as_str().unwrap_or_default().to_owned(),
                        u["count"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `[usage]` lines logged so far.
fn lines(app: &App) -> Vec<String> {
    app.stack.logged(Level::Log, "[usage] ")
}

/// A call through the gateway, and the place of the gateway's own `[usage]` line in the log: the
/// last fetch of the call's lines (the function it hands the request to reports first; what the
/// call leaves for after its answer is the rate limiter object's).
async fn call(app: &App, key: &str, method: Method, path: &str, body: Option<Value>) -> (Value, usize) {
    let answer = app.api(key, method, path, body).await;
    assert!(answer.status < 300, "{} {}", answer.status, answer.text());
    let gateway = lines(app)
        .iter()
        .rposition(|line| line.contains(" fetch "))
        .unwrap_or_else(|| panic!("no fetch logged"));
    (answer.json(), gateway)
}

/// The units the `[usage]` lines from `from` on name, by meter, as a business's usage counts them
/// (`domain::cost::invocation`), but for the gateway's lines at `gateway`, which keeps no tally:
/// a request for each fetch (the gateway's in front of it) and each queue consumer's or cron's
/// invocation, a Durable Object request for each object's invocation.
fn logged_units(app: &App, from: usize, gateway: &[usize]) -> BTreeMap<String, u64> {
    let mut units = BTreeMap::new();
    for (at, line) in lines(app).iter().enumerate().skip(from) {
        if gateway.contains(&at) {
            continue;
        }
        let field = |name: &str| {
            line.split(' ')
                .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
                .and_then(|count| count.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{name} in {line}"))
        };
        let request = [" fetch ", " queue ", " cron "]
            .iter()
            .any(|entry| line.contains(entry));
        let object = line.contains(" object ");
        for (meter, count) in [
            (Meter::WorkerRequests, u64::from(request)),
            (Meter::D1RowsRead, field("rows_read")),
            (Meter::D1RowsWritten, field("rows_written")),
            (Meter::KvReads, field("kv_reads")),
            (Meter::KvWrites, field("kv_writes")),
            (Meter::QueueOperations, field("queue_operations")),
            (Meter::R2ClassA, field("r2_class_a")),
            (Meter::R2ClassB, field("r2_class_b")),
            (
                Meter::DurableObjectRequests,
                field("do_requests") + u64::from(object),
            ),
        ] {
            *units.entry(meter.name().to_owned()).or_default() += count;
        }
    }
    units.retain(|_, count| *count > 0);
    units
}

fn minus(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut spent: BTreeMap<String, u64> = after
        .iter()
        .map(|(meter, count)| (meter.clone(), count - before.get(meter).copied().unwrap_or(0)))
        .collect();
    spent.retain(|_, count| *count > 0);
    spent
}

#[test]
fn a_businesss_cost_is_every_unit_its_invocations_used_and_no_other_businesss() {
    test(|app| async move {
        let acme = app.business("Acme").await;
        let globex = app.business("Globex").await;
        let endpoint = Endpoint::install(&app.stack, "hooks.acme.example");
        with_endpoint(
            &app,
            &acme.key,
            &endpoint,
            json!({ "events": ["customer.created"] }),
        )
        .await;

        // Everything from the first read to the last: acme's own read, its sync, the webhook
        // consumer's deliveries, a list. Each invocation serves acme alone, so acme's units grow by
        // exactly what their usage lines say, but for the gateway's.
        let from = lines(&app).len();
        let (before, read) = call(&app, &acme.key, Method::Get, "/api-cost", None).await;
        let customers: Vec<Value> = (0..3)
            .map(|at| json!({ "external_id": format!("bill-{at}"), "name": format!("Bill {at}"), "email": format!("bill-{at}@example.com") }))
            .collect();
        let (synced, sync) = call(
            &app,
            &acme.key,
            Method::Post,
            "/api-customers-sync",
            Some(json!({ "customers": customers })),
        )
        .await;
        assert_eq!(synced["results"]["created"], 3, "{synced}");
        assert!(app.settle().await > 0, "the webhook consumer delivered");
        assert_eq!(endpoint.deliveries().len(), 3);
        let (_, list) = call(&app, &acme.key, Method::Get, "/api-webhooks", None).await;
        let logged = logged_units(&app, from, &[read, sync, list]);
        let after = cost(&app, &acme).await;
        let spent = minus(&units(&after), &units(&before));
        assert_eq!(spent, logged, "acme's units are its invocations' own");
        assert_eq!(
            spent.get("worker_requests"),
            Some(&(3 + 1)),
            "three calls and the consumer's batch: {spent:?}"
        );
        assert!(
            spent.get("queue_operations").is_some_and(|ops| *ops >= 3),
            "written, read and acked: {spent:?}"
        );

        // Priced exactly at the published prices.
        let priced: u64 = after["units"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| {
                let meter =
                    Meter::parse(u["meter"].as_str().unwrap_or_default()).unwrap_or_else(|| panic!("{u}"));
                assert_eq!(
                    u["cost"]["picodollars"].as_u64(),
                    Some(meter.price().each.times(u["count"].as_u64().unwrap_or(0)).picos())
                );
                meter.price().each.times(u["count"].as_u64().unwrap_or(0)).picos()
            })
            .sum();
        assert_eq!(after["month_to_date"]["picodollars"].as_u64(), Some(priced));
        assert_eq!(after["days"].as_array().map(Vec::len), Some(1), "{after}");
        assert!(after["projected"]["picodollars"].as_u64() >= Some(priced));

        // Globex used none of it: its units are its own calls' only.
        let globex_before = units(&cost(&app, &globex).await);
        app.api(&globex.key, Method::Get, "/api-webhooks", None)
            .await
            .expect(200);
        let globex_after = units(&cost(&app, &globex).await);
        assert_eq!(
            minus(&globex_after, &globex_before).get("worker_requests"),
            Some(&2),
            "its read and its list"
        );
        let acme_again = units(&cost(&app, &acme).await);
        assert_eq!(
            minus(&acme_again, &units(&after)).get("worker_requests"),
            Some(&1),
            "the operator's read of acme alone"
        );

        // The business reads its own, as the console does; the operator's total has both.
        let own = app
            .api(&acme.key, Method::Get, "/api-cost", None)
            .await
            .expect(200)
            .json();
        assert_eq!(own["business_id"], acme.id.as_str());
        let total = app
            .admin(Method::Get, "/admin/cost", None)
            .await
            .expect(200)
            .json();
        assert_eq!(total["businesses_counted"], 2, "{total}");
        assert_eq!(
            total["businesses"][0]["business_id"],
            acme.id.as_str(),
            "acme cost most: {total}"
        );
        assert!(
            total["projected_bill"]["picodollars"].as_u64() >= Some(5_000_000_000_000),
            "the plan's $5 at least"
        );
    });
}
