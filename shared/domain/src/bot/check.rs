//! The check every answer passes before it is sent, whoever wrote it: its text states no fact
//! that the pieces it was given, the customer's own message and the page's instructions do not
//! hold. A fact here is what a leak would be made of: an email address, and a number of two
//! digits or more (an amount, a date, a phone number, an order or account id), compared by its
//! digits as the pieces write it (`+353 87 123 4567` is `+353871234567`, `1,200.50` is `1200.50`).
//! A lone digit ("your 2 orders") is a count, not a value, and passes.
//!
//! The pieces are the customer's own records and the page's general knowledge, so an answer that
//! passes quotes nobody else's data. The check refuses more than it must (a date written in
//! other words than its record's), and a refused answer becomes a hand-off: a person answers,
//! rather than the bot guessing.

use super::{Action, Answer, Piece};
use std::collections::HashSet;

/// The facts an answer states that nothing it was given holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub Vec<String>);

/// Whether `answer` may be sent, given what it was made from: the pieces it used, the customer's
/// `question` and the page's `instructions`. A hand-off states nothing and always may.
pub fn check(
    answer: &Answer,
    pieces: &[Piece],
    question: &str,
    instructions: &str,
) -> Result<(), Unsupported> {
    if answer.action == Action::Handoff {
        return Ok(());
    }
    let mut known = HashSet::new();
    let sources = answer
        .used
        .iter()
        .filter_map(|&at| pieces.get(at))
        .flat_map(Piece::values)
        .chain([question, instructions]);
    for text in sources {
        known.extend(facts(text));
    }
    let unsupported: Vec<String> = facts(&answer.text)
        .into_iter()
        .filter(|fact| !known.contains(fact))
        .collect();
    if unsupported.is_empty() {
        Ok(())
    } else {
        Err(Unsupported(unsupported))
    }
}

/// The facts `text` states, each as it is compared: an email address lowercased, a number as its
/// digits (with a leading `+` kept).
pub fn facts(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for word in text.split_whitespace() {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric());
        if word.contains('@') && word.contains('.') {
            found.push(crate::text::lowercase(word));
        }
    }
    found.extend(numbers(text));
    found
}

/// The numbers in `text`: runs of digits joined by single separators (a space, `-`, `.`, `/`,
/// `,`, `(`, `)`), each as its digits alone (a decimal point or a thousands separator is written
/// differently from place to place, and both sides are read the same way), kept when it has two
/// or more.
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let digit_at = |at: usize| chars.get(at).is_some_and(char::is_ascii_digit);
    // A separator joins two runs when a digit follows it, or an opening parenthesis and a digit
    // (`+44 (0)20`).
    let joins = |after: usize| digit_at(after) || chars.get(after) == Some(&'(') && digit_at(after + 1);
    let mut found = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        if !digit_at(at) {
            at += 1;
            continue;
        }
        let plus = at > 0 && chars[at - 1] == '+' || at > 1 && chars[at - 1] == '(' && chars[at - 2] == '+';
        let mut digits = String::from(if plus { "+" } else { "" });
        loop {
            while digit_at(at) {
                digits.push(chars[at]);
                at += 1;
            }
            match chars.get(at) {
                Some(' ' | '-' | '.' | '/' | ',' | ')') if joins(at + 1) => at += 1,
                Some('(') if digit_at(at + 1) => at += 1,
                _ => break,
            }
        }
        if digits.trim_start_matches('+').len() >= 2 {
            found.push(digits);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::PieceKind;

    fn piece(text: &str) -> Piece {
        Piece {
            source_id: "src-1".to_owned(),
            record: "customers[0]".to_owned(),
            part: 0,
            text: text.to_owned(),
            score: 0.9,
            kind: PieceKind::Personal,
        }
    }

    fn reply(text: &str, used: &[usize]) -> Answer {
        Answer {
            action: Action::Reply,
            text: text.to_owned(),
            used: used.to_vec(),
        }
    }

    #[test]
    fn numbers_are_compared_by_their_digits_as_written() {
        assert_eq!(numbers("call +353 87 123 4567 now"), ["+353871234567"]);
        assert_eq!(numbers("+44 (0)20 7946 0018"), ["+4402079460018"]);
        assert_eq!(numbers("order #1042, 2 items, 1,200.50 EUR"), ["1042", "120050"]);
        assert_eq!(numbers("renews 2026-12-01."), ["20261201"]);
        assert_eq!(numbers("30.5% of 7"), ["305"]);
        assert_eq!(numbers("1.200.000"), ["1200000"]);
        assert_eq!(facts("Mail Ann.Lee@Example.com."), ["ann.lee@example.com"]);
    }

    #[test]
    fn an_answer_may_state_what_its_pieces_hold_in_their_own_digits() {
        let pieces = [
            piece(
                "customers[0].email: ann@example.com\ncustomers[0].phone: +353871234567\ncustomers[0].last_order: 1042",
            ),
            piece("plans[1].price: 1,200.50 EUR\nplans[1].renews: 2026-12-01"),
        ];
        let answer = reply(
            "Your order 1042 is on its way; we have ANN@example.com and +353 87 123 4567. The plan \
             is 1200.50 EUR and renews 2026-12-01, in 2 parts.",
            &[0, 1],
        );
        assert_eq!(check(&answer, &pieces, "where is my order?", ""), Ok(()));
    }

    #[test]
    fn a_value_no_used_piece_holds_is_refused_even_if_another_piece_holds_it() {
        let pieces = [
            piece("customers[0].last_order: 1042"),
            piece("customers[0].phone: +353871234567"),
        ];
        let cases = [
            (
                reply("Your order is 1043.", &[0]),
                vec!["1043"],
                "a number of nothing",
            ),
            (
                reply("Your phone is +353 87 123 4567.", &[0]),
                vec!["+353871234567"],
                "a piece it did not use",
            ),
            (
                reply("Bob's is bob@example.com.", &[0, 1]),
                vec!["bob@example.com"],
                "an email of nothing",
            ),
            (
                reply("It renews 1 December 2026.", &[0]),
                vec!["2026"],
                "a date in other words",
            ),
        ];
        for (answer, refused, description) in cases {
            let expected = Err(Unsupported(refused.into_iter().map(str::to_owned).collect()));
            assert_eq!(check(&answer, &pieces, "hi", ""), expected, "{description}");
        }
    }

    #[test]
    fn the_customers_own_words_and_the_pages_instructions_may_be_echoed_and_a_handoff_always_passes() {
        let question = "Is order 5531 mine? My email is me@example.org";
        let answer = reply(
            "I can't find order 5531 for me@example.org; we open at 0900.",
            &[],
        );
        assert_eq!(check(&answer, &[], question, "We open at 0900."), Ok(()));
        let mut handoff = Answer::handoff();
        handoff.text = "call 0871234567".to_owned();
        assert_eq!(check(&handoff, &[], "", ""), Ok(()));
    }
}
