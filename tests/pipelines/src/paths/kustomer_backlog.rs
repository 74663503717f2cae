//! A CRM backlog at reduced size (tests/e2e/crm/kustomer-backlog.test.mjs; scripts/bench runs
//! 5,000 jobs after ten minutes down): 500 customers created while Kustomer is down become 500
//! pieces of work that wait; when it is back they drain, each customer created exactly once, with
//! every invocation inside Cloudflare's per-invocation limits (the native stack enforces them and
//! logs `[limit]` past one).

use crate::app::test;
use crate::steps::crms::kustomer::{SETTLE_HORIZON, connected_business};
use crate::steps::crms::{connector_of, sync_log};
use edge::runtime::Level;
use edge::runtime::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const CUSTOMERS: usize = 500;

#[test]
fn pieces_of_work_recorded_while_kustomer_is_down_drain_once_it_is_back_each_customer_once_no_limit_crossed()
{
    test(|app| async move {
        // The budget is far above the backlog, so that what is measured is the drain, not the budget.
        let setup = connected_business(
            &app,
            json!({ "rate_limit": { "per_minute": 6_000, "per_second": null, "per_day": null } }),
        )
        .await;
        let kustomer = &setup.kustomer;
        kustomer.down();
        for at in (0..CUSTOMERS).step_by(100) {
            let customers: Vec<Value> = (at..at + 100)
                .map(|i| json!({ "name": format!("Backlog {i}"), "email": format!("backlog-{i}@example.com"), "external_id": format!("backlog-{i}") }))
                .collect();
            app.api(
                &setup.business.key,
                Method::Post,
                "/api-customers-sync",
                Some(json!({ "customers": customers })),
            )
            .await
            .expect(200);
        }
        // Every piece of work is tried and put off at least once.
        app.settle().await;
        let status = connector_of(&app, setup.id()).await["status"].clone();
        assert!(
            status["backlog"]
                .as_u64()
                .is_some_and(|backlog| backlog >= CUSTOMERS as u64),
            "the backlog recorded: {status}"
        );
        assert!(status["last_error"].is_string(), "the outage seen: {status}");

        kustomer.up();
        for _ in 0..5 {
            // The sweep runs every minute in production (the cron).
            app.sweep().await;
            app.settle_within(SETTLE_HORIZON).await;
            if connector_of(&app, setup.id()).await["status"]["backlog"] == 0 {
                break;
            }
        }
        let status = connector_of(&app, setup.id()).await["status"].clone();
        assert_eq!(status["backlog"], 0, "the backlog drained: {status}");
        let creates: Vec<String> = kustomer
            .received()
            .iter()
            .filter(|received| {
                received.call.method == "POST"
                    && received.call.path() == "/v1/customers"
                    && received.status.is_some_and(|status| status < 300)
            })
            .map(|received| {
                received.call.json()["externalId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(creates.len(), CUSTOMERS, "each customer created once");
        assert_eq!(creates.iter().collect::<BTreeSet<_>>().len(), CUSTOMERS);
        assert_eq!(kustomer.customers().len(), CUSTOMERS);
        let failed = sync_log(&app, setup.id(), "status=failed").await;
        assert!(failed.is_empty(), "{:#?}", &failed[..failed.len().min(3)]);
        let crossed: Vec<String> = app
            .stack
            .logs()
            .into_iter()
            .filter(|(level, line)| *level == Level::Error && line.contains("[limit] "))
            .map(|(_, line)| line)
            .collect();
        assert!(
            crossed.is_empty(),
            "no invocation crossed a production limit: {crossed:#?}"
        );
    });
}
