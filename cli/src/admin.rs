//! `crm-edge admin …`: the operator's commands, with the admin token: businesses, their API
//! keys, their channel accounts and their CRM connectors.

use crate::client::{Client, Credential, Failure, endpoint, segment};
use crate::output::{self, Column, list};
use clap::Subcommand;
use domain::api::Caller;
use domain::api::admin::{ADMIN, Admin};
use domain::crm::work::ConnectorKind;
use serde_json::{Map, Value, json};

#[derive(Subcommand)]
pub enum Command {
    /// Businesses (the tenants).
    #[command(subcommand)]
    Businesses(Businesses),
    /// A business's API keys.
    #[command(subcommand)]
    Keys(Keys),
    /// A business's channel accounts (the numbers, pages and mailboxes it receives on).
    #[command(subcommand)]
    ChannelAccounts(ChannelAccounts),
    /// A business's CRM connectors (Kustomer, Krayin, HubSpot, Salesforce): connected, tested, their sync log.
    #[command(subcommand)]
    Connectors(Connectors),
    /// A business's alerts, newest first (docs/alerts.md): what each says, open or resolved, and
    /// what became of its emails.
    ///
    /// Example: crm-edge admin alerts <business id> --open
    #[command(verbatim_doc_comment)]
    Alerts {
        business_id: String,
        /// The open ones only.
        #[arg(long)]
        open: bool,
    },
    /// What a business cost to run this month, by kind of unit, at Cloudflare's prices (`crm-edge
    /// prices`); without a business, every business's month, the account's bill at this pace and
    /// the businesses that cost most (docs/limits.md, "What each business costs").
    ///
    /// Example: crm-edge admin cost <business id>
    ///          crm-edge admin cost
    #[command(verbatim_doc_comment)]
    Cost { business_id: Option<String> },
    /// Erases one customer of a business, as a person may ask by law: their messages, files,
    /// conversations and every other row about them, and their contact in each connected CRM
    /// (docs/security.md, "Erasing a customer"). Run it again to see where it stands: `erasing`
    /// while the rest is deleted, `erased` once nothing is left.
    ///
    /// Example: crm-edge admin erase-customer <business id> <customer id>
    #[command(verbatim_doc_comment)]
    EraseCustomer {
        business_id: String,
        customer_id: String,
    },
    /// Exports one business, every row of it, into a JSON lines file (docs/operations.md,
    /// "Backups and recovery"). Its secrets stay sealed under this deployment's SECRETS_KEY: the
    /// file restores only where that key is in the ring. Prints a line per table on stderr.
    ///
    /// Example: crm-edge admin backup <business id> --file acme.jsonl
    #[command(verbatim_doc_comment)]
    Backup {
        business_id: String,
        /// The file to write (FILE.part meanwhile).
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Restores a business from its backup file where it does not exist (refused where it does):
    /// the whole file is checked first (here, then every line's MAC by the deployment, with
    /// nothing written), then sent page by page; the business's writes begin when the last page
    /// has checked every table's rows. Stopped, it can be run again (it discards what the
    /// stopped run wrote). The business comes back in quarantine: its channel accounts,
    /// connectors, webhooks and CRM links paused, its queued sends failed, its pending deliveries
    /// and CRM work dead-lettered, its keys and sessions revoked (unless --keep-access): resume
    /// what should run again with `crm-edge admin resume`.
    ///
    /// Example: crm-edge admin restore --file acme.jsonl
    ///          crm-edge admin restore --discard <business id>
    #[command(verbatim_doc_comment)]
    Restore {
        /// A file `crm-edge admin backup` wrote.
        #[arg(long, required_unless_present = "discard", conflicts_with = "discard")]
        file: Option<std::path::PathBuf>,
        /// Instead of restoring: discards a restore of this business that broke off and will not
        /// be run again (what it wrote deleted, its addresses and directory entry let go).
        #[arg(long, value_name = "BUSINESS_ID")]
        discard: Option<String>,
        /// Keep the API keys, console sessions and embedding tokens the backup holds (revoked by
        /// default: a key revoked after the backup was taken would work again).
        #[arg(long)]
        keep_access: bool,
    },
    /// Switches back on what a restore paused: every part, or those named (channel_accounts,
    /// connectors, webhooks, links); prints what still waits.
    ///
    /// Example: crm-edge admin resume <business id> --part webhooks --part links
    #[command(verbatim_doc_comment)]
    Resume {
        business_id: String,
        /// A part to resume (every part when none is given).
        #[arg(long = "part")]
        parts: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum Businesses {
    /// Creates a business; prints its id.
    ///
    /// Example: crm-edge admin businesses create "Acme Dental" --default-country IE
    #[command(verbatim_doc_comment)]
    Create {
        name: String,
        /// The country of phone numbers its CRM writes without one (ISO 3166 alpha-2).
        #[arg(long)]
        default_country: Option<String>,
    },
    /// One business, with its rate limit and the sites that may frame its inbox.
    Show { business_id: String },
    /// Moves a business to another shard: pauses its writes (answered 503 meanwhile), copies its
    /// rows, verifies every row, switches, then deletes the old copy. Takes a few minutes of
    /// waiting for every isolate to see each change; stopped, it can be run again (it copies
    /// over). With --abort, before the switch: ends the pause (the business stays where it was)
    /// and deletes what was copied; stopped, it can be run again too.
    ///
    /// Example: crm-edge admin businesses move <business id> --to 1
    ///          crm-edge admin businesses move <business id> --abort
    #[command(verbatim_doc_comment)]
    Move {
        business_id: String,
        /// The shard to move to, by number (the first is 0).
        #[arg(long, required_unless_present = "abort", conflicts_with = "abort")]
        to: Option<u16>,
        /// Aborts the move under way (before its switch).
        #[arg(long)]
        abort: bool,
    },
}

#[derive(Subcommand)]
pub enum Keys {
    /// Issues a key; the key itself is shown only this once.
    ///
    /// Example: crm-edge admin keys create <business id> --name "HubSpot sync"
    #[command(verbatim_doc_comment)]
    Create {
        business_id: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// The business's keys, by prefix (never the keys themselves).
    List { business_id: String },
    /// Revokes a key at once (revoking a revoked key changes nothing).
    Revoke { key_id: String },
    /// The business's API usage by endpoint over the last 30 days (or 48 hours), of all its
    /// keys or one; the figures by day or hour are in --json.
    ///
    /// Example: crm-edge admin keys usage <business id> --by hour --key <key id>
    #[command(verbatim_doc_comment)]
    Usage {
        business_id: String,
        /// day (the default) or hour.
        #[arg(long)]
        by: Option<String>,
        /// One key's usage only.
        #[arg(long = "key")]
        key_id: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ChannelAccounts {
    /// The business's channel accounts and the path each provider posts to.
    List { business_id: String },
    /// Adds a channel account.
    ///
    /// Example: crm-edge admin channel-accounts add <business id> --channel sms --provider twilio
    ///          --address +15551230000 --secret auth_token=@twilio-token.txt
    #[command(verbatim_doc_comment)]
    Add {
        business_id: String,
        #[arg(long, value_parser = ["whatsapp", "email", "sms", "facebook", "instagram"])]
        channel: String,
        #[arg(long, value_parser = ["meta", "twilio", "mailgun"])]
        provider: String,
        /// The phone number, page, account or mail address.
        #[arg(long)]
        address: String,
        #[arg(long)]
        name: Option<String>,
        /// `key=value`: a provider setting (repeatable).
        #[arg(long = "setting", value_parser = crate::key_value)]
        settings: Vec<(String, String)>,
        /// `key=value`, or `key=@FILE` to read the value from a file and keep it out of the
        /// shell's history (repeatable).
        #[arg(long = "secret", value_parser = crate::key_value)]
        secrets: Vec<(String, String)>,
    },
    /// Pauses an account made for an address its business does not own, keeping its
    /// conversations, and hands the address to its owner (or frees it with no --to).
    ///
    /// Example: crm-edge admin channel-accounts release <account id> --to <owner's business id>
    #[command(verbatim_doc_comment)]
    Release {
        account_id: String,
        /// The business that owns the address.
        #[arg(long = "to")]
        to_business_id: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum Connectors {
    /// The business's connectors, each with its health and the work waiting.
    List { business_id: String },
    /// Connects a CRM with its token (docs/connectors.md: each CRM's settings and secrets).
    ///
    /// Example: crm-edge admin connectors add <business id> --kind hubspot
    ///          --secret access_token=@hubspot-token.txt --setting sync_companies=true
    #[command(verbatim_doc_comment)]
    Add {
        business_id: String,
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ConnectorKind::ALL.map(ConnectorKind::as_str)))]
        kind: String,
        #[arg(long)]
        name: Option<String>,
        /// `key=value`: a setting (repeatable); `true`, `false` and whole numbers are sent as
        /// such, anything else as text.
        #[arg(long = "setting", value_parser = crate::key_value)]
        settings: Vec<(String, String)>,
        /// `key=value`, or `key=@FILE` to read the value from a file and keep it out of the
        /// shell's history (repeatable).
        #[arg(long = "secret", value_parser = crate::key_value)]
        secrets: Vec<(String, String)>,
    },
    /// Tests the connection: who the credentials belong to, or why the CRM refused them (exit 3).
    Test { connector_id: String },
    /// The connector's sync log, newest first.
    ///
    /// Example: crm-edge admin connectors sync-log <connector id> --status failed
    #[command(verbatim_doc_comment)]
    SyncLog {
        connector_id: String,
        #[arg(long, value_parser = ["pending", "succeeded", "skipped", "failed", "dead"])]
        status: Option<String>,
    },
    /// Kustomer's customer with this email, asked of Kustomer now (the guide's "Customer Lookup
    /// Test"); prints its id and name, or "null" when Kustomer has none.
    ///
    /// Example: crm-edge admin connectors find-customer <connector id> test@example.com
    #[command(verbatim_doc_comment)]
    FindCustomer { connector_id: String, email: String },
    /// Opens a titled conversation in Kustomer on a Kustomer customer (the guide's "Ticket
    /// Creation Test"); prints the new conversation's id.
    ///
    /// Example: crm-edge admin connectors open-conversation <connector id> <kustomer customer id>
    ///          "Test Support Request" --channel chat
    #[command(verbatim_doc_comment)]
    OpenConversation {
        connector_id: String,
        customer_id: String,
        title: String,
        #[arg(long, default_value = "chat", value_parser = ["chat", "email", "sms", "whatsapp", "facebook", "instagram", "voice"])]
        channel: String,
    },
}

const CONNECTOR: &[&str] = &[
    "id",
    "business_id",
    "kind",
    "name",
    "enabled",
    "settings",
    "secrets_set",
    "webhook_path",
    "created_at",
];
const CONNECTORS: &[Column] = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("NAME", "name"),
    ("ENABLED", "enabled"),
    ("WAITING", "/status/backlog"),
    ("LAST ERROR", "/status/last_error"),
];
const SYNC_LOG: &[Column] = &[
    ("UPDATED", "updated_at"),
    ("OPERATION", "operation"),
    ("STATUS", "status"),
    ("ATTEMPTS", "attempts"),
    ("CRM ID", "crm_id"),
    ("LAST ERROR", "last_error"),
];

const BUSINESS: &[&str] = &[
    "id",
    "name",
    "default_country",
    "created_at",
    "rate_limit",
    "embed_frame_ancestors",
];
const KEY: &[&str] = &[
    "id",
    "business_id",
    "name",
    "prefix",
    "created_at",
    "revoked_at",
    "last_used_at",
    "last_used_address",
    "last_used_endpoint",
];
const KEYS: &[Column] = &[
    ("ID", "id"),
    ("PREFIX", "prefix"),
    ("NAME", "name"),
    ("CREATED", "created_at"),
    ("REVOKED", "revoked_at"),
    ("LAST USED", "last_used_at"),
];
const USAGE: &[Column] = &[
    ("ENDPOINT", "endpoint"),
    ("REQUESTS", "requests"),
    ("2XX", "status_2xx"),
    ("3XX", "status_3xx"),
    ("4XX", "status_4xx"),
    ("5XX", "status_5xx"),
    ("RATE LIMITED", "rate_limited"),
];
const COST_UNITS: &[Column] = &[("UNIT", "meter"), ("COUNT", "count"), ("COST", "/cost/usd")];
const COST_BUSINESSES: &[Column] = &[
    ("BUSINESS", "business_id"),
    ("MONTH TO DATE", "/month_to_date/usd"),
    ("PROJECTED", "/projected/usd"),
];
const ALERTS: &[Column] = &[
    ("RAISED", "raised_at"),
    ("STATE", "state"),
    ("RULE", "kind"),
    ("MESSAGE", "message"),
    ("RESOLVED", "resolved_at"),
    ("EMAIL", "raised_email"),
];
const ACCOUNT: &[&str] = &[
    "id",
    "business_id",
    "channel",
    "provider",
    "address",
    "name",
    "settings",
    "secrets_set",
    "webhook_path",
    "created_at",
];
const ERASURE: &[&str] = &[
    "customer_id",
    "status",
    "requested_at",
    "requested_by",
    "erased_at",
    "deleted",
];

const ERASURE_CRM: &[Column] = &[
    ("CONNECTOR", "connector_id"),
    ("CRM", "crm"),
    ("ACTION", "action"),
    ("STATUS", "status"),
    ("ERROR", "error"),
];

const ACCOUNTS: &[Column] = &[
    ("ID", "id"),
    ("CHANNEL", "channel"),
    ("PROVIDER", "provider"),
    ("ADDRESS", "address"),
    ("NAME", "name"),
    ("SECRETS SET", "secrets_set"),
    ("WEBHOOK PATH", "webhook_path"),
];

/// Steps a move (`to`: the shard) or its abort (`to`: none) through to its end, telling each
/// step on stderr: the last step's answer.
fn move_business(step: &dyn Fn(Value) -> Result<Value, Failure>, to: Option<u16>) -> Result<Value, Failure> {
    let mut cursor = Value::Null;
    let mut rows = 0;
    loop {
        let answer = match to {
            Some(to) => step(json!({ "to_shard": to, "cursor": cursor }))?,
            None => step(json!({ "cursor": cursor }))?,
        };
        let phase = answer["phase"].as_str().unwrap_or_default().to_owned();
        rows += answer["rows"].as_u64().unwrap_or(0);
        if phase == "done" || phase == "aborted" {
            return Ok(answer);
        }
        let wait = answer["wait_seconds"].as_u64().unwrap_or(0);
        eprintln!(
            "{phase}: {rows} rows so far{}",
            if wait > 0 {
                format!(", waiting {wait} s")
            } else {
                String::new()
            }
        );
        std::thread::sleep(std::time::Duration::from_secs(wait));
        cursor = answer["cursor"].clone();
    }
}

pub fn run(client: &Client, command: Command, json: bool) -> Result<u8, Failure> {
    let call = |operation: Admin, ids: &[&str], query: &str, body: Option<Value>| {
        let (method, path) = endpoint(&ADMIN, operation, Caller::Admin, ids)?;
        client.call(
            method,
            &format!("{path}{query}"),
            Credential::Admin,
            body.as_ref(),
        )
    };
    let (answer, shown) = match command {
        Command::Businesses(Businesses::Create {
            name,
            default_country,
        }) => {
            let mut body = json!({ "name": name });
            if let Some(country) = default_country {
                body["default_country"] = Value::from(country);
            }
            let answer = call(Admin::CreateBusiness, &[], "", Some(body))?;
            let shown = output::fields(&answer, BUSINESS);
            (answer, shown)
        }
        Command::Businesses(Businesses::Move {
            business_id,
            to,
            abort,
        }) => {
            let step = if abort {
                Admin::AbortMove
            } else {
                Admin::MoveBusiness
            };
            let to = if abort { None } else { to };
            let answer = move_business(&|body| call(step, &[&business_id], "", Some(body)), to)?;
            let shown = output::fields(&answer, &["business_id", "shard", "phase"]);
            (answer, shown)
        }
        Command::Backup { business_id, file } => {
            let page = |body| call(Admin::ExportBusiness, &[&business_id], "", Some(body));
            let answer = crate::backup::backup(&page, &file)?;
            let shown = output::fields(&answer, &["business_id", "taken_at", "rows", "file"]);
            (answer, shown)
        }
        Command::Restore {
            discard: Some(business),
            ..
        } => {
            let answer = loop {
                let answer = call(Admin::DiscardRestore, &[&business], "", None)?;
                if answer["phase"] != "discarding" {
                    break answer;
                }
                eprintln!("discarding: {} rows deleted", answer["rows"]);
            };
            let shown = output::fields(&answer, &["business_id", "shard", "phase"]);
            (answer, shown)
        }
        Command::Restore {
            file: Some(file),
            keep_access,
            ..
        } => {
            let business = crate::backup::business_of(&file)?;
            let answer = crate::backup::restore(
                &|mut body| {
                    body["keep_access"] = keep_access.into();
                    call(Admin::RestoreBusiness, &[&business], "", Some(body))
                },
                &file,
            )?;
            let shown = output::fields(&answer, &["business_id", "shard", "phase", "quarantined"]);
            (answer, shown)
        }
        Command::Restore { .. } => {
            return Err(Failure::Usage("restore takes --file, or --discard".to_owned()));
        }
        Command::Resume { business_id, parts } => {
            let body = if parts.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({ "parts": parts })
            };
            let answer = call(Admin::ResumeBusiness, &[&business_id], "", Some(body))?;
            let shown = output::fields(&answer, &["resumed", "waiting"]);
            (answer, shown)
        }
        Command::Businesses(Businesses::Show { business_id }) => {
            let answer = call(Admin::GetBusiness, &[&business_id], "", None)?;
            let shown = output::fields(&answer, BUSINESS);
            (answer, shown)
        }
        Command::Keys(Keys::Create { business_id, name }) => {
            let body = with_name(json!({}), name);
            let answer = call(Admin::IssueApiKey, &[&business_id], "", Some(body))?;
            let mut shown = output::fields(&answer, KEY);
            shown.push_str(&format!(
                "\nkey  {}\n(shown only now: store it where it is needed)\n",
                output::cell(&answer["key"])
            ));
            (answer, shown)
        }
        Command::Keys(Keys::List { business_id }) => {
            let answer = call(Admin::ListApiKeys, &[&business_id], "", None)?;
            let shown = list(&answer, "api_keys", KEYS);
            (answer, shown)
        }
        Command::Keys(Keys::Usage {
            business_id,
            by,
            key_id,
        }) => {
            let mut query = format!("?by={}", segment(by.as_deref().unwrap_or("day"))?);
            if let Some(key_id) = key_id {
                query.push_str(&format!("&key_id={}", segment(&key_id)?));
            }
            let answer = call(Admin::GetApiUsage, &[&business_id], &query, None)?;
            let shown = list(&answer, "endpoints", USAGE);
            (answer, shown)
        }
        Command::Cost { business_id } => {
            let answer = match &business_id {
                Some(business_id) => call(Admin::GetBusinessCost, &[business_id], "", None)?,
                None => call(Admin::GetCost, &[], "", None)?,
            };
            let shown = cost_shown(&answer);
            (answer, shown)
        }
        Command::Alerts { business_id, open } => {
            let query = format!("?state={}&limit=200", if open { "open" } else { "all" });
            let answer = call(Admin::GetAlerts, &[&business_id], &query, None)?;
            let shown = list(&answer, "alerts", ALERTS);
            (answer, shown)
        }
        Command::EraseCustomer {
            business_id,
            customer_id,
        } => {
            let answer = call(Admin::EraseCustomer, &[&business_id, &customer_id], "", None)?;
            let shown = output::fields(&answer, ERASURE) + &list(&answer, "crm", ERASURE_CRM);
            (answer, shown)
        }
        Command::Keys(Keys::Revoke { key_id }) => {
            let answer = call(Admin::RevokeApiKey, &[&key_id], "", None)?;
            let shown = output::fields(&answer, KEY);
            (answer, shown)
        }
        Command::ChannelAccounts(ChannelAccounts::List { business_id }) => {
            let answer = call(Admin::ListChannelAccounts, &[&business_id], "", None)?;
            let shown = list(&answer, "channel_accounts", ACCOUNTS);
            (answer, shown)
        }
        Command::ChannelAccounts(ChannelAccounts::Add {
            business_id,
            channel,
            provider,
            address,
            name,
            settings,
            secrets,
        }) => {
            let body = with_name(
                json!({
                    "channel": channel,
                    "provider": provider,
                    "address": address,
                    "settings": object(settings, false)?,
                    "secrets": object(secrets, true)?,
                }),
                name,
            );
            let answer = call(Admin::CreateChannelAccount, &[&business_id], "", Some(body))?;
            let shown = output::fields(&answer, ACCOUNT);
            (answer, shown)
        }
        Command::ChannelAccounts(ChannelAccounts::Release {
            account_id,
            to_business_id,
        }) => {
            let body = json!({ "to_business_id": to_business_id });
            let answer = call(Admin::ReleaseChannelAccount, &[&account_id], "", Some(body))?;
            let shown = output::fields(&answer, ACCOUNT);
            (answer, shown)
        }
        Command::Connectors(Connectors::List { business_id }) => {
            let answer = call(Admin::ListConnectors, &[&business_id], "", None)?;
            let shown = list(&answer, "connectors", CONNECTORS);
            (answer, shown)
        }
        Command::Connectors(Connectors::Add {
            business_id,
            kind,
            name,
            settings,
            secrets,
        }) => {
            let body = with_name(
                json!({
                    "kind": kind,
                    "settings": settings_object(settings),
                    "secrets": object(secrets, true)?,
                }),
                name,
            );
            let answer = call(Admin::CreateConnector, &[&business_id], "", Some(body))?;
            let shown = output::fields(&answer, CONNECTOR);
            (answer, shown)
        }
        Command::Connectors(Connectors::Test { connector_id }) => {
            let answer = call(Admin::TestConnector, &[&connector_id], "", None)?;
            let ok = answer["ok"].as_bool() == Some(true);
            let shown = if ok {
                // Who the credentials belong to: the CRM's name for them, else what it said.
                let user = &answer["user"];
                let who = user["name"]
                    .as_str()
                    .map_or_else(|| output::cell(user), str::to_owned);
                format!("ok: {who}\n")
            } else {
                format!("refused: {}\n", output::cell(&answer["reason"]))
            };
            print!("{}", if json { output::json(&answer) } else { shown });
            return Ok(if ok { 0 } else { 3 });
        }
        Command::Connectors(Connectors::SyncLog { connector_id, status }) => {
            let mut query = "?limit=100".to_owned();
            if let Some(status) = status {
                query.push_str(&format!("&status={}", segment(&status)?));
            }
            let answer = call(Admin::GetConnectorSyncLog, &[&connector_id], &query, None)?;
            let shown = list(&answer, "entries", SYNC_LOG);
            (answer, shown)
        }
        Command::Connectors(Connectors::FindCustomer { connector_id, email }) => {
            let query = crate::client::query(&[("email", Some(email))]);
            let answer = call(Admin::FindConnectorCrmCustomer, &[&connector_id], &query, None)?;
            let customer = &answer["customer"];
            let shown = if customer.is_null() {
                "null\n".to_owned()
            } else {
                format!(
                    "{}\t{}\n",
                    output::cell(&customer["id"]),
                    output::cell(&customer["attributes"]["name"])
                )
            };
            (answer, shown)
        }
        Command::Connectors(Connectors::OpenConversation {
            connector_id,
            customer_id,
            title,
            channel,
        }) => {
            let body = json!({ "customer_id": customer_id, "title": title, "channel": channel });
            let answer = call(
                Admin::OpenConnectorCrmConversation,
                &[&connector_id],
                "",
                Some(body),
            )?;
            let shown = format!("{}\n", output::cell(&answer["conversation"]["id"]));
            (answer, shown)
        }
    };
    print!("{}", if json { output::json(&answer) } else { shown });
    Ok(0)
}

/// A cost answer for people: the month's figures, then its units (a business's) or the
/// businesses that cost most (the operator's).
fn cost_shown(answer: &Value) -> String {
    let usd = |field: &str| answer[field]["usd"].as_str().unwrap_or("-").to_owned();
    let mut figures = vec![
        ("month", answer["month"].as_str().unwrap_or("-").to_owned()),
        ("month to date", usd("month_to_date")),
        ("projected", usd("projected")),
    ];
    if answer.get("projected_bill").is_some() {
        figures.push(("account's bill, projected", usd("projected_bill")));
        figures.push(("businesses", output::cell(&answer["businesses_counted"])));
    }
    figures.push((
        "prices as of",
        answer["prices_as_of"].as_str().unwrap_or("-").to_owned(),
    ));
    let width = figures.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut shown: String = figures
        .iter()
        .map(|(name, value)| format!("{name:<width$}  {value}\n"))
        .collect();
    shown.push('\n');
    if answer.get("businesses").is_some() {
        shown.push_str(&list(answer, "businesses", COST_BUSINESSES));
    } else {
        shown.push_str(&list(answer, "units", COST_UNITS));
    }
    shown
}

/// `body` with its `name`, when one was given.
fn with_name(mut body: Value, name: Option<String>) -> Value {
    if let Some(name) = name {
        body["name"] = Value::from(name);
    }
    body
}

/// `key=value` settings as an object: `true`, `false` and whole numbers as JSON's, the rest as
/// text.
fn settings_object(pairs: Vec<(String, String)>) -> Value {
    let value = |text: String| match text.as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => text.parse::<i64>().map_or(Value::from(text), Value::from),
    };
    Value::Object(pairs.into_iter().map(|(key, text)| (key, value(text))).collect())
}

/// `key=value` pairs as an object; with `from_files`, a value `@FILE` is the file's content
/// without its final line break.
fn object(pairs: Vec<(String, String)>, from_files: bool) -> Result<Value, Failure> {
    let mut object = Map::new();
    for (key, value) in pairs {
        let value = match value.strip_prefix('@') {
            Some(file) if from_files => std::fs::read_to_string(file)
                .map_err(|e| Failure::Usage(format!("--secret {key}=@{file}: {e}")))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            _ => value,
        };
        object.insert(key, Value::from(value));
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Steps `move_business` through the answers given, one a call: the bodies it sent.
    fn stepped(to: Option<u16>, answers: &[Value]) -> (Vec<Value>, Value) {
        let sent = RefCell::new(Vec::new());
        let step = |body: Value| {
            let mut sent = sent.borrow_mut();
            sent.push(body);
            Ok(answers[sent.len() - 1].clone())
        };
        let last = move_business(&step, to).unwrap_or_else(|error| panic!("{error:?}"));
        (sent.into_inner(), last)
    }

    #[test]
    fn a_cost_shows_the_months_figures_and_its_units_or_businesses() {
        let business = json!({
            "month": "2026-11", "prices_as_of": "2026-11-28",
            "month_to_date": { "picodollars": 44_000_000_000u64, "usd": "$0.044" },
            "projected": { "picodollars": 132_000_000_000u64, "usd": "$0.132" },
            "units": [{ "meter": "d1_rows_written", "count": 40_000, "cost": { "picodollars": 40_000_000_000u64, "usd": "$0.04" } }],
        });
        let shown = cost_shown(&business);
        assert!(
            shown.contains("month to date  $0.044\n") && shown.contains("projected      $0.132\n"),
            "{shown}"
        );
        assert!(shown.contains("d1_rows_written  40000  $0.04"), "{shown}");
        let operator = json!({
            "month": "2026-11", "prices_as_of": "2026-11-28", "businesses_counted": 1,
            "month_to_date": { "usd": "$0.044" }, "projected": { "usd": "$0.132" }, "projected_bill": { "usd": "$5.00" },
            "businesses": [{ "business_id": "b-1", "month_to_date": { "usd": "$0.044" }, "projected": { "usd": "$0.132" } }],
        });
        let shown = cost_shown(&operator);
        assert!(
            shown.contains("account's bill, projected  $5.00") && shown.contains("b-1       $0.044"),
            "{shown}"
        );
    }

    #[test]
    fn a_connectors_settings_keep_their_booleans_and_whole_numbers_and_the_rest_as_text() {
        let pairs = [
            ("sync_companies", "true"),
            ("sync_messages", "false"),
            ("lead_source_id", "7"),
            ("ticket_pipeline", "0"),
            ("api_url", "https://api.hubapi.com"),
            ("customer_id_property", "1st"),
        ]
        .map(|(key, value)| (key.to_owned(), value.to_owned()));
        assert_eq!(
            settings_object(pairs.to_vec()),
            json!({
                "sync_companies": true, "sync_messages": false, "lead_source_id": 7, "ticket_pipeline": 0,
                "api_url": "https://api.hubapi.com", "customer_id_property": "1st",
            })
        );
    }

    #[test]
    fn an_abort_hands_each_cursor_back_without_a_shard_until_it_is_aborted() {
        let answers = [
            json!({ "phase": "deleting", "rows": 200, "wait_seconds": 0, "cursor": "delete:27" }),
            json!({ "phase": "aborted", "rows": 12, "wait_seconds": 0, "cursor": null }),
        ];
        let (sent, last) = stepped(None, &answers);
        assert_eq!(
            sent,
            [json!({ "cursor": null }), json!({ "cursor": "delete:27" })]
        );
        assert_eq!(last["phase"], "aborted");
    }

    #[test]
    fn a_move_names_its_shard_in_every_step_until_it_is_done() {
        let answers = [
            json!({ "phase": "copying", "rows": 3, "wait_seconds": 0, "cursor": "verify:0:0:0" }),
            json!({ "phase": "done", "rows": 0, "wait_seconds": 0, "cursor": null }),
        ];
        let (sent, _) = stepped(Some(1), &answers);
        assert_eq!(
            sent,
            [
                json!({ "to_shard": 1, "cursor": null }),
                json!({ "to_shard": 1, "cursor": "verify:0:0:0" })
            ]
        );
    }
}
