//! `crm-edge admin backup` / `restore`: one business to a JSON lines file and back
//! (`domain::backup` owns the format; docs/operations.md, "Backups and recovery"). Each talks to
//! its endpoint through a `step` (one call of it), so the tests play the server.
//!
//! A backup writes its rows to `FILE.part` as pages arrive and only then the file, header first
//! with the counts of the rows it holds (the last page's header, under its MAC): a backup that
//! stops leaves no file that looks whole. Both files are the operator's alone (mode 0600): a
//! backup holds customers' messages and records. Each line is written as its JSON's canonical
//! form, which the MACs cover.
//!
//! A restore reads the whole file and checks it twice before it writes anything: here, that each
//! line is as an export writes it (canonical) and the file's structure (`domain::backup::Check`:
//! a file cut short, of another business or format); then through the endpoint, page by page,
//! with nothing written (`verify_only`), that every MAC checks under the deployment's key. Only
//! then are the pages sent to be written, checked again as they are.

use crate::client::Failure;
use domain::backup::{Check, Header, Line, PAGE_BYTES, PAGE_ROWS, canonical, is_canonical};
use domain::json::Malformed;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
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

/// A new file that only its owner may read or write (0600 where permissions are Unix's).
fn private_file(path: &Path) -> Result<File, Failure> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(io("writing", path))?;
        // A file that existed keeps its mode through open(): it is set again.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io("writing", path))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path).map_err(io("writing", path))
    }
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
    let mut rows = BufWriter::new(private_file(&part)?);
    let (mut first, mut cursor) = (None::<Header>, Value::Null);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut current: Option<String> = None;
    let header_of = |answer: &Value, field: &str| -> Result<Option<Header>, Failure> {
        serde_json::from_value(answer[field].clone())
            .map_err(|error| Failure::Usage(format!("a page's {field}: {error}")))
    };
    let last = loop {
        let answer = step(json!({ "cursor": cursor }))?;
        if first.is_none() {
            first = header_of(&answer, "header")?;
        }
        let lines: Vec<Line> = serde_json::from_value(answer["lines"].clone())
            .map_err(|error| Failure::Usage(format!("a page's lines: {error}")))?;
        for line in lines {
            if current.as_deref() != Some(line.table.as_str()) {
                if let Some(done) = current.take() {
                    let said = first
                        .as_ref()
                        .and_then(|header| header.counts.get(&done).copied());
                    progress(&done, counts.get(&done).copied().unwrap_or(0), said);
                }
                current = Some(line.table.clone());
            }
            *counts.entry(line.table.clone()).or_default() += 1;
            rows.write_all(canonical(&line).as_bytes())
                .and_then(|()| rows.write_all(b"\n"))
                .map_err(io("writing", &part))?;
        }
        cursor = answer["cursor"].clone();
        if cursor.is_null() {
            break header_of(&answer, "last_header")?;
        }
    };
    if let Some(done) = current {
        let said = first
            .as_ref()
            .and_then(|header| header.counts.get(&done).copied());
        progress(&done, counts.get(&done).copied().unwrap_or(0), said);
    }
    rows.flush().map_err(io("writing", &part))?;
    drop(rows);
    // The file's first line: the last page's header, which counts the rows the export wrote (a
    // row deleted while it ran is in neither) under its MAC.
    let header =
        last.ok_or_else(|| Failure::Usage("the export's last page answered no header".to_owned()))?;
    let mut out = BufWriter::new(private_file(file)?);
    out.write_all(canonical(&header).as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(io("writing", file))?;
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

/// A line of `name` as an export wrote it, parsed; refused when it is not (not JSON, not the
/// shape, or not written as its canonical form: edited).
fn parsed<T: serde::de::DeserializeOwned>(
    name: &str,
    number: usize,
    text: &str,
    what: &str,
) -> Result<T, Failure> {
    let value = serde_json::from_str::<T>(text)
        .map_err(|error| Failure::Usage(format!("{name} line {number}: not {what}: {error}")))?;
    if !is_canonical(text) {
        return Err(Failure::Usage(format!(
            "{name} line {number}: not as the backup wrote it (its bytes were changed)"
        )));
    }
    Ok(value)
}

/// The file's lines after the header, each parsed, with its line number.
fn lines(file: &Path) -> Result<(Header, Rows), Failure> {
    let mut reader = BufReader::new(File::open(file).map_err(io("reading", file))?).lines();
    let name = file.display().to_string();
    let first = reader
        .next()
        .ok_or_else(|| Failure::Usage(format!("{name}: empty, not a backup")))?
        .map_err(io("reading", file))?;
    let header: Header = parsed(&name, 1, &first, "a backup's header")?;
    let rest = reader.enumerate().map(move |(at, text)| {
        let number = at + 2;
        let text = text.map_err(|error| Failure::Usage(format!("{name} line {number}: {error}")))?;
        parsed(&name, number, &text, "a row of a backup").map(|line| (number, line))
    });
    Ok((header, Box::new(rest)))
}

/// The business `file` is a backup of, from its header.
pub fn business_of(file: &Path) -> Result<String, Failure> {
    lines(file).map(|(header, _)| header.business_id)
}

/// The file's rows in the pages a restore sends them in: each page with its first line's number.
fn pages(
    file: &Path,
    mut each: impl FnMut(&[Line], usize, bool) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let (_, rest) = lines(file)?;
    let (mut page, mut bytes, mut from) = (Vec::<Line>::new(), 0, 2);
    for line in rest {
        let (number, line) = line?;
        let size = Value::Object(line.row.clone()).to_string().len();
        if page.len() == PAGE_ROWS || (bytes + size > PAGE_BYTES && !page.is_empty()) {
            each(&page, from, false)?;
            bytes = 0;
            page.clear();
            from = number;
        }
        bytes += size;
        page.push(line);
    }
    each(&page, from, true)
}

/// Restores the business of `file` through `step`, where it does not exist: the last answer.
pub fn restore(step: Step<'_>, file: &Path) -> Result<Value, Failure> {
    let (header, rest) = lines(file)?;
    let refused = |why: Malformed| Failure::Usage(format!("{}: {why}; nothing was restored", file.display()));
    let mut check = Check::new(header).map_err(refused)?;
    for line in rest {
        let (number, line) = line.map_err(|error| refused(error.to_string().into()))?;
        check.line(number, &line).map_err(refused)?;
    }
    let header = check.finish().map_err(refused)?;
    let body =
        |lines: &[Line], from: usize, chain: Option<&str>, first: bool, complete: bool, verify: bool| {
            json!({ "header": header, "lines": lines, "first": first, "complete": complete, "chain": chain,
                "first_line": from, "verify_only": verify })
        };
    // Every page checked by the deployment, which holds the key, before the first is written.
    let mut chain: Option<String> = None;
    pages(file, |lines, from, complete| {
        let answer = step(body(
            lines,
            from,
            chain.as_deref(),
            chain.is_none(),
            complete,
            true,
        ))
        .map_err(|failure| match failure {
            Failure::Api {
                status,
                code,
                message,
            } => Failure::Api {
                status,
                code,
                message: format!("{}: {message}; nothing was restored", file.display()),
            },
            other => other,
        })?;
        chain = answer["chain"].as_str().map(str::to_owned);
        Ok(())
    })?;
    eprintln!("every line checks: restoring");
    let mut chain: Option<String> = None;
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut last = Value::Null;
    let mut quarantined = serde_json::Map::new();
    pages(file, |lines, from, complete| {
        let page = body(lines, from, chain.as_deref(), chain.is_none(), complete, false);
        let answer = loop {
            let answer = step(page.clone())?;
            if answer["phase"] != "discarding" {
                break answer;
            }
            eprintln!(
                "discarding a restore that broke off: {} rows deleted",
                answer["rows"]
            );
        };
        for line in lines {
            if current.as_deref() != Some(line.table.as_str()) {
                if let Some(table) = current.take() {
                    progress(&table, done.get(&table).copied().unwrap_or(0), None);
                }
                current = Some(line.table.clone());
            }
            *done.entry(line.table.clone()).or_default() += 1;
        }
        chain = answer["chain"].as_str().map(str::to_owned);
        add_up(&mut quarantined, &answer["quarantined"]);
        last = answer;
        Ok(())
    })?;
    if let Some(table) = current {
        progress(&table, done.get(&table).copied().unwrap_or(0), None);
    }
    // Each page's answer counts what its own rows were put in quarantine as.
    last["quarantined"] = Value::Object(quarantined);
    Ok(last)
}

/// Adds a page's counts (`{"sends_failed": 2, ...}`) to the restore's.
fn add_up(total: &mut serde_json::Map<String, Value>, page: &Value) {
    for (kind, count) in page.as_object().into_iter().flatten() {
        let sum = total.get(kind).and_then(Value::as_u64).unwrap_or(0) + count.as_u64().unwrap_or(0);
        total.insert(kind.clone(), json!(sum));
    }
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
            "format": 2, "business_id": ACME, "taken_at": "2026-12-01T00:00:00Z", "key_id": "k1", "mac": "h",
            "counts": counts.iter().map(|(t, n)| ((*t).to_owned(), json!(n))).collect::<serde_json::Map<_, _>>(),
        })
    }

    fn row(table: &str, n: usize) -> Value {
        let column = if table == "businesses" {
            "id"
        } else {
            "business_id"
        };
        json!({ "table": table, "row": { column: ACME, "n": n }, "mac": format!("m{n}") })
    }

    /// A server that answers the export in pages of two rows of `rows`: the first page's header
    /// counting `said` (a row deleted while it ran is counted and not answered), the last's
    /// `written`.
    fn exporting(rows: Vec<Value>, said: Value, written: Value) -> impl Fn(Value) -> Result<Value, Failure> {
        move |body| {
            let at = body["cursor"].as_u64().unwrap_or(0) as usize;
            let next = (at + 2 < rows.len()).then(|| json!(at + 2));
            let header = if at == 0 { said.clone() } else { Value::Null };
            let last = if next.is_none() {
                written.clone()
            } else {
                Value::Null
            };
            let end = (at + 2).min(rows.len());
            Ok(json!({ "header": header, "last_header": last, "lines": rows[at..end], "cursor": next }))
        }
    }

    #[test]
    fn a_backup_is_written_header_first_as_its_last_page_says_private_and_restored_once_checked() {
        let rows = vec![
            row("businesses", 0),
            row("customers", 1),
            row("customers", 2),
            row("messages", 3),
            row("messages", 4),
        ];
        let file = temp("whole");
        let said = header(&[("businesses", 1), ("customers", 2), ("messages", 3)]);
        let written = header(&[("businesses", 1), ("customers", 2), ("messages", 2)]);
        let answer = backup(&exporting(rows.clone(), said, written.clone()), &file)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(answer["rows"], 5);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            canonical(&written),
            "the last page's header, as it was signed"
        );
        let rows_written: Vec<Value> = lines[1..]
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
            .collect();
        assert_eq!(rows_written, rows);
        assert!(
            lines.iter().all(|line| is_canonical(line)),
            "every line in its canonical form"
        );
        assert!(!part(&file).exists(), "the part file is gone");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file)
                .map(|meta| meta.permissions().mode() & 0o777)
                .unwrap_or(0);
            assert_eq!(mode, 0o600, "only its owner reads a backup");
        }

        let sent = RefCell::new(Vec::new());
        let server = |body: Value| {
            sent.borrow_mut().push(body.clone());
            let phase = match (body["verify_only"] == true, body["complete"] == true) {
                (true, _) => "verified",
                (false, true) => "restored",
                (false, false) => "restoring",
            };
            Ok(json!({ "phase": phase, "chain": "m4" }))
        };
        let answer = restore(&server, &file).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(answer["phase"], "restored");
        let sent = sent.into_inner();
        assert_eq!(sent.len(), 2, "five rows are one page: checked, then written");
        assert_eq!(sent[0]["verify_only"], true);
        assert_eq!(sent[1]["verify_only"], false);
        for page in &sent {
            assert_eq!(page["first"], true);
            assert_eq!(page["complete"], true);
            assert_eq!(page["first_line"], 2);
            assert_eq!(page["chain"], Value::Null);
            assert_eq!(page["lines"].as_array().map(Vec::len), Some(5));
        }
    }

    #[test]
    fn a_file_cut_short_edited_or_corrupted_is_refused_before_anything_is_sent() {
        let file = temp("broken");
        let whole = [
            canonical(&header(&[("businesses", 1), ("customers", 2)])),
            canonical(&row("businesses", 0)),
            canonical(&row("customers", 1)),
            canonical(&row("customers", 2)),
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
                "a space added, saying the same",
                whole.join("\n").replace("\"n\":2", "\"n\": 2"),
                "line 4: not as the backup wrote it",
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

    #[test]
    fn a_page_the_deployment_refuses_in_the_check_leaves_nothing_written() {
        let file = temp("forged");
        let whole = [
            canonical(&header(&[("businesses", 1)])),
            canonical(&row("businesses", 0)),
        ];
        std::fs::write(&file, whole.join("\n")).unwrap_or_else(|error| panic!("{error}"));
        let sent = RefCell::new(Vec::new());
        let server = |body: Value| {
            sent.borrow_mut().push(body);
            Err(Failure::Api {
                status: 422,
                code: "validation_failed".to_owned(),
                message: "line 2: not as the backup wrote it (its MAC does not check)".to_owned(),
            })
        };
        let verdict = restore(&server, &file);
        assert!(
            matches!(&verdict, Err(Failure::Api { message, .. }) if message.contains("line 2") && message.contains("nothing was restored")),
            "{verdict:?}"
        );
        let sent = sent.into_inner();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["verify_only"], true, "only ever asked to check");
    }
}
