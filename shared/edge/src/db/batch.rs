//! Statements run together in one round trip and one transaction, their answers handed back by
//! handle: a table module gives out a [`Read`] (its statement and how its answer is read), a
//! caller adds it to a [`Batch`] and gets a [`Handle`] of the read's type, and takes the answer
//! with that handle once the batch has run. Nothing is read back by its place in the batch.
//!
//! ```ignore
//! let mut batch = Batch::default();
//! let events = batch.read(webhook_events::due(db, tenant, …)?);
//! let marked = batch.write(messages::mark_sent(db, tenant, …)?);
//! let answers = batch.run(db).await?;
//! let events = answers.take(events)?;
//! if answers.changes(marked) == 0 { … }
//! ```

use crate::db::{Db, Error, Statement, d1};
use crate::runtime::D1Result;
use domain::error::ApiError;
use serde::de::DeserializeOwned;

/// A statement that reads, and how its answer is read as a `T`.
pub struct Read<T> {
    statement: Statement,
    read: fn(&D1Result) -> Result<T, ApiError>,
}

impl<T> Read<T> {
    /// `statement`, its answer read by `read`.
    pub fn new(statement: Statement, read: fn(&D1Result) -> Result<T, ApiError>) -> Self {
        Self { statement, read }
    }

    /// Runs the statement on its own and reads its answer.
    pub async fn run(self) -> Result<T, ApiError> {
        let answer = self.statement.all().await?;
        (self.read)(&answer)
    }
}

impl<R: DeserializeOwned> Read<Vec<R>> {
    /// `statement`, its rows read as `R`s.
    pub fn rows(statement: Statement) -> Self {
        Self::new(statement, rows)
    }
}

impl<R: DeserializeOwned> Read<Option<R>> {
    /// `statement`, its first row read as an `R`, if it found one.
    pub fn first(statement: Statement) -> Self {
        Self::new(statement, first)
    }
}

/// The rows of an answer, each read as an `R`.
pub fn rows<R: DeserializeOwned>(answer: &D1Result) -> Result<Vec<R>, ApiError> {
    d1::read(answer).map_err(ApiError::from)
}

/// The first row of an answer, read as an `R`.
pub fn first<R: DeserializeOwned>(answer: &D1Result) -> Result<Option<R>, ApiError> {
    Ok(rows(answer)?.into_iter().next())
}

/// Reads of one kind run together in one round trip, their answers in order.
pub async fn read_together<T>(db: &Db, reads: Vec<Read<T>>) -> Result<Vec<T>, ApiError> {
    let mut batch = Batch::default();
    let handles = reads.into_iter().map(|read| batch.read(read)).collect();
    batch.run(db).await?.take_each(handles)
}

/// Writes run together in one transaction: how many rows each changed, in order.
pub async fn write_together(db: &Db, writes: Vec<Statement>) -> Result<Vec<usize>, Error> {
    let mut batch = Batch::default();
    let handles: Vec<Written> = writes.into_iter().map(|write| batch.write(write)).collect();
    let answers = batch.run(db).await?;
    Ok(handles
        .into_iter()
        .map(|written| answers.changes(written))
        .collect())
}

/// Statements to run in one transaction, in the order added.
#[derive(Default)]
pub struct Batch {
    statements: Vec<Statement>,
}

/// Where a read's answer is in its batch's answers, and how it is read.
#[must_use = "a read is taken from the batch's answers by its handle"]
pub struct Handle<T> {
    at: usize,
    read: fn(&D1Result) -> Result<T, ApiError>,
}

/// Where a write's answer is: how many rows it changed.
#[must_use = "a write whose count is not read is pushed, not written"]
pub struct Written {
    at: usize,
}

impl Batch {
    /// Adds a read; its answer is taken with the handle.
    pub fn read<T>(&mut self, read: Read<T>) -> Handle<T> {
        self.statements.push(read.statement);
        Handle {
            at: self.statements.len() - 1,
            read: read.read,
        }
    }

    /// Adds a write whose count of changed rows the caller reads.
    pub fn write(&mut self, statement: Statement) -> Written {
        self.statements.push(statement);
        Written {
            at: self.statements.len() - 1,
        }
    }

    /// Adds statements whose answers nobody reads.
    pub fn push(&mut self, statements: impl IntoIterator<Item = Statement>) {
        self.statements.extend(statements);
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs the statements in one transaction on `db` ([`Db::batch`]).
    pub async fn run(self, db: &Db) -> Result<Answers, Error> {
        Ok(Answers {
            results: db.batch(self.statements).await?,
        })
    }
}

/// What a batch's statements answered.
pub struct Answers {
    results: Vec<D1Result>,
}

impl Answers {
    /// The answer of the read `handle` stands for.
    pub fn take<T>(&self, handle: Handle<T>) -> Result<T, ApiError> {
        (handle.read)(self.answer(handle.at)?)
    }

    /// The answers of several reads, in order.
    pub fn take_each<T>(&self, handles: Vec<Handle<T>>) -> Result<Vec<T>, ApiError> {
        handles.into_iter().map(|handle| self.take(handle)).collect()
    }

    /// How many rows the write changed.
    pub fn changes(&self, written: Written) -> usize {
        self.results.get(written.at).map_or(0, crate::db::changes)
    }

    fn answer(&self, at: usize) -> Result<&D1Result, ApiError> {
        self.results.get(at).ok_or_else(|| {
            ApiError::internal(
                "reading a D1 batch",
                format!("no answer for statement {at} of {}", self.results.len()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::text;
    use crate::testing::{Fixture, Must};

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Named {
        name: String,
    }

    #[test]
    fn each_handle_takes_its_own_statements_answer_whatever_was_added_around_it() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let db = &fixture.db;
            let name = || db.scoped(&acme, "SELECT name FROM businesses WHERE id = ?1");
            let mut batch = Batch::default();
            let before = batch.read(Read::<Option<Named>>::first(name()));
            batch.push([db
                .scoped(&acme, "UPDATE businesses SET name = ?2 WHERE id = ?1")
                .bind(&[text("Acme Ltd")])
                .must()]);
            let renamed = batch.write(
                db.scoped(
                    &acme,
                    "UPDATE businesses SET name = ?2 WHERE id = ?1 AND name = 'nobody'",
                )
                .bind(&[text("never")])
                .must(),
            );
            let after = batch.read(Read::<Vec<Named>>::rows(name()));
            let answers = batch.run(db).await.must();
            assert_eq!(
                answers.take(after).must(),
                [Named {
                    name: "Acme Ltd".into()
                }]
            );
            assert_eq!(answers.take(before).must(), Some(Named { name: "Acme".into() }));
            assert_eq!(
                answers.changes(renamed),
                0,
                "a write that matched nothing changed nothing"
            );

            let reads = vec![Read::<Option<Named>>::first(name()), Read::first(name())];
            let together = read_together(db, reads).await.must();
            assert_eq!(together.len(), 2, "one answer a read, in order");
            let changed = write_together(
                db,
                vec![
                    db.scoped(&acme, "UPDATE businesses SET name = name WHERE id = ?1"),
                    db.scoped(&acme, "UPDATE businesses SET name = name WHERE id = ?1 AND 0"),
                ],
            )
            .await
            .must();
            assert_eq!(changed, [1, 0]);
        });
    }
}
