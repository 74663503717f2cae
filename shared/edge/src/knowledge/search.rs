//! Search over a page's active links on one channel: the pieces that best answer a question,
//! ranked by meaning (semantic, through the vector store), by words (keyword, BM25 through
//! SQLite's full-text index) or by both (hybrid, fused by reciprocal rank).
//!
//! Two searches: [`search`], the business's own (its API's), over every record of its links; and
//! [`for_customer`], the bot's, over general knowledge and the asking customer's own records only
//! (`domain::bot::subject`). The second asks each index for those pieces alone, in the query
//! itself, so another customer's record is never a candidate, however near its vector or however
//! plainly the question names them.

use crate::db::Db;
use crate::db::knowledge_chunks::{self, Found, Within};
use crate::db::knowledge_links;
use crate::knowledge::backend::Rag;
use crate::knowledge::vectorize::Subjects;
use domain::bot::PieceKind;
use domain::bot::subject::{GENERAL, kind_of_token, token};
use domain::error::ApiError;
use domain::ids::SourceId;
use domain::links::search::{FUSION_DEPTH, Mode, Question, fuse};
use domain::tenant::Tenant;
use futures_util::future::try_join;
use std::collections::HashMap;

/// One answer: a piece, its score (a cosine for semantic search, BM25 for keyword, the fused
/// reciprocal rank for hybrid), and whether it is a customer's record or general knowledge.
pub struct Hit {
    pub found: Found,
    pub score: f64,
    pub kind: PieceKind,
}

pub async fn search(db: &Db, rag: &Rag, tenant: &Tenant, question: &Question) -> Result<Vec<Hit>, ApiError> {
    let sources = knowledge_links::active_sources(db, tenant, &question.page_id, question.channel).await?;
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let ranked: Vec<(String, f64)> = match question.mode {
        Mode::Semantic => semantic(rag, tenant, &sources, &question.text, question.top_k).await?,
        Mode::Keyword => {
            knowledge_chunks::keyword(db, tenant, &sources, &question.text, question.top_k).await?
        }
        Mode::Hybrid => {
            // The two rankings wait on different places (the embedder and the vector index; D1's
            // full-text index), so they run at once. Where both are CPU work on one small machine
            // (the local stack at 100,000 pieces) they still queue: BENCHMARKS.md, links at size.
            let (by_meaning, by_words) = try_join(
                semantic(rag, tenant, &sources, &question.text, FUSION_DEPTH),
                knowledge_chunks::keyword(db, tenant, &sources, &question.text, FUSION_DEPTH),
            )
            .await?;
            fused(by_meaning, by_words, question.top_k)
        }
    };
    hits(db, tenant, ranked, |found| sources.contains(&found.source_id)).await
}

/// The bot's search for one customer, whose keys are `subjects` (as
/// `domain::bot::subject::subjects_of_customer` gives them; none: general knowledge only): the
/// pieces of the page's links active on the channel that are general knowledge (of a link that
/// holds it) or that customer's own records (of a link that holds customers' records), ranked by
/// `question.mode` as [`search`] ranks. By meaning it asks the vector store twice at once, for
/// the customer's own pieces and for general ones, and keeps the best of both, so that general
/// knowledge cannot crowd the customer's own record out of the store's answer; by words, one
/// full-text query narrowed to both. A link whose `holds` just changed answers with its pieces
/// of the new kind only, until its next run has indexed them again.
pub async fn for_customer(
    db: &Db,
    rag: &Rag,
    tenant: &Tenant,
    question: &Question,
    subjects: &[String],
) -> Result<Vec<Hit>, ApiError> {
    let active = knowledge_links::active_by_holds(db, tenant, &question.page_id, question.channel).await?;
    let mut tokens: Vec<String> = subjects.iter().map(|subject| token(Some(subject))).collect();
    tokens.sort();
    tokens.dedup();
    let scope = Scope {
        general: &active.general,
        customers: if tokens.is_empty() { &[] } else { &active.customers },
        tokens: &tokens,
        general_token: &[GENERAL.to_owned()],
    };
    if scope.general.is_empty() && scope.customers.is_empty() {
        return Ok(Vec::new());
    }
    let text = &question.text;
    let ranked = match question.mode {
        Mode::Semantic => semantic_within(rag, tenant, &scope, text, question.top_k).await?,
        Mode::Keyword => {
            knowledge_chunks::keyword_within(db, tenant, &scope.within(), text, question.top_k).await?
        }
        Mode::Hybrid => {
            let within = scope.within();
            let (by_meaning, by_words) = try_join(
                semantic_within(rag, tenant, &scope, text, FUSION_DEPTH),
                knowledge_chunks::keyword_within(db, tenant, &within, text, FUSION_DEPTH),
            )
            .await?;
            fused(by_meaning, by_words, question.top_k)
        }
    };
    hits(db, tenant, ranked, |found| scope.holds(found)).await
}

