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
pub struct Row {
    pub number: u64,
    pub customer: Value,
    pub bytes_read: u64,
}

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
            let mut record = csv::StringRecord::new();
            let mut number = 1;
            while csv
                .read_record(&mut record)
                .map_err(|e| format!("row {}: {e}", number + 1))?
            {
                number += 1;
                let row: Vec<String> = record.iter().map(str::to_owned).collect();
                each(Row {
                    number,
                    customer: mapping.customer(&row),
                    bytes_read: csv.position().byte(),
                })?;
            }
            Ok(())
        }
        Format::JsonLines => {
            no_mapping(overrides)?;
            for (index, line) in reader.lines().enumerate() {
                let line = line.map_err(|e| format!("line {}: {e}", index + 1))?;
                if line.trim().is_empty() {
                    continue;
                }
                let customer =
                    serde_json::from_str(&line).map_err(|e| format!("line {}: not JSON: {e}", index + 1))?;
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
                customer,
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
            rows.push((row.number, row.customer));
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
        assert!(rows_of("b.jsonl", "{\"name\":\"Ann\"}\n{oops\n").is_err_and(|e| e.starts_with("line 2")));
        assert!(rows_of("b.json", "{\"name\":\"Ann\"}").is_err_and(|e| e.contains("array")));
    }
}
