//! `crm-edge import customers FILE`: a CSV file streamed in batches through the sync or bulk
//! endpoint, resumable, with a report of every row the API refused.
//!
//! Resuming: a checkpoint beside the file (`FILE.crm-edge-import.json`) lists the batches that
//! finished, for this file's content, mode and batch size. A batch is sent with an
//! `Idempotency-Key` made of the same three and its number, so a batch whose answer was lost (a
//! crash, Ctrl-C) is replayed by the API on the rerun, not applied twice.

use crate::client::{Client, Credential};
use crate::rows::{self, Format};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sync,
    Create,
}

impl Mode {
    fn path(self) -> &'static str {
        match self {
            Self::Sync => "/api-customers-sync",
            Self::Create => "/api-customers-bulk-create",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Create => "create",
        }
    }
}

pub struct Options {
    pub file: PathBuf,
    pub format: Format,
    pub mode: Mode,
    pub batch_size: usize,
    pub overrides: Vec<(String, String)>,
    pub default_country: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    file_sha256: String,
    mode: String,
    batch_size: usize,
    done: BTreeSet<u64>,
    rows: u64,
    failed: u64,
}

/// What an import did, for the summary and `--json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub rows: u64,
    pub stored: u64,
    pub failed: u64,
    pub batches_sent: u64,
    pub batches_resumed: u64,
    pub seconds: f64,
    pub report: Option<PathBuf>,
}

fn sidecar(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn file_sha256(file: &Path) -> Result<String, String> {
    let mut reader = BufReader::new(File::open(file).map_err(|e| format!("{}: {e}", file.display()))?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = reader.read(&mut buffer).map_err(|e| e.to_string())?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

pub fn run(client: &Client, options: &Options, progress: bool) -> Result<Summary, String> {
    let started = Instant::now();
    let sha = file_sha256(&options.file)?;
    let checkpoint_path = sidecar(&options.file, ".crm-edge-import.json");
    let report_path = sidecar(&options.file, ".errors.csv");
    let mut checkpoint = match std::fs::read_to_string(&checkpoint_path) {
        Ok(text) => serde_json::from_str::<Checkpoint>(&text)
            .map_err(|e| format!("{}: {e}", checkpoint_path.display()))?,
        Err(_) => Checkpoint::default(),
    };
    let same_run = checkpoint.file_sha256 == sha
        && checkpoint.mode == options.mode.name()
        && checkpoint.batch_size == options.batch_size;
    if !same_run {
        checkpoint = Checkpoint {
            file_sha256: sha.clone(),
            mode: options.mode.name().to_owned(),
            batch_size: options.batch_size,
            ..Checkpoint::default()
        };
        let mut report = File::create(&report_path).map_err(|e| e.to_string())?;
        writeln!(report, "row,external_id,code,message").map_err(|e| e.to_string())?;
    }
    let resumed = checkpoint.done.len() as u64;
    let total_bytes = std::fs::metadata(&options.file).map(|m| m.len()).unwrap_or(0);
    let mut summary = Summary {
        rows: 0,
        stored: 0,
        failed: 0,
        batches_sent: 0,
        batches_resumed: resumed,
        seconds: 0.0,
        report: None,
    };
    let mut batch: Vec<(u64, Value)> = Vec::with_capacity(options.batch_size);
    let mut number = 0u64;
    // Sends the batch unless an earlier run did, and keeps the checkpoint.
    let mut flush =
        |batch: &mut Vec<(u64, Value)>, summary: &mut Summary, bytes_read: u64| -> Result<(), String> {
            if !checkpoint.done.contains(&number) {
                let (stored, refused) = send_batch(client, options, &sha, number, batch)?;
                append_report(&report_path, &refused)?;
                checkpoint.done.insert(number);
                checkpoint.rows += batch.len() as u64;
                checkpoint.failed += refused.len() as u64;
                summary.stored += stored;
                summary.batches_sent += 1;
                let text = serde_json::to_string(&checkpoint).map_err(|e| e.to_string())?;
                std::fs::write(&checkpoint_path, text).map_err(|e| e.to_string())?;
                if progress {
                    show_progress(summary.rows, bytes_read, total_bytes, started);
                }
            }
            batch.clear();
            number += 1;
            summary.failed = checkpoint.failed;
            Ok(())
        };
    let mut last_position = 0;
    rows::each(&options.file, options.format, &options.overrides, &mut |row| {
        summary.rows += 1;
        last_position = row.bytes_read;
        batch.push((row.number, row.customer));
        if batch.len() == options.batch_size {
            flush(&mut batch, &mut summary, row.bytes_read)?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        flush(&mut batch, &mut summary, last_position)?;
    }
    if progress {
        eprintln!();
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.report = (summary.failed > 0).then_some(report_path);
    Ok(summary)
}

fn show_progress(rows: u64, bytes_read: u64, total_bytes: u64, started: Instant) {
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let eta = if bytes_read > 0 && total_bytes > bytes_read {
        elapsed * (total_bytes - bytes_read) as f64 / bytes_read as f64
    } else {
        0.0
    };
    eprint!(
        "\r{:>3}%  {rows} rows, {:.0} rows/s, ETA {eta:.0} s   ",
        bytes_read * 100 / total_bytes.max(1),
        rows as f64 / elapsed,
    );
}

type Refused = (u64, String, String, String);

/// Sends one batch; how many rows the API stored, and the ones it refused.
fn send_batch(
    client: &Client,
    options: &Options,
    sha: &str,
    number: u64,
    batch: &[(u64, Value)],
) -> Result<(u64, Vec<Refused>), String> {
    let mut body = json!({ "customers": batch.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>() });
    if let Some(country) = &options.default_country {
        body["default_country"] = Value::from(country.as_str());
    }
    let key = format!(
        "import-{}-{}-{}-{number}",
        &sha[..24],
        options.mode.name(),
        options.batch_size
    );
    let answer = client.send(
        "POST",
        options.mode.path(),
        Credential::ApiKey,
        Some(&body),
        Some(&key),
    )?;
    if answer.status >= 300 {
        let (code, message) = answer.error();
        return Err(format!(
            "batch {number} (rows {}–{}) refused: {code}: {message}",
            batch[0].0,
            batch[batch.len() - 1].0
        ));
    }
    // Sync answers a detail per item, with `error` on the refused; bulk create lists `errors`.
    type ErrorOf = fn(&Value) -> Option<&Value>;
    let (items, error_of): (Vec<Value>, ErrorOf) = match options.mode {
        Mode::Sync => (
            answer.body["results"]["details"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            |detail| detail.get("error").filter(|e| !e.is_null()),
        ),
        Mode::Create => (
            answer.body["errors"].as_array().cloned().unwrap_or_default(),
            |item| Some(item),
        ),
    };
    let mut refused = Vec::new();
    for item in &items {
        if let Some(error) = error_of(item) {
            let index = item["index"].as_u64().unwrap_or(0) as usize;
            let row = batch.get(index).map_or(0, |(row, _)| *row);
            refused.push((
                row,
                item["external_id"].as_str().unwrap_or_default().to_owned(),
                error["code"].as_str().unwrap_or_default().to_owned(),
                error["message"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    Ok((batch.len() as u64 - refused.len() as u64, refused))
}

fn append_report(path: &Path, refused: &[Refused]) -> Result<(), String> {
    if refused.is_empty() {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    let mut writer = csv::Writer::from_writer(file);
    for (row, external_id, code, message) in refused {
        writer
            .write_record([row.to_string().as_str(), external_id, code, message])
            .map_err(|e| e.to_string())?;
    }
    writer.flush().map_err(|e| e.to_string())
}