/// What a customer's search may return: the general knowledge of general links, and the pieces of
/// customers' links whose subject is one of the customer's.
struct Scope<'a> {
    general: &'a [SourceId],
    customers: &'a [SourceId],
    tokens: &'a [String],
    general_token: &'a [String],
}

impl Scope<'_> {
    fn within(&self) -> [Within<'_>; 2] {
        [
            Within {
                sources: self.general,
                subjects: Some(self.general_token),
            },
            Within {
                sources: self.customers,
                subjects: Some(self.tokens),
            },
        ]
    }

    /// Whether a piece the indexes answered with is in the scope they were asked for (a piece
    /// indexed before subjects is general).
    fn holds(&self, found: &Found) -> bool {
        match kind_of_token(found.subject.as_deref()) {
            PieceKind::General => self.general.contains(&found.source_id),
            PieceKind::Personal => {
                self.customers.contains(&found.source_id)
                    && found
                        .subject
                        .as_ref()
                        .is_some_and(|subject| self.tokens.contains(subject))
            }
        }
    }
}

/// The ranked pieces as hits, read from D1 (live ones only), each checked to be one the search
/// asked for: the indexes' answers are never trusted to stay within it on their own.
async fn hits(
    db: &Db,
    tenant: &Tenant,
    ranked: Vec<(String, f64)>,
    asked: impl Fn(&Found) -> bool,
) -> Result<Vec<Hit>, ApiError> {
    let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
    let mut found: HashMap<String, Found> = knowledge_chunks::by_ids(db, tenant, &ids)
        .await?
        .into_iter()
        .map(|found| (found.id.clone(), found))
        .collect();
    Ok(ranked
        .into_iter()
        .filter_map(|(id, score)| found.remove(&id).map(|found| (found, score)))
        .filter(|(found, _)| asked(found))
        .map(|(found, score)| Hit {
            kind: kind_of_token(found.subject.as_deref()),
            found,
            score,
        })
        .collect())
}

fn fused(by_meaning: Vec<(String, f64)>, by_words: Vec<(String, f64)>, top_k: usize) -> Vec<(String, f64)> {
    let rankings =
        [by_meaning, by_words].map(|ranking| ranking.into_iter().map(|(id, _)| id).collect::<Vec<_>>());
    fuse(&rankings, top_k)
}

/// The question's vector; None when the embedder answered none.
async fn embedded(rag: &Rag, text: &str) -> Result<Option<Vec<f32>>, ApiError> {
    let vectors = rag
        .embed(&[text])
        .await
        .map_err(|why| ApiError::unavailable(format!("the question could not be embedded: {why}"), 5))?;
    Ok(vectors.into_iter().next())
}

async fn semantic(
    rag: &Rag,
    tenant: &Tenant,
    sources: &[SourceId],
    text: &str,
    k: usize,
) -> Result<Vec<(String, f64)>, ApiError> {
    let Some(vector) = embedded(rag, text).await? else {
        return Ok(Vec::new());
    };
    let threshold = rag.embedder.min_score();
    let nearest = rag.nearest(tenant, sources, None, &vector, k).await?;
    Ok(nearest
        .into_iter()
        .filter(|(_, score)| *score >= threshold)
        .collect())
}

