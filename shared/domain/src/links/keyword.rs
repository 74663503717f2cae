//! The keyword search baseline over chunks: BM25 on lowercased word tokens, so that semantic
//! search has something plain to be measured against (and a fallback when embedding fails).
//!
//! A token is a run of letters and digits (Unicode), lowercased: `john@example.com` is `john`,
//! `example`, `com`, and `customers[3].name` is `customers`, `3`, `name`. Field names that every
//! chunk repeats weigh little, because BM25's inverse document frequency discounts them. Query
//! words count once each; there is no stemming and no stop-word list.

use std::collections::HashMap;

/// BM25's usual constants: how fast repeated terms saturate, and how much length is normalised.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// The lowercased word tokens of `text`.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_lowercase)
}

/// A chunk that matched, by its position among the indexed texts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub index: usize,
    pub score: f64,
}

/// Term statistics of a set of texts (a link's chunks, a page's chunks), built once per search
/// set.
#[derive(Debug, Clone, Default)]
pub struct KeywordIndex {
    /// Per text: how often each term occurs in it.
    term_counts: Vec<HashMap<String, u32>>,
    lengths: Vec<usize>,
    /// How many texts contain each term.
    document_frequency: HashMap<String, u32>,
    average_length: f64,
}

impl KeywordIndex {
    /// Indexes texts in order; a [`Hit::index`] is a position in this order.
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut index = Self::default();
        for text in texts {
            let mut counts: HashMap<String, u32> = HashMap::new();
            let mut length = 0;
            for token in tokens(text) {
                *counts.entry(token).or_default() += 1;
                length += 1;
            }
            for term in counts.keys() {
                *index.document_frequency.entry(term.clone()).or_default() += 1;
            }
            index.term_counts.push(counts);
            index.lengths.push(length);
        }
        let total: usize = index.lengths.iter().sum();
        index.average_length = if index.lengths.is_empty() {
            0.0
        } else {
            total as f64 / index.lengths.len() as f64
        };
        index
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// The `limit` best texts for `query`, best first (ties in index order); texts that share no
    /// word with the query are not hits.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let mut terms: Vec<String> = tokens(query).collect();
        terms.sort();
        terms.dedup();
        let documents = self.len() as f64;
        let weights: Vec<(&str, f64)> = terms
            .iter()
            .filter_map(|term| {
                let containing = f64::from(*self.document_frequency.get(term)?);
                // BM25+'s idf, never negative: a term in every text still counts a little.
                let idf = (1.0 + (documents - containing + 0.5) / (containing + 0.5)).ln();
                Some((term.as_str(), idf))
            })
            .collect();
        let mut hits: Vec<Hit> = self
            .term_counts
            .iter()
            .zip(&self.lengths)
            .enumerate()
            .filter_map(|(index, (counts, length))| {
                let norm = K1 * (1.0 - B + B * *length as f64 / self.average_length.max(1.0));
                let score: f64 = weights
                    .iter()
                    .filter_map(|(term, idf)| {
                        let frequency = f64::from(*counts.get(*term)?);
                        Some(idf * frequency * (K1 + 1.0) / (frequency + norm))
                    })
                    .sum();
                (score > 0.0).then_some(Hit { index, score })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
        hits.truncate(limit);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNKS: [&str; 4] = [
        "customers[0].name: John Doe\ncustomers[0].email: john@example.com\ncustomers[0].support_level: Gold",
        "customers[1].name: Ada Lovelace\ncustomers[1].email: ada@example.com\ncustomers[1].support_level: Silver",
        "customers[2].name: Jane Roe\ncustomers[2].subscription: Premium\ncustomers[2].support_level: Gold",
        "Opening hours: Monday to Friday, 9 to 17. Closed on public holidays.",
    ];

    fn best(query: &str) -> Vec<usize> {
        KeywordIndex::new(CHUNKS)
            .search(query, 10)
            .iter()
            .map(|hit| hit.index)
            .collect()
    }

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
    fn the_chunk_that_shares_the_rarest_words_ranks_first() {
        assert_eq!(best("What is John's email?")[0], 0);
        assert_eq!(best("when are you open on monday")[0], 3);
        assert_eq!(best("Lovelace"), [1]);
        assert_eq!(best("gold premium")[..2], [2, 0], "both words beat one");
    }

    #[test]
    fn nothing_matches_a_query_without_shared_words_or_an_empty_index() {
        assert!(best("refund policy").is_empty());
        assert!(best("").is_empty());
        assert!(KeywordIndex::new([]).search("john", 5).is_empty());
        assert_eq!(KeywordIndex::new(CHUNKS).search("customers", 2).len(), 2, "limit");
    }

    #[test]
    fn scores_are_positive_and_sorted() {
        let hits = KeywordIndex::new(CHUNKS).search("customers gold john", 10);
        assert!(hits.windows(2).all(|pair| pair[0].score >= pair[1].score));
        assert!(hits.iter().all(|hit| hit.score > 0.0));
    }
}
