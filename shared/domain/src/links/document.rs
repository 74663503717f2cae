//! What a link's data becomes once fetched: the pages of one fetch as one list of lines, then the
//! pieces that are embedded and searched.
//!
//! - **Pages** of a paginated fetch continue each other: the second page's `customers[0]` is
//!   numbered after the first page's last customer, so the lines read as one list. HubSpot's
//!   `paging` object (its cursor) is bookkeeping, not data, and is left out.
//! - **CSV** (a `text/csv` answer, or a URL ending in `.csv`) is read as a header row and
//!   records: `rows[0].email: john@example.com`, one line per non-empty cell.
//! - **Pieces**: each chunk is shown in the guide's format (`customers[3].name: John Doe`), but
//!   embedded, and identified, without its record's position: `name: John Doe`. So a record
//!   that merely moved (a customer before it was removed) keeps its identity and its vector, and
//!   the model reads field names, not array indexes.
//! - **Subjects**: each piece of a link that holds customers' records carries its record's
//!   subject (`domain::bot::subject`), and its identity includes it, so a change of what the link
//!   holds indexes it again; a general piece's identity is its content's alone, as before subjects.
//!   A customer record without a readable key is not indexed at all, only counted.

use crate::bot::subject::{Holds, subjects_of_records};
use crate::error::ApiError;
use crate::links::chunk::{ChunkOptions, chunk};
use crate::links::flatten::{Limits, Line, flatten};
use crate::phone::Country;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What kind of body a fetch answered with, from its `Content-Type` and URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// JSON, or plain text: [`flatten`] tells them apart by content.
    Text,
    Csv,
}

impl BodyKind {
    pub fn of(content_type: Option<&str>, url: &str) -> Self {
        let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
        let path = url
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.contains("csv") || (!content_type.contains("json") && path.ends_with(".csv")) {
            Self::Csv
        } else {
            Self::Text
        }
    }
}

/// Where a paginated fetch stands between its pages: how many records of each top-level array
/// (`customers`, or `` for a body that is an array) the pages before held, so that the next
/// page's lines continue their numbering. A fetch of many pages keeps it between invocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Numbering {
    offsets: BTreeMap<String, usize>,
}

impl Numbering {
    /// The lines of one page, numbered after the pages before it.
    pub fn page(&mut self, body: &str, kind: BodyKind, limits: &Limits) -> Result<Vec<Line>, ApiError> {
        let lines = match kind {
            BodyKind::Text => flatten(body, limits)?,
            BodyKind::Csv => csv_lines(body, limits)?,
        };
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut numbered = Vec::with_capacity(lines.len());
        for mut line in lines {
            if line.path == "paging" || line.path.starts_with("paging.") {
                continue;
            }
            if let Some((array, index, rest)) = top_level_index(&line.path) {
                let count = counts.entry(array.to_owned()).or_default();
                *count = (*count).max(index + 1);
                let offset = self.offsets.get(array).copied().unwrap_or_default();
                if offset > 0 {
                    line.path = format!("{array}[{}]{rest}", index + offset);
                }
            }
            numbered.push(line);
        }
        for (array, count) in counts {
            *self.offsets.entry(array).or_default() += count;
        }
        Ok(numbered)
    }
}

/// How many records `lines` hold: distinct record paths (`customers[3]`), or one for plain text.
pub fn records(lines: &[Line]) -> usize {
    let records: HashSet<&str> = lines.iter().map(Line::record).collect();
    records.len()
}

/// The lines of every page of one fetch, numbered as one list: what a body pushed to a webhook
/// link (one page) becomes, and what the tests read.
#[derive(Debug, Default)]
pub struct Pages {
    lines: Vec<Line>,
    numbering: Numbering,
    bytes: usize,
}

