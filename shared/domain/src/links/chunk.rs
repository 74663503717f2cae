//! Flattened lines cut into chunks for embedding, along record boundaries: the lines of one
//! record (`customers[3].…`) stay together, so a chunk answers about one customer and a change
//! to one customer changes only that customer's chunks.
//!
//! Records are never packed together, even small ones: a chunk's hash then depends on its record
//! alone, and a refresh re-embeds only the records that changed. A record bigger than the cap is
//! split between lines, the next part repeating the last lines of the previous one (the overlap);
//! a single line bigger than the cap is split between characters. Plain text is one record with
//! an empty path, split the same way.

use super::flatten::Line;
use crate::crypto::sha256_hex;
use crate::error::ApiError;

/// How big a chunk may be, in characters (newlines included), and how many characters of a
/// split record's previous part the next part repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    max_chars: usize,
    overlap_chars: usize,
}

impl ChunkOptions {
    pub const MIN_CHARS: usize = 100;
    pub const MAX_CHARS: usize = 32_000;

    /// `max_chars` within [`Self::MIN_CHARS`]..=[`Self::MAX_CHARS`]; `overlap_chars` at most
    /// half of it, so that every part makes progress.
    pub fn new(max_chars: usize, overlap_chars: usize) -> Result<Self, ApiError> {
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&max_chars) {
            return Err(ApiError::invalid(
                "chunk_max_chars",
                format!(
                    "chunk_max_chars must be from {} to {}",
                    Self::MIN_CHARS,
                    Self::MAX_CHARS
                ),
            ));
        }
        if overlap_chars > max_chars / 2 {
            return Err(ApiError::invalid(
                "chunk_overlap_chars",
                "chunk_overlap_chars must be at most half of chunk_max_chars",
            ));
        }
        Ok(Self {
            max_chars,
            overlap_chars,
        })
    }

    pub fn max_chars(&self) -> usize {
        self.max_chars
    }

    pub fn overlap_chars(&self) -> usize {
        self.overlap_chars
    }
}

impl ChunkOptions {
    /// The pieces that are embedded: all-MiniLM-L6-v2 reads 256 word pieces and bge-small 512,
    /// and flattened CRM data runs about three characters a word piece, so 900 characters (the
    /// record's position and, for a later part, its identity lines included) fit the smaller
    /// model whole instead of being cut at its limit.
    pub fn for_embedding() -> Self {
        Self {
            max_chars: 900,
            overlap_chars: 120,
        }
    }
}

impl Default for ChunkOptions {
    /// About 300 tokens of English per chunk, a size embedding models take whole.
    fn default() -> Self {
        Self {
            max_chars: 1_200,
            overlap_chars: 150,
        }
    }
}

/// A piece of text to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The record the lines belong to (`customers[3]`); empty for plain text.
    pub record: String,
    /// Which part of its record this is, from 0; a record that fits is part 0 of 1.
    pub part: usize,
    /// The lines, joined by `\n`.
    pub text: String,
    /// SHA-256 of `text` as lowercase hex: the same on refresh if and only if the text is.
    pub hash: String,
}

/// Cuts lines into chunks, in the order of the lines.
pub fn chunk(lines: &[Line], options: &ChunkOptions) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        let record = lines[start].record();
        let end = lines[start..]
            .iter()
            .position(|line| line.record() != record)
            .map_or(lines.len(), |offset| start + offset);
        let texts: Vec<String> = lines[start..end].iter().map(Line::to_string).collect();
        for (part, text) in split_record(&texts, options).into_iter().enumerate() {
            chunks.push(Chunk {
                record: record.to_owned(),
                part,
                hash: sha256_hex(text.as_bytes()),
                text,
            });
        }
        start = end;
    }
    chunks
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// One record's lines as parts of at most `max_chars`.
fn split_record(lines: &[String], options: &ChunkOptions) -> Vec<String> {
    let mut parts = Vec::new();
    // The lines of the part being built, and its size with the newlines between them.
    let mut current: Vec<&str> = Vec::new();
    let mut size = 0;
    for line in lines {
        let length = chars(line);
        if length > options.max_chars {
            if !current.is_empty() {
                parts.push(current.join("\n"));
                current.clear();
                size = 0;
            }
            parts.extend(split_line(line, options));
            continue;
        }
        let added = if current.is_empty() { length } else { length + 1 };
        if size + added > options.max_chars {
            parts.push(current.join("\n"));
            let carried = overlap(
                &current,
                options.overlap_chars,
                options.max_chars.saturating_sub(length + 1),
            );
            current = carried;
            size = joined_size(&current);
        }
        size += if current.is_empty() { length } else { length + 1 };
        current.push(line);
    }
    if !current.is_empty() {
        parts.push(current.join("\n"));
    }
    parts
}

