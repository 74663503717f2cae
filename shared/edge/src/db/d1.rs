//! The D1 databases as the table modules use them: the runtime's own calls, each counted against
//! the invocation's limits (`crate::platform::meter`) before it runs (its SQL's length and bound parameters,
//! one query per statement, one round trip per call) and charged with the rows D1 says it read and
//! wrote after.
//!
//! A statement comes through one of two doors. [`Db::scoped`] takes the [`Tenant`] and binds its
//! business id as `?1` itself, so a statement on a business's rows cannot be made without one, nor
//! bound to another business's id; [`Db::unscoped`] is the door of the few statements that are not
//! one business's (the sweeps, the lookups that find the business, such as an API key's hash or a
//! webhook's path, and the tables that have no business). `statements.rs` holds each unscoped
//! statement on a business's table to a listed reason.
//!
//! Businesses are spread over shards (docs/scaling.md): databases with the same migrations, the
//! first of which holds the directory of where each business lives (`db::directory`). A scoped
//! statement runs on its tenant's shard, found when it runs. An unscoped one runs on the shard of
//! the `Db` it came from ([`Db::each_shard`]: how the sweeps go, shard by shard), or, from the `Db`
//! of every shard, on all of them at once, answered by the shard that has its rows: a lookup by a
//! key no two businesses share finds its row on one shard at most.

use crate::db::Error;
use crate::db::placements::{self, Placement, Shard};
use crate::platform::meter::Meter;
use crate::runtime::{self, Bound, D1Database, D1PreparedStatement, D1Result, Param};
use domain::ids::BusinessId;
use domain::platform::{Resource, check_statement};
use domain::tenant::Tenant;
use futures_util::future::join_all;
use serde::de::DeserializeOwned;
use std::rc::Rc;

/// Two words: what every `Db` of the invocation shares is behind one `Rc`. The handlers' futures
/// hold and move `Db`s and `Statement`s at hundreds of places; at four words a `Db` was moved by
/// four loads and stores each time, which cost admin 3 KB gzip.
#[derive(Clone)]
pub struct Db {
    shared: Rc<Shared>,
    /// The one shard unscoped statements run on; `None`: every shard.
    only: Option<Shard>,
    /// Scoped statements run on `only` too, without asking the directory: the `Db` of the one
    /// step that holds a business from everyone else while it writes it.
    holds: bool,
}

struct Shared {
    shards: Vec<D1Database>,
    /// The shards new businesses are placed on.
    open: Vec<Shard>,
    /// How long an isolate trusts what it read of the directory (ms).
    directory_fresh_ms: i64,
    meter: Meter,
}

/// Where a statement runs.
#[derive(Clone)]
enum Target {
    Business(BusinessId),
    Shard(Shard),
    EveryShard,
}

impl Db {
    /// The shards bound, in order, those of them new businesses are placed on (all when `open`
    /// names none that is bound), and how long an isolate trusts the directory (ms).
    pub(crate) fn new(
        shards: Vec<D1Database>,
        open: Vec<Shard>,
        directory_fresh_ms: i64,
        meter: Meter,
    ) -> Self {
        let count = shards.len();
        let mut open: Vec<Shard> = open
            .into_iter()
            .filter(|shard| usize::from(*shard) < count)
            .collect();
        if open.is_empty() {
            open = (0..count as Shard).collect();
        }
        Self {
            shared: Rc::new(Shared {
                shards,
                open,
                directory_fresh_ms,
                meter,
            }),
            only: None,
            holds: false,
        }
    }

    /// One `Db` a shard, whose unscoped statements run on that shard alone: how a sweep goes.
    pub fn each_shard(&self) -> Vec<Db> {
        (0..self.shared.shards.len() as Shard)
            .map(|shard| self.on_shard(shard))
            .collect()
    }

    /// The `Db` whose unscoped statements run on `shard` alone.
    pub fn on_shard(&self, shard: Shard) -> Db {
        Db {
            only: Some(shard),
            holds: false,
            ..self.clone()
        }
    }

