//! The bot's text generation, locally: the request the bot sends Workers AI
//! (`domain::bot::answer::request`, JSON mode) is read back into its question and facts, and
//! answered by the bot's deterministic composer (`domain::bot::compose`) in the shape the model
//! is asked for, inside Workers AI's REST envelope. No model writes prose here: the answer states
//! the facts the question names, or hands off. What runs is said by `model` in the answer.

use crate::api::ApiError;
use crate::http::Response;
use domain::bot::answer::{asked, written};
use domain::bot::compose::compose;
use serde_json::{Value, json};

/// What the answers name as the model that ran.
pub const COMPOSER: &str = "crm-edge-local-composer";

/// Answers one generation request's body.
pub fn answer(body: &[u8]) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => return ApiError::bad_input(format!("the body is not JSON: {error}")).into_response(),
    };
    let asked = match asked(&request) {
        Ok(asked) => asked,
        Err(error) => return ApiError::bad_input(error.0).into_response(),
    };
    // The bot sends only pieces that scored at least its threshold: all of them may be used.
    let answer = compose(&asked.question, &asked.pieces, 0.0);
    let envelope = json!({
        "result": { "response": written(&answer), "model": COMPOSER },
        "success": true,
        "errors": [],
        "messages": [],
    });
    Response::json(200, envelope.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::bot::answer::{Prompt, read, request};
    use domain::bot::{Action, Piece, PieceKind};

    #[test]
    fn a_request_is_answered_from_its_facts_as_the_model_would_answer_it() {
        let pieces = [Piece {
            source_id: "s1".to_owned(),
            record: "customers[0]".to_owned(),
            part: 0,
            text: "customers[0].email: ann@example.com\ncustomers[0].plan: Gold".to_owned(),
            score: 0.9,
            kind: PieceKind::Personal,
        }];
        let prompt = Prompt {
            instructions: "",
            question: "What plan am I on?",
            history: &[],
            pieces: &pieces,
            audience: domain::bot::check::Audience::Private,
        };
        let response = answer(request(&prompt).to_string().as_bytes());
        assert_eq!(response.status, 200);
        let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
        let answer = read(&body, pieces.len()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(answer.action, Action::Reply);
        assert!(answer.text.contains("Gold"), "{}", answer.text);
        assert_eq!(answer.used, [0]);
        assert_eq!(answer_status(b"{"), 400);
        assert_eq!(
            answer_status(br#"{"messages": [{"role": "system", "content": "x"}]}"#),
            400
        );
    }

    fn answer_status(body: &[u8]) -> u16 {
        answer(body).status
    }
}
