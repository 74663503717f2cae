//! One step of a page indexed and committed: up to `STEP_PIECES` of its pieces, from where the
//! run stands in it. The pieces the source holds already are skipped; a piece held from before
//! subjects, or one whose subject changed, takes its vector from the store instead of being
//! embedded; the rest are embedded unless a slice that died left their vectors; then, in one D1
//! batch, the new pieces (staged under the run), what the step saw and where the run goes on.

use super::Fetcher;
use super::read::Cut;
use crate::db::Statement;
use crate::db::knowledge_chunks::{self, NewPiece};
use crate::db::knowledge_run_seen;
use crate::db::knowledge_sources::{self, PageDone, Run, RunNext, Source};
use crate::runtime;
use domain::bot::subject::token;
use domain::error::ApiError;
use domain::links::fetch::{Failure, MAX_PIECES_PER_LINK, STEP_PIECES};
use domain::links::keyword::tokens;
use domain::tenant::Tenant;
use std::collections::{HashMap, HashSet};

/// What a run saw is recorded per step, keyed by the page and the step's offset in it as one
/// number (`page * SEEN_PAGE_STRIDE + offset`), the same when a step is done again: a page has
/// fewer pieces than this (its 50,000 lines at most, or 4 MiB of long records).
const SEEN_PAGE_STRIDE: usize = 1_000_000;