impl Pages {
    /// Adds one page. `limits` apply to all pages together.
    pub fn add(&mut self, body: &str, kind: BodyKind, limits: &Limits) -> Result<(), ApiError> {
        let left = Limits {
            max_lines: limits.max_lines.saturating_sub(self.lines.len()),
            max_bytes: limits.max_bytes.saturating_sub(self.bytes),
            max_depth: limits.max_depth,
        };
        for line in self.numbering.page(body, kind, &left)? {
            self.bytes += line.path.len() + line.value.len() + 3;
            self.lines.push(line);
        }
        Ok(())
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// How many records the pages hold.
    pub fn records(&self) -> usize {
        records(&self.lines)
    }
}

/// `customers[12].name` → (`customers`, 12, `.name`); `[3].id` → (``, 3, `.id`). Only an index
/// of the path's first segment counts.
fn top_level_index(path: &str) -> Option<(&str, usize, &str)> {
    let open = path.find('[')?;
    let array = &path[..open];
    if array.contains('.') {
        return None;
    }
    let close = open + path[open..].find(']')?;
    let index = path[open + 1..close].parse().ok()?;
    Some((array, index, &path[close + 1..]))
}

/// A CSV body as lines `rows[i].<column>: <value>`. Quoted fields may hold commas, quotes (`""`)
/// and line breaks (which become spaces, as in [`flatten`]).
fn csv_lines(body: &str, limits: &Limits) -> Result<Vec<Line>, ApiError> {
    let mut rows = csv_rows(body.trim_start_matches('\u{feff}'))?.into_iter();
    let Some(header) = rows.next() else {
        return Ok(Vec::new());
    };
    let header: Vec<String> = header.into_iter().map(|name| name.trim().to_owned()).collect();
    let mut lines = Vec::new();
    let mut bytes = 0;
    for (index, row) in rows
        .filter(|row| row.iter().any(|cell| !cell.trim().is_empty()))
        .enumerate()
    {
        for (column, cell) in row.iter().enumerate() {
            let value = cell.trim();
            if value.is_empty() {
                continue;
            }
            let name = header
                .get(column)
                .filter(|name| !name.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("column{}", column + 1));
            let line = Line {
                path: format!("rows[{index}].{name}"),
                value: value.replace(['\r', '\n'], " "),
            };
            bytes += line.path.len() + line.value.len() + 3;
            lines.push(line);
            if lines.len() > limits.max_lines || bytes > limits.max_bytes {
                return Err(ApiError::crm_failed(format!(
                    "the CSV is larger than {} lines or {} bytes of text: paginate or trim it",
                    limits.max_lines, limits.max_bytes
                )));
            }
        }
    }
    Ok(lines)
}

fn csv_rows(body: &str) -> Result<Vec<Vec<String>>, ApiError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(ApiError::crm_failed("the CSV has a quoted field that never ends"));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// One searchable piece of a link's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Its record as the data numbers it now (`customers[3]`).
    pub record: String,
    pub part: usize,
    /// The lines in the guide's format: what search answers with.
    pub text: String,
    /// The lines without their record's position: what the model embeds.
    pub content: String,
    /// SHA-256 of `content` (of its subject, a zero byte and `content` when it has a subject),
    /// lowercase hex: the piece's identity across refreshes.
    pub hash: String,
    /// SHA-256 of `content` alone, whatever its subject: a piece whose subject changed (what its
    /// link holds did) takes the vector of the piece of the same content, not a new embedding.
    pub content_hash: String,
    /// Whose record it is (`email:ann@example.com`); None for general knowledge.
    pub subject: Option<String>,
}

/// A link's data as pieces: those to index, and the records of a customers link left out for
/// having no readable key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pieces {
    pub pieces: Vec<Piece>,
    pub without_key: usize,
}

/// Leaf keys that say whom a record is about: a later part of a long record starts with them, so
/// that a piece about an address still says whose address it is.
const IDENTITY_KEYS: [&str; 10] = [
    "id",
    "name",
    "full_name",
    "first_name",
    "last_name",
    "firstname",
    "lastname",
    "email",
    "company",
    "title",
];
/// At most this many identity lines head a later part.
const MAX_IDENTITY_LINES: usize = 4;