    /// The `Db` of a restore's last page, which writes the business the directory holds from
    /// everyone else while it is restored: its scoped statements too run on `shard`, where the
    /// restore writes it, instead of being refused as a held business's are.
    pub fn holding(&self, shard: Shard) -> Db {
        Db {
            only: Some(shard),
            holds: true,
            ..self.clone()
        }
    }

    /// The shard that holds the directory (and the businesses that have no entry in it).
    pub fn directory(&self) -> Db {
        self.on_shard(0)
    }

    /// The shards new businesses are placed on.
    pub fn open_shards(&self) -> &[Shard] {
        &self.shared.open
    }

    /// A statement on the tenant's rows: `?1` is its business id, bound here, and
    /// [`Statement::bind`] binds the rest from `?2` on. Its SQL must compare `?1` with a
    /// `business_id` (`statements.rs` checks that it reads one). It runs on the business's shard.
    pub fn scoped(&self, tenant: &Tenant, sql: impl Into<String>) -> Statement {
        let business = tenant.business_id.clone();
        let scope = runtime::bound_text(business.as_str());
        let target = match self.only {
            Some(shard) if self.holds => Target::Shard(shard),
            _ => Target::Business(business),
        };
        self.statement(sql.into(), target, Some(scope))
    }

    /// A statement that is no one business's: a sweep across every business, a lookup that finds
    /// the business (by an API key's hash, a webhook's path), or a table with no business column.
    /// Nothing is bound for it.
    pub fn unscoped(&self, sql: impl Into<String>) -> Statement {
        let target = match self.only {
            Some(shard) => Target::Shard(shard),
            None if self.shared.shards.len() == 1 => Target::Shard(0),
            None => Target::EveryShard,
        };
        self.statement(sql.into(), target, None)
    }

    fn statement(&self, sql: String, target: Target, scope: Option<Bound>) -> Statement {
        Statement {
            sql_bytes: sql.len(),
            start: sql.chars().take(80).collect(),
            sql: sql.into(),
            parameters: usize::from(scope.is_some()),
            largest_value: 0,
            values: scope.into_iter().collect(),
            target,
            db: self.clone(),
        }
    }

    /// The shards a target names, for statements that `write` or only read. A business being
    /// moved or restored may not write: [`Error::Moving`], [`Error::Restoring`] (503, try again).
    async fn shards_of(&self, target: &Target, write: bool) -> Result<Vec<Shard>, Error> {
        Ok(match target {
            Target::Business(business) => {
                let placement = self.placement(business).await?;
                if placement.paused && write {
                    let business = business.clone();
                    return Err(if placement.restoring {
                        Error::Restoring { business }
                    } else {
                        Error::Moving { business }
                    });
                }
                vec![placement.shard]
            }
            Target::Shard(shard) => vec![*shard],
            Target::EveryShard => (0..self.shared.shards.len() as Shard).collect(),
        })
    }

    /// How long an isolate trusts what it read of the directory (ms).
    pub fn directory_fresh_ms(&self) -> i64 {
        self.shared.directory_fresh_ms
    }

    /// How many shards are bound.
    pub fn shard_count(&self) -> usize {
        self.shared.shards.len()
    }

    /// Where the business lives: what this isolate read of the directory a while ago, or the
    /// directory's entry read now on the first shard (a business without one lives there).
    pub(crate) async fn placement(&self, business: &BusinessId) -> Result<Placement, Error> {
        #[derive(serde::Deserialize)]
        struct Row {
            shard: Shard,
            paused: i64,
        }
        if self.shard_count() == 1 {
            return Ok(Placement::default());
        }
        let now = runtime::now().millis();
        if let Some(placement) = placements::known(business, now, self.shared.directory_fresh_ms) {
            return Ok(placement);
        }
        let statement = self
            .directory()
            .unscoped(placements::SHARD_OF)
            .bind(&[Param::Text(business.as_str().to_owned())])?;
        let called = statement.start()?;
        let result = statement
            .prepared(self.database(0)?)?
            .all()
            .await
            .map_err(|error| Error::of(0, &error))?;
        charge(
            &self.shared.meter,
            called,
            std::slice::from_ref(&result),
            &Target::Shard(0),
        );
        let placement = read::<Row>(&result)?
            .into_iter()
            .next()
            .map(|row| Placement {
                shard: row.shard,
                paused: row.paused != 0,
                restoring: row.paused == 2,
            })
            .unwrap_or_default();
        self.remember(business, placement);
        Ok(placement)
    }

