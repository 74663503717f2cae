//! `openapi.json`, written from the declarations of [`crate::api`] and the Rust types they name.
//! Compiled only with the `openapi` feature (natively, by `tools/contract`), so no bundle carries
//! it.
//!
//! An operation's [`Contract`] says what only it can say: its summary and description (its doc
//! comment), the types of its query, body and answers, and the errors particular to it. The rest
//! follows from its route and is written the same way for every operation: its path parameters,
//! the `Idempotency-Key` parameter and the replay header, the rate-limit headers of a key's
//! answers, and the errors every endpoint of its kind can give (401 for a credential, 400, 413,
//! 415 and 422 for a JSON body, 404 for an id in the path, 409 while an idempotent request runs,
//! 429 behind the gateway, 500, and 503 when the database that holds the data does not answer).

mod document;
pub(crate) mod schema;

pub use document::{FUNCTIONS, document, endpoints};
pub use schema::{Closed, SchemaFn, StringOrInteger, schema_of};

use serde_json::Value;

/// What `openapi.json` says of one operation beyond its route.
#[derive(Clone)]
pub struct Contract {
    pub(crate) tag: &'static str,
    pub(crate) summary: String,
    pub(crate) description: Option<String>,
    pub(crate) query: Option<SchemaFn>,
    pub(crate) headers: Vec<HeaderParam>,
    pub(crate) body: Option<Body>,
    pub(crate) answers: Vec<Answer>,
    pub(crate) errors: Vec<u16>,
    pub(crate) page: bool,
    pub(crate) internal_errors: bool,
    /// Where the next `example` goes: the body's last media type, or the last answer's.
    last: Last,
}

#[derive(Clone, Copy)]
enum Last {
    Nothing,
    Body,
    Answer,
}

#[derive(Clone)]
pub(crate) struct HeaderParam {
    pub name: &'static str,
    pub description: &'static str,
    pub required: bool,
    pub schema: Value,
}

#[derive(Clone)]
pub(crate) struct Body {
    /// Read by the API's JSON rules (`edge::platform::http`): 400, 413, 415 and 422 follow.
    pub checked_json: bool,
    pub required: bool,
    pub media: Vec<Media>,
}

#[derive(Clone)]
pub(crate) struct Media {
    pub media_type: &'static str,
    pub schema: Option<MediaSchema>,
    pub example: Option<Value>,
    pub encoding: Option<Value>,
}

#[derive(Clone)]
pub(crate) enum MediaSchema {
    Typed(SchemaFn),
    Literal(Value),
}

#[derive(Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub media: Vec<Media>,
    pub links: Option<Value>,
}

impl Contract {
    /// A contract with the summary and description of the operation's doc comment: its first
    /// paragraph, and the rest.
    pub fn new(tag: &'static str, doc: &[&str]) -> Self {
        let lines: Vec<&str> = doc
            .iter()
            .map(|line| line.strip_prefix(' ').unwrap_or(line))
            .collect();
        let mut paragraphs = lines
            .split(|line| line.trim().is_empty())
            .filter(|p| !p.is_empty());
        let summary = paragraphs.next().map(|p| p.join(" ")).unwrap_or_default();
        let rest: Vec<String> = paragraphs.map(|p| p.join(" ")).collect();
        Self {
            tag,
            summary,
            description: (!rest.is_empty()).then(|| rest.join("\n\n")),
            query: None,
            headers: Vec::new(),
            body: None,
            answers: Vec::new(),
            errors: Vec::new(),
            page: false,
            internal_errors: true,
            last: Last::Nothing,
        }
    }

    /// Files the operation under another tag than its function's.
    pub fn tag(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }

    /// The query parameters: the properties of `T`'s schema, each documented by its field.
    pub fn query<T: schemars::JsonSchema>(mut self) -> Self {
        self.query = Some(T::json_schema);
        self
    }

    /// A header the operation reads.
    pub fn header(mut self, name: &'static str, description: &'static str, required: bool) -> Self {
        self.headers.push(HeaderParam {
            name,
            description,
            required,
            schema: serde_json::json!({ "type": "string" }),
        });
        self
    }

    /// A JSON body read by the API's JSON rules, as `T`.
    pub fn json<T: schemars::JsonSchema>(self) -> Self {
        self.body_of(
            true,
            true,
            "application/json",
            Some(MediaSchema::Typed(schema_of::<T>)),
        )
    }

