//! The words of keyword search and their weights. The pieces are found through SQLite's
//! full-text index (FTS5) and ranked by BM25, as FTS5's `bm25()` ranks, but with the business's
//! own statistics: the index is the shard's, shared by every business on it, and `bm25()` would
//! weigh each word by how many pieces of the whole shard hold it, so a score (or the order of two
//! pieces) would tell whether a word occurs in another business's data. Here N, each word's count
//! and the average length are those of the searched sources only.
//!
//! A token is a run of letters and digits (Unicode), lowercased: `john@example.com` is `john`,
//! `example`, `com`, and `customers[3].name` is `customers`, `3`, `name` (the index's `unicode61`
//! tokenizer splits the same way). Query words count once each; there is no stemming and no
//! stop-word list: the index's own counts decide which words carry weight.

use std::collections::HashMap;

/// BM25's term-frequency saturation, as FTS5's `bm25()` has it.
pub const K1: f64 = 1.2;
/// BM25's length normalisation, as FTS5's `bm25()` has it.
pub const B: f64 = 0.75;

/// The lowercased word tokens of `text`.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !crate::text::is_alphanumeric(c))
        .filter(|token| !token.is_empty())
        .map(crate::text::lowercase)
}

/// The words among `words` that can move a piece's BM25 score in an index of `indexed` pieces,
/// where `holding` says how many pieces hold each word (a word it does not name, no piece holds).
///
/// FTS5's BM25 weighs a word by `ln((N - n + 0.5) / (n + 0.5))` and gives a word that at least
/// half of the N pieces hold (n ≥ N/2, where that goes negative) the weight 1e-6: such a word
/// (`customers` in every line of a CRM link, the `example` of every address) ranks nothing, yet
/// asking the index for it makes it rank every piece that holds it. So it is left out, as is a
/// word no piece holds; the ranking of what is left is the one the whole query would give, up to
/// those 1e-6 terms.
pub fn weighing<'a>(words: &'a [String], holding: &HashMap<String, u64>, indexed: u64) -> Vec<&'a str> {
    words
        .iter()
        .filter(|word| {
            let held = holding.get(*word).copied().unwrap_or(0);
            held > 0 && held.saturating_mul(2) < indexed
        })
        .map(String::as_str)
        .collect()
}

/// The weight of a word `held` by that many of `indexed` pieces: FTS5's inverse document
/// frequency, `ln((N - n + 0.5) / (n + 0.5))`, with its floor of 1e-6 for a word half the pieces
/// hold or more.
pub fn idf(held: u64, indexed: u64) -> f64 {
    let (held, indexed) = (held as f64, indexed as f64);
    let weight = ((indexed - held + 0.5) / (held + 0.5)).ln();
    if weight > 0.0 { weight } else { 1e-6 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_split_at_anything_but_letters_and_digits() {
        let words: Vec<String> = tokens("customers[3].E-mail: JOHN@Example.com, Größe 9").collect();
        assert_eq!(
            words,
            [
                "customers",
                "3",
                "e",
                "mail",
                "john",
                "example",
                "com",
                "größe",
                "9"
            ]
        );
    }

    #[test]
    fn words_half_the_index_holds_or_none_holds_are_left_out() {
        let words: Vec<String> = ["orders", "of", "felix", "kane", "customers"]
            .map(String::from)
            .to_vec();
        let holding: HashMap<String, u64> = [
            ("orders", 95_750),
            ("felix", 1_396),
            ("kane", 1_372),
            ("customers", 96_949),
        ]
        .map(|(word, held)| (word.to_owned(), held))
        .into();
        assert_eq!(weighing(&words, &holding, 96_949), ["felix", "kane"]);
    }

    #[test]
    fn a_word_weighs_by_how_rare_it_is_among_the_pieces_searched() {
        // ln((10 - 1 + 0.5) / 1.5) and FTS5's floor for a word half the pieces hold.
        assert!((idf(1, 10) - (9.5f64 / 1.5).ln()).abs() < 1e-12);
        assert_eq!(idf(5, 10), 1e-6);
        assert_eq!(idf(9, 10), 1e-6);
    }

    #[test]
    fn the_half_is_where_bm25_stops_weighing() {
        let words = vec!["word".to_owned()];
        let held = |n: u64| HashMap::from([("word".to_owned(), n)]);
        // ln((N - n + 0.5) / (n + 0.5)) > 0 exactly when 2n < N.
        assert_eq!(weighing(&words, &held(49), 100), ["word"]);
        assert!(weighing(&words, &held(50), 100).is_empty());
        assert_eq!(weighing(&words, &held(50), 101), ["word"]);
        assert!(weighing(&words, &held(1), 2).is_empty(), "one of two pieces");
        assert_eq!(weighing(&words, &held(1), 3), ["word"]);
        assert!(weighing(&words, &held(0), 0).is_empty(), "an empty index");
    }
}
