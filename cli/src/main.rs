//! `crm-edge`: import, export and operate crm-edge from a terminal. Configuration comes from
//! flags, else the environment (`CRM_EDGE_URL`, `CRM_EDGE_API_KEY`, `CRM_EDGE_ADMIN_TOKEN`).
//!
//! Exit codes: 0 done; 1 done, but the API refused some rows (see the report); 2 bad usage or
//! configuration; 3 the API or the network failed.

// A command-line tool's output is its stdout and stderr (the workspace forbids them to Workers).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod client;
mod export;
mod import;
mod mapping;
mod rows;

use clap::{Parser, Subcommand, ValueEnum};
use client::Client;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "crm-edge",
    version,
    about = "Import, export and operate crm-edge from a terminal"
)]
struct Cli {
    /// The API's base URL.
    #[arg(
        long,
        env = "CRM_EDGE_URL",
        global = true,
        default_value = "http://127.0.0.1:8787"
    )]
    url: String,
    /// A business's API key (cek_…).
    #[arg(long, env = "CRM_EDGE_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    /// The operator's admin token.
    #[arg(long, env = "CRM_EDGE_ADMIN_TOKEN", global = true, hide_env_values = true)]
    admin_token: Option<String>,
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
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Every message after a time, as JSON Lines on stdout, oldest first.
    ///
    /// Example: crm-edge export messages --since 2026-11-01T00:00:00Z --follow > messages.jsonl
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
    /// Example: crm-edge import customers contacts.csv --map "Account Ref=external_id"
    Customers {
        file: PathBuf,
        /// sync (match by external_id, email, phone) or create (bulk create, by external_id).
        #[arg(long, value_enum, default_value = "sync")]
        mode: ModeArg,
        /// `column=field`: map a column to a customer field, `custom_fields.<key>`, or `skip`.
        #[arg(long = "map", value_parser = parse_map)]
        map: Vec<(String, String)>,
        /// Rows per request (at most 1000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
        batch_size: u16,
        /// The country of phone numbers written without one (ISO code, such as IE).
        #[arg(long)]
        default_country: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Sync,
    Create,
}

fn parse_map(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(column, field)| (column.to_owned(), field.to_owned()))
        .ok_or_else(|| format!("{value:?} is not column=field"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = Client::new(&cli.url, cli.api_key.clone(), cli.admin_token.clone());
    match cli.command {
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
            match export::messages(&client, &options, &mut std::io::stdout().lock()) {
                Ok(written) => {
                    eprintln!("{written} messages");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("crm-edge: {error}");
                    ExitCode::from(3)
                }
            }
        }
        Command::Import(ImportCommand::Customers {
            file,
            mode,
            map,
            batch_size,
            default_country,
        }) => {
            let options = import::Options {
                format: rows::Format::of(&file),
                file,
                mode: match mode {
                    ModeArg::Sync => import::Mode::Sync,
                    ModeArg::Create => import::Mode::Create,
                },
                batch_size: usize::from(batch_size),
                overrides: map,
                default_country,
            };
            match import::run(&client, &options, !cli.json) {
                Ok(summary) => {
                    if cli.json {
                        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
                    } else {
                        println!(
                            "{} rows in {:.1} s: {} stored, {} refused{}; {} batches sent, {} already done",
                            summary.rows,
                            summary.seconds,
                            summary.stored,
                            summary.failed,
                            summary
                                .report
                                .as_ref()
                                .map_or_else(String::new, |p| format!(" (see {})", p.display())),
                            summary.batches_sent,
                            summary.batches_resumed,
                        );
                    }
                    if summary.failed > 0 {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(error) => {
                    eprintln!("crm-edge: {error}");
                    ExitCode::from(3)
                }
            }
        }
    }
}
