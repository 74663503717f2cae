//! The API in Workers AI's REST shape: routes, the embedding request as it is parsed, and the
//! one JSON envelope every answer uses (`result`, `success`, `errors`, `messages`).
//!
//! Error codes: 5006 is what Workers AI answers for input that fails its schema; 7000 ("No
//! route for that URI") and 7001 (method not allowed) are the Cloudflare API's routing codes.

use crate::http::{Method, Response};
use crate::{DIMENSIONS, MODEL_NAME};

/// Texts per request at most, as Workers AI's embedding models take.
pub const MAX_TEXTS: usize = 100;
/// Characters per text at most; a text this long is far past the 256 tokens the model reads.
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Request bodies at most.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
const RUN_PREFIX: &str = "/ai/run/";

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /ai/run/<any model>`: whichever model is named, all-MiniLM-L6-v2 answers, and the
    /// response says so.
    Run,
    /// `POST /ai/run/<the bot's model>`: the bot's text generation, answered by its local
    /// composer (`generate`).
    Generate,
    /// `GET /generations/last`: the last generation request's body as the bot sent it, for the
    /// cost bench to count its tokens with the production model's tokenizer.
    LastGeneration,
    /// `GET /usage`: the tokens embedded since the embedder started, for the cost bench.
    Usage,
    Health,
    WrongMethod {
        allow: &'static str,
    },
    NotFound,
}

pub fn route(method: Method, path: &str) -> Route {
    let (expected, route) = if path == "/health" {
        (Method::Get, Route::Health)
    } else if path == "/generations/last" {
        (Method::Get, Route::LastGeneration)
    } else if path == "/usage" {
        (Method::Get, Route::Usage)
    } else if path.strip_prefix(RUN_PREFIX) == Some(domain::bot::answer::MODEL) {
        (Method::Post, Route::Generate)
    } else if path
        .strip_prefix(RUN_PREFIX)
        .is_some_and(|model| !model.is_empty())
    {
        (Method::Post, Route::Run)
    } else {
        return Route::NotFound;
    };
    if method == expected {
        route
    } else {
        Route::WrongMethod {
            allow: if expected == Method::Get { "GET" } else { "POST" },
        }
    }
}

/// A client error, answered with its status, a code and a message naming the bad field.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: 5006,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self {
            status: 404,
            code: 7000,
            message: "No route for that URI".into(),
        }
    }

    pub fn wrong_method(allow: &str) -> Self {
        Self {
            status: 405,
            code: 7001,
            message: format!("Method not allowed: this path takes {allow}"),
        }
    }

    pub fn internal() -> Self {
        Self {
            status: 500,
            code: 5000,
            message: "the model failed to run (see the embedder's log)".into(),
        }
    }

    pub fn into_response(self) -> Response {
        // Written out rather than built as a map, to keep Workers AI's order of the fields.
        let message = serde_json::Value::String(self.message);
        let body = format!(
            r#"{{"result":null,"success":false,"errors":[{{"code":{},"message":{message}}}],"messages":[]}}"#,
            self.code
        );
        Response::json(self.status, body.into_bytes())
    }
}

/// The texts of a valid embedding request: 1 to MAX_TEXTS strings of 1 to MAX_TEXT_CHARS
/// characters each.
#[derive(Debug, PartialEq, Eq)]
pub struct EmbedIn {
    texts: Vec<String>,
}

impl EmbedIn {
    /// Parses `{"text": "…"}` or `{"text": ["…", …]}`. `pooling` may be given as "mean", the
    /// only pooling this model was trained with; other fields are ignored.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_input(format!("the body is not valid JSON: {e}")))?;
        let serde_json::Value::Object(mut fields) = value else {
            return Err(ApiError::bad_input(
                "the body must be a JSON object with a `text` field",
            ));
        };
        match fields.get("pooling") {
            None => {}
            Some(serde_json::Value::String(pooling)) if pooling == "mean" => {}
            Some(_) => {
                return Err(ApiError::bad_input(format!(
                    "pooling: {MODEL_NAME} answers here and pools only by \"mean\""
                )));
            }
        }
        let texts = match fields.remove("text") {
            Some(serde_json::Value::String(text)) => vec![check_text(text, "text")?],
            Some(serde_json::Value::Array(items)) => {
                if items.is_empty() || items.len() > MAX_TEXTS {
                    return Err(ApiError::bad_input(format!(
                        "text: must hold 1 to {MAX_TEXTS} strings, not {}",
                        items.len()
                    )));
                }
                items
                    .into_iter()
                    .enumerate()
                    .map(|(index, item)| match item {
                        serde_json::Value::String(text) => check_text(text, &format!("text[{index}]")),
                        _ => Err(ApiError::bad_input(format!("text[{index}]: must be a string"))),
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(_) => {
                return Err(ApiError::bad_input(
                    "text: must be a string or an array of strings",
                ));
            }
            None => return Err(ApiError::bad_input("text: is required")),
        };
        Ok(Self { texts })
    }

    pub fn texts(&self) -> &[String] {
        &self.texts
    }
}

fn check_text(text: String, field: &str) -> Result<String, ApiError> {
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        return Err(ApiError::bad_input(format!(
            "{field}: must be 1 to {MAX_TEXT_CHARS} characters long, not {chars}"
        )));
    }
    Ok(text)
}

/// The success envelope around embeddings; floats are written in their shortest f32 form.
pub fn embeddings_response(embeddings: &[[f32; DIMENSIONS]]) -> Response {
    let rows: Vec<&[f32]> = embeddings.iter().map(|e| e.as_slice()).collect();
    let data = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into());
    let body = format!(
        r#"{{"result":{{"shape":[{},{DIMENSIONS}],"data":{data},"pooling":"mean","model":"{MODEL_NAME}"}},"success":true,"errors":[],"messages":[]}}"#,
        embeddings.len()
    );
    Response::json(200, body.into_bytes())
}

