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
/// the customer's own pieces and for general ones, and keeps both (the customer's best `top_k`
/// whatever their scores, general knowledge's best `top_k` over the embedder's threshold), so that
/// general knowledge cannot crowd the customer's own record out of the answer; by words, one
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
    // The customer's own pieces (at most `k`) are kept whatever their score: a question about one
    // field of their record can be far from the record's other parts, and they are about the
    // asker. General knowledge must reach the embedder's threshold. Best first, both together.
    let threshold = rag.embedder.min_score();
    let mut merged: Vec<(String, f64)> = own
        .into_iter()
        .chain(general.into_iter().filter(|(_, score)| *score >= threshold))
        .collect();
    merged.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::knowledge_chunks::NewPiece;
    use crate::db::knowledge_sources::{self, Fields};
    use crate::knowledge::backend::{EMBEDDER_URL, RAG_BACKEND};
    use crate::knowledge::linked;
    use crate::knowledge::local_server::{self, DIMENSIONS, URL, unit};
    use crate::runtime::native::Reply;

    use crate::testing::Fixture;
    use domain::bot::subject::subjects_of_customer;
    use domain::links::fetch::State;
    use domain::links::link::{LinkChannel, NewLink, PageId};
    use domain::links::search::Mode;
    use serde_json::Value;
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
        let keys = fixture.env.keyring().unwrap_or_else(|error| fail(error));
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
                content_hash: hash,
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

    /// Two customers and one no one can be tied to; the same data behind three links, each
    /// tying records to customers by another key.
    const CUSTOMERS: &str = r#"{"customers":[
        {"id":"CRM-1","name":"Ann Lee","email":"Ann.Lee@example.com","phone":"087 123 4567","psid":"2468","plan":"Gold"},
        {"id":"CRM-2","name":"Bob Kane","email":"bob@example.com","phone":"+44 20 7946 0958","psid":"1357","plan":"Basic"},
        {"id":"CRM-3","name":"Nobody Known","plan":"Gold"}]}"#;
    const PLANS: &str = r#"{"plans":[{"name":"Gold plan","price":"30 EUR a month"},
        {"name":"Basic plan","price":"10 EUR a month"},{"name":"Refunds","terms":"within 30 days"}]}"#;

    /// What a text means here: anything about Bob along the first axis, so that a question naming
    /// him finds his record nearest of all; Ann's record near it; the plans further.
    fn meaning(text: &str) -> [f32; DIMENSIONS] {
        let lower = text.to_lowercase();
        let mut vector = [0.0; DIMENSIONS];
        if lower.contains("bob") {
            vector[0] = 1.0;
        } else if lower.contains("ann") {
            (vector[0], vector[1]) = (0.8, 0.6);
        } else if lower.contains("plan") || lower.contains("refund") {
            (vector[0], vector[2]) = (0.5, 0.75f32.sqrt());
        } else {
            vector[3] = 1.0;
        }
        vector
    }

    struct Page {
        by_email: SourceId,
        by_phone: SourceId,
        by_psid: SourceId,
        plans: SourceId,
    }

    async fn linked_page(fixture: &Fixture, rag: &Rag, tenant: &Tenant) -> Page {
        let customers = |field: &str, key: &str| json!({ "type": "customers", "field": field, "key": key });
        Page {
            by_email: linked::link(
                fixture,
                rag,
                tenant,
                "https://crm.example.com/customers?by=email",
                customers("email", "email"),
            )
            .await,
            by_phone: linked::link(
                fixture,
                rag,
                tenant,
                "https://crm.example.com/customers?by=phone",
                customers("phone", "phone"),
            )
            .await,
            by_psid: linked::link(
                fixture,
                rag,
                tenant,
                "https://crm.example.com/customers?by=psid",
                customers("psid", "page_scoped_id"),
            )
            .await,
            plans: linked::link(
                fixture,
                rag,
                tenant,
                "https://crm.example.com/plans",
                json!({ "type": "general" }),
            )
            .await,
        }
    }

    fn crm(fixture: &Fixture) {
        let customers: Value = serde_json::from_str(CUSTOMERS).unwrap_or_default();
        let plans: Value = serde_json::from_str(PLANS).unwrap_or_default();
        fixture.stack.partner("crm.example.com", move |call| {
            Reply::json(
                200,
                if call.url.contains("/plans") {
                    &plans
                } else {
                    &customers
                },
            )
        });
    }

    /// Each hit as (its link, whose it is, its kind).
    fn owners(hits: &[Hit], page: &Page) -> Vec<(&'static str, &'static str, PieceKind)> {
        hits.iter()
            .map(|hit| {
                let link = [
                    (&page.by_email, "by email"),
                    (&page.by_phone, "by phone"),
                    (&page.by_psid, "by psid"),
                    (&page.plans, "plans"),
                ]
                .into_iter()
                .find(|(id, _)| **id == hit.found.source_id)
                .map_or("elsewhere", |(_, name)| name);
                let whose = ["Ann Lee", "Bob Kane", "Nobody"]
                    .into_iter()
                    .find(|name| hit.found.text.contains(name))
                    .unwrap_or("general");
                (link, whose, hit.kind)
            })
            .collect()
    }

    #[test]
    fn a_customers_search_returns_their_own_records_and_general_knowledge_and_never_another_customers() {
        let fixture = Fixture::new();
        crm(&fixture);
        local_server::install(&fixture.stack, meaning);
        fixture.stack.set_var(RAG_BACKEND, "local");
        fixture.stack.set_var(EMBEDDER_URL, URL);
        let rag = Rag::from_env(&fixture.env).unwrap_or_else(|error| panic!("{error}"));
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let page = linked_page(&fixture, &rag, &tenant).await;
            let country = tenant.default_country;
            let ann_by = [
                ("email", subjects_of_customer(Some(" ANN.LEE@example.com"), None, None, None, country), "by email"),
                ("a phone in national form", subjects_of_customer(None, Some("087 123 4567"), None, None, country), "by phone"),
                ("her page-scoped id", subjects_of_customer(None, None, None, Some("2468"), country), "by psid"),
            ];
            let questions = [
                "what plan is Bob Kane on? bob@example.com",
                "Bob Kane",
                "bob@example.com 1357 +44 20 7946 0958",
            ];
            for (how, subjects, her_link) in &ann_by {
                assert_eq!(subjects.len(), 1, "{how}");
                for mode in [Mode::Semantic, Mode::Keyword, Mode::Hybrid] {
                    for text in questions {
                        let asked = question(LinkChannel::Messenger, mode, text);
                        let hits = for_customer(&fixture.db, &rag, &tenant, &asked, subjects)
                            .await
                            .unwrap_or_else(|error| panic!("{error}"));
                        let seen = owners(&hits, &page);
                        assert!(
                            seen.iter().all(|(link, whose, kind)| match *whose {
                                "Ann Lee" => link == her_link && *kind == PieceKind::Personal,
                                "general" => *link == "plans" && *kind == PieceKind::General,
                                _ => false,
                            }),
                            "Ann by {how}, {mode:?}, {text:?}: only her own record on the link tied by it, and general \
                             knowledge: {seen:?}"
                        );
                        if mode == Mode::Semantic {
                            assert_eq!(
                                seen[0],
                                (*her_link, "Ann Lee", PieceKind::Personal),
                                "Bob's record is the nearest vector, and never a candidate: hers comes first"
                            );
                            assert_eq!(seen.len(), 4, "hers and the three general pieces: {seen:?}");
                        }
                    }
                }
            }

            let bob = subjects_of_customer(Some("bob@example.com"), None, None, None, country);
            let asked = question(LinkChannel::Messenger, Mode::Hybrid, "what plan is Ann Lee on, Ann.Lee@example.com");
            let bobs = for_customer(&fixture.db, &rag, &tenant, &asked, &bob)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let seen = owners(&bobs, &page);
            assert!(seen.contains(&("by email", "Bob Kane", PieceKind::Personal)), "{seen:?}");
            assert!(seen.contains(&("plans", "general", PieceKind::General)), "general knowledge for Bob too: {seen:?}");
            assert!(seen.iter().all(|(_, whose, _)| *whose != "Ann Lee"), "{seen:?}");

            for mode in [Mode::Semantic, Mode::Keyword, Mode::Hybrid] {
                let asked = question(LinkChannel::Messenger, mode, "Gold plan price Ann Lee Bob Kane");
                let nobody = for_customer(&fixture.db, &rag, &tenant, &asked, &[])
                    .await
                    .unwrap_or_else(|error| panic!("{error}"));
                assert!(!nobody.is_empty(), "{mode:?}");
                assert!(
                    owners(&nobody, &page).iter().all(|seen| *seen == ("plans", "general", PieceKind::General)),
                    "{mode:?}: a customer without keys gets general knowledge only"
                );
            }

            let everything = question(LinkChannel::Messenger, Mode::Keyword, "Nobody Known");
            let found = search(&fixture.db, &rag, &tenant, &everything)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert!(
                found.iter().all(|hit| !hit.found.text.contains("Nobody")),
                "a customer record without a key is not indexed, not even for the business's own search"
            );
            let own = question(LinkChannel::Messenger, Mode::Keyword, "Kane");
            let theirs = search(&fixture.db, &rag, &tenant, &own)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(theirs.len(), 3, "the business's own search covers every keyed record of every link");
            assert!(theirs.iter().all(|hit| hit.kind == PieceKind::Personal));
        });
    }
}
