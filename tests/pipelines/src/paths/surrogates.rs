//! A lone UTF-16 surrogate escape in a JSON body (`tests/e2e/surrogates.test.mjs`), as
//! `JSON.stringify` writes a JavaScript string cut in the middle of an emoji, is no Unicode.
//! Rather than refusing the whole body for it, an endpoint reads it as U+FFFD (the replacement
//! character), so one broken name does not sink a batch.

use crate::app::test;
use crate::partners::unique_hex;
use crate::steps::customers::customer;
use edge::runtime::Method;

#[test]
fn a_sync_with_one_lone_surrogate_in_a_name_stores_all_three_customers_the_broken_unit_as_u_fffd() {
    test(|app| async move {
        let business = app.business("Surrogates").await;
        let emails: Vec<String> = (1..=3)
            .map(|n| format!("surrogate{n}-{}@example.com", unique_hex(8)))
            .collect();
        // Written by hand so that `\ud800` is in the body as text, as JSON.stringify('A\ud800B')
        // writes it.
        let body = format!(
            r#"{{"customers": [
      {{"name": "First Person", "email": "{}"}},
      {{"name": "A\ud800B", "email": "{}"}},
      {{"name": "Third \ud83d\ude00 Person", "email": "{}"}}
    ]}}"#,
            emails[0], emails[1], emails[2]
        );
        assert!(
            body.contains(r#""A\ud800B""#),
            "the escape is in the body as text"
        );

        let answer = app
            .request(
                Method::Post,
                "/api-customers-sync",
                &[("x-api-key", &business.key), ("content-type", "application/json")],
                body.into_bytes(),
            )
            .await
            .expect(200)
            .json();
        let results = &answer["results"];
        assert_eq!(
            (
                results["total"].as_u64(),
                results["created"].as_u64(),
                results["failed"].as_u64()
            ),
            (Some(3), Some(3), Some(0)),
            "{answer}"
        );

        let mut names = Vec::new();
        for email in &emails {
            let found = customer(&app, &business.key, "email", email)
                .await
                .expect(200)
                .json();
            names.push(found["name"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(names, ["First Person", "A\u{FFFD}B", "Third \u{1F600} Person"]);
    });
}
