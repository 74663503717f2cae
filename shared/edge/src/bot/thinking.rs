//! A turn thought through, with nothing sent: the rules decide whether the bot answers at all;
//! the search finds the asker's own records and the page's general knowledge (the general only
//! above the bot's least score); the generations ask the model for the private answer, the
//! public one, or both, as the comment is answered; every answer passes the check, and the
//! outcome says what is sent, what was used and what was refused.

use super::generate::Generator;
use super::{Asked, Did, Outcome, logged};
use crate::db::{Db, knowledge_links};
use crate::knowledge::backend::Rag;
use crate::knowledge::search;
use crate::{Env, runtime};
use domain::api::bots::TurnRefusal;
use domain::bot::answer::{self, Prompt};
use domain::bot::check::{self, Audience, Fact, Given};
use domain::bot::settings::{BotSettings, CommentReply, HandOff, LocalTime, Silence, decide};
use domain::bot::subject::subjects_of_customer;
use domain::bot::{Action, Answer, Piece, PieceKind};
use domain::error::ApiError;
use domain::links::link::{LinkChannel, PageId};
use domain::links::search::{Mode, Question};
use domain::tenant::Tenant;

/// The pieces a turn searches for.
const TOP_K: usize = 5;

/// How the page answers a comment: its bot's `comment_reply`, `auto` resolved by whether the
/// page's comments have a link of customers' records.
pub async fn comment_reply(
    db: &Db,
    tenant: &Tenant,
    page: &PageId,
    settings: &BotSettings,
) -> Result<CommentReply, ApiError> {
    if settings.comment_reply != CommentReply::Auto {
        return Ok(settings.comment_reply);
    }
    let active = knowledge_links::active_by_holds(db, tenant, page, LinkChannel::Facebook).await?;
    Ok(settings.comment_reply.resolved(!active.customers.is_empty()))
}

/// Takes the turn: the rules, the search, the generations and the checks. Nothing is sent. An
/// unavailable embedder or generator is an error (503): the caller retries or says so.
pub async fn think(env: &Env, db: &Db, tenant: &Tenant, asked: &Asked<'_>) -> Result<Outcome, ApiError> {
    let settings = asked.settings;
    let now = match &settings.hours {
        None => None,
        Some(hours) => match runtime::local_time(&hours.time_zone, runtime::now()) {
            Some((day, minute)) => Some(LocalTime { day, minute }),
            // A zone the runtime does not know (the API checked it when it was set) keeps the bot closed.
            None => return Ok(Outcome::silent("outside_hours")),
        },
    };
    match decide(settings, asked.conversation, now, asked.question) {
        domain::bot::settings::Turn::Silent(silence) => {
            return Ok(Outcome::silent(match silence {
                Silence::Disabled => "disabled",
                Silence::OutsideHours => "outside_hours",
                Silence::WithPeople => "with_people",
            }));
        }
        domain::bot::settings::Turn::HandOff(why) => {
            let reason = match why {
                HandOff::Asked => "asked",
                HandOff::MostAnswers => "most_answers",
            };
            return Ok(Outcome::handoff(settings, reason, Vec::new()));
        }
        domain::bot::settings::Turn::Answer => {}
    }
    let customer = asked.customer;
    let subjects = subjects_of_customer(
        customer.and_then(|customer| customer.email.as_deref()),
        customer.and_then(|customer| customer.phone.as_deref()),
        customer.and_then(|customer| customer.external_id.as_deref()),
        asked.page_scoped_id,
        tenant.default_country,
    );
    let question = Question {
        page_id: asked.target.page_id.clone(),
        channel: asked.target.channel.links(),
        text: asked.question.to_owned(),
        top_k: TOP_K,
        mode: Mode::Semantic,
    };
    let rag = Rag::from_env(env)?;
    let hits = search::for_customer(db, &rag, tenant, &question, &subjects).await?;
    // The asker's own records are about them and few: they are given whatever their score (a
    // question about one field of a long record scores low against the record's other parts).
    // General knowledge must reach the bot's least score. Theirs come first: a private answer's
    // facts are numbered so, and a public one is given the general ones alone.
    let (mut given, mut general) = (Vec::new(), Vec::new());
    let mut under = Vec::new();
    for hit in hits {
        let piece = Piece {
            source_id: hit.found.source_id.to_string(),
            record: hit.found.record,
            part: hit.found.part,
            text: hit.found.text,
            score: hit.score,
            kind: hit.kind,
        };
        match piece.kind {
            PieceKind::Personal => given.push(piece),
            PieceKind::General if piece.score >= settings.min_score => general.push(piece),
            PieceKind::General => under.push(piece),
        }
    }
    let personal = given.len();
    given.append(&mut general);
    if given.is_empty() {
        return Ok(Outcome::handoff(settings, "low_score", logged(&under, &[])));
    }
    let how = asked.comment.map(|how| how.resolved(personal > 0));
    let mut turn = Generations {
        generator: Generator::from_env(env)?,
        asked,
        how,
        given: &given,
        personal,
        model: None,
        generator_ms: 0,
        refused: Vec::new(),
    };
    let (private, public) = match how {
        None | Some(CommentReply::Private | CommentReply::Auto) => (turn.private().await?, None),
        Some(CommentReply::Public) => match turn.public().await? {
            Ok(public) => (Err("public"), Some(Ok(public))),
            Err(why) if personal > 0 => {
                let private = turn.private().await?;
                let acknowledged = private.is_ok();
                (private, Some(Err(why)).filter(|_| !acknowledged))
            }
            Err(why) => (Err(why), None),
        },
        Some(CommentReply::Both) => {
            let private = turn.private().await?;
            let public = if private.is_ok() && personal < given.len() {
                Some(turn.public().await?)
            } else {
                None
            };
            (private, public)
        }
    };
    Ok(turn.outcome(private, public))
}