impl Fetcher<'_> {
    /// Indexes the next step of a page (up to `STEP_PIECES` of its pieces, from where the run
    /// stands in it), reading the page unless `cut` holds it, and commits it; None when there is
    /// nothing to read (a webhook link nothing was pushed to).
    pub(super) async fn step(
        &self,
        tenant: &Tenant,
        source: &Source,
        run: &Run,
        next: &RunNext,
        cut: &mut Option<Cut>,
    ) -> Result<Option<PageRead>, Failure> {
        let internal =
            |error: ApiError| Failure::Embedding(error.detail().unwrap_or(&error.body.message).to_owned());
        if cut
            .as_ref()
            .is_none_or(|cut| cut.url != next.url || cut.pages != next.pages)
        {
            // The page before is let go before the next is read.
            *cut = None;
            *cut = match self.read(tenant, next, source).await? {
                Some(mut read) => {
                    self.leave_out_erased(tenant, source, &mut read)
                        .await
                        .map_err(internal)?;
                    Some(read)
                }
                None => return Ok(None),
            };
        }
        let Some(page) = cut.as_ref() else {
            return Ok(None);
        };
        if next.offset == 0 && run.pieces as u64 + page.pieces.len() as u64 > MAX_PIECES_PER_LINK {
            return Err(Failure::Unreadable(format!(
                "the CRM's data is over {MAX_PIECES_PER_LINK} pieces: split it into several links (by segment or \
                 filter); what was indexed is kept"
            )));
        }
        let end = next.offset.saturating_add(STEP_PIECES).min(page.pieces.len());
        // A page that came back shorter than when its first steps were indexed ends here.
        let fresh = &page.pieces[next.offset.min(end)..end];
        let last = end == page.pieces.len();
        let embedder = self.rag.embedder.id();
        let hashes: Vec<&str> = fresh.iter().map(|piece| piece.hash.as_str()).collect();
        let stored = knowledge_chunks::stored_among(self.db, tenant, &source.id, &hashes, embedder)
            .await
            .map_err(internal)?;
        let new: Vec<usize> = (0..fresh.len())
            .filter(|&at| !stored.tagged.contains(&fresh[at].hash))
            .collect();
        let ids: Vec<String> = new
            .iter()
            .map(|&at| knowledge_chunks::chunk_id(&source.id, &fresh[at].hash))
            .collect();
        let subjects: Vec<String> = fresh
            .iter()
            .map(|piece| token(piece.subject.as_deref()))
            .collect();
        // A piece held from before subjects: its vector is written again with its token, from the
        // store's own values. A piece whose subject changed (what the link holds did) takes the
        // vector of the live piece of the same content, from the store too: neither is embedded.
        let (untagged, unseen): (Vec<Indexed<'_>>, Vec<Indexed<'_>>) = new
            .iter()
            .copied()
            .zip(&ids)
            .partition(|(at, _)| stored.untagged.contains(&fresh[*at].hash));
        let contents: Vec<&str> = unseen
            .iter()
            .map(|(at, _)| fresh[*at].content_hash.as_str())
            .collect();
        let same_content = knowledge_chunks::by_content(self.db, tenant, &source.id, &contents, embedder)
            .await
            .map_err(internal)?;
        // Each copied vector: the piece's place in the step, its id, and the id its values are read from.
        let copies: Vec<(usize, &String, String)> = untagged
            .iter()
            .map(|&(at, id)| (at, id, id.clone()))
            .chain(unseen.iter().filter_map(|&(at, id)| {
                same_content
                    .get(&fresh[at].content_hash)
                    .filter(|from| *from != id)
                    .map(|from| (at, id, from.clone()))
            }))
            .collect();
        let from_ids: Vec<String> = copies.iter().map(|(_, _, from)| from.clone()).collect();
        let held: HashMap<String, Vec<f32>> = self
            .rag
            .values(&from_ids)
            .await
            .map_err(Failure::Embedding)?
            .into_iter()
            .collect();
        let copied: Vec<(usize, &String, &[f32])> = copies
            .iter()
            .filter_map(|(at, id, from)| held.get(from).map(|values| (*at, *id, values.as_slice())))
            .collect();
        // A slice that died after writing vectors left them in the store: they are not made again.
        let unseen_ids: Vec<String> = unseen.iter().map(|(_, id)| (*id).clone()).collect();
        let already: HashSet<String> = self
            .rag
            .existing(&unseen_ids)
            .await
            .map_err(Failure::Embedding)?
            .into_iter()
            .collect();
        let to_embed: Vec<usize> = unseen
            .iter()
            .chain(&untagged)
            .filter(|(at, id)| !already.contains(*id) && !copied.iter().any(|(copy, _, _)| copy == at))
            .map(|(at, _)| *at)
            .collect();
        let contents: Vec<&str> = to_embed.iter().map(|&at| fresh[at].content.as_str()).collect();
        let vectors = self.rag.embed(&contents).await.map_err(Failure::Embedding)?;
        let items: Vec<(String, &[f32], &str)> = to_embed
            .iter()
            .zip(&vectors)
            .map(|(&at, vector)| {
                (
                    knowledge_chunks::chunk_id(&source.id, &fresh[at].hash),
                    vector.as_slice(),
                    subjects[at].as_str(),
                )
            })
            .chain(
                copied
                    .iter()
                    .map(|&(at, id, values)| (id.clone(), values, subjects[at].as_str())),
            )
            .collect();
        self.rag
            .upsert(tenant, source.page_id.as_str(), &source.id, &items)
            .await
            .map_err(Failure::Embedding)?;
        drop(items);
        drop(copied);
        drop(vectors);
        drop(held);
        let written: Vec<NewPiece<'_>> = new
            .iter()
            .zip(ids)
            .map(|(&at, id)| NewPiece {
                id,
                hash: &fresh[at].hash,
                content_hash: &fresh[at].content_hash,
                record: &fresh[at].record,
                part: fresh[at].part,
                text: &fresh[at].text,
                subject: &subjects[at],
            })
            .collect();
        let seen: Vec<&str> = hashes
            .iter()
            .map(|hash| knowledge_chunks::seen_key(hash))
            .collect();
        let after = if !last {
            Some(RunNext {
                offset: end,
                ..next.clone()
            })
        } else {
            page.after.clone().map(|(url, mark)| RunNext {
                url,
                numbering: page.numbering.clone(),
                pages: next.pages + 1,
                offset: 0,
                mark,
            })
        };
        let read = PageRead {
            // A page's records count once, with its last step.
            records: if last { page.records } else { 0 },
            without_key: if last { page.without_key } else { 0 },
            pieces: fresh.len(),
            embedded: to_embed.len(),
            changed: !new.is_empty(),
            next: after,
        };
        let now = runtime::now().to_rfc3339();
        let mut statements: Vec<Statement> =
            knowledge_chunks::insert(self.db, tenant, &source.id, &run.id, &written, embedder, &now)
                .map_err(internal)?;
        statements.push(
            knowledge_run_seen::record(
                self.db,
                tenant,
                &source.id,
                &run.id,
                run.slice,
                next.pages * SEEN_PAGE_STRIDE + next.offset,
                &seen,
            )
            .map_err(internal)?,
        );
        statements.push(
            knowledge_sources::page_done(
                self.db,
                tenant,
                &source.id,
                &PageDone {
                    run: &run.id,
                    next: read.next.as_ref(),
                    records: read.records,
                    without_key: read.without_key,
                    pieces: read.pieces,
                    tokens: fresh.iter().map(|piece| tokens(&piece.text).count()).sum(),
                    embedded: read.embedded,
                    changed: read.changed,
                    names_customers: page.names_customers.as_ref(),
                },
                &now,
            )
            .map_err(internal)?,
        );
        self.db
            .batch(statements)
            .await
            .map_err(|error| internal(error.into()))?;
        Ok(Some(read))
    }
}

