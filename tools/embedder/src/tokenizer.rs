//! The uncased BERT tokenizer of all-MiniLM-L6-v2, as Hugging Face's fast tokenizer runs it:
//! special tokens found in the raw text, then cleaning, CJK splitting, accent stripping and
//! lowercasing, a split on whitespace and punctuation, greedy longest-match WordPiece, and
//! `[CLS] … [SEP]` around at most `max_len` tokens.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use unicode_normalization::UnicodeNormalization;

use crate::unicode_tables::{NONSPACING_MARKS, PUNCTUATION, REMOVED};

/// Words longer than this many characters become one `[UNK]`, as in BERT's WordPiece.
const MAX_CHARS_PER_WORD: usize = 100;
/// The special tokens the vocabulary must hold; the first five are also matched in raw text.
const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

#[derive(Debug)]
pub enum VocabError {
    Io(std::io::Error),
    MissingToken(&'static str),
}

impl fmt::Display for VocabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "cannot read vocab.txt: {error}"),
            Self::MissingToken(token) => write!(f, "vocab.txt has no {token} token"),
        }
    }
}

impl std::error::Error for VocabError {}

pub struct Tokenizer {
    ids: HashMap<String, u32>,
    /// The ids of SPECIAL_TOKENS, in that order.
    special: [u32; 5],
}

impl Tokenizer {
    /// Reads a `vocab.txt`: one token a line, its id being its line number.
    pub fn read(path: &Path) -> Result<Self, VocabError> {
        Self::from_vocab(&std::fs::read_to_string(path).map_err(VocabError::Io)?)
    }

    pub fn from_vocab(vocab: &str) -> Result<Self, VocabError> {
        let mut ids = HashMap::new();
        for (id, token) in (0u32..).zip(vocab.lines()) {
            // The first occurrence wins, as in Hugging Face's loader.
            ids.entry(token.to_owned()).or_insert(id);
        }
        let mut special = [0; 5];
        for (slot, token) in special.iter_mut().zip(SPECIAL_TOKENS) {
            *slot = *ids.get(token).ok_or(VocabError::MissingToken(token))?;
        }
        Ok(Self { ids, special })
    }

    fn unk(&self) -> u32 {
        self.special[1]
    }

    /// The model's input ids for `text`: `[CLS]`, at most `max_len - 2` word pieces, `[SEP]`.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let budget = max_len.saturating_sub(2);
        let mut ids = vec![self.special[2]];
        let mut rest = text;
        while ids.len() <= budget && !rest.is_empty() {
            let (plain, special) = split_at_special_token(rest);
            for word in pre_tokenize(&normalize(plain)) {
                self.word_pieces(&word, &mut ids);
                if ids.len() > budget {
                    break;
                }
            }
            match special {
                Some((index, after)) => {
                    ids.push(self.special[index]);
                    rest = after;
                }
                None => rest = "",
            }
        }
        ids.truncate(budget + 1);
        ids.push(self.special[3]);
        ids
    }

    /// Greedy longest-match WordPiece: the longest vocabulary entry that starts the word, then
    /// the longest `##` entry that continues it, and so on; a word that cannot be covered
    /// entirely is one `[UNK]`.
    fn word_pieces(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().count() > MAX_CHARS_PER_WORD {
            ids.push(self.unk());
            return;
        }
        let pieces_start = ids.len();
        let mut start = 0;
        let mut candidate = String::with_capacity(word.len() + 2);
        while start < word.len() {
            let mut end = word.len();
            let found = loop {
                candidate.clear();
                if start > 0 {
                    candidate.push_str("##");
                }
                candidate.push_str(&word[start..end]);
                if let Some(&id) = self.ids.get(&candidate) {
                    break Some((id, end));
                }
                match word[start..end].char_indices().next_back() {
                    Some((last, _)) if last > 0 => end = start + last,
                    _ => break None,
                }
            };
            let Some((id, end)) = found else {
                ids.truncate(pieces_start);
                ids.push(self.unk());
                return;
            };
            ids.push(id);
            start = end;
        }
    }
}