    /// Whether the business of the rows `result` holds (its first row's `business_id`) lives on
    /// `shard` as the directory says; rows that do not name a business are taken as they are.
    async fn lives_on(&self, result: &D1Result, shard: Shard) -> Result<bool, Error> {
        #[derive(serde::Deserialize)]
        struct Owner {
            business_id: Option<String>,
        }
        let owner = result
            .results::<Owner>()
            .ok()
            .and_then(|rows| rows.into_iter().next())
            .and_then(|row| row.business_id)
            .and_then(|id| BusinessId::parse(&id));
        match owner {
            Some(business) => Ok(self.placement(&business).await?.shard == shard),
            None => Ok(true),
        }
    }

    /// Remembers where the business lives (as the directory now says), for a while.
    pub(crate) fn remember(&self, business: &BusinessId, placement: Placement) {
        placements::remember(
            business,
            placement,
            runtime::now().millis(),
            self.shared.directory_fresh_ms,
        );
    }

    fn database(&self, shard: Shard) -> Result<&D1Database, Error> {
        self.shared
            .shards
            .get(usize::from(shard))
            .ok_or_else(|| Error::failed(format!("shard {shard}"), "no such shard is bound (SHARDS)"))
    }

    /// Runs the statements in one transaction: one round trip, one query per statement. A batch
    /// runs on one shard: its business's (every scoped statement in it must be the same
    /// business's), or the one shard of an unscoped batch.
    pub async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<D1Result>, Error> {
        for statement in &statements {
            statement.check()?;
        }
        let mut target: Option<&Target> = None;
        for statement in &statements {
            target = match (target, &statement.target) {
                (None, any) | (Some(Target::Shard(_) | Target::EveryShard), any @ Target::Business(_)) => {
                    Some(any)
                }
                (Some(Target::Business(a)), Target::Business(b)) if a != b => {
                    return Err(Error::failed(
                        "running a batch",
                        "a batch holds the statements of two businesses",
                    ));
                }
                (kept, _) => kept,
            };
        }
        let shard = match target {
            None => return Ok(Vec::new()),
            Some(Target::EveryShard) => {
                return Err(Error::failed(
                    "running a batch",
                    "a batch of statements that are no one business's runs on one shard (Db::each_shard)",
                ));
            }
            Some(target) => {
                let write = statements.iter().any(Statement::writes);
                self.shards_of(target, write).await?[0]
            }
        };
        let count = u32::try_from(statements.len()).unwrap_or(u32::MAX);
        self.shared
            .meter
            .charge(Resource::D1Query, count)
            .map_err(|over| Error::failed("running a batch", over))?;
        self.shared.meter.charge_round_trip();
        let called = runtime::now().millis();
        let database = self.database(shard)?;
        let statements = statements
            .iter()
            .map(|statement| statement.prepared(database))
            .collect::<Result<Vec<_>, Error>>()?;
        let results = database
            .batch(statements)
            .await
            .map_err(|error| Error::of(shard, &error))?;
        charge(
            &self.shared.meter,
            called,
            &results,
            target.unwrap_or(&Target::EveryShard),
        );
        Ok(results)
    }
}

/// A statement, with what D1's limits look at; prepared on its shard when it runs.
pub struct Statement {
    sql: Rc<str>,
    sql_bytes: usize,
    /// The SQL's start, for the message of a statement over a limit.
    start: String,
    parameters: usize,
    /// The bytes of its largest bound value.
    largest_value: usize,
    /// Its bound values, a scoped statement's business first.
    values: Vec<Bound>,
    target: Target,
    db: Db,
}

impl Statement {
    /// Binds `values` in order: from `?2` on for a scoped statement (its `?1` is the business),
    /// from `?1` for an unscoped one.
    pub fn bind(mut self, values: &[Param]) -> Result<Self, Error> {
        self.largest_value = values
            .iter()
            .map(|value| match value {
                Param::Text(text) => text.len(),
                Param::Number(_) | Param::Null => 0,
            })
            .fold(self.largest_value, usize::max);
        self.values.extend(values.iter().map(runtime::bound));
        self.parameters = self.values.len();
        Ok(self)
    }

