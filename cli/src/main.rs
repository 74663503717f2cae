//! `crm-edge`: import, export and operate crm-edge from a terminal. Configuration comes from
//! flags, else the environment, else a profile of the config file (see `config`).
//!
//! Exit codes: 0 done; 1 done, but something it reports failed (rows refused, a test delivery
//! not accepted); 2 bad usage, configuration or input file; 3 the API answered with an error;
//! 4 the API could not be reached, or kept failing, through every retry.

// A command-line tool's output is its stdout and stderr (the workspace forbids them to Workers).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod admin;
mod backup;
mod client;
mod config;
mod console;
mod export;
mod import;
mod mapping;
mod output;
mod prices;
mod rows;
mod webhooks;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use client::{Client, Failure};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "crm-edge",
    version,
    about = "Import, export and operate crm-edge from a terminal",
    after_help = "Settings come from flags, else CRM_EDGE_URL, CRM_EDGE_API_KEY and \
                  CRM_EDGE_ADMIN_TOKEN, else the profile (--profile, else [default]) of \
                  ~/.config/crm-edge/config or $CRM_EDGE_CONFIG:\n\n  \
                  [default]\n  url = https://crm-edge.example.com\n  api_key = cek_...\n\n\
                  Exit codes: 0 done; 1 done, with failures it reports (rows refused, a test \
                  delivery not accepted); 2 bad usage or input; 3 the API answered with an error; \
                  4 the API was unreachable or kept failing through every retry."
)]
struct Cli {
    /// The API's base URL [default: http://127.0.0.1:8787, the local stack].
    #[arg(long, env = "CRM_EDGE_URL", global = true)]
    url: Option<String>,
    /// A business's API key (cek_…).
    #[arg(long, env = "CRM_EDGE_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    /// The operator's admin token.
    #[arg(long, env = "CRM_EDGE_ADMIN_TOKEN", global = true, hide_env_values = true)]
    admin_token: Option<String>,
    /// A profile of the config file.
    #[arg(long, env = "CRM_EDGE_PROFILE", global = true)]
    profile: Option<String>,
    /// How long to keep retrying a request that is rate limited, fails with a 5xx or cannot
    /// connect, before giving up (exit 4).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, global = true)]
    retry_for: u64,
    /// Print results as JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import data into crm-edge.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export data from crm-edge.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Webhook endpoints, deliveries and attempts (API key).
    #[command(subcommand)]
    Webhooks(webhooks::Command),
    /// Businesses, API keys and channel accounts (admin token).
    #[command(subcommand)]
    Admin(admin::Command),
    /// A link that opens the business console (prints its URL).
    ///
    /// Example: crm-edge console-link            (the API key's business)
    ///          crm-edge console-link --business <id>   (with the admin token)
    #[command(verbatim_doc_comment)]
    ConsoleLink(console::Command),
    /// Cloudflare's prices this build counts its costs at, with the page of each (--json for the
    /// table as JSON).
    Prices,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Every message after a time, as JSON Lines on stdout, oldest first.
    ///
    /// Example: crm-edge export messages --since 2026-11-01T00:00:00Z --follow > messages.jsonl
    #[command(verbatim_doc_comment)]
    Messages {
        /// An RFC 3339 time: messages created strictly after it.
        #[arg(long)]
        since: String,
        /// Keep polling for new messages until interrupted.
        #[arg(long)]
        follow: bool,
        /// Seconds between polls with --follow.
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// List each message's attachments.
        #[arg(long)]
        attachments: bool,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import customers from a CSV file (header row), JSON Lines (.jsonl) or a JSON array (.json),
    /// resumably.
    ///
    /// The file is read as a stream, in batches sent a few at a time. A checkpoint beside it
    /// (FILE.crm-edge-import.json) lets a rerun after Ctrl-C or a crash continue where it
    /// stopped, without sending a row twice; the rows the API refused are listed in
    /// FILE.errors.csv (row, external_id, code, message).
    ///
    /// CSV columns of Salesforce and HubSpot exports are recognised by name (Email, Mobile
    /// Phone, First Name, Contact ID, Record ID…); other columns become custom fields.
    ///
    /// Examples:
    ///   crm-edge import customers contacts.csv --default-country IE
    ///   crm-edge import customers contacts.csv --map "Account Ref=external_id" --map Fax=skip
    ///   crm-edge import customers contacts.jsonl --mode create --dry-run
    #[command(verbatim_doc_comment)]
    Customers {
        /// The file: .csv, .jsonl (or .ndjson), or .json (an array).
        file: PathBuf,
        /// sync or create (bulk create); both match by external_id, then email, then phone.
        #[arg(long, value_enum, default_value = "sync")]
        mode: ModeArg,
        /// `column=field`: map a CSV column to a customer field, `custom_fields.<key>`, or `skip`.
        #[arg(long = "map", value_parser = key_value)]
        map: Vec<(String, String)>,
        /// Rows per request (at most 1000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
        batch_size: u16,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=16))]
        in_flight: u8,
        /// The country of phone numbers written without one (ISO code, such as IE).
        #[arg(long)]
        default_country: Option<String>,
        /// Check every row here (names, emails, phones with --default-country) and send
        /// nothing; the refused rows go to FILE.dry-run.csv.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Sync,
    Create,
}