/// Cuts the lines into pieces. A record too long for one piece is split with an overlap, and each
/// later part is headed by the record's identity lines (its `id`, names, email). Pieces whose
/// identity is the same as an earlier one's (the same record twice) are kept once. The lines of a
/// link that `holds` customers' records give each piece its record's subject (its phones read in
/// `country`, the business's default), and a record without one is left out and counted.
pub fn pieces(lines: &[Line], options: &ChunkOptions, holds: &Holds, country: Option<Country>) -> Pieces {
    let subjects = subjects_of_records(lines, holds, country);
    let personal = matches!(holds, Holds::Customers { .. });
    let mut identities: HashMap<&str, Vec<String>> = HashMap::new();
    for line in lines {
        let record = line.record();
        let Some(key) = line
            .path
            .strip_prefix(record)
            .and_then(|rest| rest.strip_prefix('.'))
        else {
            continue;
        };
        let identity = identities.entry(record).or_default();
        if identity.len() < MAX_IDENTITY_LINES && IDENTITY_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
            identity.push(line.to_string());
        }
    }
    let mut seen = HashSet::new();
    let pieces = chunk(lines, options)
        .into_iter()
        .filter_map(|chunk| {
            let subject = match subjects.get(chunk.record.as_str()) {
                Some(Some(subject)) => Some(subject.clone()),
                // A customer record without a key is no one's: never general knowledge.
                _ if personal => return None,
                _ => None,
            };
            let text = match identities.get(chunk.record.as_str()) {
                Some(identity) if chunk.part > 0 => {
                    let own: HashSet<&str> = chunk.text.lines().collect();
                    let missing: Vec<&str> = identity
                        .iter()
                        .map(String::as_str)
                        .filter(|line| !own.contains(line))
                        .collect();
                    if missing.is_empty() {
                        chunk.text
                    } else {
                        format!("{}\n{}", missing.join("\n"), chunk.text)
                    }
                }
                _ => chunk.text,
            };
            let content = without_record(&text, &chunk.record);
            let hash = identity(subject.as_deref(), &content);
            let content_hash = identity(None, &content);
            seen.insert(hash.clone()).then_some(Piece {
                record: chunk.record,
                part: chunk.part,
                text,
                content,
                hash,
                content_hash,
                subject,
            })
        })
        .collect();
    Pieces {
        pieces,
        without_key: subjects.values().filter(|subject| subject.is_none()).count(),
    }
}

/// A piece's identity: the SHA-256 of its content, after its subject and a zero byte when it has
/// one (a general piece's is its content's alone, as it was before subjects, so that data indexed
/// then is not embedded again).
fn identity(subject: Option<&str>, content: &str) -> String {
    let mut hasher = Sha256::new();
    if let Some(subject) = subject {
        hasher.update(subject.as_bytes());
        hasher.update([0]);
    }
    hasher.update(content.as_bytes());
    hex::encode(hasher.finalize())
}