pub fn health_response() -> Response {
    let body = format!(r#"{{"model":"{MODEL_NAME}","dimensions":{DIMENSIONS}}}"#);
    Response::json(200, body.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_answer_by_path_then_method() {
        let cases = [
            (
                "the BGE path Workers AI names",
                Method::Post,
                "/ai/run/@cf/baai/bge-small-en-v1.5",
                Route::Run,
            ),
            (
                "the model's own name",
                Method::Post,
                "/ai/run/all-minilm-l6-v2",
                Route::Run,
            ),
            ("health", Method::Get, "/health", Route::Health),
            (
                "the last generation",
                Method::Get,
                "/generations/last",
                Route::LastGeneration,
            ),
            ("the usage", Method::Get, "/usage", Route::Usage),
            (
                "GET on a model",
                Method::Get,
                "/ai/run/x",
                Route::WrongMethod { allow: "POST" },
            ),
            (
                "POST on health",
                Method::Post,
                "/health",
                Route::WrongMethod { allow: "GET" },
            ),
            ("no model named", Method::Post, "/ai/run/", Route::NotFound),
            ("an unknown path", Method::Get, "/", Route::NotFound),
        ];
        for (description, method, path, expected) in cases {
            assert_eq!(route(method, path), expected, "{description}");
        }
    }

    #[test]
    fn one_text_or_a_list_of_texts_is_accepted() {
        let texts = |body: &str| EmbedIn::parse(body.as_bytes()).map(|input| input.texts().to_vec());
        assert_eq!(texts(r#"{"text": "hello"}"#), Ok(vec!["hello".to_owned()]));
        assert_eq!(
            texts(r#"{"text": ["a", "b"], "pooling": "mean", "other": 1}"#),
            Ok(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn bad_input_is_refused_with_the_field_at_fault() {
        let too_many = format!(r#"{{"text": [{}]}}"#, vec![r#""a""#; 101].join(","));
        let too_long = format!(r#"{{"text": ["a", "{}"]}}"#, "é".repeat(MAX_TEXT_CHARS + 1));
        let cases = [
            ("not JSON", "{", "not valid JSON"),
            ("not an object", "[]", "JSON object"),
            ("no text", "{}", "text: is required"),
            ("a number", r#"{"text": 5}"#, "text: must be a string or an array"),
            ("an empty list", r#"{"text": []}"#, "1 to 100 strings, not 0"),
            ("101 texts", too_many.as_str(), "not 101"),
            (
                "a number in the list",
                r#"{"text": ["a", 1]}"#,
                "text[1]: must be a string",
            ),
            (
                "an empty text",
                r#"{"text": ""}"#,
                "text: must be 1 to 20000 characters long, not 0",
            ),
            (
                "a text over 20,000 characters",
                too_long.as_str(),
                "text[1]: must be 1 to 20000 characters long, not 20001",
            ),
            (
                "CLS pooling",
                r#"{"text": "a", "pooling": "cls"}"#,
                "pools only by \"mean\"",
            ),
        ];
        for (description, body, message) in cases {
            let Err(error) = EmbedIn::parse(body.as_bytes()) else {
                panic!("{description}: accepted")
            };
            assert_eq!((error.status, error.code), (400, 5006), "{description}");
            assert!(
                error.message.contains(message),
                "{description}: {}",
                error.message
            );
        }
    }

    #[test]
    fn errors_and_embeddings_use_the_workers_ai_envelope() -> serde_json::Result<()> {
        let error = ApiError::wrong_method("POST").into_response().body;
        assert_eq!(
            String::from_utf8_lossy(&error),
            r#"{"result":null,"success":false,"errors":[{"code":7001,"message":"Method not allowed: this path takes POST"}],"messages":[]}"#
        );
        let error: serde_json::Value = serde_json::from_slice(&ApiError::not_found().into_response().body)?;
        assert_eq!(
            error,
            serde_json::json!({"result": null, "success": false, "errors": [{"code": 7000, "message": "No route for that URI"}], "messages": []})
        );
        let mut embedding = [0.0; DIMENSIONS];
        embedding[0] = 0.25;
        let ok: serde_json::Value = serde_json::from_slice(&embeddings_response(&[embedding]).body)?;
        assert_eq!(ok["result"]["shape"], serde_json::json!([1, DIMENSIONS]));
        assert_eq!(ok["result"]["data"][0][0], 0.25);
        assert_eq!(
            (ok["result"]["pooling"].as_str(), ok["result"]["model"].as_str()),
            (Some("mean"), Some(MODEL_NAME))
        );
        assert_eq!(
            (ok["success"].as_bool(), ok["errors"].as_array().map(Vec::len)),
            (Some(true), Some(0))
        );
        Ok(())
    }
}