/// The text before the first special token and, when there is one, its index in
/// SPECIAL_TOKENS and the text after it.
fn split_at_special_token(text: &str) -> (&str, Option<(usize, &str)>) {
    let mut search = 0;
    while let Some(offset) = text[search..].find('[') {
        let at = search + offset;
        for (index, token) in SPECIAL_TOKENS.iter().enumerate() {
            if text[at..].starts_with(token) {
                return (&text[..at], Some((index, &text[at + token.len()..])));
            }
        }
        search = at + 1;
    }
    (text, None)
}

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let c = u32::from(c);
    table
        .binary_search_by(|&(first, last)| {
            if last < c {
                std::cmp::Ordering::Less
            } else if first > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The CJK Unified Ideographs blocks (and their compatibility block), which BERT splits into
/// single characters because Chinese has no spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_ascii() && in_table(PUNCTUATION, c))
}

/// BertNormalizer: drop control characters, turn whitespace into spaces, put spaces around CJK
/// characters, strip accents (NFD, then drop nonspacing marks), lowercase character by
/// character (so a final Σ becomes σ, not ς, as the reference does).
fn normalize(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if in_table(REMOVED, c) {
            continue;
        }
        // Tab, newline and carriage return are control characters that count as whitespace.
        if c.is_whitespace() {
            cleaned.push(' ');
        } else if is_cjk(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    let mut normalized = String::with_capacity(cleaned.len());
    for c in cleaned.nfd().filter(|&c| !in_table(NONSPACING_MARKS, c)) {
        normalized.extend(c.to_lowercase());
    }
    normalized
}

/// BertPreTokenizer: words are split on whitespace, and every punctuation character is a word.
fn pre_tokenize(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_whitespace() || is_punctuation(c) {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                words.push(c.to_string());
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Result<Tokenizer, VocabError> {
        Tokenizer::from_vocab(
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nhello\n,\ncafe\n\u{4e2d}\n!\n##s",
        )
    }

    #[test]
    fn text_is_cleaned_split_and_lowercased_as_bert_does() {
        let cases = [
            (
                "whitespace of every kind becomes one split",
                "a\t b\u{2028}c\n",
                vec!["a", "b", "c"],
            ),
            (
                "control and format characters vanish",
                "a\u{0}b\u{200b}c\u{ad}d",
                vec!["abcd"],
            ),
            (
                "accents are stripped and case folded",
                "Café ÉLAN",
                vec!["cafe", "elan"],
            ),
            (
                "punctuation is its own word",
                "hi,there!(x)",
                vec!["hi", ",", "there", "!", "(", "x", ")"],
            ),
            (
                "unicode punctuation too",
                "a«b»c—d",
                vec!["a", "«", "b", "»", "c", "—", "d"],
            ),
            (
                "CJK characters are single words",
                "ab中文cd",
                vec!["ab", "中", "文", "cd"],
            ),
            ("a final sigma lowercases to σ", "ΟΔΟΣ", vec!["οδοσ"]),
        ];
        for (description, text, expected) in cases {
            assert_eq!(pre_tokenize(&normalize(text)), expected, "{description}");
        }
    }

    #[test]
    fn words_become_greedy_longest_match_pieces() -> Result<(), VocabError> {
        let t = tokenizer()?;
        let cases = [
            ("a known word", "hello", vec![2, 8, 3]),
            ("continuations", "unaffable", vec![2, 5, 6, 7, 3]),
            ("an uncoverable word is one UNK", "unknown", vec![2, 1, 3]),
            ("punctuation and CJK", "Hello, 中!", vec![2, 8, 9, 11, 12, 3]),
            ("accents stripped before lookup", "CAFÉ", vec![2, 10, 3]),
            (
                "special tokens in the text are kept whole",
                "hello[MASK]cafe [SEP]",
                vec![2, 8, 4, 10, 3, 3],
            ),
            (
                "a bracket that starts no special token is punctuation",
                "[hello]",
                vec![2, 1, 8, 1, 3],
            ),
            ("empty text", "", vec![2, 3]),
        ];
        for (description, text, expected) in cases {
            assert_eq!(t.encode(text, 256), expected, "{description}");
        }
        Ok(())
    }

    #[test]
    fn long_words_and_long_texts_are_cut_as_bert_does() -> Result<(), VocabError> {
        let t = tokenizer()?;
        assert_eq!(
            t.encode(&"un".repeat(51), 256),
            vec![2, 1, 3],
            "a word over 100 characters is UNK"
        );
        let ids = t.encode(&"hello ".repeat(300), 256);
        assert_eq!(ids.len(), 256);
        assert_eq!(
            (ids[0], ids[254], ids[255]),
            (2, 8, 3),
            "truncated to 254 pieces between CLS and SEP"
        );
        let ids = t.encode(&"unaffable ".repeat(2), 4);
        assert_eq!(
            ids,
            vec![2, 5, 6, 3],
            "truncation may cut a word between its pieces"
        );
        Ok(())
    }

    #[test]
    fn a_vocabulary_without_the_special_tokens_is_refused() {
        assert!(matches!(
            Tokenizer::from_vocab("[PAD]\n[UNK]\nhello"),
            Err(VocabError::MissingToken("[CLS]"))
        ));
    }
}