/// `customers[3].name: John` → `name: John`; `customers[3]: gold` → `gold`.
fn without_record(text: &str, record: &str) -> String {
    if record.is_empty() {
        return text.to_owned();
    }
    text.lines()
        .map(|line| match line.strip_prefix(record) {
            Some(rest) => rest
                .strip_prefix('.')
                .or_else(|| rest.strip_prefix(": "))
                .unwrap_or(rest),
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(bodies: &[&str], kind: BodyKind) -> Pages {
        let mut pages = Pages::default();
        for body in bodies {
            pages
                .add(body, kind, &Limits::default())
                .unwrap_or_else(|e| panic!("{body}: {e}"));
        }
        pages
    }

    fn general(lines: &[Line], options: &ChunkOptions) -> Vec<Piece> {
        pieces(lines, options, &Holds::General, None).pieces
    }

    fn texts(pages: &Pages) -> Vec<String> {
        pages.lines().iter().map(Line::to_string).collect()
    }

    #[test]
    fn later_pages_continue_the_numbering_of_each_top_level_array() {
        let pages = pages(
            &[
                r#"{"customers":[{"id":1},{"id":2}]}"#,
                r#"{"customers":[{"id":3}],"paging":{"next":{"after":"3","link":"https://x/y"}}}"#,
            ],
            BodyKind::Text,
        );
        assert_eq!(
            texts(&pages),
            ["customers[0].id: 1", "customers[1].id: 2", "customers[2].id: 3"],
            "HubSpot's paging cursor is not data"
        );
        assert_eq!(pages.records(), 3);
    }

    #[test]
    fn top_level_arrays_and_nested_indexes_are_told_apart() {
        let pages = pages(&[r#"[{"a":[1,2]}]"#, r#"[{"a":[3]}]"#], BodyKind::Text);
        assert_eq!(texts(&pages), ["[0].a[0]: 1", "[0].a[1]: 2", "[1].a[0]: 3"]);
    }

    #[test]
    fn limits_hold_across_pages() {
        let limits = Limits {
            max_lines: 3,
            ..Limits::default()
        };
        let mut pages = Pages::default();
        assert!(pages.add(r#"{"a":[1,2]}"#, BodyKind::Text, &limits).is_ok());
        assert!(pages.add(r#"{"a":[3,4]}"#, BodyKind::Text, &limits).is_err());
    }

    #[test]
    fn csv_becomes_one_record_per_row_with_quoted_fields_kept_whole() {
        let body = "\u{feff}id,name,note\r\n1,John Doe,\"Gold, \"\"VIP\"\"\nsince 2020\"\r\n\r\n2,Ann,\n";
        let pages = pages(&[body], BodyKind::Csv);
        assert_eq!(
            texts(&pages),
            [
                "rows[0].id: 1",
                "rows[0].name: John Doe",
                "rows[0].note: Gold, \"VIP\" since 2020",
                "rows[1].id: 2",
                "rows[1].name: Ann",
            ]
        );
        let mut broken = Pages::default();
        assert!(
            broken
                .add("a\n\"open", BodyKind::Csv, &Limits::default())
                .is_err()
        );
    }

    #[test]
    fn the_kind_comes_from_the_content_type_then_the_url() {
        assert_eq!(
            BodyKind::of(Some("text/csv; charset=utf-8"), "https://x/a"),
            BodyKind::Csv
        );
        assert_eq!(BodyKind::of(None, "https://x/export.CSV?x=1"), BodyKind::Csv);
        assert_eq!(
            BodyKind::of(Some("application/json"), "https://x/a.csv"),
            BodyKind::Text
        );
        assert_eq!(
            BodyKind::of(Some("text/plain"), "https://x/a.txt"),
            BodyKind::Text
        );
    }

    #[test]
    fn a_piece_is_identified_by_its_content_not_its_position() {
        let first = pages(&[r#"{"c":[{"id":1,"n":"A"},{"id":2,"n":"B"}]}"#], BodyKind::Text);
        let second = pages(&[r#"{"c":[{"id":2,"n":"B"}]}"#], BodyKind::Text);
        let before = general(first.lines(), &ChunkOptions::default());
        let after = general(second.lines(), &ChunkOptions::default());
        assert_eq!(before[1].text, "c[1].id: 2\nc[1].n: B");
        assert_eq!(before[1].content, "id: 2\nn: B");
        assert_eq!(after[0].text, "c[0].id: 2\nc[0].n: B");
        assert_eq!(
            before[1].hash, after[0].hash,
            "the record moved, its identity did not"
        );
    }

    #[test]
    fn repeated_records_are_one_piece() {
        let data = pages(&[r#"{"c":[{"id":1},{"id":1}]}"#], BodyKind::Text);
        assert_eq!(general(data.lines(), &ChunkOptions::default()).len(), 1);
    }

    #[test]
    fn a_numbering_kept_between_pages_continues_where_the_last_page_ended() {
        let mut numbering = Numbering::default();
        let first = numbering.page(r#"{"c":[{"id":1},{"id":2}]}"#, BodyKind::Text, &Limits::default());
        assert_eq!(first.map(|lines| records(&lines)), Ok(2));
        let kept: Numbering =
            serde_json::from_str(&serde_json::to_string(&numbering).unwrap_or_default()).unwrap_or_default();
        let mut resumed = kept;
        let second = resumed.page(r#"{"c":[{"id":3}]}"#, BodyKind::Text, &Limits::default());
        assert_eq!(
            second.map(|lines| lines.iter().map(Line::to_string).collect::<Vec<_>>()),
            Ok(vec!["c[2].id: 3".to_owned()])
        );
    }

    #[test]
    fn a_later_part_of_a_long_record_says_whose_it_is() {
        let body = r#"{"customers":[{"id":7,"first_name":"Ann","email":"ann@x.test","note":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","city":"Cork"}]}"#;
        let data = pages(&[body], BodyKind::Text);
        let options = ChunkOptions::new(100, 0).unwrap_or_else(|e| panic!("{e}"));
        let parts = general(data.lines(), &options);
        assert!(parts.len() >= 2, "{parts:?}");
        let last = &parts[parts.len() - 1];
        assert_eq!(
            last.text,
            "customers[0].id: 7\ncustomers[0].first_name: Ann\ncustomers[0].email: ann@x.test\ncustomers[0].city: Cork"
        );
        assert_eq!(
            last.content,
            "id: 7\nfirst_name: Ann\nemail: ann@x.test\ncity: Cork"
        );
        assert!(
            !parts[0].text.starts_with("customers[0].id: 7\ncustomers[0].id"),
            "the first part is not headed twice"
        );
    }

    #[test]
    fn a_general_pieces_identity_is_the_hash_of_its_content_as_before_subjects() {
        // Pinned: data indexed before subjects keeps its identities, and is not embedded again.
        let data = pages(
            &[r#"{"plans":[{"name":"Gold","price":"30 EUR"}]}"#],
            BodyKind::Text,
        );
        let cut = pieces(data.lines(), &ChunkOptions::default(), &Holds::General, None);
        assert_eq!(cut.without_key, 0);
        assert_eq!(cut.pieces.len(), 1);
        assert_eq!(cut.pieces[0].content, "name: Gold\nprice: 30 EUR");
        assert_eq!(cut.pieces[0].subject, None);
        assert_eq!(
            cut.pieces[0].hash, "ae8e81575defb8535ceeb10dae926612cab922491c3b4cc2db0076007541d53a",
            "SHA-256 of the content alone"
        );
    }

    #[test]
    fn a_customer_records_pieces_carry_its_subject_and_one_without_a_key_is_left_out() {
        use crate::bot::subject::KeyKind;
        let body = r#"{"customers":[
            {"name":"Ann Lee","contact":{"phone":"087 123 4567"},"plan":"Gold"},
            {"name":"Bob Kane","contact":{"phone":"+44 20 7946 0958"},"plan":"Basic"},
            {"name":"Nobody","plan":"Gold"},
            {"name":"Cat Roe","contact":{"phone":"not a phone"}}
        ]}"#;
        let data = pages(&[body], BodyKind::Text);
        let holds = Holds::Customers {
            field: "contact.phone".to_owned(),
            kind: KeyKind::Phone,
        };
        let ireland = Country::parse("IE").ok();
        let cut = pieces(data.lines(), &ChunkOptions::default(), &holds, ireland);
        let subjects: Vec<(&str, Option<&str>)> = cut
            .pieces
            .iter()
            .map(|piece| (piece.record.as_str(), piece.subject.as_deref()))
            .collect();
        assert_eq!(
            subjects,
            [
                ("customers[0]", Some("phone:+353871234567")),
                ("customers[1]", Some("phone:+442079460958")),
            ],
            "a national phone read in the business's country; no key, or no readable key: not indexed"
        );
        assert_eq!(cut.without_key, 2);
        let general = pieces(data.lines(), &ChunkOptions::default(), &Holds::General, None);
        assert_eq!(general.pieces.len(), 4);
        assert_eq!(general.pieces[0].content, cut.pieces[0].content);
        assert_ne!(
            general.pieces[0].hash, cut.pieces[0].hash,
            "the subject is part of the identity: a change of what a link holds indexes it again"
        );
        assert_eq!(
            cut.pieces[0].hash,
            identity(Some("phone:+353871234567"), &cut.pieces[0].content)
        );
    }
}
