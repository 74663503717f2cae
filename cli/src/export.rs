//! `crm-edge export messages --since T [--follow]`: every message of the business after `T`, as
//! JSON Lines on stdout, oldest first, following `next_cursor`; with `--follow` it keeps polling
//! for new ones (every `--interval` seconds) until interrupted.

use crate::client::{Client, Credential};
use std::io::Write;
use std::time::Duration;

pub struct Options {
    pub since: String,
    pub follow: bool,
    pub interval: Duration,
    pub include_attachments: bool,
}

/// How many messages were written (`--follow` returns only on an error).
pub fn messages(client: &Client, options: &Options, out: &mut dyn Write) -> Result<u64, String> {
    let mut written = 0;
    let encode = |value: &str| value.replace('%', "%25").replace('+', "%2B").replace(':', "%3A");
    let mut query = format!("since={}", encode(&options.since));
    loop {
        let path = format!(
            "/api-messages-since?{query}&limit=500&include_attachments={}",
            options.include_attachments
        );
        let answer = client.send("GET", &path, Credential::ApiKey, None, None)?;
        if answer.status >= 300 {
            let (code, message) = answer.error();
            return Err(format!("{code}: {message}"));
        }
        for message in answer.body["messages"].as_array().into_iter().flatten() {
            writeln!(out, "{message}").map_err(|e| e.to_string())?;
            written += 1;
        }
        out.flush().map_err(|e| e.to_string())?;
        if let Some(cursor) = answer.body["next_cursor"].as_str() {
            query = format!("cursor={cursor}");
        }
        if answer.body["has_more"].as_bool() == Some(true) {
            continue;
        }
        if !options.follow {
            return Ok(written);
        }
        std::thread::sleep(options.interval);
    }
}