    /// The runtime's statement on `database`, everything bound.
    fn prepared(&self, database: &D1Database) -> Result<D1PreparedStatement, Error> {
        runtime::prepare(database, &self.sql, &self.values).map_err(|error| self.failed(error))
    }

    /// A failure of this statement that D1 did not report (a limit, a binding).
    fn failed(&self, cause: impl std::fmt::Display) -> Error {
        Error::failed(format!("{}…", self.start), cause)
    }

    /// The first row of the statement's answer (D1 runs the whole statement either way, and
    /// `all` tells the rows it read). `column` must be None: a row is read whole.
    pub async fn first<T: DeserializeOwned>(&self, column: Option<&str>) -> Result<Option<T>, Error> {
        if column.is_some() {
            return Err(self.failed("a row is read whole"));
        }
        Ok(read::<T>(&self.all().await?)?.into_iter().next())
    }

    /// The rows as arrays of values (D1 tells no rows read for these).
    pub async fn raw<T: DeserializeOwned>(&self) -> Result<Vec<Vec<T>>, Error> {
        let shards = self.db.shards_of(&self.target, self.writes()).await?;
        let mut rows = Vec::new();
        for shard in shards {
            let called = self.start()?;
            let answer = self.prepared(self.db.database(shard)?)?.raw().await;
            rows.extend(answer.map_err(|error| Error::of(shard, &error))?);
            charge(&self.db.shared.meter, called, &[], &self.target);
        }
        Ok(rows)
    }

    /// The statement's answer; on every shard, the answer of the one that has its rows (or
    /// changed some), even when another did not answer (what is looked up by a key no two
    /// businesses share is found on the shard that has it); else the first failure, else the first
    /// shard's answer. Rows that name their business (a `business_id` column) count only on the
    /// shard the directory names for it: a business being moved, or just moved, has a second copy
    /// elsewhere (partial while it is copied, stale after the switch until it is deleted), and a
    /// key revoked or a session ended after the switch must not be found live in the stale one.
    pub async fn all(&self) -> Result<D1Result, Error> {
        self.answer(false).await
    }

    pub async fn run(&self) -> Result<D1Result, Error> {
        self.answer(true).await
    }

    async fn answer(&self, run: bool) -> Result<D1Result, Error> {
        let shards = self.db.shards_of(&self.target, self.writes()).await?;
        let asked = shards.iter().map(|shard| async move {
            let called = self.start()?;
            let statement = self.prepared(self.db.database(*shard)?)?;
            let result = if run {
                statement.run().await
            } else {
                statement.all().await
            };
            let result = result.map_err(|error| Error::of(*shard, &error))?;
            charge(
                &self.db.shared.meter,
                called,
                std::slice::from_ref(&result),
                &self.target,
            );
            Ok::<_, Error>(result)
        });
        let mut answers = join_all(asked).await;
        if answers.len() == 1 {
            return answers.remove(0);
        }
        let (mut found, mut empty) = (None, None);
        for (at, answer) in answers.iter().enumerate() {
            let Ok(result) = answer else { continue };
            // Counted, not read: each row is skipped as it is met.
            let has_rows = result
                .results::<serde::de::IgnoredAny>()
                .is_ok_and(|rows| !rows.is_empty());
            if !has_rows && crate::db::changes(result) == 0 {
                empty = empty.or(Some(at));
                continue;
            }
            if has_rows && !self.db.lives_on(result, shards[at]).await? {
                continue;
            }
            found = Some(at);
            break;
        }
        let failed = answers.iter().position(Result::is_err);
        // Rows found only where their business does not live are no answer: an empty one is.
        let Some(answered) = found.or(failed).or(empty) else {
            return Err(self.failed("the rows found are of businesses the directory places on other shards"));
        };
        answers
            .into_iter()
            .nth(answered)
            .unwrap_or_else(|| Err(self.failed("no shard is bound (SHARDS)")))
    }

