//! Where the bot's answers are written, chosen by `RAG_BACKEND` as the embedder is
//! (`knowledge::backend`), never switched silently:
//!
//! - `cloudflare` (production): Workers AI's text generation (`domain::bot::answer::MODEL`, in JSON
//!   mode) through the `AI` binding;
//! - `local` (the local stack): the local server at `EMBEDDER_URL` answers the same request at
//!   Workers AI's REST path with the bot's deterministic composer (`tools/embedder`, `generate`),
//!   and says so in the answer's `model`; or, where `BOT_GENERATOR_URL` names one, a local server
//!   running a real instruction model (`tools/bot-model`, `scripts/bench` only), which takes far
//!   longer on a laptop's CPU.
//!
//! Either way the request is `domain::bot::answer::request` and the answer is read by
//! `domain::bot::answer::read`.

use crate::Env;
use crate::knowledge::backend::{AI, EMBEDDER_URL, RAG_BACKEND};
use crate::knowledge::local;
use domain::bot::answer::MODEL;
use domain::error::ApiError;
use domain::platform::Resource;
use serde_json::Value;
use worker::Ai;

/// A generation takes seconds on Workers AI; the local composer, milliseconds.
const LOCAL_TIMEOUT_MS: u64 = 30_000;
/// A small model on one CPU thread reads a turn's prompt in up to a minute or so.
const LOCAL_MODEL_TIMEOUT_MS: u64 = 180_000;
/// The local server that writes the bot's answers with a real model, in place of the composer.
pub const BOT_GENERATOR_URL: &str = "BOT_GENERATOR_URL";
/// What a generation's answer may weigh locally: a few hundred tokens of JSON.
const LOCAL_MAX_BODY: usize = 64 * 1024;

enum Backend {
    Local { url: String, timeout_ms: u64 },
    Cloudflare { ai: Ai },
}

/// The configured generator, for one invocation.
pub struct Generator {
    backend: Backend,
    env: Env,
}

/// A generation's answer: the body as the model's API gave it, and the model that wrote it.
pub struct Generated {
    pub body: Value,
    pub model: String,
}

impl Generator {
    pub fn from_env(env: &Env) -> Result<Self, ApiError> {
        let misconfigured = |why: String| ApiError::internal("choosing the bot's generator", why);
        let backend = match env.var(RAG_BACKEND).unwrap_or_default().as_str() {
            "local" => match env.var(BOT_GENERATOR_URL).filter(|url| !url.trim().is_empty()) {
                Some(url) => Backend::Local {
                    url: url.trim_end_matches('/').to_owned(),
                    timeout_ms: LOCAL_MODEL_TIMEOUT_MS,
                },
                None => Backend::Local {
                    url: env
                        .var(EMBEDDER_URL)
                        .map(|value| value.trim_end_matches('/').to_owned())
                        .ok_or_else(|| {
                            misconfigured(format!("{RAG_BACKEND} is local but {EMBEDDER_URL} is not set"))
                        })?,
                    timeout_ms: LOCAL_TIMEOUT_MS,
                },
            },
            "cloudflare" => Backend::Cloudflare {
                ai: env
                    .bindings()
                    .ai(AI)
                    .map_err(|error| misconfigured(format!("the {AI} binding: {error}")))?,
            },
            other => {
                return Err(misconfigured(format!(
                    "{RAG_BACKEND} is {other:?}; it must be cloudflare (production) or local"
                )));
            }
        };
        Ok(Self {
            backend,
            env: env.clone(),
        })
    }

    /// Asks for an answer to `request`. The error says what failed: the turn is retried.
    pub async fn generate(&self, request: &Value) -> Result<Generated, String> {
        match &self.backend {
            Backend::Local { url, timeout_ms } => {
                let result: Value = local::post(
                    &self.env,
                    "generator",
                    url,
                    &format!("/ai/run/{MODEL}"),
                    request,
                    *timeout_ms,
                    LOCAL_MAX_BODY,
                )
                .await?;
                let model = result
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or(MODEL)
                    .to_owned();
                Ok(Generated { body: result, model })
            }
            Backend::Cloudflare { ai } => {
                self.env
                    .charge(Resource::Subrequest, 1)
                    .map_err(|error| error.to_string())?;
                let body = ai
                    .run::<_, Value>(MODEL, request)
                    .await
                    .map_err(|error| format!("Workers AI {MODEL}: {error}"))?;
                Ok(Generated {
                    body,
                    model: MODEL.to_owned(),
                })
            }
        }
    }
}
