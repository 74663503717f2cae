//! `crm-edge console-link`: a link that opens the business console once, within 15 minutes: the
//! business's own with its API key, or any business's with the admin token and `--business`.

use crate::client::{Client, Credential, Failure, endpoint};
use crate::output;
use clap::Args;
use domain::api::Caller;
use domain::api::admin::{ADMIN, Admin};

#[derive(Args)]
pub struct Command {
    /// The business, for the operator (with the admin token); without it, the API key's own.
    #[arg(long, value_name = "BUSINESS_ID")]
    business: Option<String>,
}

pub fn run(client: &Client, command: Command, json: bool) -> Result<u8, Failure> {
    let answer = match command.business {
        Some(business) => {
            let (method, path) = endpoint(&ADMIN, Admin::IssueConsoleLink, Caller::Admin, &[&business])?;
            client.call(method, &path, Credential::Admin, None)?
        }
        None => {
            let (method, path) = endpoint(&ADMIN, Admin::IssueConsoleLink, Caller::ApiKey, &[])?;
            client.call(method, &path, Credential::ApiKey, None)?
        }
    };
    if json {
        print!("{}", output::json(&answer));
    } else {
        // Whole, not as a table's cell: it is to be opened.
        println!("{}", answer["url"].as_str().unwrap_or_default());
        eprintln!(
            "Opens the console once, until {} (15 minutes); the session it starts lasts 8 hours.",
            output::cell(&answer["expires_at"])
        );
    }
    Ok(0)
}