    /// Whether the statement may change rows: all but a plain SELECT.
    fn writes(&self) -> bool {
        let head = self.sql.trim_start().get(..6).unwrap_or_default();
        !head.eq_ignore_ascii_case("select")
    }

    /// D1 refuses a statement over its size or parameter limit in production; so do we, always.
    fn check(&self) -> Result<(), Error> {
        check_statement(self.sql_bytes, self.parameters, self.largest_value)
            .map_err(|exceeded| self.failed(exceeded))
    }

    /// Counts one statement run on its own; when it was called (ms), for [`charge`].
    fn start(&self) -> Result<i64, Error> {
        self.check()?;
        self.db
            .shared
            .meter
            .charge(Resource::D1Query, 1)
            .map_err(|over| self.failed(over))?;
        self.db.shared.meter.charge_round_trip();
        Ok(runtime::now().millis())
    }
}

/// The rows of a statement's answer, each read as a `T`.
pub(crate) fn read<T: DeserializeOwned>(result: &D1Result) -> Result<Vec<T>, Error> {
    result.results::<T>().map_err(unreadable)
}

/// The rows of a statement's answer read as their type: a row that does not read is a
/// [`Error::Failed`], decided here rather than wherever the rows are used.
pub trait Rows {
    fn rows<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error>;
}

impl Rows for D1Result {
    fn rows<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        read(self)
    }
}

/// A row that does not read as its type: one function, not one per type read.
#[cold]
#[inline(never)]
fn unreadable(error: worker::Error) -> Error {
    Error::failed("reading a stored row", error)
}