/// The `k` pieces of the scope nearest to `text`: the customer's own and general knowledge asked
/// for apart, at once, and merged by score.
async fn semantic_within(
    rag: &Rag,
    tenant: &Tenant,
    scope: &Scope<'_>,
    text: &str,
    k: usize,
) -> Result<Vec<(String, f64)>, ApiError> {
    let Some(vector) = embedded(rag, text).await? else {
        return Ok(Vec::new());
    };
    let tokens: Vec<&str> = scope.tokens.iter().map(String::as_str).collect();
    let nearest = |sources: &[SourceId], subjects| {
        let vector = &vector;
        let sources = sources.to_vec();
        async move {
            if sources.is_empty() {
                return Ok(Vec::new());
            }
            rag.nearest(tenant, &sources, Some(subjects), vector, k).await
        }
    };
    let (own, general) = try_join(
        nearest(scope.customers, Subjects::AnyOf(&tokens)),
        nearest(scope.general, Subjects::Is(GENERAL)),
    )
    .await?;
    let threshold = rag.embedder.min_score();
    let mut merged: Vec<(String, f64)> = own
        .into_iter()
        .chain(general)
        .filter(|(_, score)| *score >= threshold)
        .collect();
    merged.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    merged.truncate(k);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::knowledge_chunks::NewPiece;
    use crate::db::knowledge_sources::{self, Fields};
    use crate::knowledge::backend::{EMBEDDER_URL, RAG_BACKEND};
    use crate::knowledge::local_server::{self, DIMENSIONS, URL, unit};
    use crate::secrets_key;
    use crate::testing::Fixture;
    use domain::links::fetch::State;
    use domain::links::link::{LinkChannel, NewLink, PageId};
    use domain::links::search::Mode;
    use serde_json::json;

    const PAGE: &str = "104729000007919";

    /// A source on the page, active on `active` and inactive on `inactive`, holding `pieces`
    /// (text, vector), published.
    async fn source(
        fixture: &Fixture,
        rag: &Rag,
        tenant: &Tenant,
        url: &str,
        active: LinkChannel,
        inactive: LinkChannel,
        pieces: &[(&str, [f32; DIMENSIONS])],
    ) -> SourceId {
        let db = &fixture.db;
        let fail = |error: ApiError| -> ! { panic!("{error}") };
        let keys = secrets_key::keyring(&fixture.env).unwrap_or_else(|error| fail(error));
        let new = NewLink::parse(
            &json!({ "page_id": PAGE, "channels": ["messenger"], "name": "CRM", "url": url, "type": "api", "is_active": true }),
            false,
        )
        .unwrap_or_else(|error| fail(error));
        let id = SourceId::generate(crate::runtime::random().unwrap_or_else(|error| fail(error)));
        let page = PageId::parse(&json!(PAGE)).unwrap_or_else(|error| fail(error));
        let now = crate::runtime::now().to_rfc3339();
        let fields = Fields {
            link: &new.link,
            state: State::Ok,
            next_fetch_at: None,
            webhook_secret: None,
        };
        knowledge_sources::insert(db, &keys, tenant, &id, &page, &fields, &now)
            .await
            .unwrap_or_else(|error| fail(error));
        for (channel, is_active) in [(active, true), (inactive, false)] {
            knowledge_links::insert(db, tenant, &id, &page, &[channel], is_active, &now)
                .await
                .unwrap_or_else(|error| fail(error));
        }
        let hashes: Vec<String> = pieces
            .iter()
            .map(|(text, _)| format!("{:0>24}", text.len() * 7919 + text.as_bytes()[0] as usize))
            .collect();
        let written: Vec<NewPiece<'_>> = pieces
            .iter()
            .zip(&hashes)
            .enumerate()
            .map(|(at, ((text, _), hash))| NewPiece {
                id: knowledge_chunks::chunk_id(&id, hash),
                hash,
                record: "customers[0]",
                part: at,
                text,
                subject: GENERAL,
            })
            .collect();
        let statements =
            knowledge_chunks::insert(db, tenant, &id, "run-1", &written, rag.embedder.id(), &now)
                .unwrap_or_else(|error| fail(error));
        db.batch(statements)
            .await
            .unwrap_or_else(|error| fail(error.into()));
        knowledge_chunks::publish(db, tenant, &id, "run-1", 100)
            .await
            .unwrap_or_else(|error| fail(error));
        let vectors: Vec<(String, &[f32], &str)> = written
            .iter()
            .zip(pieces)
            .map(|(piece, (_, vector))| (piece.id.clone(), &vector[..], GENERAL))
            .collect();
        rag.upsert(tenant, PAGE, &id, &vectors)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        id
    }

    fn question(channel: LinkChannel, mode: Mode, text: &str) -> Question {
        Question {
            page_id: PageId::parse(&json!(PAGE)).unwrap_or_else(|error| panic!("{error}")),
            channel,
            text: text.to_owned(),
            top_k: 5,
            mode,
        }
    }

    fn texts(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|hit| hit.found.text.as_str()).collect()
    }

    #[test]
    fn a_search_answers_with_the_pieces_of_links_active_on_its_channel_and_none_under_the_threshold() {
        let fixture = Fixture::new();
        // Every question means the first axis.
        local_server::install(&fixture.stack, |_| unit(0));
        fixture.stack.set_var(RAG_BACKEND, "local");
        fixture.stack.set_var(EMBEDDER_URL, URL);
        let rag = Rag::from_env(&fixture.env).unwrap_or_else(|error| panic!("{error}"));
        let mut faint = unit(1);
        (faint[0], faint[1]) = (0.05, (1.0f32 - 0.0025).sqrt());
        let mut near = unit(1);
        (near[0], near[1]) = (0.8, 0.6);
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            source(
                &fixture,
                &rag,
                &tenant,
                "https://crm.example.com/customers",
                LinkChannel::Messenger,
                LinkChannel::Facebook,
                &[
                    ("name: John Doe\nplan: Premium", unit(0)),
                    ("name: Ada Byrne\nplan: Basic", near),
                    ("name: Mei Zhou\nplan: Gold", faint),
                ],
            )
            .await;
            source(
                &fixture,
                &rag,
                &tenant,
                "https://crm.example.com/other",
                LinkChannel::Facebook,
                LinkChannel::Messenger,
                &[("name: Olga Ivanova\nplan: Premium", unit(0))],
            )
            .await;
            let ask = |channel, mode, text| {
                let question = question(channel, mode, text);
                let (db, rag, tenant) = (&fixture.db, &rag, &tenant);
                async move { search(db, rag, tenant, &question).await.unwrap_or_else(|error| panic!("{error}")) }
            };
            let messenger = ask(LinkChannel::Messenger, Mode::Semantic, "what plan is John on").await;
            assert_eq!(
                texts(&messenger),
                ["name: John Doe\nplan: Premium", "name: Ada Byrne\nplan: Basic"],
                "best first; Mei's piece (cosine 0.05) is under MiniLM's 0.1, Olga's link inactive here"
            );
            assert!((messenger[0].score - 1.0).abs() < 1e-6 && (messenger[1].score - 0.8).abs() < 1e-6);
            let facebook = ask(LinkChannel::Facebook, Mode::Semantic, "what plan is John on").await;
            assert_eq!(texts(&facebook), ["name: Olga Ivanova\nplan: Premium"], "the other link, active on facebook");
            let by_word = ask(LinkChannel::Messenger, Mode::Keyword, "Byrne").await;
            assert_eq!(texts(&by_word), ["name: Ada Byrne\nplan: Basic"], "by keyword");
            let hybrid = ask(LinkChannel::Messenger, Mode::Hybrid, "Mei Zhou").await;
            assert_eq!(
                texts(&hybrid),
                [
                    "name: John Doe\nplan: Premium",
                    "name: Mei Zhou\nplan: Gold",
                    "name: Ada Byrne\nplan: Basic"
                ],
                "hybrid fuses the ranks: Mei, first by words though under the threshold by meaning, ties John, \
                 first by meaning, and comes before Ada, second by meaning"
            );
            let embedded = fixture.stack.calls_to(local_server::HOST).len();
            let nothing = ask(LinkChannel::Instagram, Mode::Semantic, "what plan is John on").await;
            assert!(nothing.is_empty(), "no link on instagram, no answer");
            assert_eq!(
                fixture.stack.calls_to(local_server::HOST).len(),
                embedded,
                "and nothing asked of the embedder"
            );
        });
    }
}
