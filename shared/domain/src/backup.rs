//! A backup of one business (`crm-edge admin backup` / `restore`, docs/operations.md "Backups and
//! recovery"): the file's format, the export's cursor, the page budgets, and the check a file
//! passes before anything of it is restored.
//!
//! The file is JSON lines: a [`Header`] (format, business, time, how many rows of each table),
//! then one [`Line`] per row, `{"table": …, "row": {…}}`, the tables in [`MOVED_TABLES`]'s order
//! (parents first), each row as `SELECT *` holds it but for the keys the database numbers and the
//! columns it computes (as a move copies it). Sealed secrets are in it as they are stored: sealed
//! under the exporting deployment's `SECRETS_KEY`, never in clear.

use crate::shard_move::{MOVED_TABLES, ROWS_PER_STEP};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The format this code writes and reads.
pub const FORMAT: u32 = 1;

/// Rows an export page or a restore page holds at most: a restore page is one D1 batch of one
/// insert a row (200 of an invocation's 1,000 queries).
pub const PAGE_ROWS: usize = ROWS_PER_STEP;

/// Bytes of rows (as JSON) past which an export page stops, and a restore page is cut: a page
/// and its JSON stay a few MB whatever the rows are.
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Rows one read of an export asks D1 for. A D1 row is at most 2 MB: a read holds at most 32 MB,
/// so a page (4 MB, then one read) with its JSON answer stays well under a Worker's 128 MB.
pub const ROWS_PER_READ: usize = 16;

/// The first line of a backup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "BackupHeader"))]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The file's format (1).
    pub format: u32,
    pub business_id: String,
    /// RFC 3339: when the export began. Rows are read from then on, page by page; a row written
    /// after the export began is not in it.
    pub taken_at: String,
    /// A fixed text sealed under the exporting deployment's sealing key: a restore opens it
    /// first, and is refused on a deployment whose `SECRETS_KEY` cannot.
    pub key_check: String,
    /// How many rows of each table follow.
    pub counts: BTreeMap<String, usize>,
}

/// One row of a backup file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "openapi", schemars(rename = "BackupLine"))]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub table: String,
    pub row: Map<String, Value>,
}

/// Where the key check is sealed: bound to the business, so one backup's check is no other's.
pub const KEY_CHECK_TABLE: &str = "backups";
pub const KEY_CHECK_COLUMN: &str = "key_check";
/// What the key check opens to.
pub const KEY_CHECK_TEXT: &str = "crm-edge backup key check";

/// Where an export stands: `MOVED_TABLES[table]`'s rows past rowid `after`, then the tables
/// after it; each table's rows up to `bounds[table]`, its last rowid when the export began, so a
/// row written during the export (a child whose parent was read before it existed) is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub table: usize,
    pub after: i64,
    pub bounds: Vec<i64>,
}

impl Cursor {
    /// Reads a cursor as `Display` writes it: `<table>:<after>:<bound>,<bound>,…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("cursor {text:?} is not one an export page answered");
        let mut parts = text.splitn(3, ':');
        let (Some(table), Some(after), Some(bounds)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
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
        if bounds.len() != MOVED_TABLES.len() {
            return Err(bad());
        }
        Ok(Self { table, after, bounds })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bounds: Vec<String> = self.bounds.iter().map(i64::to_string).collect();
        write!(f, "{}:{}:{}", self.table, self.after, bounds.join(","))
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
    pub fn new(header: Header) -> Result<Self, String> {
        if header.format != FORMAT {
            return Err(format!(
                "line 1: format {} is not one this crm-edge reads (it reads {FORMAT})",
                header.format
            ));
        }
        if let Some(odd) = header
            .counts
            .keys()
            .find(|name| !MOVED_TABLES.iter().any(|table| table.name == name.as_str()))
        {
            return Err(format!(
                "line 1: counts name {odd:?}, which is no table of a business"
            ));
        }
        Ok(Self {
            header,
            table: 0,
            counted: vec![0; MOVED_TABLES.len()],
        })
    }

    /// Checks the file's line `number` (from 1), which holds `line`.
    pub fn line(&mut self, number: usize, line: &Line) -> Result<(), String> {
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
            ));
        }
        self.table = at;
        self.counted[at] += 1;
        Ok(())
    }

    /// The header, once every line was checked: refused when a table holds other than the
    /// header's count of rows (a file cut short), or the business's own row is not there once.
    pub fn finish(self) -> Result<Header, String> {
        for (table, counted) in MOVED_TABLES.iter().zip(&self.counted) {
            let said = self.header.counts.get(table.name).copied().unwrap_or(0);
            if said != *counted {
                return Err(format!(
                    "{} holds {counted} rows where the header says {said}: the file is cut short or was edited",
                    table.name
                ));
            }
        }
        if self.counted[0] != 1 {
            return Err("the file does not hold the business's own row (businesses) once".to_owned());
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
            key_check: "v1:k1:x".to_owned(),
            counts: counts
                .iter()
                .map(|(name, count)| ((*name).to_owned(), *count))
                .collect(),
        }
    }

    fn line(table: &str, column: &str, business: &str) -> Line {
        Line {
            table: table.to_owned(),
            row: Map::from_iter([(column.to_owned(), json!(business))]),
        }
    }

    /// The check's verdict on a file of `header` and `lines`.
    fn checked(header: Header, lines: &[Line]) -> Result<Header, String> {
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
                    format: 2,
                    ..header(&counts)
                },
                whole.to_vec(),
                "line 1: format 2",
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
                verdict.as_ref().is_err_and(|error| error.contains(why)),
                "{what}: {verdict:?}"
            );
        }
    }

    #[test]
    fn an_export_cursor_reads_back_as_written_and_nothing_else_is_one() {
        let cursor = Cursor {
            table: 5,
            after: 1234,
            bounds: (0..MOVED_TABLES.len() as i64).collect(),
        };
        assert_eq!(Cursor::parse(&cursor.to_string()), Ok(cursor));
        let bounds = vec!["0"; MOVED_TABLES.len()].join(",");
        for text in [
            String::new(),
            "5:1".to_owned(),
            format!("{}:0:{bounds}", MOVED_TABLES.len()),
            format!("x:0:{bounds}"),
            format!("1:y:{bounds}"),
            "1:0:0,0".to_owned(),
            format!("1:0:{bounds},0"),
        ] {
            assert!(Cursor::parse(&text).is_err(), "{text}");
        }
    }
}
