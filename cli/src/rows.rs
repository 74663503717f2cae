//! The rows of an import file, one at a time, whatever its size: CSV (a header row, mapped by
//! `mapping`), JSON Lines (one customer object a line) or a JSON array of customer objects, read
//! as a stream so that a 1 GB file is never in memory.

use crate::mapping::Mapping;
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
    JsonArray,
}

impl Format {
    /// By extension: `.jsonl`/`.ndjson`, `.json`, else CSV.
    pub fn of(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson") => Self::JsonLines,
            Some("json") => Self::JsonArray,
            _ => Self::Csv,
        }
    }
}

/// One row: its number as a person would count it (CSV: the spreadsheet's row, header = 1; JSON
/// Lines: the line; a JSON array: the item, from 1), the customer, and how far into the file.
/// A row that cannot be read (a line that is not JSON, a CSV record that is not UTF-8) is
/// `Err(why)`, and the reading goes on: the import reports it like a row the API refused.
pub struct Row {
    pub number: u64,
    pub customer: Result<Value, String>,
    pub bytes_read: u64,
}

const NOT_UTF8: &str = "the row is not UTF-8 text (save the file as UTF-8)";

/// Counts the bytes read through it, for progress.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.read.set(self.read.get() + read as u64);
        Ok(read)
    }
}

/// Calls `each` with every row of the file, in order.
pub fn each(
    file: &Path,
    format: Format,
    overrides: &[(String, String)],
    each: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), String> {
    let opened = File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let read = Rc::new(Cell::new(0));
    let reader = BufReader::new(Counting {
        inner: opened,
        read: Rc::clone(&read),
    });
    match format {
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
            let header: Vec<String> = csv
                .headers()
                .map_err(|e| e.to_string())?
                .iter()
                .map(str::to_owned)
                .collect();
            let mapping = Mapping::new(&header, overrides)?;
            let mut record = csv::ByteRecord::new();
            let mut number = 1;
            while csv
                .read_byte_record(&mut record)
                .map_err(|e| format!("row {}: {e}", number + 1))?
            {
                number += 1;
                let cells: Result<Vec<String>, _> = record
                    .iter()
                    .map(|cell| String::from_utf8(cell.to_vec()))
                    .collect();
                each(Row {
                    number,
                    customer: cells
                        .map(|cells| mapping.customer(&cells))
                        .map_err(|_| NOT_UTF8.to_owned()),
                    bytes_read: csv.position().byte(),
                })?;
            }
            Ok(())
        }
        Format::JsonLines => {
            no_mapping(overrides)?;
            for (index, line) in reader.split(b'\n').enumerate() {
                let line = line.map_err(|e| format!("line {}: {e}", index + 1))?;
                if line.trim_ascii().is_empty() {
                    continue;
                }
                let customer = std::str::from_utf8(&line)
                    .map_err(|_| NOT_UTF8.to_owned())
                    .and_then(|line| serde_json::from_str(line).map_err(|e| format!("not JSON: {e}")));
                each(Row {
                    number: index as u64 + 1,
                    customer,
                    bytes_read: read.get(),
                })?;
            }
            Ok(())
        }
        Format::JsonArray => {
            no_mapping(overrides)?;
            let mut deserializer = serde_json::Deserializer::from_reader(reader);
            let mut failed = None;
            let seed = Items {
                each,
                read: &read,
                failed: &mut failed,
            };
            let outcome = seed.deserialize(&mut deserializer);
            if let Some(error) = failed {
                return Err(error);
            }
            outcome.map_err(|e| format!("not a JSON array of customers: {e}"))?;
            deserializer.end().map_err(|e| format!("after the array: {e}"))
        }
    }
}

fn no_mapping(overrides: &[(String, String)]) -> Result<(), String> {
    if overrides.is_empty() {
        Ok(())
    } else {
        Err("--map applies to CSV files; JSON rows are customer objects already".to_owned())
    }
}