/// `key=value` as a pair.
fn key_value(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{value:?} is not key=value"))
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    for warning in secrets_on_the_command_line(&matches) {
        eprintln!("crm-edge: warning: {warning}");
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("crm-edge: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// A warning for each secret given as a flag: other users of the machine read a process's
/// arguments (`ps`), not its environment or a file only its owner reads.
fn secrets_on_the_command_line(matches: &ArgMatches) -> Vec<String> {
    [
        ("api_key", "--api-key", "CRM_EDGE_API_KEY"),
        ("admin_token", "--admin-token", "CRM_EDGE_ADMIN_TOKEN"),
    ]
    .into_iter()
    .filter(|(id, _, _)| matches.value_source(id) == Some(ValueSource::CommandLine))
    .map(|(_, flag, variable)| {
        format!(
            "{flag} is visible to other users in the process list; set {variable} or use a profile instead"
        )
    })
    .collect()
}

fn run(cli: Cli) -> Result<u8, Failure> {
    // An empty variable (`CRM_EDGE_URL=`) is no setting.
    let given = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let flags = config::Profile {
        url: given(cli.url),
        api_key: given(cli.api_key),
        admin_token: given(cli.admin_token),
    };
    let settings = flags.or(config::load(cli.profile.as_deref())?);
    let url = settings.url.unwrap_or_else(|| config::LOCAL_URL.to_owned());
    config::check_url(&url)?;
    let patience = std::time::Duration::from_secs(cli.retry_for);
    let client = Client::new(&url, settings.api_key, settings.admin_token, patience);
    match cli.command {
        Command::Webhooks(command) => webhooks::run(&client, command, cli.json),
        Command::Admin(command) => admin::run(&client, command, cli.json),
        Command::ConsoleLink(command) => console::run(&client, command, cli.json),
        Command::Prices => Ok(prices::run(cli.json)),
        Command::Export(ExportCommand::Messages {
            since,
            follow,
            interval,
            attachments,
        }) => {
            let options = export::Options {
                since,
                follow,
                interval: std::time::Duration::from_secs(interval.max(1)),
                include_attachments: attachments,
            };
            let written = export::messages(&client, &options, &mut std::io::stdout().lock())?;
            eprintln!("{written} messages");
            Ok(0)
        }
        Command::Import(ImportCommand::Customers {
            file,
            mode,
            map,
            batch_size,
            in_flight,
            default_country,
            dry_run,
        }) => {
            let options = import::Options {
                format: rows::Format::of(&file),
                file,
                mode: match mode {
                    ModeArg::Sync => import::Mode::Sync,
                    ModeArg::Create => import::Mode::Create,
                },
                batch_size: usize::from(batch_size),
                in_flight: usize::from(in_flight),
                overrides: map,
                default_country,
                dry_run,
                progress: !cli.json,
            };
            let summary = import::run(&client, &options)?;
            if cli.json {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            } else {
                let report = summary
                    .report
                    .as_ref()
                    .map_or_else(String::new, |path| format!(" (see {})", path.display()));
                let verb = if dry_run { "valid" } else { "stored" };
                println!(
                    "{} rows in {:.1} s: {} {verb}, {} refused{report}; {} batches sent, {} done before",
                    summary.rows,
                    summary.seconds,
                    summary.stored,
                    summary.failed,
                    summary.batches_sent,
                    summary.batches_resumed,
                );
            }
            Ok(u8::from(summary.failed > 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_given_as_a_flag_draws_a_warning_and_one_from_the_environment_does_not() {
        let warned = |args: &[&str]| {
            let matches = Cli::command()
                .try_get_matches_from(args)
                .unwrap_or_else(|error| panic!("{args:?}: {error}"));
            secrets_on_the_command_line(&matches)
        };
        let flagged = warned(&[
            "crm-edge",
            "--api-key",
            "cek_x",
            "--admin-token",
            "t",
            "console-link",
        ]);
        assert_eq!(flagged.len(), 2, "{flagged:?}");
        assert!(flagged[0].starts_with("--api-key is visible"), "{flagged:?}");
        assert!(flagged[1].starts_with("--admin-token is visible"), "{flagged:?}");
        assert_eq!(
            warned(&["crm-edge", "console-link"]),
            Vec::<String>::new(),
            "no flag"
        );
    }
}