/// A piece of a step, by its place in the step, and its id.
type Indexed<'a> = (usize, &'a String);

/// What one step added.
pub(super) struct PageRead {
    pub(super) records: usize,
    pub(super) without_key: usize,
    pub(super) pieces: usize,
    pub(super) embedded: usize,
    pub(super) changed: bool,
    pub(super) next: Option<RunNext>,
}

#[cfg(test)]
mod tests {
    use super::super::tests::CRM;
    use super::*;
    use crate::knowledge::backend::{EMBEDDER_URL, RAG_BACKEND, Rag};
    use crate::knowledge::local_server::{self, URL, unit};
    use crate::runtime::native::Reply;
    use crate::testing::Fixture;
    use domain::bot::subject::GENERAL;
    use serde_json::json;

    /// The CRM of the subjects' tests: two customers with an email, one without.
    fn customers_crm(fixture: &Fixture) {
        fixture.stack.partner("crm.example.com", |_| {
            Reply::json(
                200,
                &json!({ "customers": [
                    { "email": "ann@example.com", "name": "Ann" },
                    { "email": "BOB@example.com", "name": "Bob" },
                    { "name": "Nobody" },
                ] }),
            )
        });
    }

    fn local_rag(fixture: &Fixture) -> (Rag, std::rc::Rc<embedder::vectors::Index>) {
        let index = local_server::install(&fixture.stack, |_| unit(0));
        fixture.stack.set_var(RAG_BACKEND, "local");
        fixture.stack.set_var(EMBEDDER_URL, URL);
        (
            Rag::from_env(&fixture.env).unwrap_or_else(|error| panic!("{error}")),
            index,
        )
    }

    /// The source's live pieces: (id, hash, subject token).
    fn pieces_of(fixture: &Fixture) -> Vec<(String, String, Option<String>)> {
        fixture
            .rows("knowledge_chunks", "seq")
            .into_iter()
            .map(|row| {
                let text = |name: &str| row[name].as_str().map(str::to_owned);
                (
                    text("id").unwrap_or_default(),
                    text("hash").unwrap_or_default(),
                    text("subject"),
                )
            })
            .collect()
    }

    fn texts_embedded(fixture: &Fixture) -> usize {
        fixture
            .stack
            .calls_to(local_server::HOST)
            .iter()
            .filter(|call| call.path().starts_with("/ai/run"))
            .map(|call| call.json()["text"].as_array().map_or(0, Vec::len))
            .sum()
    }