/// The generations of one turn over the pieces it was given (the asker's own first, then
/// general knowledge), and what they cost and refused.
struct Generations<'a> {
    generator: Generator,
    asked: &'a Asked<'a>,
    /// How a comment is answered (resolved); None for a Messenger message.
    how: Option<CommentReply>,
    given: &'a [Piece],
    /// How many of `given` are the asker's own.
    personal: usize,
    model: Option<String>,
    generator_ms: u64,
    refused: Vec<Fact>,
}

/// An answer that may be sent (its `used` numbered in all the pieces given), or why not.
type Generated = Result<Answer, &'static str>;

impl Generations<'_> {
    /// The asker's own answer: every piece, for them alone.
    async fn private(&mut self) -> Result<Generated, ApiError> {
        self.generate(0, Audience::Private).await
    }

    /// The answer for everyone: general knowledge only, and nothing of the asker's record.
    async fn public(&mut self) -> Result<Generated, ApiError> {
        self.generate(self.personal, Audience::Public).await
    }

    /// Asks the model for an answer from the pieces from `first` on, for `audience`, and checks it.
    async fn generate(&mut self, first: usize, audience: Audience) -> Result<Generated, ApiError> {
        let pieces = &self.given[first..];
        if pieces.is_empty() {
            return Ok(Err("low_score"));
        }
        let settings = self.asked.settings;
        let request = answer::request(&Prompt {
            instructions: &settings.instructions,
            question: self.asked.question,
            history: self.asked.history,
            pieces,
            audience,
        });
        let started = runtime::now().millis();
        let generated =
            self.generator.generate(&request).await.map_err(|why| {
                ApiError::unavailable(format!("the bot's generator is unavailable: {why}"), 5)
            })?;
        self.generator_ms += u64::try_from(runtime::now().millis() - started).unwrap_or(0);
        self.model = Some(generated.model);
        let Ok(answer) = answer::read(&generated.body, pieces.len()) else {
            return Ok(Err("unreadable"));
        };
        if answer.action == Action::Handoff {
            return Ok(Err("model"));
        }
        let given = Given {
            pieces,
            question: self.asked.question,
            instructions: &settings.instructions,
            audience,
            withheld: &self.given[..first],
        };
        if let Err(check::Unsupported(facts)) = check::check(&answer, &given) {
            self.refused.extend(facts);
            return Ok(Err("refused"));
        }
        Ok(Ok(Answer {
            used: answer.used.iter().map(|at| at + first).collect(),
            ..answer
        }))
    }

    /// The turn's outcome from its private answer and, for a comment answered in public, its
    /// public one: `Err` there means the business's acknowledgement is said instead.
    fn outcome(self, private: Generated, public: Option<Generated>) -> Outcome {
        let settings = self.asked.settings;
        let acknowledgement =
            Some(settings.public_acknowledgement.clone()).filter(|text| !text.trim().is_empty());
        let (text, public_text, used, reason) = match (private, public) {
            (_, Some(Ok(public))) if self.how != Some(CommentReply::Both) => {
                (None, Some(public.text), public.used, None)
            }
            (Ok(private), Some(Ok(public))) => {
                let used = private.used.iter().chain(&public.used).copied().collect();
                (Some(private.text), Some(public.text), used, None)
            }
            (Ok(private), _) => {
                // A comment answered in public whose answer went privately is acknowledged there.
                let said = match self.how {
                    Some(CommentReply::Public | CommentReply::Both) => acknowledgement,
                    _ => None,
                };
                (Some(private.text), said, private.used, None)
            }
            (Err(why), _) => (None, None, Vec::new(), Some(why)),
        };
        let refusals = self
            .refused
            .into_iter()
            .map(|fact| TurnRefusal {
                kind: fact.kind.as_str().to_owned(),
                value: fact.value,
            })
            .collect();
        let pieces = logged(self.given, &used);
        let outcome = match reason {
            Some(why) => Outcome::handoff(settings, why, pieces),
            None => Outcome {
                did: Did::Reply,
                reason: None,
                text,
                public_text,
                pieces,
                refusals: Vec::new(),
                model: None,
                generator_ms: None,
            },
        };
        Outcome {
            refusals,
            model: self.model,
            generator_ms: Some(self.generator_ms),
            ..outcome
        }
    }
}
