//! `crm-edge admin backup` / `restore`: one business to a JSON lines file and back
//! (`domain::backup` owns the format; docs/operations.md, "Backups and recovery"). Each talks to
//! its endpoint through a `step` (one call of it), so the tests play the server.
//!
//! A backup writes its rows to `FILE.part` as pages arrive and only then the file, header first
//! with the counts of the rows it holds: a backup that stops leaves no file that looks whole. A
//! restore reads the whole file once and checks it (`domain::backup::Check`) before it sends
//! anything: a file cut short, edited or of another format is refused with nothing written.

use crate::client::Failure;
use domain::backup::{Check, Header, Line, PAGE_BYTES, PAGE_ROWS};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// One call of an endpoint: its body in, its answer out.
pub type Step<'a> = &'a dyn Fn(Value) -> Result<Value, Failure>;

fn io(what: &str, path: &Path) -> impl Fn(std::io::Error) -> Failure {
    let where_ = format!("{what} {}", path.display());
    move |error| Failure::Usage(format!("{where_}: {error}"))
}

fn part(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// Tells the table whose rows just ended, on stderr.
fn progress(table: &str, rows: usize, of: Option<usize>) {
    match of {
        Some(of) => eprintln!("{table}: {rows} of {of} rows"),
        None => eprintln!("{table}: {rows} rows"),
    }
}

/// Exports the business through `step` into `file`: what the file holds.
pub fn backup(step: Step<'_>, file: &Path) -> Result<Value, Failure> {
    let part = part(file);
    let mut rows = BufWriter::new(File::create(&part).map_err(io("writing", &part))?);
    let (mut header, mut cursor) = (None::<Header>, Value::Null);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut current: Option<String> = None;
    loop {
        let answer = step(json!({ "cursor": cursor }))?;
        if header.is_none() {
            let first = serde_json::from_value(answer["header"].clone())
                .map_err(|error| Failure::Usage(format!("the first page's header: {error}")))?;
            header = Some(first);
        }
        let lines: Vec<Line> = serde_json::from_value(answer["lines"].clone())
            .map_err(|error| Failure::Usage(format!("a page's lines: {error}")))?;
        for line in lines {
            if current.as_deref() != Some(line.table.as_str()) {
                if let Some(done) = current.take() {
                    let said = header
                        .as_ref()
                        .and_then(|header| header.counts.get(&done).copied());
                    progress(&done, counts.get(&done).copied().unwrap_or(0), said);
                }
                current = Some(line.table.clone());
            }
            *counts.entry(line.table.clone()).or_default() += 1;
            serde_json::to_writer(&mut rows, &line).map_err(|error| Failure::Usage(error.to_string()))?;
            rows.write_all(b"\n").map_err(io("writing", &part))?;
        }
        cursor = answer["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    if let Some(done) = current {
        let said = header
            .as_ref()
            .and_then(|header| header.counts.get(&done).copied());
        progress(&done, counts.get(&done).copied().unwrap_or(0), said);
    }
    rows.flush().map_err(io("writing", &part))?;
    drop(rows);
    let mut header = header.ok_or_else(|| Failure::Usage("the export answered no page".to_owned()))?;
    // What the file holds: a row deleted while the export ran is not in it, nor in its counts.
    header.counts = counts;
    let mut out = BufWriter::new(File::create(file).map_err(io("writing", file))?);
    serde_json::to_writer(&mut out, &header).map_err(|error| Failure::Usage(error.to_string()))?;
    out.write_all(b"\n").map_err(io("writing", file))?;
    let mut from = File::open(&part).map_err(io("reading", &part))?;
    std::io::copy(&mut from, &mut out).map_err(io("writing", file))?;
    out.flush().map_err(io("writing", file))?;
    std::fs::remove_file(&part).map_err(io("removing", &part))?;
    let total: usize = header.counts.values().sum();
    Ok(
        json!({ "business_id": header.business_id, "taken_at": header.taken_at, "rows": total, "file": file.display().to_string() }),
    )
}

/// A file's rows, each parsed, with its line number.
type Rows = Box<dyn Iterator<Item = Result<(usize, Line), Failure>>>;

/// The file's lines after the header, each parsed, with its line number.
fn lines(file: &Path) -> Result<(Header, Rows), Failure> {
    let mut reader = BufReader::new(File::open(file).map_err(io("reading", file))?).lines();
    let first = reader
        .next()
        .ok_or_else(|| Failure::Usage(format!("{}: empty, not a backup", file.display())))?
        .map_err(io("reading", file))?;
    let header: Header = serde_json::from_str(&first).map_err(|error| {
        Failure::Usage(format!(
            "{} line 1: not a backup's header: {error}",
            file.display()
        ))
    })?;
    let name = file.display().to_string();
    let rest = reader.enumerate().map(move |(at, text)| {
        let number = at + 2;
        let text = text.map_err(|error| Failure::Usage(format!("{name} line {number}: {error}")))?;
        serde_json::from_str::<Line>(&text)
            .map(|line| (number, line))
            .map_err(|error| Failure::Usage(format!("{name} line {number}: not a row of a backup: {error}")))
    });
    Ok((header, Box::new(rest)))
}

/// The business `file` is a backup of, from its header.
pub fn business_of(file: &Path) -> Result<String, Failure> {
    lines(file).map(|(header, _)| header.business_id)
}

/// Restores the business of `file` through `step`, where it does not exist: the last answer.
pub fn restore(step: Step<'_>, file: &Path) -> Result<Value, Failure> {
    let (header, rest) = lines(file)?;
    let refused = |why: String| Failure::Usage(format!("{}: {why}; nothing was restored", file.display()));
    let mut check = Check::new(header).map_err(refused)?;
    for line in rest {
        let (number, line) = line.map_err(|error| refused(error.to_string()))?;
        check.line(number, &line).map_err(refused)?;
    }
    let header = check.finish().map_err(refused)?;
    let (_, rest) = lines(file)?;
    let send = |lines: &[Line], first: bool, complete: bool| -> Result<Value, Failure> {
        let body = json!({ "header": header, "lines": lines, "first": first, "complete": complete });
        loop {
            let answer = step(body.clone())?;
            if answer["phase"] != "discarding" {
                return Ok(answer);
            }
            eprintln!(
                "discarding a restore that broke off: {} rows deleted",
                answer["rows"]
            );
        }
    };
    let (mut page, mut bytes, mut first) = (Vec::<Line>::new(), 0, true);
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in rest {
        let (_, line) = line?;
        let size = Value::Object(line.row.clone()).to_string().len();
        if page.len() == PAGE_ROWS || (bytes + size > PAGE_BYTES && !page.is_empty()) {
            send(&page, first, false)?;
            (first, bytes) = (false, 0);
            page.clear();
        }
        if current.as_deref() != Some(line.table.as_str()) {
            if let Some(table) = current.take() {
                progress(&table, done.get(&table).copied().unwrap_or(0), None);
            }
            current = Some(line.table.clone());
        }
        *done.entry(line.table.clone()).or_default() += 1;
        bytes += size;
        page.push(line);
    }
    let answer = send(&page, first, true)?;
    if let Some(table) = current {
        progress(&table, done.get(&table).copied().unwrap_or(0), None);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    const ACME: &str = "biz_0123456789abcdef0123456789abcdef";

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crm-edge-backup-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("acme.jsonl")
    }

    fn header(counts: &[(&str, usize)]) -> Value {
        json!({
            "format": 1, "business_id": ACME, "taken_at": "2026-12-01T00:00:00Z", "key_check": "v1:k1:x",
            "counts": counts.iter().map(|(t, n)| ((*t).to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
        })
    }

    fn row(table: &str, n: usize) -> Value {
        let column = if table == "businesses" {
            "id"
        } else {
            "business_id"
        };
        json!({ "table": table, "row": { column: ACME, "n": n } })
    }

    /// A server that answers the export in pages of two rows of `rows`, its header counting
    /// `said` (a row deleted while it ran is counted and not answered).
    fn exporting(rows: Vec<Value>, said: Value) -> impl Fn(Value) -> Result<Value, Failure> {
        move |body| {
            let at = body["cursor"].as_u64().unwrap_or(0) as usize;
            let next = (at + 2 < rows.len()).then(|| json!(at + 2));
            let header = if at == 0 { said.clone() } else { Value::Null };
            let end = (at + 2).min(rows.len());
            Ok(json!({ "header": header, "lines": rows[at..end], "cursor": next }))
        }
    }

    #[test]
    fn a_backup_is_written_header_first_with_the_counts_of_the_rows_it_holds_and_restored_page_by_page() {
        let rows = vec![
            row("businesses", 0),
            row("customers", 1),
            row("customers", 2),
            row("messages", 3),
            row("messages", 4),
        ];
        let file = temp("whole");
        let said = header(&[("businesses", 1), ("customers", 2), ("messages", 3)]);
        let answer = backup(&exporting(rows.clone(), said), &file).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(answer["rows"], 5);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let written: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
            .collect();
        assert_eq!(
            written[0]["counts"],
            json!({ "businesses": 1, "customers": 2, "messages": 2 }),
            "the counts of what the file holds, not of what the header first said"
        );
        assert_eq!(written[1..], rows[..]);
        assert!(!part(&file).exists(), "the part file is gone");

        let sent = RefCell::new(Vec::new());
        let server = |body: Value| {
            sent.borrow_mut().push(body.clone());
            Ok(json!({ "phase": if body["complete"] == true { "restored" } else { "restoring" } }))
        };
        let answer = restore(&server, &file).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(answer["phase"], "restored");
        let sent = sent.into_inner();
        assert_eq!(sent.len(), 1, "five rows are one page");
        assert_eq!(sent[0]["first"], true);
        assert_eq!(sent[0]["complete"], true);
        assert_eq!(sent[0]["lines"].as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn a_file_cut_short_or_corrupted_is_refused_before_anything_is_sent() {
        let file = temp("broken");
        let whole = [
            header(&[("businesses", 1), ("customers", 2)]).to_string(),
            row("businesses", 0).to_string(),
            row("customers", 1).to_string(),
            row("customers", 2).to_string(),
        ];
        let cases = [
            (
                "cut short by a line",
                whole[..3].join("\n"),
                "customers holds 1 rows where the header says 2",
            ),
            (
                "cut inside a line",
                format!("{}\n{}", whole[..3].join("\n"), &whole[3][..20]),
                "line 4: not a row of a backup",
            ),
            (
                "a byte changed in a row's business",
                whole.join("\n").replace("ef\",\"n\":2", "ee\",\"n\":2"),
                "line 4: a row of customers whose business_id",
            ),
            (
                "not a backup",
                "hello".to_owned(),
                "line 1: not a backup's header",
            ),
            ("empty", String::new(), "empty, not a backup"),
        ];
        for (what, text, why) in cases {
            std::fs::write(&file, text).unwrap_or_else(|error| panic!("{error}"));
            let sent = RefCell::new(0);
            let server = |_: Value| {
                *sent.borrow_mut() += 1;
                Ok(json!({ "phase": "restored" }))
            };
            let verdict = restore(&server, &file);
            assert!(
                matches!(&verdict, Err(Failure::Usage(message)) if message.contains(why)),
                "{what}: {verdict:?}"
            );
            assert_eq!(*sent.borrow(), 0, "{what}: nothing is sent");
        }
    }
}
