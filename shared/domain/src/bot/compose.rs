//! The local composer: an answer made without a model, for the local stack and the tests, where
//! Workers AI does not run. It does not write prose; it states the facts of the pieces whose
//! fields the question names, as their records write them ("Your plan: Gold."), and hands off
//! when no piece scored high enough or none of their fields is what was asked. Its answers take
//! the same check as a model's.

use super::{Action, Answer, Piece, PieceKind};
use crate::links::keyword;

/// The most facts one answer states.
const MOST_FACTS: usize = 3;

/// Words a question is made of that name no field.
const FILLER: [&str; 40] = [
    "the", "and", "for", "are", "was", "were", "what", "when", "where", "which", "who", "how", "why", "does",
    "did", "can", "could", "would", "will", "have", "has", "had", "you", "your", "yours", "mine", "my",
    "our", "is", "it", "its", "of", "on", "in", "to", "me", "tell", "please", "about", "much",
];

/// A field's name or a question's word, reduced so that they meet: no plural `s`.
fn stem(word: String) -> String {
    match word.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_owned(),
        _ => word,
    }
}

/// The words of `text` worth matching: the keyword search's tokens, cut at their digits
/// (`address1` is `address`), not filler.
fn words(text: &str) -> Vec<String> {
    keyword::tokens(text)
        .flat_map(|token| {
            token
                .split(|c: char| c.is_ascii_digit())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|word| word.len() >= 2 && !FILLER.contains(&word.as_str()))
        .map(stem)
        .collect()
}

/// One line of a piece, `path: value`, as the composer reads it.
struct Fact<'a> {
    piece: usize,
    /// The field's own name (`renewal_date` of `customers[0].plan.renewal_date`), as words.
    field: String,
    /// The words of its path below its record (`plan renewal date`): what a question names.
    named_by: Vec<String>,
    value: &'a str,
    kind: PieceKind,
}

fn facts_of(at: usize, piece: &Piece) -> impl Iterator<Item = Fact<'_>> {
    piece.lines().map(move |(path, value)| {
        let below = path.strip_prefix(piece.record.as_str()).unwrap_or(path);
        // A line of plain text (a policy document's) has no path: its own words name it, and it
        // is stated as it is written.
        let named_by = if path.is_empty() {
            words(value)
        } else {
            words(below)
        };
        Fact {
            piece: at,
            field: label(below),
            named_by,
            value,
            kind: piece.kind,
        }
    })
}

/// A path below its record as words a person reads: `orders[0].tracking_number` is "order
/// tracking number", `default_address.address1` is "default address".
fn label(path: &str) -> String {
    let mut label: Vec<String> = Vec::new();
    for segment in path.split('.').filter(|segment| !segment.is_empty()) {
        let (name, listed) = match segment.split_once('[') {
            Some((name, _)) => (name, true),
            None => (segment, false),
        };
        for word in name
            .split(|c: char| !c.is_alphabetic())
            .filter(|word| !word.is_empty())
        {
            let word = match word.strip_suffix('s') {
                Some(one) if listed && one.len() >= 3 => one,
                _ => word,
            };
            if label.last().is_none_or(|last| last != word) {
                label.push(word.to_owned());
            }
        }
    }
    label.join(" ")
}