    /// Like [`Contract::json`], for a body that may be left out.
    pub fn optional_json<T: schemars::JsonSchema>(self) -> Self {
        self.body_of(
            true,
            false,
            "application/json",
            Some(MediaSchema::Typed(schema_of::<T>)),
        )
    }

    /// A body the handler reads by its own rules (a provider's webhook), as `T` in `media_type`.
    pub fn raw<T: schemars::JsonSchema>(self, media_type: &'static str) -> Self {
        self.body_of(false, true, media_type, Some(MediaSchema::Typed(schema_of::<T>)))
    }

    /// A body the handler reads by its own rules, described by a literal schema.
    pub fn raw_literal(self, media_type: &'static str, schema: Value) -> Self {
        self.body_of(false, true, media_type, Some(MediaSchema::Literal(schema)))
    }

    fn body_of(
        mut self,
        checked_json: bool,
        required: bool,
        media_type: &'static str,
        schema: Option<MediaSchema>,
    ) -> Self {
        let body = self.body.get_or_insert(Body {
            checked_json,
            required,
            media: Vec::new(),
        });
        body.media.push(Media {
            media_type,
            schema,
            example: None,
            encoding: None,
        });
        self.last = Last::Body;
        self
    }

    /// How the parts of the last multipart body are encoded (OpenAPI's `encoding`).
    pub fn encoding(mut self, encoding: Value) -> Self {
        if let Some(media) = self.body.as_mut().and_then(|body| body.media.last_mut()) {
            media.encoding = Some(encoding);
        }
        self
    }

    /// A JSON answer of `T` with `status`.
    pub fn ok<T: schemars::JsonSchema>(self, status: u16) -> Self {
        self.answer_of(
            status,
            "application/json",
            Some(MediaSchema::Typed(schema_of::<T>)),
        )
    }

    /// An answer with a body that is not JSON (a page, a file), described by a literal schema.
    pub fn ok_media(self, status: u16, media_type: &'static str, schema: Value) -> Self {
        self.answer_of(status, media_type, Some(MediaSchema::Literal(schema)))
    }

    /// An answer without a body.
    pub fn ok_empty(mut self, status: u16) -> Self {
        self.answers.push(Answer {
            status,
            description: status_text(status),
            media: Vec::new(),
            links: None,
        });
        self.last = Last::Answer;
        self
    }

    fn answer_of(mut self, status: u16, media_type: &'static str, schema: Option<MediaSchema>) -> Self {
        let media = Media {
            media_type,
            schema,
            example: None,
            encoding: None,
        };
        match self.answers.iter_mut().find(|answer| answer.status == status) {
            Some(answer) => answer.media.push(media),
            None => self.answers.push(Answer {
                status,
                description: status_text(status),
                media: vec![media],
                links: None,
            }),
        }
        self.last = Last::Answer;
        self
    }

    /// Describes the last answer.
    pub fn described(mut self, description: &'static str) -> Self {
        if let Some(answer) = self.answers.last_mut() {
            answer.description = description;
        }
        self
    }

    /// The links of the last answer (OpenAPI's `links`: the operations its ids lead to).
    pub fn links(mut self, links: Value) -> Self {
        if let Some(answer) = self.answers.last_mut() {
            answer.links = Some(links);
        }
        self
    }

    /// An example of the last body or answer added.
    pub fn example(mut self, example: Value) -> Self {
        let media = match self.last {
            Last::Body => self.body.as_mut().and_then(|body| body.media.last_mut()),
            Last::Answer => self.answers.last_mut().and_then(|answer| answer.media.last_mut()),
            Last::Nothing => None,
        };
        if let Some(media) = media {
            media.example = Some(example);
        }
        self
    }

    /// Error statuses of this operation beyond those its route implies (404 for an id in the
    /// body, 409 for a conflict, 502 for a CRM, 503, …).
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend_from_slice(statuses);
        self
    }

    /// A page or asset a browser loads: its errors are pages, not JSON.
    pub fn page(mut self) -> Self {
        self.page = true;
        self
    }

    /// A static answer that cannot fail on our side.
    pub fn infallible(mut self) -> Self {
        self.internal_errors = false;
        self
    }
}

/// The description of an answer that says no more than its status.
fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        _ => "Answer",
    }
}
