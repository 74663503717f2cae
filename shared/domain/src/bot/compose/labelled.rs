//! The local composer against a labelled set: questions a shop's customer asks, over a customer
//! record in the shape Shopify's `customers.json` gives (flattened as the CRM links guide shows)
//! and the shop's general knowledge, each with the fact its answer must hold, or a hand-off.

use super::compose;
use crate::bot::check::{Given, check};
use crate::bot::{Action, Piece, PieceKind};
use crate::links::flatten::{Limits, flatten};
use serde_json::{Value, json};

/// The set, with the other readers of it: `labelled.json`.
const SET: &str = include_str!("labelled.json");

/// The set's questions, each with the fact its answer must hold; None where the bot must hand off.
fn questions(set: &Value) -> Vec<(String, Option<String>)> {
    set["set"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_owned(),
                pair[1].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// `data` flattened as the CRM links guide shows it, one piece per record, of `kind`.
fn pieces_of(data: &Value, kind: PieceKind) -> Vec<Piece> {
    let lines = flatten(&data.to_string(), &Limits::default()).unwrap_or_else(|error| panic!("{error:?}"));
    let mut pieces: Vec<Piece> = Vec::new();
    for line in &lines {
        let record = line.record().to_owned();
        match pieces.last_mut() {
            Some(piece) if piece.record == record => {
                piece.text.push('\n');
                piece.text.push_str(&line.to_string());
            }
            _ => pieces.push(Piece {
                source_id: "src-shop".to_owned(),
                record,
                part: 0,
                text: line.to_string(),
                score: 0.6,
                kind,
            }),
        }
    }
    pieces
}

/// The customer's own record, as the search finds it for them, and the shop's knowledge.
fn pieces(set: &Value) -> Vec<Piece> {
    let mut pieces = pieces_of(&json!({ "customers": [set["customer"]] }), PieceKind::Personal);
    pieces.extend(pieces_of(&set["shop"], PieceKind::General));
    pieces
}

#[test]
fn the_composers_answers_hold_the_expected_fact_for_nine_in_ten_questions_and_hand_off_where_they_should() {
    let set: Value = serde_json::from_str(SET).unwrap_or_else(|error| panic!("{error}"));
    let (pieces, questions) = (pieces(&set), questions(&set));
    assert_eq!(
        pieces.len(),
        3,
        "the customer's record, the policies and the plans: {pieces:?}"
    );
    assert!(questions.len() >= 30);
    let mut missed = Vec::new();
    for (question, expected) in &questions {
        let answer = compose(question, &pieces, 0.35);
        assert_eq!(
            check(&answer, &Given::private(&pieces, question, "")),
            Ok(()),
            "{question}: every answer passes the check"
        );
        let right = match expected {
            Some(fact) => answer.action == Action::Reply && answer.text.contains(fact.as_str()),
            None => answer.action == Action::Handoff,
        };
        if !right {
            missed.push(format!("{question} -> {:?} {}", answer.action, answer.text));
        }
    }
    let hits = questions.len() - missed.len();
    assert!(
        hits * 10 >= questions.len() * 9,
        "{hits} of {} right; missed:\n{}",
        questions.len(),
        missed.join("\n")
    );
    // Where the set says to hand off, nothing is guessed.
    for (question, expected) in &questions {
        if expected.is_none() {
            assert_eq!(
                compose(question, &pieces, 0.35).action,
                Action::Handoff,
                "{question}"
            );
        }
    }
}
