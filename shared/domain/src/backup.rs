//! A backup of one business (`crm-edge admin backup` / `restore`, docs/operations.md "Backups and
//! recovery"): the file's format, the export's cursor, the page budgets, and the check a file
//! passes before anything of it is restored.
//!
//! The file is JSON lines: a [`Header`] (format, business, time, how many rows of each table),
//! then one [`Line`] per row, `{"table": …, "row": {…}, "mac": …}`, the tables in
//! [`MOVED_TABLES`]'s order (parents first), each row as `SELECT *` holds it but for the keys the
//! database numbers and the columns it computes (as a move copies it). Sealed secrets are in it
//! as they are stored: sealed under the exporting deployment's `SECRETS_KEY`, never in clear.
//!
//! The file proves itself: the header and every line carry a MAC (HMAC-SHA256 under a key
//! derived from the deployment's sealing key and bound to the business, [`mac_key`]), each line's
//! over the MAC before it and the line itself ([`Chain`]). A byte changed anywhere, a line
//! removed, added, repeated or moved, and the file's counts (in the header, under its MAC) no
//! longer hold: the restore refuses it before it writes anything, naming the line. Each line is
//! written as its JSON's one canonical form (compact, keys sorted), which the command-line tool
//! checks too, so no byte of the file is outside what the MACs cover.

use crate::json::Malformed;
use crate::shard_move::{MOVED_TABLES, ROWS_PER_STEP};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The format this code writes and reads (format 1 had no MACs: it is refused).
pub const FORMAT: u32 = 2;

/// Rows an export page or a restore page holds at most: a restore page is one D1 batch of one
/// insert a row (200 of an invocation's 1,000 queries).
pub const PAGE_ROWS: usize = ROWS_PER_STEP;

/// Bytes of rows (as JSON) past which an export page stops, and a restore page is cut: a page
/// and its JSON stay a few MB whatever the rows are.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Rows one read of an export asks D1 for. A D1 row is at most 2 MB: a read holds at most 32 MB,
/// so a page (4 MB, then one read) with its JSON answer stays well under a Worker's 128 MB.
pub const ROWS_PER_READ: usize = 16;

/// What a restore paused, which the operator resumes part by part: the channel accounts,
/// connectors, webhook endpoints and link entries that were on in the backup (each part's ids),
/// nothing else (what was off before stays off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Quarantine {
    /// RFC 3339: when the business was restored.
    pub restored_at: String,
    #[serde(default)]
    pub channel_accounts: Vec<String>,
    #[serde(default)]
    pub connectors: Vec<String>,
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// `[source id, channel]` of each link entry.
    #[serde(default)]
    pub links: Vec<(String, String)>,
}

/// A part of a restored business that waits to be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    ChannelAccounts,
    Connectors,
    Webhooks,
    Links,
}

impl Part {
    pub const ALL: [Self; 4] = [
        Self::ChannelAccounts,
        Self::Connectors,
        Self::Webhooks,
        Self::Links,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChannelAccounts => "channel_accounts",
            Self::Connectors => "connectors",
            Self::Webhooks => "webhooks",
            Self::Links => "links",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|part| part.as_str() == name)
    }
}

impl Quarantine {
    /// The parts that still wait.
    pub fn waiting(&self) -> Vec<Part> {
        Part::ALL
            .into_iter()
            .filter(|part| match part {
                Part::ChannelAccounts => !self.channel_accounts.is_empty(),
                Part::Connectors => !self.connectors.is_empty(),
                Part::Webhooks => !self.webhooks.is_empty(),
                Part::Links => !self.links.is_empty(),
            })
            .collect()
    }

    /// The quarantine without `part` (resumed).
    pub fn without(mut self, part: Part) -> Self {
        match part {
            Part::ChannelAccounts => self.channel_accounts.clear(),
            Part::Connectors => self.connectors.clear(),
            Part::Webhooks => self.webhooks.clear(),
            Part::Links => self.links.clear(),
        }
        self
    }
}

/// The first line of a backup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "BackupHeader"))]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The file's format (2).
    pub format: u32,
    pub business_id: String,
    /// RFC 3339: when the export began. Rows are read from then on, page by page; a row written
    /// after the export began is not in it.
    pub taken_at: String,
    /// The id of the exporting deployment's sealing key (in its `SECRETS_KEY` ring) the file's
    /// MACs are made under: a restore is refused on a deployment whose ring does not hold it.
    pub key_id: String,
    /// How many rows of each table follow.
    pub counts: BTreeMap<String, usize>,
    /// The header's MAC (hex), over the fields above.
    pub mac: String,
}

