//! `crm-edge export messages --since T [--follow]`: every message of the business after `T`, as
//! JSON Lines on stdout, oldest first, following `next_cursor`; with `--follow` it keeps polling
//! for new ones (every `--interval` seconds) until interrupted.

use crate::client::{Client, Credential, Failure, endpoint, query};
use domain::api::Caller;
use domain::api::messages::{MESSAGES_SINCE, MessagesSince};
use std::io::Write;
use std::time::Duration;

pub struct Options {
    pub since: String,
    pub follow: bool,
    pub interval: Duration,
    pub include_attachments: bool,
}

/// How many messages were written (`--follow` returns only on an error).
pub fn messages(client: &Client, options: &Options, out: &mut dyn Write) -> Result<u64, Failure> {
    let written_out = |e: std::io::Error| Failure::Usage(format!("writing the messages: {e}"));
    let mut written = 0;
    // Where the next page starts: the time at first, then the cursor of the last page.
    let mut from = ("since", options.since.clone());
    loop {
        let (method, path) = endpoint(
            &MESSAGES_SINCE,
            MessagesSince::GetMessagesSince,
            Caller::ApiKey,
            &[],
        )?;
        let path = format!(
            "{path}{}",
            query(&[
                (from.0, Some(from.1.clone())),
                ("limit", Some("500".to_owned())),
                (
                    "include_attachments",
                    Some(options.include_attachments.to_string())
                ),
            ])
        );
        let page = client.call(method, &path, Credential::ApiKey, None)?;
        for message in page["messages"].as_array().into_iter().flatten() {
            writeln!(out, "{message}").map_err(written_out)?;
            written += 1;
        }
        out.flush().map_err(written_out)?;
        if let Some(cursor) = page["next_cursor"].as_str() {
            from = ("cursor", cursor.to_owned());
        }
        if page["has_more"].as_bool() == Some(true) {
            continue;
        }
        if !options.follow {
            return Ok(written);
        }
        std::thread::sleep(options.interval);
    }
}
