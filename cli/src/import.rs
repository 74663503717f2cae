//! `crm-edge import customers FILE`: a file streamed in batches through the sync or bulk
//! endpoint, a few batches in flight, resumable, with a report of every row the API refused.
//!
//! Resuming: a checkpoint beside the file (`FILE.crm-edge-import.json`) lists the batches that
//! finished, for this file's content and these settings (mode, batch size, mapping, country). A
//! batch is sent with an `Idempotency-Key` made of the same and its number, so a batch whose
//! answer was lost (a crash, Ctrl-C) is answered from the API's record on the rerun, not applied
//! twice. The API keeps those records for 24 hours.
//!
//! The report (`FILE.errors.csv`: row, external_id, code, message) is appended batch by batch
//! before the checkpoint records the batch, both under one lock; a rerun first cuts the report
//! back to the rows of the batches the checkpoint holds, so a batch answered twice is reported
//! once.

use crate::client::{Client, Credential, Failure};
use crate::rows::{self, Format};
use domain::api::Caller;
use domain::api::customers::{CUSTOMERS_BULK_CREATE, CUSTOMERS_SYNC, CustomersBulkCreate, CustomersSync};
use domain::phone::Country;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sync,
    Create,
}

impl Mode {
    /// The endpoint's path, as its declaration states it.
    fn path(self) -> &'static str {
        let route = match self {
            Self::Sync => CUSTOMERS_SYNC.route_for(CustomersSync::SyncCustomers, Caller::ApiKey),
            Self::Create => {
                CUSTOMERS_BULK_CREATE.route_for(CustomersBulkCreate::BulkCreateCustomers, Caller::ApiKey)
            }
        };
        route.map_or("", |route| route.path)
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
    /// Batches sent at once.
    pub in_flight: usize,
    pub overrides: Vec<(String, String)>,
    pub default_country: Option<String>,
    /// Validate every row here, send nothing.
    pub dry_run: bool,
    pub progress: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// The file's SHA-256 and the settings that shape its batches: another file or other
    /// settings start afresh.
    run: String,
    done: BTreeSet<u64>,
    rows: u64,
    failed: u64,
}

/// What an import did, for the summary and `--json`.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub rows: u64,
    /// Rows stored by this run (a dry run: rows that would be sent).
    pub stored: u64,
    /// Rows refused, in this run and the runs it resumed.
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

fn io(path: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::Usage(format!("{}: {e}", path.display()))
}

