//! A connector's health as the production checklist's KPIs (docs/connectors.md, "Health"): its
//! calls to Kustomer counted by the minute as they are made, read back by its status as uptime,
//! average and 95th-percentile response time and error rate, each figure what the test made the
//! fake Kustomer do.

use crate::app::test;
use crate::steps::channels::{receive_whatsapp, whatsapp_account};
use crate::steps::crms::connector_of;
use crate::steps::crms::kustomer::{SETTLE_HORIZON, connected_business};
use crate::steps::unique_phone;
use serde_json::json;
use std::time::Duration;

#[test]
fn a_connectors_kpis_are_its_calls_as_kustomer_answered_them_minute_by_minute() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let kustomer = &setup.kustomer;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        // The connection test at creation answered at once; every answer from now on takes 300 ms.
        let instant = kustomer.received().len();
        kustomer.latency(Duration::from_millis(300));
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "hello").await;
        app.settle().await;
        // Two minutes on, a minute in which Kustomer refuses every connection.
        app.stack.advance(Duration::from_secs(120));
        kustomer.down();
        receive_whatsapp(&app, &whatsapp, &unique_phone(), "anyone there?").await;
        app.settle().await;
        app.stack.advance(Duration::from_secs(120));
        kustomer.up();
        app.settle_within(SETTLE_HORIZON).await;

        let received = kustomer.received();
        let failed = received
            .iter()
            .filter(|call| call.status.is_none_or(|status| status >= 400 && status != 404))
            .count();
        let slow = received[instant..]
            .iter()
            .filter(|call| call.status.is_some())
            .count();
        assert!(
            failed >= 1 && slow >= 4,
            "{failed} failed, {slow} answered in 300 ms"
        );
        let status = connector_of(&app, setup.id()).await["status"].clone();
        let health = &status["health"];
        assert_eq!(health["window_hours"], 24);
        assert_eq!(
            health["calls"],
            received.len(),
            "every call, the connection test's too: {health}"
        );
        assert_eq!(health["failed_calls"], failed);
        let close = |field: &str, expected: f64| {
            let got = health[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{field} in {health}"));
            assert!(
                (got - expected).abs() < 1e-9,
                "{field}: {got}, expected {expected}"
            );
        };
        close("average_response_ms", 300.0 * slow as f64 / received.len() as f64);
        close("error_rate", failed as f64 / received.len() as f64);
        assert_eq!(
            health["p95_response_ms"], 500,
            "300 ms is in the class up to 500: {health}"
        );
        let with_calls = health["minutes_with_calls"].as_u64().unwrap_or(0);
        assert!(
            with_calls >= 3,
            "the first minute, the refused one, and after: {health}"
        );
        assert_eq!(
            health["minutes_up"].as_u64(),
            Some(with_calls - 1),
            "only the minute of refused connections was down: {health}"
        );
        close("uptime", (with_calls - 1) as f64 / with_calls as f64);
        assert_eq!(
            health["targets"],
            json!({ "uptime": 0.995, "average_response_ms": 2000, "error_rate": 0.01, "sync_success_rate": 0.99 })
        );

        // A day on, the window holds none of those calls; 35 days on, the sweep deletes them.
        app.stack.advance(Duration::from_secs(25 * 3600));
        let idle = connector_of(&app, setup.id()).await["status"]["health"].clone();
        assert_eq!(idle["calls"], 0);
        assert_eq!(
            idle["uptime"],
            serde_json::Value::Null,
            "no calls, nothing to judge: {idle}"
        );
        app.stack.advance(Duration::from_secs(35 * 24 * 3600));
        let swept = app
            .admin(edge::runtime::Method::Post, "/admin/maintenance/sweep", None)
            .await
            .expect(200)
            .json();
        assert_eq!(swept["crm_call_minutes_deleted"], with_calls, "{swept}");
    });
}