/// The last lines of a part that fit in `overlap_chars` and, with the next line, in the cap.
fn overlap<'a>(lines: &[&'a str], overlap_chars: usize, room: usize) -> Vec<&'a str> {
    let budget = overlap_chars.min(room);
    let mut carried = Vec::new();
    let mut size = 0;
    for line in lines.iter().rev() {
        let added = chars(line) + usize::from(!carried.is_empty());
        if size + added > budget {
            break;
        }
        size += added;
        carried.push(*line);
    }
    carried.reverse();
    carried
}

fn joined_size(lines: &[&str]) -> usize {
    lines.iter().map(|line| chars(line)).sum::<usize>() + lines.len().saturating_sub(1)
}

/// A line longer than the cap, as windows of `max_chars` characters that overlap.
fn split_line(line: &str, options: &ChunkOptions) -> Vec<String> {
    let characters: Vec<char> = line.chars().collect();
    let step = options.max_chars - options.overlap_chars;
    let mut parts = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + options.max_chars).min(characters.len());
        parts.push(characters[start..end].iter().collect());
        if end == characters.len() {
            return parts;
        }
        start += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::flatten::{Limits, flatten};

    fn lines(body: &str) -> Vec<Line> {
        flatten(body, &Limits::default()).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    fn options(max_chars: usize, overlap_chars: usize) -> ChunkOptions {
        ChunkOptions::new(max_chars, overlap_chars).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn each_record_is_one_chunk_with_its_path_and_the_hash_of_its_text() {
        let body =
            r#"{"total":2,"customers":[{"name":"John Doe","plan":"Gold"},{"name":"Ada","plan":"Free"}]}"#;
        let chunks = chunk(&lines(body), &ChunkOptions::default());
        let records: Vec<&str> = chunks.iter().map(|c| c.record.as_str()).collect();
        assert_eq!(records, ["total", "customers[0]", "customers[1]"]);
        assert_eq!(
            chunks[1].text,
            "customers[0].name: John Doe\ncustomers[0].plan: Gold"
        );
        assert_eq!(chunks[1].hash, sha256_hex(chunks[1].text.as_bytes()));
        assert_eq!(chunks[1].part, 0);
    }

    #[test]
    fn a_refresh_changes_only_the_hashes_of_changed_records() {
        let before = chunk(
            &lines(r#"{"c":[{"name":"John"},{"name":"Ada"}]}"#),
            &ChunkOptions::default(),
        );
        let after = chunk(
            &lines(r#"{"c":[{"name":"John"},{"name":"Ada L."}]}"#),
            &ChunkOptions::default(),
        );
        assert_eq!(before[0].hash, after[0].hash);
        assert_ne!(before[1].hash, after[1].hash);
    }

    #[test]
    fn a_record_over_the_cap_is_split_between_lines_with_overlap() {
        let notes: Vec<String> = (0..12)
            .map(|i| format!(r#""note {i:02} {}""#, "x".repeat(5)))
            .collect();
        let body = format!(r#"{{"customers":[{{"notes":[{}]}}]}}"#, notes.join(","));
        let options = options(100, 40);
        let chunks = chunk(&lines(&body), &options);
        assert!(chunks.len() > 1, "split: {chunks:#?}");
        for (index, piece) in chunks.iter().enumerate() {
            assert_eq!(piece.record, "customers[0]");
            assert_eq!(piece.part, index);
            assert!(chars(&piece.text) <= 100, "{}", piece.text);
        }
        for pair in chunks.windows(2) {
            let last_line = pair[0].text.lines().last().unwrap_or_default();
            assert!(pair[1].text.starts_with(last_line), "overlap: {pair:#?}");
        }
        let all: String = chunks
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for i in 0..12 {
            assert!(all.contains(&format!("note {i:02}")), "note {i} is kept");
        }
    }

    #[test]
    fn a_line_over_the_cap_is_split_between_characters_with_overlap() {
        let long = "é".repeat(250);
        let chunks = chunk(&lines(&long), &options(100, 20));
        let sizes: Vec<usize> = chunks.iter().map(|c| chars(&c.text)).collect();
        assert_eq!(sizes, [100, 100, 90]);
        assert!(chunks.iter().all(|c| c.record.is_empty()));
    }

    #[test]
    fn options_out_of_bounds_are_refused_naming_the_field() {
        let cases = [
            (99, 0, "chunk_max_chars"),
            (40_000, 0, "chunk_max_chars"),
            (200, 101, "chunk_overlap_chars"),
        ];
        for (max, overlap, field) in cases {
            let error = ChunkOptions::new(max, overlap).err();
            assert_eq!(
                error.and_then(|e| e.body.field),
                Some(field.to_owned()),
                "{max}/{overlap}"
            );
        }
    }
}