/// The file's content and the settings that shape its batches, as one hex digest.
fn run_id(options: &Options) -> Result<String, Failure> {
    let file = &options.file;
    let mut reader = BufReader::new(File::open(file).map_err(io(file))?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = reader.read(&mut buffer).map_err(io(file))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    let settings = json!([
        options.mode.name(),
        options.batch_size,
        options.overrides,
        options.default_country
    ]);
    hasher.update(settings.to_string().as_bytes());
    Ok(hex::encode(hasher.finalize()))
}

/// A refused row, as the report lists it.
struct Refused {
    row: u64,
    external_id: String,
    code: String,
    message: String,
}

struct Batch {
    number: u64,
    /// Each row's number and customer, or why it could not be read.
    rows: Vec<(u64, Result<Value, String>)>,
    /// Where in the file its rows begin and end, for progress.
    start: u64,
    end: u64,
}

pub fn run(client: &Client, options: &Options) -> Result<Summary, Failure> {
    if options.dry_run {
        return dry_run(options);
    }
    let run = run_id(options)?;
    let checkpoint_path = sidecar(&options.file, ".crm-edge-import.json");
    let report_path = sidecar(&options.file, ".errors.csv");
    let checkpoint = match std::fs::read_to_string(&checkpoint_path) {
        Ok(text) => serde_json::from_str::<Checkpoint>(&text)
            .map_err(|e| Failure::Usage(format!("{}: {e}", checkpoint_path.display())))?,
        Err(_) => Checkpoint::default(),
    };
    let checkpoint = if checkpoint.run == run {
        cut_report(&report_path, checkpoint.failed)?;
        checkpoint
    } else {
        new_report(&report_path)?;
        Checkpoint {
            run: run.clone(),
            ..Checkpoint::default()
        }
    };
    let state = Mutex::new(State {
        summary: Summary {
            batches_resumed: checkpoint.done.len() as u64,
            ..Summary::default()
        },
        checkpoint,
        checkpoint_path,
        report_path,
        progress: Progress::new(options),
        failure: None,
    });
    let (sender, receiver) = sync_channel::<Batch>(options.in_flight);
    let receiver = Mutex::new(receiver);
    let read = std::thread::scope(|scope| {
        for _ in 0..options.in_flight {
            scope.spawn(|| send_batches(client, options, &run, &receiver, &state));
        }
        let mut batch = Batch {
            number: 0,
            rows: Vec::with_capacity(options.batch_size),
            start: 0,
            end: 0,
        };
        let mut rows = 0;
        let read = rows::each(&options.file, options.format, &options.overrides, &mut |row| {
            rows += 1;
            batch.rows.push((row.number, row.customer));
            batch.end = row.bytes_read;
            if batch.rows.len() == options.batch_size {
                let next = Batch {
                    number: batch.number + 1,
                    rows: Vec::with_capacity(options.batch_size),
                    start: batch.end,
                    end: batch.end,
                };
                enqueue(std::mem::replace(&mut batch, next), &sender, &state)?;
            }
            Ok(())
        });
        let read = read.and_then(|()| {
            if batch.rows.is_empty() {
                Ok(())
            } else {
                enqueue(batch, &sender, &state)
            }
        });
        drop(sender);
        read.map(|()| rows)
    });
    let mut state = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    if let Some(failure) = state.failure {
        return Err(failure);
    }
    state.summary.rows = read.map_err(Failure::Usage)?;
    state.summary.failed = state.checkpoint.failed;
    state.progress.finish();
    state.summary.seconds = state.progress.started.elapsed().as_secs_f64();
    state.summary.report = (state.summary.failed > 0).then_some(state.report_path);
    Ok(state.summary)
}

/// What the senders share: the checkpoint, the report, the count so far, and the first failure.
struct State {
    checkpoint: Checkpoint,
    checkpoint_path: PathBuf,
    report_path: PathBuf,
    summary: Summary,
    progress: Progress,
    failure: Option<Failure>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hands a batch to the senders, unless an earlier run finished it; stops the reading once a
/// batch has failed.
fn enqueue(
    batch: Batch,
    sender: &std::sync::mpsc::SyncSender<Batch>,
    state: &Mutex<State>,
) -> Result<(), String> {
    {
        let state = lock(state);
        if state.failure.is_some() {
            return Err("stopped".to_owned());
        }
        if state.checkpoint.done.contains(&batch.number) {
            return Ok(());
        }
    }
    sender.send(batch).map_err(|_| "stopped".to_owned())
}

/// One sender: takes batches until the reading ends. Once any batch has failed, it only drains
/// the queue, so that the reader is never left waiting on a full one.
fn send_batches(
    client: &Client,
    options: &Options,
    run: &str,
    receiver: &Mutex<Receiver<Batch>>,
    state: &Mutex<State>,
) {
    loop {
        let next = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(batch) = next else { return };
        if lock(state).failure.is_some() {
            continue;
        }
        let outcome = send_batch(client, options, run, &batch);
        let mut state = lock(state);
        if let Err(failure) = outcome.and_then(|refused| state.record(&batch, &refused)) {
            state.failure.get_or_insert(failure);
        }
    }
}

impl State {
    /// A finished batch: its refused rows into the report, then the batch into the checkpoint
    /// (written whole and renamed into place, so a crash leaves the old one or the new one).
    fn record(&mut self, batch: &Batch, refused: &[Refused]) -> Result<(), Failure> {
        append_report(&self.report_path, refused)?;
        self.checkpoint.done.insert(batch.number);
        self.checkpoint.rows += batch.rows.len() as u64;
        self.checkpoint.failed += refused.len() as u64;
        let text = serde_json::to_string(&self.checkpoint).map_err(|e| Failure::Usage(e.to_string()))?;
        let partial = sidecar(&self.checkpoint_path, ".partial");
        std::fs::write(&partial, text).map_err(io(&partial))?;
        std::fs::rename(&partial, &self.checkpoint_path).map_err(io(&self.checkpoint_path))?;
        self.summary.stored += (batch.rows.len() - refused.len()) as u64;
        self.summary.batches_sent += 1;
        self.progress
            .batch_done(batch.rows.len() as u64, batch.start, batch.end);
        Ok(())
    }
}

/// The code in the report of a row that could not be read from the file.
const UNREADABLE: &str = "malformed_row";

/// Sends one batch's readable rows; the rows the API refused and those it could not be sent,
/// in file order.
fn send_batch(client: &Client, options: &Options, run: &str, batch: &Batch) -> Result<Vec<Refused>, Failure> {
    let mut refused: Vec<Refused> = batch
        .rows
        .iter()
        .filter_map(|(row, customer)| {
            let why = customer.as_ref().err()?;
            Some(Refused {
                row: *row,
                external_id: String::new(),
                code: UNREADABLE.to_owned(),
                message: why.clone(),
            })
        })
        .collect();
    // The readable rows, by their place in what is sent: the API's `index` points into these.
    let sent: Vec<(u64, &Value)> = batch
        .rows
        .iter()
        .filter_map(|(row, customer)| Some((*row, customer.as_ref().ok()?)))
        .collect();
    if sent.is_empty() {
        return Ok(refused);
    }
    let customers: Vec<&Value> = sent.iter().map(|(_, customer)| *customer).collect();
    let mut body = json!({ "customers": customers });
    if let Some(country) = &options.default_country {
        body["default_country"] = Value::from(country.as_str());
    }
    let key = format!("import-{}-{}", &run[..32], batch.number);
    let answer = client
        .send(
            "POST",
            options.mode.path(),
            Credential::ApiKey,
            Some(&body),
            Some(&key),
        )?
        .success()
        .map_err(|failure| match failure {
            Failure::Api {
                status,
                code,
                message,
            } => Failure::Api {
                status,
                code,
                message: format!(
                    "batch {} (rows {}–{}): {message}",
                    batch.number + 1,
                    sent.first().map_or(0, |(row, _)| *row),
                    sent.last().map_or(0, |(row, _)| *row),
                ),
            },
            other => other,
        })?;
    // Sync answers a detail per item, with `error` on the refused; bulk create lists `errors`.
    let (items, errors_at): (&Value, fn(&Value) -> Option<&Value>) = match options.mode {
        Mode::Sync => (&answer["results"]["details"], |detail| {
            detail.get("error").filter(|e| !e.is_null())
        }),
        Mode::Create => (&answer["errors"], |item| Some(item)),
    };
    refused.extend(items.as_array().into_iter().flatten().filter_map(|item| {
        let error = errors_at(item)?;
        let index = usize::try_from(item["index"].as_u64()?).ok()?;
        Some(Refused {
            row: sent.get(index).map_or(0, |(row, _)| *row),
            external_id: item["external_id"].as_str().unwrap_or_default().to_owned(),
            code: error["code"].as_str().unwrap_or_default().to_owned(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
        })
    }));
    refused.sort_by_key(|refused| refused.row);
    Ok(refused)
}

fn append_report(path: &Path, refused: &[Refused]) -> Result<(), Failure> {
    if refused.is_empty() {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io(path))?;
    let mut writer = csv::Writer::from_writer(file);
    for refused in refused {
        writer
            .write_record([
                refused.row.to_string().as_str(),
                &cell(&refused.external_id),
                &cell(&refused.code),
                &cell(&refused.message),
            ])
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    }
    writer.flush().map_err(io(path))
}

/// A report with only its header row.
fn new_report(path: &Path) -> Result<(), Failure> {
    let mut report = File::create(path).map_err(io(path))?;
    writeln!(report, "row,external_id,code,message").map_err(io(path))
}

/// Cuts the report back to its header and first `keep` rows: the rows of the batches the
/// checkpoint holds (a crash between the two writes leaves a batch in the report only).
fn cut_report(path: &Path, keep: u64) -> Result<(), Failure> {
    if !path.exists() {
        if keep > 0 {
            eprintln!(
                "crm-edge: {} is gone: the {keep} rows refused before are no longer listed",
                path.display()
            );
        }
        return new_report(path);
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let broken = |e: csv::Error| Failure::Usage(format!("{}: {e}", path.display()));
    let mut reader = csv::Reader::from_reader(&mut file);
    reader.byte_headers().map_err(broken)?;
    let mut record = csv::ByteRecord::new();
    for _ in 0..keep {
        if !reader.read_byte_record(&mut record).map_err(broken)? {
            break;
        }
    }
    let end = reader.position().byte();
    drop(reader);
    file.set_len(end).map_err(io(path))
}

/// `--dry-run`: every row checked here by the API's own rule for a customer (names, emails,
/// phone numbers with the default country), nothing sent. The refused rows go to
/// `FILE.dry-run.csv`, in the report's columns.
fn dry_run(options: &Options) -> Result<Summary, Failure> {
    let country = options
        .default_country
        .as_deref()
        .map(Country::parse)
        .transpose()
        .map_err(|e| Failure::Usage(format!("--default-country: {e}")))?;
    let report_path = sidecar(&options.file, ".dry-run.csv");
    let report = File::create(&report_path).map_err(io(&report_path))?;
    let mut report = csv::Writer::from_writer(report);
    let to_report = |e: csv::Error| format!("{}: {e}", report_path.display());
    report
        .write_record(["row", "external_id", "code", "message"])
        .map_err(|e| Failure::Usage(to_report(e)))?;
    let mut progress = Progress::new(options);
    let mut summary = Summary::default();
    let mut checked = 0;
    rows::each(&options.file, options.format, &options.overrides, &mut |row| {
        summary.rows += 1;
        let outcome = row
            .customer
            .map_err(|why| (String::new(), UNREADABLE.to_owned(), why))
            .and_then(|customer| {
                let external_id = domain::customer::external_id_of(&customer).unwrap_or_default();
                domain::customer::parse(customer, country).map_err(|error| {
                    let code = serde_json::to_value(error.code).unwrap_or_default();
                    (
                        external_id,
                        code.as_str().unwrap_or_default().to_owned(),
                        error.message,
                    )
                })
            });
        match outcome {
            Ok(_) => summary.stored += 1,
            Err((external_id, code, message)) => {
                summary.failed += 1;
                report
                    .write_record([
                        row.number.to_string().as_str(),
                        &cell(&external_id),
                        &cell(&code),
                        &cell(&message),
                    ])
                    .map_err(to_report)?;
            }
        }
        if summary.rows % 1000 == 0 {
            progress.batch_done(1000, checked, row.bytes_read);
            checked = row.bytes_read;
        }
        Ok(())
    })
    .map_err(Failure::Usage)?;
    report.flush().map_err(io(&report_path))?;
    progress.finish();
    summary.seconds = progress.started.elapsed().as_secs_f64();
    summary.report = (summary.failed > 0).then_some(report_path);
    Ok(summary)
}

/// Progress on stderr: a line redrawn in place on a terminal, a line every 10 s otherwise.
struct Progress {
    shown: bool,
    terminal: bool,
    started: Instant,
    last: Option<Instant>,
    total_bytes: u64,
    rows: u64,
    /// The furthest a finished batch reaches into the file.
    furthest: u64,
    /// The bytes of the batches this run finished (earlier runs did the rest up to `furthest`).
    bytes_here: u64,
}

impl Progress {
    fn new(options: &Options) -> Self {
        Self {
            shown: options.progress,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
            total_bytes: std::fs::metadata(&options.file).map_or(0, |m| m.len()),
            rows: 0,
            furthest: 0,
            bytes_here: 0,
        }
    }

    fn batch_done(&mut self, rows: u64, start: u64, end: u64) {
        self.rows += rows;
        self.bytes_here += end.saturating_sub(start);
        self.furthest = self.furthest.max(end);
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if self.shown && self.last.is_none_or(|last| last.elapsed() >= every) {
            self.last = Some(Instant::now());
            self.draw();
        }
    }

    fn draw(&self) {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let eta = if self.bytes_here > 0 {
            elapsed * self.total_bytes.saturating_sub(self.furthest) as f64 / self.bytes_here as f64
        } else {
            0.0
        };
        let line = format!(
            "{:>3}%  {} rows, {:.0} rows/s, ETA {eta:.0} s",
            self.furthest * 100 / self.total_bytes.max(1),
            self.rows,
            self.rows as f64 / elapsed,
        );
        if self.terminal {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&mut self) {
        if self.shown && self.last.is_some() {
            self.furthest = self.total_bytes;
            self.draw();
            if self.terminal {
                eprintln!();
            }
        }
    }
}

/// A report cell as a spreadsheet shows it and never runs it: a value that starts as a formula
/// would (`=`, `+`, `-`, `@`, a tab or a carriage return), from the file or from an answer, is
/// kept as text with a leading `'`.
fn cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_cells_that_would_be_formulas_are_kept_as_text() {
        assert_eq!(cell("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(cell("+353 87 123"), "'+353 87 123");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("CRM-12"), "CRM-12");
    }

    #[test]
    fn a_report_is_cut_back_to_the_rows_the_checkpoint_holds() -> Result<(), Failure> {
        let path = std::env::temp_dir().join(format!("crm-edge-report-{}.csv", std::process::id()));
        let text = "row,external_id,code,message\n2,a,validation_failed,\"two\nlines\"\n3,b,x,y\n4,c,x,y\n";
        std::fs::write(&path, text).map_err(io(&path))?;
        cut_report(&path, 1)?;
        let cut = std::fs::read_to_string(&path).map_err(io(&path))?;
        assert_eq!(
            cut,
            "row,external_id,code,message\n2,a,validation_failed,\"two\nlines\"\n"
        );
        cut_report(&path, 0)?;
        let cut = std::fs::read_to_string(&path).map_err(io(&path))?;
        assert_eq!(cut, "row,external_id,code,message\n");
        std::fs::remove_file(&path).map_err(io(&path))
    }
}