/// One row of a backup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "BackupLine"))]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub table: String,
    pub row: Map<String, Value>,
    /// The line's MAC (hex), over the MAC before it (the header's for the first) and the line.
    pub mac: String,
}

/// The key the MACs of `business`'s backups are made with, derived from a key of the ring
/// (`domain::sealed::Key::bytes`): another business's file, or another deployment's, never checks.
pub fn mac_key(key: &[u8; 32], business: &str) -> [u8; 32] {
    crate::crypto::hmac_sha256(key, &[b"crm-edge backup mac v2\0", business.as_bytes()])
}

impl Header {
    /// What the header's MAC is made over: the header as JSON with an empty `mac`.
    fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = Header {
            mac: String::new(),
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }

    /// The header with its MAC, under `mac_key`.
    pub fn signed(mut self, mac_key: &[u8; 32]) -> Self {
        self.mac = hex::encode(crate::crypto::hmac_sha256(mac_key, &[&self.signed_bytes()]));
        self
    }
}

/// The MAC of a line of `table` and `row` after the MAC `before`.
fn line_mac(mac_key: &[u8; 32], before: &str, table: &str, row: &Map<String, Value>) -> String {
    let line = serde_json::to_vec(&(table, row)).unwrap_or_default();
    hex::encode(crate::crypto::hmac_sha256(
        mac_key,
        &[before.as_bytes(), b"\n", &line],
    ))
}

/// The MACs of a file's lines, in order: made by an export, checked by a restore.
#[derive(Clone)]
pub struct Chain {
    mac_key: [u8; 32],
    /// The MAC of the last line made or checked (the header's before the first line).
    last: String,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// Where the chain of a file taken at `taken_at` starts: its first line's MAC is made after
    /// this, so that no line of another backup (another time) checks in this one.
    fn root(mac_key: &[u8; 32], taken_at: &str) -> String {
        hex::encode(crate::crypto::hmac_sha256(
            mac_key,
            &[b"chain\0", taken_at.as_bytes()],
        ))
    }

    /// The chain of a file with `header`, going on after the MAC `after` (None: at the first
    /// line), once the header's MAC checks under `mac_key`.
    pub fn checked(header: &Header, mac_key: [u8; 32], after: Option<&str>) -> Result<Self, Malformed> {
        let expected = hex::encode(crate::crypto::hmac_sha256(&mac_key, &[&header.signed_bytes()]));
        if !crate::crypto::constant_time_eq(expected.as_bytes(), header.mac.as_bytes()) {
            return Err(format!(
                "line 1: the header's MAC does not check: the file was changed, or it was made by a \
                 deployment whose SECRETS_KEY holds another key {}",
                header.key_id
            )
            .into());
        }
        let last = after.map_or_else(|| Self::root(&mac_key, &header.taken_at), str::to_owned);
        Ok(Self { mac_key, last })
    }

    /// A chain that makes the MACs of the lines of a new file taken at `taken_at`.
    pub fn signing(taken_at: &str, mac_key: [u8; 32]) -> Self {
        Self {
            last: Self::root(&mac_key, taken_at),
            mac_key,
        }
    }

    /// The chain going on after the MAC `after` (an export's next page).
    pub fn resumed(mac_key: [u8; 32], after: &str) -> Self {
        Self {
            mac_key,
            last: after.to_owned(),
        }
    }

    /// The next line, with its MAC.
    pub fn sign(&mut self, table: &str, row: Map<String, Value>) -> Line {
        let mac = line_mac(&self.mac_key, &self.last, table, &row);
        self.last.clone_from(&mac);
        Line {
            table: table.to_owned(),
            row,
            mac,
        }
    }

    /// Checks the file's line `number` (from 1): refused when it is not the line the MAC before
    /// it was made for (changed, moved, repeated, or one before it left out).
    pub fn check(&mut self, number: usize, line: &Line) -> Result<(), Malformed> {
        let expected = line_mac(&self.mac_key, &self.last, &line.table, &line.row);
        if !crate::crypto::constant_time_eq(expected.as_bytes(), line.mac.as_bytes()) {
            return Err(format!(
                "line {number}: not as the backup wrote it (changed, moved, repeated, or a line before it \
                 removed: its MAC does not check)"
            )
            .into());
        }
        self.last = expected;
        Ok(())
    }

    /// The MAC of the last line made or checked: where the next page goes on.
    pub fn last(&self) -> &str {
        &self.last
    }
}