/// Answers `question` from the `pieces` that scored at least `min_score`: the facts whose paths
/// the question names most words of, the customer's own first.
pub fn compose(question: &str, pieces: &[Piece], min_score: f64) -> Answer {
    let asked = words(question);
    let mut scored: Vec<(usize, Fact<'_>)> = pieces
        .iter()
        .enumerate()
        .filter(|(_, piece)| piece.score >= min_score)
        .flat_map(|(at, piece)| facts_of(at, piece))
        .filter(|fact| !fact.value.is_empty())
        .map(|fact| {
            let named = fact.named_by.iter().filter(|word| asked.contains(word)).count();
            (named, fact)
        })
        .filter(|(named, _)| *named > 0)
        .collect();
    if scored.is_empty() {
        return Answer::handoff();
    }
    let best = scored.iter().map(|(named, _)| *named).max().unwrap_or_default();
    scored.retain(|(named, _)| *named == best);
    // The customer's own facts before the business's, each kind in the order it was found.
    scored.sort_by_key(|(_, fact)| fact.kind == PieceKind::General);
    let chosen: Vec<&Fact<'_>> = scored.iter().map(|(_, fact)| fact).take(MOST_FACTS).collect();
    let stated: Vec<String> = chosen
        .iter()
        .map(|fact| match fact.kind {
            _ if fact.field.is_empty() => fact.value.trim_end_matches('.').to_owned(),
            PieceKind::Personal => format!("your {}: {}", fact.field, fact.value),
            PieceKind::General => format!("{}: {}", fact.field, fact.value),
        })
        .collect();
    let mut used: Vec<usize> = chosen.iter().map(|fact| fact.piece).collect();
    used.dedup();
    let mut text = stated.join("; ");
    if let Some(first) = text.get(..1) {
        text = format!("{}{}.", first.to_uppercase(), &text[1..]);
    }
    Answer {
        action: Action::Reply,
        text,
        used,
    }
}

#[cfg(test)]
mod labelled;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::check::{Given, check};

    fn piece(kind: PieceKind, score: f64, record: &str, text: &str) -> Piece {
        Piece {
            source_id: "src-1".to_owned(),
            record: record.to_owned(),
            part: 0,
            text: text.to_owned(),
            score,
            kind,
        }
    }

    fn pieces() -> Vec<Piece> {
        vec![
            piece(
                PieceKind::General,
                0.7,
                "plans[0]",
                "plans[0].name: Gold\nplans[0].price: 30 EUR a month\nplans[0].renewal_date: the 1st",
            ),
            piece(
                PieceKind::Personal,
                0.8,
                "customers[4]",
                "customers[4].plan: Gold\ncustomers[4].renewal_date: 2026-12-01\ncustomers[4].orders[0].status: shipped",
            ),
        ]
    }

    #[test]
    fn the_facts_whose_fields_the_question_names_are_stated_the_customers_own_first() {
        let answer = compose("When is my renewal date?", &pieces(), 0.5);
        assert_eq!(
            answer,
            Answer {
                action: Action::Reply,
                text: "Your renewal date: 2026-12-01; renewal date: the 1st.".to_owned(),
                used: vec![1, 0],
            }
        );
        assert_eq!(
            check(
                &answer,
                &Given::private(&pieces(), "When is my renewal date?", "")
            ),
            Ok(())
        );
        let status = compose("What's the status of my order?", &pieces(), 0.5);
        assert_eq!(status.text, "Your order status: shipped.");
        let price = compose("What are the prices?", &pieces(), 0.5);
        assert_eq!(price.text, "Price: 30 EUR a month.");
    }

    #[test]
    fn it_hands_off_when_no_piece_scored_enough_or_no_field_is_what_was_asked() {
        assert_eq!(
            compose("When is my renewal date?", &pieces(), 0.9),
            Answer::handoff()
        );
        assert_eq!(compose("Can I bring my dog?", &pieces(), 0.5), Answer::handoff());
        assert_eq!(compose("When is my renewal date?", &[], 0.0), Answer::handoff());
    }

    #[test]
    fn a_line_of_plain_text_is_named_by_its_own_words_and_stated_as_written() {
        let policy = Piece {
            source_id: "s".to_owned(),
            record: String::new(),
            part: 0,
            text: "Returns policy\nReturns are free within 30 days of delivery.\nGift wrapping costs 3 EUR."
                .to_owned(),
            score: 0.5,
            kind: PieceKind::General,
        };
        let answer = compose(
            "How long do I have for returns?",
            std::slice::from_ref(&policy),
            0.1,
        );
        assert_eq!(answer.action, Action::Reply);
        assert!(
            answer
                .text
                .contains("Returns are free within 30 days of delivery"),
            "{}",
            answer.text
        );
        assert!(
            !answer.text.contains("Gift"),
            "a line the question does not name is left out"
        );
        assert_eq!(
            crate::bot::check::check(&answer, &crate::bot::check::Given::private(&[policy], "", "")),
            Ok(())
        );
    }
}