/// A JSON array read item by item, each handed to `each` as it is parsed.
struct Items<'a, 'b> {
    each: &'a mut dyn FnMut(Row) -> Result<(), String>,
    read: &'b Rc<Cell<u64>>,
    /// Why `each` stopped the reading, which serde would otherwise report as its own error.
    failed: &'b mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Items<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of customer objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut number = 0;
        while let Some(customer) = items.next_element::<Value>()? {
            number += 1;
            if let Err(error) = (self.each)(Row {
                number,
                customer: Ok(customer),
                bytes_read: self.read.get(),
            }) {
                *self.failed = Some(error.clone());
                return Err(serde::de::Error::custom(error));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(name: &str, text: &str) -> Result<Vec<(u64, Value)>, String> {
        let path = std::env::temp_dir().join(format!("crm-edge-rows-{}-{name}", std::process::id()));
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        let outcome = each(&path, Format::of(&path), &[], &mut |row| {
            rows.push((row.number, row.customer?));
            Ok(())
        });
        let _ = std::fs::remove_file(&path);
        outcome.map(|()| rows)
    }

    #[test]
    fn each_format_gives_its_rows_numbered_as_a_person_counts() {
        let csv = rows_of("a.csv", "Email,Name\na@example.com,Ann\nb@example.com,Bob\n");
        assert_eq!(
            csv.map(|rows| rows
                .iter()
                .map(|(n, c)| (*n, c["name"].clone()))
                .collect::<Vec<_>>()),
            Ok(vec![(2, Value::from("Ann")), (3, Value::from("Bob"))])
        );
        let lines = rows_of("a.jsonl", "{\"name\":\"Ann\"}\n\n{\"name\":\"Bob\"}\n");
        assert_eq!(
            lines.map(|rows| rows.iter().map(|(n, _)| *n).collect::<Vec<_>>()),
            Ok(vec![1, 3])
        );
        let array = rows_of("a.json", "[{\"name\":\"Ann\"}, {\"name\":\"Bob\"}]");
        assert_eq!(array.map(|rows| rows.len()), Ok(2));
    }

    #[test]
    fn a_broken_file_says_where() {
        assert!(rows_of("b.json", "{\"name\":\"Ann\"}").is_err_and(|e| e.contains("array")));
    }

    #[test]
    fn a_row_that_cannot_be_read_is_its_own_error_and_the_reading_goes_on() -> Result<(), String> {
        let path = std::env::temp_dir().join(format!("crm-edge-rows-{}-bad.csv", std::process::id()));
        let mut bytes = b"Email,Name\na@example.com,Ann\nb@example.com,B".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\nc@example.com,Cy\n");
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        each(&path, Format::Csv, &[], &mut |row| {
            seen.push((row.number, row.customer.map(|c| c["name"].clone())));
            Ok(())
        })?;
        std::fs::remove_file(&path).map_err(|e| e.to_string())?;
        assert_eq!(seen[0], (2, Ok(Value::from("Ann"))));
        assert!(seen[1].0 == 3 && seen[1].1.as_ref().is_err_and(|e| e.contains("UTF-8")));
        assert_eq!(seen[2], (4, Ok(Value::from("Cy"))));
        let lines = rows_of("c.jsonl", "{\"name\":\"Ann\"}\n{oops\n");
        assert!(lines.is_err_and(|e| e.starts_with("not JSON")));
        let path = std::env::temp_dir().join(format!("crm-edge-rows-{}-bad.jsonl", std::process::id()));
        std::fs::write(&path, b"{\"name\":\"Jos\xe9\"}\r\n{\"name\":\"Ann\"}\r\n")
            .map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        each(&path, Format::JsonLines, &[], &mut |row| {
            seen.push((row.number, row.customer.is_ok()));
            Ok(())
        })?;
        std::fs::remove_file(&path).map_err(|e| e.to_string())?;
        assert_eq!(
            seen,
            [(1, false), (2, true)],
            "a CRLF line is read; a Latin-1 one is its own error"
        );
        Ok(())
    }
}