/// `value` as a line of a file is written: its JSON's canonical form (compact, object keys sorted).
pub fn canonical<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .and_then(|value| serde_json::to_string(&value))
        .unwrap_or_default()
}

/// Whether `text` (one line of a file, without its newline) is its JSON's canonical form: what an
/// export writes. A line written otherwise was edited, even if what it says did not change.
pub fn is_canonical(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string(&value).ok())
        .is_some_and(|canonical| canonical == text)
}

/// Where an export stands: `MOVED_TABLES[table]`'s rows past rowid `after`, then the tables
/// after it; each table's rows up to `bounds[table]`, its last rowid when the export began, so a
/// row written during the export (a child whose parent was read before it existed) is left out;
/// the rows of each table written so far (the file's counts, which the last page's header says),
/// and the MAC of the last line written, which the next line's is made after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// When the export began (ms): the file's `taken_at`.
    pub taken_ms: i64,
    pub table: usize,
    pub after: i64,
    pub bounds: Vec<i64>,
    pub written: Vec<usize>,
    pub mac: String,
}

impl Cursor {
    /// Reads a cursor as `Display` writes it:
    /// `<taken ms>:<table>:<after>:<bound>,<bound>,…:<written>,<written>,…:<mac>`.
    pub fn parse(text: &str) -> Result<Self, Malformed> {
        let bad = || Malformed::new(format!("cursor {text:?} is not one an export page answered"));
        let mut parts = text.splitn(6, ':');
        let (Some(taken_ms), Some(table), Some(after), Some(bounds), Some(written), Some(mac)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let taken_ms = taken_ms.parse::<i64>().map_err(|_| bad())?;
        let table = table
            .parse::<usize>()
            .ok()
            .filter(|table| *table < MOVED_TABLES.len())
            .ok_or_else(bad)?;
        let after = after.parse::<i64>().map_err(|_| bad())?;
        let bounds = bounds
            .split(',')
            .map(|bound| bound.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        let written = written
            .split(',')
            .map(|count| count.parse::<usize>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        if bounds.len() != MOVED_TABLES.len() || written.len() != MOVED_TABLES.len() {
            return Err(bad());
        }
        if mac.len() != 64 || !mac.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self {
            taken_ms,
            table,
            after,
            bounds,
            written,
            mac: mac.to_owned(),
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |values: Vec<String>| values.join(",");
        write!(
            f,
            "{}:{}:{}:{}:{}:{}",
            self.taken_ms,
            self.table,
            self.after,
            list(self.bounds.iter().map(i64::to_string).collect()),
            list(self.written.iter().map(usize::to_string).collect()),
            self.mac
        )
    }
}

/// Checks a backup file line by line before anything of it is restored: a file cut short,
/// edited, or of another business or format is refused whole, with the line that is wrong.
#[derive(Debug)]
pub struct Check {
    header: Header,
    table: usize,
    counted: Vec<usize>,
}

impl Check {
    /// The check of a file whose first line is `header`.
    pub fn new(header: Header) -> Result<Self, Malformed> {
        if header.format != FORMAT {
            return Err(format!(
                "line 1: format {} is not one this crm-edge reads (it reads {FORMAT}; a backup of format 1 \
                 proves nothing of itself: take a new one)",
                header.format
            )
            .into());
        }
        if let Some(odd) = header
            .counts
            .keys()
            .find(|name| !MOVED_TABLES.iter().any(|table| table.name == name.as_str()))
        {
            return Err(format!("line 1: counts name {odd:?}, which is no table of a business").into());
        }
        Ok(Self {
            header,
            table: 0,
            counted: vec![0; MOVED_TABLES.len()],
        })
    }

    /// Checks the file's line `number` (from 1), which holds `line`.
    pub fn line(&mut self, number: usize, line: &Line) -> Result<(), Malformed> {
        let at = MOVED_TABLES[self.table..]
            .iter()
            .position(|table| table.name == line.table)
            .map(|ahead| self.table + ahead)
            .ok_or_else(|| {
                if MOVED_TABLES.iter().any(|table| table.name == line.table) {
                    format!(
                        "line {number}: a row of {} after rows of {}: the tables are out of order",
                        line.table, MOVED_TABLES[self.table].name
                    )
                } else {
                    format!("line {number}: {:?} is no table of a business", line.table)
                }
            })?;
        let column = MOVED_TABLES[at].business_column;
        if line.row.get(column).and_then(Value::as_str) != Some(self.header.business_id.as_str()) {
            return Err(format!(
                "line {number}: a row of {} whose {column} is not the backup's business {}",
                line.table, self.header.business_id
            )
            .into());
        }
        self.table = at;
        self.counted[at] += 1;
        Ok(())
    }

    /// The header, once every line was checked: refused when a table holds other than the
    /// header's count of rows (a file cut short), or the business's own row is not there once.
    pub fn finish(self) -> Result<Header, Malformed> {
        for (table, counted) in MOVED_TABLES.iter().zip(&self.counted) {
            let said = self.header.counts.get(table.name).copied().unwrap_or(0);
            if said != *counted {
                return Err(format!(
                    "{} holds {counted} rows where the header says {said}: the file is cut short or was edited",
                    table.name
                ).into());
            }
        }
        if self.counted[0] != 1 {
            return Err("the file does not hold the business's own row (businesses) once".into());
        }
        Ok(self.header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACME: &str = "biz_0123456789abcdef0123456789abcdef";

    fn header(counts: &[(&str, usize)]) -> Header {
        Header {
            format: FORMAT,
            business_id: ACME.to_owned(),
            taken_at: "2026-12-01T00:00:00Z".to_owned(),
            key_id: "k1".to_owned(),
            counts: counts
                .iter()
                .map(|(name, count)| ((*name).to_owned(), *count))
                .collect(),
            mac: String::new(),
        }
    }

    fn line(table: &str, column: &str, business: &str) -> Line {
        Line {
            table: table.to_owned(),
            row: Map::from_iter([(column.to_owned(), json!(business))]),
            mac: String::new(),
        }
    }

    /// The check's verdict on a file of `header` and `lines`.
    fn checked(header: Header, lines: &[Line]) -> Result<Header, Malformed> {
        let mut check = Check::new(header)?;
        for (at, line) in lines.iter().enumerate() {
            check.line(at + 2, line)?;
        }
        check.finish()
    }

    #[test]
    fn a_whole_file_passes_and_a_cut_edited_or_foreign_one_is_refused_naming_why() {
        let whole = [
            line("businesses", "id", ACME),
            line("customers", "business_id", ACME),
            line("customers", "business_id", ACME),
            line("messages", "business_id", ACME),
        ];
        let counts = [("businesses", 1), ("customers", 2), ("messages", 1)];
        assert_eq!(checked(header(&counts), &whole), Ok(header(&counts)));
        let cases: [(&str, Header, Vec<Line>, &str); 7] = [
            (
                "cut short",
                header(&counts),
                whole[..3].to_vec(),
                "messages holds 0 rows where the header says 1",
            ),
            (
                "a row of another business",
                header(&counts),
                vec![
                    whole[0].clone(),
                    line("customers", "business_id", "biz_other"),
                    whole[2].clone(),
                    whole[3].clone(),
                ],
                "line 3: a row of customers whose business_id is not the backup's business",
            ),
            (
                "tables out of order",
                header(&counts),
                vec![
                    whole[0].clone(),
                    whole[3].clone(),
                    whole[1].clone(),
                    whole[2].clone(),
                ],
                "line 4: a row of customers after rows of messages",
            ),
            (
                "a table that is not one",
                header(&counts),
                vec![whole[0].clone(), line("sqlite_master", "business_id", ACME)],
                "line 3: \"sqlite_master\" is no table of a business",
            ),
            (
                "another format",
                Header {
                    format: 1,
                    ..header(&counts)
                },
                whole.to_vec(),
                "line 1: format 1",
            ),
            (
                "counts of a table that is not one",
                header(&[("businesses", 1), ("business_shards", 1)]),
                whole[..1].to_vec(),
                "line 1: counts name \"business_shards\"",
            ),
            (
                "no business row",
                header(&[("customers", 2)]),
                whole[1..3].to_vec(),
                "does not hold the business's own row",
            ),
        ];
        for (what, header, lines, why) in cases {
            let verdict = checked(header, &lines);
            assert!(
                verdict.as_ref().is_err_and(|error| error.reason().contains(why)),
                "{what}: {verdict:?}"
            );
        }
    }

    #[test]
    fn an_export_cursor_reads_back_as_written_and_nothing_else_is_one() {
        let mac = "ab".repeat(32);
        let cursor = Cursor {
            taken_ms: 1_764_000_000_000,
            table: 5,
            after: 1234,
            bounds: (0..MOVED_TABLES.len() as i64).collect(),
            written: (0..MOVED_TABLES.len()).collect(),
            mac: mac.clone(),
        };
        assert_eq!(Cursor::parse(&cursor.to_string()), Ok(cursor));
        let bounds = vec!["0"; MOVED_TABLES.len()].join(",");
        for text in [
            String::new(),
            "5:1".to_owned(),
            format!("9:{}:0:{bounds}:{bounds}:{mac}", MOVED_TABLES.len()),
            format!("9:x:0:{bounds}:{bounds}:{mac}"),
            format!("9:1:y:{bounds}:{bounds}:{mac}"),
            format!("9:1:0:0,0:{bounds}:{mac}"),
            format!("9:1:0:{bounds},0:{bounds}:{mac}"),
            format!("9:1:0:{bounds}:{bounds}"),
            format!("9:1:0:{bounds}:{bounds}:xyz"),
            format!("9:1:0:{bounds}:-1:{mac}"),
            format!("t:1:0:{bounds}:{bounds}:{mac}"),
        ] {
            assert!(Cursor::parse(&text).is_err(), "{text}");
        }
    }

    /// A signed file of `rows` lines: its header and lines as they are written, one a line.
    fn signed_file(key: &[u8; 32]) -> Vec<String> {
        let mac_key = mac_key(key, ACME);
        let header = header(&[("businesses", 1), ("customers", 3)]).signed(&mac_key);
        let mut chain = Chain::signing(&header.taken_at, mac_key);
        let mut file = vec![canonical(&header)];
        let business = Map::from_iter([("id".to_owned(), json!(ACME)), ("name".to_owned(), json!("Acme"))]);
        file.push(canonical(&chain.sign("businesses", business)));
        for n in 0..3 {
            let row = Map::from_iter([
                ("business_id".to_owned(), json!(ACME)),
                ("id".to_owned(), json!(format!("c{n}"))),
                ("email".to_owned(), json!(format!("c{n}@example.com"))),
            ]);
            file.push(canonical(&chain.sign("customers", row)));
        }
        file
    }

    /// Whether a file checks as a restore checks it: each line canonical, the header's MAC and
    /// every line's, and the structure (order, business, counts).
    fn verify(file: &[String], key: &[u8; 32]) -> Result<(), Malformed> {
        let number = |at: usize| at + 1;
        for (at, text) in file.iter().enumerate() {
            if !is_canonical(text) {
                return Err(format!("line {}: not canonical", number(at)).into());
            }
        }
        let header: Header = serde_json::from_str(file.first().ok_or("empty")?).map_err(|e| e.to_string())?;
        let mut chain = Chain::checked(&header, mac_key(key, &header.business_id), None)?;
        let mut check = Check::new(header)?;
        for (at, text) in file.iter().enumerate().skip(1) {
            let line: Line = serde_json::from_str(text).map_err(|e| format!("line {}: {e}", number(at)))?;
            chain.check(number(at), &line)?;
            check.line(number(at), &line)?;
        }
        check.finish().map(|_| ())
    }

    #[test]
    fn every_changed_byte_removed_repeated_or_swapped_line_of_a_signed_file_is_refused() {
        let key = [7u8; 32];
        let file = signed_file(&key);
        assert_eq!(verify(&file, &key), Ok(()));
        let mut refused = 0;
        for (at, text) in file.iter().enumerate() {
            let bytes = text.as_bytes();
            for position in 0..bytes.len() {
                for flip in [0x01u8, 0x20] {
                    let mut changed = bytes.to_vec();
                    changed[position] ^= flip;
                    let Ok(changed) = String::from_utf8(changed) else {
                        continue;
                    };
                    let mut edited = file.clone();
                    edited[at] = changed;
                    assert!(
                        verify(&edited, &key).is_err(),
                        "byte {position} of line {}: {}",
                        at + 1,
                        edited[at]
                    );
                    refused += 1;
                }
            }
        }
        for at in 0..file.len() {
            let mut removed = file.clone();
            removed.remove(at);
            assert!(verify(&removed, &key).is_err(), "line {} removed", at + 1);
            let mut repeated = file.clone();
            repeated.insert(at, file[at].clone());
            assert!(verify(&repeated, &key).is_err(), "line {} repeated", at + 1);
            for other in at + 1..file.len() {
                let mut swapped = file.clone();
                swapped.swap(at, other);
                assert!(
                    verify(&swapped, &key).is_err(),
                    "lines {} and {} swapped",
                    at + 1,
                    other + 1
                );
            }
        }
        assert!(refused > 500, "{refused} single-byte changes");
        assert!(
            verify(&file, &[8u8; 32]).is_err_and(|why| why.reason().starts_with("line 1:")),
            "another deployment's key"
        );
    }
}
