//! Fallback mode (tests/e2e/crm/kustomer-outage.test.mjs): Kustomer down for two minutes under
//! traffic. The chat path goes on as if nothing happened, the work waits (the connector's status
//! shows the backlog and the last error), and when Kustomer is back every customer and message
//! arrives exactly once, each conversation's messages in order. The two minutes are the stack's
//! clock: the test takes none of them.

use crate::app::test;
use crate::steps::channels::{receive_whatsapp, whatsapp_account};
use crate::steps::crms::kustomer::{SETTLE_HORIZON, connected_business};
use crate::steps::crms::{connector_of, sync_log};
use crate::steps::text;
use crate::steps::unique_phone;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const OUTAGE: Duration = Duration::from_secs(120);
const CUSTOMERS: usize = 4;
/// How often a customer writes during the outage.
const EVERY: Duration = Duration::from_secs(4);

#[test]
fn two_minutes_of_kustomer_down_under_traffic_nothing_lost_nothing_twice_order_kept() {
    test(|app| async move {
        let setup = connected_business(&app, json!({})).await;
        let kustomer = &setup.kustomer;
        let whatsapp = whatsapp_account(&app, &setup.business.id, None).await;
        let phones: Vec<String> = (0..CUSTOMERS).map(|_| unique_phone()).collect();
        let mut sent: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut n = 0;
        for phone in &phones {
            n += 1;
            let text = format!("m{n}");
            receive_whatsapp(&app, &whatsapp, phone, &text).await;
            sent.entry(phone.clone()).or_default().push(text);
        }
        app.settle().await;

        kustomer.down();
        let down_since = app.stack.now_ms();
        while app.stack.now_ms() - down_since < OUTAGE.as_millis() as i64 {
            let phone = &phones[n % CUSTOMERS];
            n += 1;
            let text = format!("m{n}");
            let (calls, started) = (kustomer.calls().len(), app.stack.now_ms());
            receive_whatsapp(&app, &whatsapp, phone, &text).await;
            assert_eq!(
                (kustomer.calls().len(), app.stack.now_ms()),
                (calls, started),
                "the chat path never waits on Kustomer"
            );
            sent.entry(phone.clone()).or_default().push(text);
            app.settle().await;
            app.stack.advance(EVERY);
            app.settle().await;
        }
        let during = connector_of(&app, setup.id()).await["status"].clone();
        assert!(
            during["backlog"].as_u64().is_some_and(|backlog| backlog > 0),
            "the backlog is shown: {during}"
        );
        let last_error = text(&during["last_error"]);
        assert!(
            last_error.contains("could not be reached") || last_error.contains("did not answer"),
            "the last error is shown: {during}"
        );
        assert!(
            kustomer.received().iter().any(|call| call.status.is_none()),
            "the work was tried while Kustomer was down"
        );

        kustomer.up();
        app.settle_within(SETTLE_HORIZON).await;
        app.sweep().await;
        app.settle_within(SETTLE_HORIZON).await;
        assert!(
            sync_log(&app, setup.id(), "status=pending").await.is_empty(),
            "the backlog drained"
        );
        let total: usize = sent.values().map(Vec::len).sum();
        let conversations = kustomer.conversations();
        let written: usize = conversations
            .iter()
            .map(|conversation| kustomer.messages(text(&conversation["id"])).len())
            .sum();
        assert_eq!(written, total, "every message once");
        assert_eq!(kustomer.customers().len(), CUSTOMERS, "each customer once");
        assert_eq!(conversations.len(), CUSTOMERS, "each conversation once");
        for conversation in &conversations {
            let previews: Vec<String> = kustomer
                .messages(text(&conversation["id"]))
                .iter()
                .map(|message| text(&message["attributes"]["preview"]).to_owned())
                .collect();
            let phone = phones
                .iter()
                .find(|phone| sent[*phone].first() == previews.first())
                .unwrap_or_else(|| panic!("a conversation of ours: {previews:?}"));
            assert_eq!(previews, sent[phone], "every message once, in order");
        }
        let log = sync_log(&app, setup.id(), "").await;
        assert!(
            !log.iter()
                .any(|entry| entry["status"] == "failed" || entry["status"] == "dead"),
            "{log:#?}"
        );
    });
}
