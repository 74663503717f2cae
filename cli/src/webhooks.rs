//! `crm-edge webhooks …`: the business's webhook endpoints, their deliveries and attempts, and
//! replaying or testing them (the API key's endpoints under `/api-webhooks`).

use crate::client::{Client, Credential, Failure, endpoint, query};
use crate::output::{self, Column, list};
use clap::Subcommand;
use domain::api::Caller;
use domain::api::webhooks::{self, Webhooks};
use serde_json::{Map, Value};

#[derive(Subcommand)]
pub enum Command {
    /// The endpoints, with whether each is enabled and since when it fails.
    ///
    /// Example: crm-edge webhooks list
    #[command(verbatim_doc_comment)]
    List,
    /// An endpoint's deliveries, newest first.
    ///
    /// Example: crm-edge webhooks deliveries <webhook id> --dead
    #[command(verbatim_doc_comment)]
    Deliveries {
        /// The webhook's id.
        webhook_id: String,
        /// Only the deliveries that gave up (dead letters).
        #[arg(long, conflicts_with = "status")]
        dead: bool,
        /// Only deliveries in this state.
        #[arg(long, value_parser = ["pending", "delivered", "dead"])]
        status: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
        limit: u16,
    },
    /// Delivers again: one delivery, or every delivery of events in a time range.
    ///
    /// Examples: crm-edge webhooks replay <webhook id> --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z
    ///           crm-edge webhooks replay <webhook id> --delivery <delivery id>
    #[command(verbatim_doc_comment)]
    Replay {
        webhook_id: String,
        /// One delivery's id.
        #[arg(long, conflicts_with_all = ["from", "to"], required_unless_present_all = ["from", "to"])]
        delivery: Option<String>,
        /// RFC 3339: events at or after this time.
        #[arg(long, requires = "to")]
        from: Option<String>,
        /// RFC 3339: events before this time.
        #[arg(long, requires = "from")]
        to: Option<String>,
    },
    /// Sends a webhook.test event now and shows the endpoint's answer; exit 1 if it failed.
    Test { webhook_id: String },
    /// The attempt log, newest first: every request made to an endpoint and its answer.
    ///
    /// Example: crm-edge webhooks attempts --webhook <webhook id> --limit 20
    #[command(verbatim_doc_comment)]
    Attempts {
        /// Only this endpoint's attempts.
        #[arg(long)]
        webhook: Option<String>,
        /// Only this event's attempts.
        #[arg(long)]
        event: Option<String>,
        /// Only this delivery's attempts.
        #[arg(long)]
        delivery: Option<String>,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
        limit: u16,
    },
}

const WEBHOOKS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("URL", "url"),
    ("EVENTS", "events"),
    ("ENABLED", "enabled"),
    ("FAILING SINCE", "failing_since"),
    ("DISABLED BECAUSE", "disabled_reason"),
];

const DELIVERIES: &[Column] = &[
    ("ID", "id"),
    ("EVENT", "event_type"),
    ("EVENT AT", "event_at"),
    ("STATUS", "status"),
    ("ATTEMPTS", "attempts"),
    ("REPLAYS", "replays"),
    ("LAST STATUS", "last_status"),
    ("LAST ERROR", "last_error"),
    ("NEXT ATTEMPT", "next_attempt_at"),
];

const ATTEMPTS: &[Column] = &[
    ("AT", "attempted_at"),
    ("WEBHOOK", "webhook_id"),
    ("EVENT", "event_type"),
    ("DELIVERY", "delivery_id"),
    ("ATTEMPT", "attempt"),
    ("OUTCOME", "outcome"),
    ("STATUS", "status_code"),
    ("MS", "duration_ms"),
    ("ERROR", "error"),
];

/// Runs the command; its exit code (1: the test delivery failed).
pub fn run(client: &Client, command: Command, json: bool) -> Result<u8, Failure> {
    let call = |operation: Webhooks, ids: &[&str], query: &str, body: Option<Value>| {
        let (method, path) = endpoint(&webhooks::WEBHOOKS, operation, Caller::ApiKey, ids)?;
        client.call(
            method,
            &format!("{path}{query}"),
            Credential::ApiKey,
            body.as_ref(),
        )
    };
    let (answer, shown, code) = match command {
        Command::List => {
            let answer = call(Webhooks::ListWebhooks, &[], "", None)?;
            let shown = list(&answer, "webhooks", WEBHOOKS);
            (answer, shown, 0)
        }
        Command::Deliveries {
            webhook_id,
            dead,
            status,
            limit,
        } => {
            let status = if dead { Some("dead".to_owned()) } else { status };
            let query = query(&[("status", status), ("limit", Some(limit.to_string()))]);
            let answer = call(Webhooks::ListWebhookDeliveries, &[&webhook_id], &query, None)?;
            let shown = list(&answer, "deliveries", DELIVERIES);
            (answer, shown, 0)
        }
        Command::Replay {
            webhook_id,
            delivery,
            from,
            to,
        } => {
            let mut body = Map::new();
            for (name, value) in [("delivery_id", delivery), ("from", from), ("to", to)] {
                if let Some(value) = value {
                    body.insert(name.to_owned(), Value::from(value));
                }
            }
            let body = Some(Value::Object(body));
            let answer = call(Webhooks::ReplayWebhookDeliveries, &[&webhook_id], "", body)?;
            let shown = format!(
                "{} deliveries queued again\n{}",
                output::cell(&answer["replayed"]),
                answer["delivery_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|id| format!("{}\n", output::cell(id)))
                    .collect::<String>()
            );
            (answer, shown, 0)
        }
        Command::Test { webhook_id } => {
            let answer = call(Webhooks::TestWebhook, &[&webhook_id], "", None)?;
            let shown = output::fields(
                &answer,
                &[
                    "delivered",
                    "event_id",
                    "status_code",
                    "duration_ms",
                    "error",
                    "response_body",
                ],
            );
            let code = if answer["delivered"] == Value::Bool(true) {
                0
            } else {
                1
            };
            (answer, shown, code)
        }
        Command::Attempts {
            webhook,
            event,
            delivery,
            limit,
        } => {
            let query = query(&[
                ("webhook_id", webhook),
                ("event_id", event),
                ("delivery_id", delivery),
                ("limit", Some(limit.to_string())),
            ]);
            let answer = call(Webhooks::ListWebhookAttempts, &[], &query, None)?;
            let shown = list(&answer, "attempts", ATTEMPTS);
            (answer, shown, 0)
        }
    };
    print!("{}", if json { output::json(&answer) } else { shown });
    Ok(code)
}
