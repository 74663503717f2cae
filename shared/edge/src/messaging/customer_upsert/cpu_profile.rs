//! The sync's own computing, natively and phase by phase, on the bench's batch of 1000 customers
//! (`bench/sync-floor.mjs`): everything the function does between the body and the answer but
//! D1's work. Ignored by default; run it optimised, as the bundles are built:
//! `cargo test -p edge --release --lib customer_upsert::cpu_profile -- --ignored --nocapture`.
//! Native time is not the bundle's time, but the proportions and the allocations are a guide.

use super::*;
use crate::testing::Fixture;
use domain::api::customers::SyncOut;
use std::hint::black_box;
use std::time::{Duration, Instant};

const PHASES: [&str; 8] = [
    "the body's rules, split into items",
    "items read, validated, phones normalised",
    "ids drawn",
    "the keys to look up (matching: the stored ones read)",
    "planning",
    "the write statements' JSON",
    "the events statement",
    "the answer's JSON",
];
const ROUNDS: usize = 200;

/// `customers('ours', 0)` of the bench, written as `JSON.stringify` writes it; `renamed` as its
/// matching case sends them again.
fn bench_body(renamed: bool) -> String {
    let items: Vec<String> = (0..MAX_BATCH)
        .map(|n| {
            let suffix = if renamed { " (renamed)" } else { "" };
            let parity = if n % 2 == 1 { "odd" } else { "even" };
            format!(
                r#"{{"external_id":"FLOOR-ours-0-{n}","external_system":"salesforce","name":"Customer ours 0-{n}{suffix}","email":"customer.ours.0.{n}@example.com","phone":"+35381{n:07}","tags":["bench","{parity}"],"custom_fields":{{"crm_segment":"enterprise","contract_value":{n}}}}}"#
            )
        })
        .collect();
    format!(r#"{{"customers":[{}]}}"#, items.join(","))
}

/// What D1 answers `find_known` when every customer of the batch is stored, with these ids.
fn stored_keys(ids: &[CustomerId]) -> String {
    let rows: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            format!(r#"["{id}","FLOOR-ours-0-{n}","customer.ours.0.{n}@example.com","+35381{n:07}",null]"#)
        })
        .collect();
    format!("[{}]", rows.join(","))
}

fn must<T>(result: Result<T, ApiError>) -> T {
    result.unwrap_or_else(|error| panic!("{error:?}"))
}

/// One sync's phases, each timed; `stored` is D1's answer to the read, None when nothing is.
fn one_sync(fixture: &Fixture, tenant: &Tenant, body: &[u8], stored: Option<&str>) -> [Duration; 8] {
    let mut laps = [Duration::ZERO; 8];
    let mut started = Instant::now();
    let mut lap = |phase: usize| {
        laps[phase] = started.elapsed();
        started = Instant::now();
    };
    let parsed: CustomersIn = must(domain::json::from_batch_request(body));
    lap(0);
    let country = must(check_batch(&parsed, tenant));
    let (external_ids, drafts) = must(read_items(&parsed, country));
    lap(1);
    let fresh_ids = must(fresh_ids(drafts.len()));
    lap(2);
    let valid: Vec<&CustomerDraft> = drafts.iter().filter_map(|draft| draft.as_ref().ok()).collect();
    black_box(customers::known_keys(&valid));
    let known = stored.map_or_else(Vec::new, |text| must(customers::known_from_json(text)));
    lap(3);
    let plan = upsert::plan(known, &drafts, &fresh_ids);
    lap(4);
    let writes = planned_writes(&plan, &drafts);
    let now = runtime::now();
    black_box(must(customers::write(&fixture.db, tenant, now, &writes)));
    lap(5);
    let randoms = must(runtime::randoms(writes.len()));
    let events = events_of(&writes, randoms);
    let guard = Guard::SubjectUpdatedAt(now.to_rfc3339());
    black_box(must(webhook_events::record(
        &fixture.db,
        tenant,
        Some("https://api.example"),
        now,
        &events,
        guard,
    )));
    lap(6);
    drop(writes);
    let answer = serde_json::to_string(&SyncOut::from(outcomes(plan, external_ids)));
    black_box(answer.unwrap_or_else(|error| panic!("{error}")));
    lap(7);
    laps
}

/// Each phase's median and least time: on a shared machine the least is the one others disturbed
/// least.
fn report(case: &str, rounds: Vec<[Duration; 8]>) {
    let micros = |time: Duration| time.as_secs_f64() * 1e6;
    let median_and_least = |mut times: Vec<Duration>| {
        times.sort();
        (micros(times[times.len() / 2]), micros(times[0]))
    };
    eprintln!("\n{case}: {ROUNDS} rounds, median and least (µs)");
    for (phase, name) in PHASES.iter().enumerate() {
        let (median, least) = median_and_least(rounds.iter().map(|laps| laps[phase]).collect());
        eprintln!("  {median:>8.1} {least:>8.1}  {name}");
    }
    let (median, least) = median_and_least(rounds.iter().map(|laps| laps.iter().sum()).collect());
    eprintln!("  {median:>8.1} {least:>8.1}  in all");
}

#[test]
#[ignore = "a measure, not a test: run it optimised with --ignored --nocapture"]
fn the_syncs_own_computing_phase_by_phase() {
    let fixture = Fixture::new();
    fixture.run(async {
        let tenant = fixture.business("Acme").await;
        let ids = fresh_ids(MAX_BATCH).unwrap_or_else(|error| panic!("{error:?}"));
        let stored = stored_keys(&ids);
        for (case, body, stored) in [
            ("1000 new customers", bench_body(false), None),
            (
                "1000 matching customers, each renamed",
                bench_body(true),
                Some(stored.as_str()),
            ),
        ] {
            for _ in 0..10 {
                one_sync(&fixture, &tenant, body.as_bytes(), stored);
            }
            let rounds = (0..ROUNDS)
                .map(|_| one_sync(&fixture, &tenant, body.as_bytes(), stored))
                .collect();
            report(case, rounds);
        }
    });
}