    #[test]
    fn what_a_link_holds_decides_its_pieces_subjects_and_a_change_of_it_re_tags_them_without_embedding() {
        let fixture = Fixture::new();
        customers_crm(&fixture);
        let (rag, index) = local_rag(&fixture);
        fixture.run(async {
            let tenant = fixture.business("Acme").await;
            let keys = fixture.env.keyring().unwrap_or_else(|error| panic!("{error}"));
            let id = crate::knowledge::linked::link(&fixture, &rag, &tenant, CRM, json!({ "type": "general" })).await;
            let general = pieces_of(&fixture);
            assert_eq!(general.len(), 3, "general knowledge: every record, the one without an email too");
            assert!(general.iter().all(|(_, _, subject)| subject.as_deref() == Some(GENERAL)));
            assert_eq!(
                general[0].1, "3901662e28b680dd16d0d92bf682dafaf5e63a161b298f08592a2decd4af400a",
                "a general piece's identity is the SHA-256 of its content, as before subjects: nothing indexed \
                 before is embedded again"
            );

            let source = knowledge_sources::find(&fixture.db, &keys, &tenant, &id)
                .await
                .unwrap_or_else(|error| panic!("{error}"))
                .unwrap_or_else(|| panic!("no source"));
            let customers = domain::links::link::Link {
                holds: domain::bot::subject::Holds::Customers {
                    field: "email".to_owned(),
                    kind: domain::bot::subject::KeyKind::Email,
                },
                ..source.link.clone()
            };
            let now = fixture.now().to_rfc3339();
            knowledge_sources::update_settings(&fixture.db, &keys, &tenant, &source, &customers, &now)
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            let embedded = texts_embedded(&fixture);
            crate::knowledge::linked::fetch(&fixture, &rag, &tenant, &id).await;
            let personal = pieces_of(&fixture);
            let (ann, bob) = (token(Some("email:ann@example.com")), token(Some("email:bob@example.com")));
            assert_eq!(
                personal.iter().map(|(_, _, subject)| subject.clone()).collect::<Vec<_>>(),
                [Some(ann.clone()), Some(bob.clone())],
                "each record its customer's; the one without a key is not indexed"
            );
            assert!(
                personal.iter().all(|(_, hash, _)| general.iter().all(|(_, before, _)| before != hash)),
                "the subject is part of a piece's identity"
            );
            assert_eq!(
                texts_embedded(&fixture) - embedded,
                0,
                "indexed again with their new subjects, their vectors taken from the store, not embedded again"
            );
            let vectors = index.vectors(&[personal[0].0.clone(), general[0].0.clone()]);
            assert_eq!(vectors.len(), 1, "the general pieces' vectors are gone");
            assert_eq!(vectors[0].metadata.subject, ann, "the vector carries its subject's token");
            let source = knowledge_sources::find(&fixture.db, &keys, &tenant, &id)
                .await
                .unwrap_or_else(|error| panic!("{error}"))
                .unwrap_or_else(|| panic!("no source"));
            assert_eq!(
                (source.status.records, source.status.without_key, source.status.pieces),
                (3, 1, 2),
                "the record without a key is counted, and shown"
            );
        });
    }

    #[test]
    fn a_piece_indexed_before_subjects_has_its_vector_written_again_with_its_token_without_being_embedded() {
        let fixture = Fixture::new();
        customers_crm(&fixture);
        let (rag, index) = local_rag(&fixture);
        fixture.run(async {
            // On the first shard, whose rows the test changes by hand.
            let tenant = fixture.business_on("Acme", 0).await;
            let id =
                crate::knowledge::linked::link(&fixture, &rag, &tenant, CRM, json!({ "type": "general" }))
                    .await;
            // As migration 0032 leaves what was indexed before it: no subject in D1, and vectors
            // written without one.
            fixture.stack.sql("DB", |connection| {
                let changed = connection
                    .execute("UPDATE knowledge_chunks SET subject = NULL", [])
                    .unwrap_or_else(|error| panic!("{error}"));
                assert_eq!(changed, 3);
            });
            let ids: Vec<String> = pieces_of(&fixture).into_iter().map(|(id, _, _)| id).collect();
            let untagged: Vec<embedder::vectors::Vector> = index
                .vectors(&ids)
                .into_iter()
                .map(|mut vector| {
                    vector.metadata.subject = String::new();
                    vector
                })
                .collect();
            index.upsert(untagged).unwrap_or_else(|error| panic!("{error}"));
            let before = texts_embedded(&fixture);
            crate::knowledge::linked::fetch(&fixture, &rag, &tenant, &id).await;
            assert_eq!(texts_embedded(&fixture), before, "nothing embedded again");
            assert!(
                index
                    .vectors(&ids)
                    .iter()
                    .all(|vector| vector.metadata.subject == GENERAL),
                "every vector written again with its token"
            );
            assert!(
                pieces_of(&fixture)
                    .iter()
                    .all(|(_, _, subject)| subject.as_deref() == Some(GENERAL))
            );
        });
    }
}