/// Charges a call answered now (called at `called`, ms) with the rows D1 says its statements read
/// and wrote, and times it.
fn charge(meter: &Meter, called: i64, results: &[D1Result], target: &Target) {
    let business = match target {
        Target::Business(business) => Some(business),
        Target::Shard(_) | Target::EveryShard => None,
    };
    let mut sql_ms = 0.0;
    for meta in results.iter().filter_map(|result| result.meta().ok().flatten()) {
        meter.charge_rows(
            meta.rows_read.unwrap_or(0) as u64,
            meta.rows_written.unwrap_or(0) as u64,
            business,
        );
        sql_ms += meta.duration.unwrap_or(0.0);
    }
    meter.waited_on_d1(runtime::now().millis() - called, sql_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{number, text};
    use crate::testing::Fixture;
    use domain::error::ApiError;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Named {
        name: String,
    }

    async fn names(db: &Db, tenant: &Tenant) -> Vec<String> {
        db.scoped(tenant, "SELECT name FROM businesses WHERE id = ?1")
            .all()
            .await
            .and_then(|result| read::<Named>(&result))
            .unwrap_or_else(|error| panic!("{error}"))
            .into_iter()
            .map(|named| named.name)
            .collect()
    }

    #[test]
    fn a_scoped_statement_runs_on_its_businesss_shard_with_the_business_as_its_first_parameter() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let globex = fixture.business("Globex").await;
            assert_eq!(names(&fixture.db, &acme).await, vec!["Acme"]);
            assert_eq!(names(&fixture.db, &globex).await, vec!["Globex"]);
            let renamed = fixture
                .db
                .scoped(&acme, "UPDATE businesses SET name = ?2 WHERE id = ?1")
                .bind(&[text("Acme Ltd")])
                .unwrap_or_else(|error| panic!("{error}"))
                .run()
                .await
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(crate::db::changes(&renamed), 1);
            assert_eq!(
                names(&fixture.db, &globex).await,
                vec!["Globex"],
                "the other business is untouched"
            );
        });
    }

    #[test]
    fn an_unscoped_lookup_on_every_shard_is_answered_by_the_shard_that_has_the_row() {
        let fixture = Fixture::new();
        fixture.run(async {
            // Placed by hand on both shards: new businesses land on a shard at random, and six
            // of them all on one (one run in 32) would leave the other shard's lookup untested.
            let mut tenants = Vec::new();
            for (name, shard) in [("A", 0), ("B", 1), ("C", 0), ("D", 1), ("E", 0), ("F", 1)] {
                tenants.push(fixture.business_on(name, shard).await);
            }
            let placed: Vec<i64> = fixture
                .rows("business_shards", "business_id")
                .iter()
                .filter_map(|row| row["shard"].as_i64())
                .collect();
            assert!(
                placed.contains(&0) && placed.contains(&1),
                "businesses on both shards: {placed:?}"
            );
            for tenant in &tenants {
                let found = fixture
                    .db
                    .unscoped("SELECT name FROM businesses WHERE id = ?1")
                    .bind(&[text(tenant.business_id.as_str())])
                    .unwrap_or_else(|error| panic!("{error}"))
                    .first::<Named>(None)
                    .await
                    .unwrap_or_else(|error| panic!("{error}"));
                assert!(
                    found.is_some(),
                    "{} is found wherever it lives",
                    tenant.business_id
                );
            }
        });
    }

    #[test]
    fn a_lookup_on_every_shard_takes_only_the_rows_of_the_shard_the_directory_names_for_their_business() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            // A second copy on the other shard, as a move leaves one (partial while it copies,
            // stale after the switch), under another name to tell them apart.
            fixture.stack.sql("DB_1", |connection| {
                connection
                    .execute(
                        "INSERT INTO businesses (id, name, created_at) VALUES (?1, 'Acme (other copy)', 'now')",
                        [acme.business_id.as_str()],
                    )
                    .unwrap_or_else(|error| panic!("{error}"))
            });
            let lookup = |sql: &'static str| {
                let db = fixture.db.clone();
                let id = acme.business_id.clone();
                async move {
                    db.unscoped(sql)
                        .bind(&[text(id.as_str())])
                        .unwrap_or_else(|error| panic!("{error}"))
                        .first::<Named>(None)
                        .await
                        .unwrap_or_else(|error| panic!("{error}"))
                        .map(|named| named.name)
                }
            };
            let named = "SELECT id AS business_id, name FROM businesses WHERE id = ?1";
            let only_on_the_other = "SELECT id AS business_id, name FROM businesses WHERE id = ?1 AND name LIKE '%other%'";
            let anonymous = "SELECT name FROM businesses WHERE id = ?1 AND name LIKE '%other%'";
            assert_eq!(lookup(named).await.as_deref(), Some("Acme"), "the directory names shard 0");
            assert_eq!(
                lookup(only_on_the_other).await,
                None,
                "rows of the business on a shard it does not live on are not an answer"
            );
            assert_eq!(
                lookup(anonymous).await.as_deref(),
                Some("Acme (other copy)"),
                "rows that do not name their business are taken where they are found"
            );

            let entry = crate::db::directory::entry(&fixture.db, &acme.business_id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let switched = domain::shard_move::Entry {
                shard: 1,
                moved_from: Some(0),
                switched_ms: Some(0),
                ..entry
            };
            crate::db::directory::record(&fixture.db, &acme.business_id, &switched)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(
                lookup(named).await.as_deref(),
                Some("Acme (other copy)"),
                "after the switch, the new shard's rows are the answer and the old copy's are not"
            );
            let only_in_the_old_copy =
                "SELECT id AS business_id, name FROM businesses WHERE id = ?1 AND name = 'Acme'";
            assert_eq!(
                lookup(only_in_the_old_copy).await,
                None,
                "what only the old copy still holds (a key revoked since on the new shard) is not found"
            );
        });
    }

    #[test]
    fn a_batch_is_one_transaction_on_one_shard_and_refuses_two_businesses() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let globex = fixture.business("Globex").await;
            let rename = |tenant: &Tenant, name: &str| {
                fixture
                    .db
                    .scoped(tenant, "UPDATE businesses SET name = ?2 WHERE id = ?1")
                    .bind(&[text(name)])
                    .unwrap_or_else(|error| panic!("{error}"))
            };
            let mixed = fixture
                .db
                .batch(vec![rename(&acme, "X"), rename(&globex, "Y")])
                .await;
            assert!(mixed.is_err_and(|error| error.to_string().contains("two businesses")));
            let every_shard = fixture.db.batch(vec![fixture.db.unscoped("SELECT 1")]).await;
            assert!(
                every_shard.is_err(),
                "a batch of statements that are no one business's must name its shard"
            );
            let failing = fixture
                .db
                .batch(vec![
                    rename(&acme, "Renamed"),
                    fixture.db.scoped(
                        &acme,
                        "INSERT INTO businesses (id, name, created_at) VALUES (?1, 'again', 'now')",
                    ),
                ])
                .await;
            assert!(failing.is_err(), "the duplicate id fails the batch");
            assert_eq!(
                names(&fixture.db, &acme).await,
                vec!["Acme"],
                "and the rename before it is rolled back"
            );
        });
    }

    #[test]
    fn a_paused_business_reads_but_does_not_write_and_its_writes_are_worth_retrying() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let entry = crate::db::directory::entry(&fixture.db, &acme.business_id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            let paused = domain::shard_move::Entry {
                moving_to: Some(1 - entry.shard),
                move_started_ms: Some(0),
                ..entry
            };
            crate::db::directory::record(&fixture.db, &acme.business_id, &paused)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!(names(&fixture.db, &acme).await, vec!["Acme"], "reads go on");
            let write = fixture
                .db
                .scoped(&acme, "UPDATE businesses SET name = 'X' WHERE id = ?1")
                .run()
                .await
                .map_err(ApiError::from);
            let refused = write
                .err()
                .unwrap_or_else(|| panic!("a paused business's write is refused"));
            assert_eq!(refused.status(), 503, "{refused:?}");
            assert!(refused.retry_after_seconds.is_some(), "with Retry-After");
        });
    }

    #[test]
    fn a_shard_that_does_not_answer_is_a_503_naming_it_and_a_statement_over_d1s_limits_is_refused() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business("Acme").await;
            let shard = crate::db::directory::entry(&fixture.db, &acme.business_id)
                .await
                .unwrap_or_else(|error| panic!("{error:?}"))
                .shard;
            let binding = if shard == 0 { "DB" } else { "DB_1" };
            fixture
                .stack
                .outage(binding, "D1 DB is overloaded. Too many requests queued.");
            let unanswered = fixture
                .db
                .scoped(&acme, "SELECT name FROM businesses WHERE id = ?1")
                .all()
                .await
                .map_err(ApiError::from)
                .err()
                .unwrap_or_else(|| panic!("the shard does not answer"));
            assert_eq!(unanswered.status(), 503, "{unanswered:?}");
            assert!(
                unanswered
                    .detail()
                    .unwrap_or_default()
                    .contains(&format!("shard {shard}")),
                "{unanswered:?}"
            );
            fixture.stack.restore(binding);

            let too_many: Vec<crate::db::Param> = (0..100).map(number).collect();
            let marks: Vec<String> = (2..=101).map(|at| format!("?{at}")).collect();
            let over = fixture
                .db
                .scoped(&acme, format!("SELECT ?1, {}", marks.join(", ")))
                .bind(&too_many)
                .unwrap_or_else(|error| panic!("{error}"))
                .all()
                .await;
            assert!(
                over.is_err_and(|error| error.to_string().contains("parameters")),
                "101 bound parameters are over D1's 100"
            );

            // D1 refuses a string over 2,000,000 bytes; so does the native shard, before it runs.
            let long = |bytes: usize| crate::db::text(&"a".repeat(bytes));
            let statement = |bytes: usize| {
                fixture
                    .db
                    .scoped(&acme, "SELECT length(?2) AS n WHERE ?1 IS NOT NULL")
                    .bind(&[long(bytes)])
                    .unwrap_or_else(|error| panic!("{error}"))
            };
            let at_the_limit = statement(domain::platform::D1_VALUE_BYTES).all().await;
            assert!(
                at_the_limit.is_ok(),
                "2,000,000 bytes pass: {:?}",
                at_the_limit.err()
            );
            let over = statement(domain::platform::D1_VALUE_BYTES + 1).all().await;
            assert!(
                over.is_err_and(|error| error.to_string().contains("a value of 2000001 bytes")),
                "a value of 2,000,001 bytes is over D1's limit"
            );
            let batched = fixture
                .db
                .batch(vec![statement(domain::platform::D1_VALUE_BYTES + 1)])
                .await;
            assert!(batched.is_err(), "in a batch too");
        });
    }
}
