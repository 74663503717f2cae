//! The words of keyword search. The pieces are ranked by SQLite's full-text index (FTS5, BM25);
//! this module says what a word is and which of a query's words are worth asking the index for.
//!
//! A token is a run of letters and digits (Unicode), lowercased: `john@example.com` is `john`,
//! `example`, `com`, and `customers[3].name` is `customers`, `3`, `name` (the index's `unicode61`
//! tokenizer splits the same way). Query words count once each; there is no stemming and no
//! stop-word list: the index's own counts decide which words carry weight.

use std::collections::HashMap;

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
