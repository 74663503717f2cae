//! `alerts`: the alerts the rules raised (`domain::alerts`), open or resolved, and the two emails
//! each owes. Raised and resolved by the maintenance sweep (`crate::ops::alerting`) with their
//! webhook events, in one batch; read by the API; deleted 35 days after they were resolved.

use crate::db::Batch;
use crate::db::Read;
use crate::db::Rows;
use crate::db::directory::Moving;
use crate::db::{self, Db, Sql, Statement, number, optional_text, text};
use crate::runtime::D1Result;
use domain::alerts::{Alert, AlertsOut, EmailState, Kind, Open, Raise};
use domain::error::ApiError;
use domain::ids::{AlertId, BusinessId};
use domain::tenant::Tenant;
use domain::time::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// Alerts a listing gives at most, and by default.
pub const MAX_LISTED: usize = 200;
pub const DEFAULT_LISTED: usize = 50;

const COLUMNS: &str = "a.id, a.kind, a.subject_id, a.subject_name, a.threshold, a.value, a.message, a.raised_ms, \
                       a.resolved_ms, a.raised_email, a.resolved_email, a.email_error";

/// A row as [`COLUMNS`] (or the snapshot) reads it.
#[derive(Deserialize)]
struct Row {
    id: AlertId,
    kind: String,
    subject_id: String,
    subject_name: String,
    threshold: i64,
    value: i64,
    message: String,
    raised_ms: i64,
    resolved_ms: Option<i64>,
    raised_email: EmailState,
    resolved_email: Option<EmailState>,
    email_error: Option<String>,
    /// Read by [`emails_due`] only.
    #[serde(default)]
    business_id: Option<BusinessId>,
    #[serde(default)]
    business_name: Option<String>,
    #[serde(default)]
    email_attempts: Option<u32>,
    #[serde(default)]
    email_next_ms: Option<i64>,
}

impl Row {
    fn alert(self) -> Alert {
        Alert {
            subject: Kind::parse(&self.kind).map(Kind::subject),
            id: self.id,
            kind: self.kind,
            subject_id: self.subject_id,
            subject_name: self.subject_name,
            state: if self.resolved_ms.is_some() {
                "resolved"
            } else {
                "open"
            }
            .to_owned(),
            message: self.message,
            value: self.value,
            threshold: self.threshold,
            raised_at: Timestamp::from_millis(self.raised_ms).to_rfc3339(),
            resolved_at: self.resolved_ms.map(|ms| Timestamp::from_millis(ms).to_rfc3339()),
            raised_email: self.raised_email,
            resolved_email: self.resolved_email,
            email_error: self.email_error,
        }
    }
}

/// SQL for the snapshot of the alert whose id is `id_expression`, as its webhook event carries
/// it (`{"alert": …}`), read as the statement runs.
pub fn snapshot_sql(id_expression: &str) -> String {
    format!(
        "(SELECT json_object('alert', json_object('id', a.id, 'kind', a.kind, 'subject_id', a.subject_id, \
         'subject_name', a.subject_name, 'threshold', a.threshold, 'value', a.value, 'message', a.message, \
         'raised_ms', a.raised_ms, 'resolved_ms', a.resolved_ms, 'raised_email', a.raised_email, \
         'resolved_email', a.resolved_email, 'email_error', a.email_error)) \
         FROM alerts a WHERE a.business_id = :business AND a.id = {id_expression})"
    )
}

/// An alert from the JSON [`snapshot_sql`] made.
pub fn from_snapshot(value: Value) -> Result<Alert, ApiError> {
    serde_json::from_value::<Row>(value)
        .map(Row::alert)
        .map_err(|e| ApiError::internal("reading an alert snapshot", e))
}

/// The statement that raises `raise` as alert `id`, unless the same rule's alert about the same
/// subject is open (then it writes nothing, and the event guarded by the alert's existence is
/// not recorded). `email`: whether anyone is to be emailed.
pub fn raise(
    db: &Db,
    tenant: &Tenant,
    id: &AlertId,
    raise: &Raise,
    email: bool,
    now_ms: i64,
) -> Result<Statement, ApiError> {
    let measure = &raise.measure;
    let state = if email {
        EmailState::Pending
    } else {
        EmailState::None
    };
    Ok(db.scoped(
        tenant,
        "INSERT OR IGNORE INTO alerts (id, business_id, kind, subject_id, subject_name, threshold, value, message, \
         raised_ms, raised_email, email_next_ms) \
         VALUES (?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, CASE WHEN ?10 = 'pending' THEN ?9 END)",
    )
    .bind(&[
        text(id.as_str()),
        text(measure.kind.as_str()),
        text(&measure.subject_id),
        text(&measure.subject_name),
        number(i64::from(raise.threshold)),
        number(measure.value),
        text(&raise.message),
        number(now_ms),
        text(state.as_str()),
    ])?)
}

/// The statement that resolves the open alert `id` at `now_ms`; its resolution is emailed when
/// its raising was to be.
pub fn resolve(db: &Db, tenant: &Tenant, id: &AlertId, now_ms: i64) -> Result<Statement, ApiError> {
    Ok(db
        .scoped(
            tenant,
            "UPDATE alerts SET resolved_ms = ?3, \
             resolved_email = CASE WHEN raised_email = 'none' THEN 'none' ELSE 'pending' END, \
             email_next_ms = CASE WHEN raised_email = 'none' THEN email_next_ms ELSE coalesce(email_next_ms, ?3) END \
             WHERE business_id = ?1 AND id = ?2 AND resolved_ms IS NULL",
        )
        .bind(&[text(id.as_str()), number(now_ms)])?)
}

/// The condition that the alert `id` was resolved at `now_ms` by the statement before: its
/// `alert.resolved` event is recorded only by the sweep that resolved it.
pub fn resolved_at(id: &AlertId, now_ms: i64) -> Sql {
    Sql::new(
        "EXISTS (SELECT 1 FROM alerts WHERE business_id = :business AND id = :resolved_alert \
         AND resolved_ms = :resolved_ms)",
    )
    .bind("resolved_alert", text(id.as_str()))
    .bind("resolved_ms", number(now_ms))
}

/// The statement reading the shard's open alerts, at most `limit`, businesses being moved left
/// out.
pub fn open_on_shard(db: &Db, moving: &Moving, limit: usize) -> Result<Read<Vec<Open>>, ApiError> {
    Ok(Read::new(
        db.unscoped(
            "SELECT id, business_id, kind, subject_id FROM alerts WHERE resolved_ms IS NULL \
             AND business_id NOT IN (SELECT value FROM json_each(?1)) ORDER BY business_id, id LIMIT ?2",
        )
        .bind(&[moving.param(), number(limit as i64)])?,
        read_open,
    ))
}

/// The open alerts the statement of [`open_on_shard`] read.
fn read_open(answer: &D1Result) -> Result<Vec<Open>, ApiError> {
    db::rows(answer)
}

/// The business's alerts, newest first: the open ones only, or all; at most `limit`.
pub async fn list(db: &Db, tenant: &Tenant, open_only: bool, limit: usize) -> Result<AlertsOut, ApiError> {
    #[derive(Deserialize)]
    struct Count {
        open: u64,
    }
    let mut batch = Batch::default();
    let alerts = batch.read(Read::<Vec<Row>>::rows(
        db.scoped(
            tenant,
            format!(
                "SELECT {COLUMNS} FROM alerts a WHERE a.business_id = ?1 AND (?2 = 0 OR a.resolved_ms IS NULL) \
                 ORDER BY a.raised_ms DESC, a.id LIMIT ?3"
            ),
        )
        .bind(&[number(i64::from(open_only)), number(limit as i64)])?,
    ));
    let open = batch.read(Read::<Option<Count>>::first(db.scoped(
        tenant,
        "SELECT count(*) AS open FROM alerts WHERE business_id = ?1 AND resolved_ms IS NULL",
    )));
    let answers = batch.run(db).await?;
    Ok(AlertsOut {
        alerts: answers.take(alerts)?.into_iter().map(Row::alert).collect(),
        open: answers.take(open)?.map_or(0, |count| count.open),
    })
}

/// An alert email that is due.
#[derive(Debug, Clone)]
pub struct DueEmail {
    pub business_id: BusinessId,
    pub business_name: String,
    pub alert: Alert,
    /// The resolution's email (else the raising's).
    pub resolved: bool,
    /// Tries of it so far.
    pub attempts: u32,
    /// When it was due, as read: the claim of it names this (`claim_emails`).
    pub due_ms: i64,
}

/// The shard's alert emails due at `now_ms` (the raising's before the resolution's), at most
/// `limit` and at most `per_business` of one business, businesses being moved left out. Taken
/// in turn between businesses (each one's first due email, then each one's second, …), so that
/// one business with many failing subjects does not keep the others' waiting.
pub async fn emails_due(
    db: &Db,
    moving: &Moving,
    now_ms: i64,
    limit: usize,
    per_business: usize,
) -> Result<Vec<DueEmail>, ApiError> {
    let rows: Vec<Row> = db
        .unscoped(format!(
            "SELECT a.business_id, b.name AS business_name, a.email_attempts, a.email_next_ms, {COLUMNS} FROM \
             (SELECT *, row_number() OVER (PARTITION BY business_id ORDER BY email_next_ms, id) AS turn \
              FROM alerts WHERE email_next_ms <= ?1 AND business_id NOT IN (SELECT value FROM json_each(?2))) a \
             JOIN businesses b ON b.id = a.business_id WHERE a.turn <= ?4 \
             ORDER BY a.turn, a.email_next_ms, a.id LIMIT ?3"
        ))
        .bind(&[
            number(now_ms),
            moving.param(),
            number(limit as i64),
            number(per_business as i64),
        ])?
        .all()
        .await?
        .rows()?;
    rows.into_iter()
        .map(|mut row| {
            let business_id = row
                .business_id
                .take()
                .ok_or_else(|| db::corrupt("alerts", row.id.as_str(), "business_id"))?;
            Ok(DueEmail {
                business_id,
                business_name: row.business_name.take().unwrap_or_default(),
                attempts: row.email_attempts.unwrap_or(0),
                due_ms: row.email_next_ms.unwrap_or(0),
                resolved: row.raised_email != EmailState::Pending,
                alert: row.alert(),
            })
        })
        .collect()
}

/// How long an email claimed for sending is not due to anyone else: a run that stopped between
/// its claim and its record leaves it due again after this.
pub const CLAIM_MS: i64 = 10 * 60_000;

/// Claims the emails `due` (read from the shard `db` runs on) for this run before any is sent,
/// in one batch: each is taken only if it
/// is still due when it was read (another sweep running at once took it otherwise), and is not
/// due to anyone else for [`CLAIM_MS`]. Those taken, in `due`'s order.
pub async fn claim_emails(db: &Db, due: Vec<DueEmail>, now_ms: i64) -> Result<Vec<DueEmail>, ApiError> {
    if due.is_empty() {
        return Ok(due);
    }
    // One batch on the shard the sweep reads (`db`), for every business whose emails it read.
    let statements = due
        .iter()
        .map(|email| {
            db.unscoped(
                "UPDATE alerts SET email_next_ms = ?4 WHERE business_id = ?1 AND id = ?2 AND email_next_ms = ?3",
            )
            .bind(&[
                text(email.business_id.as_str()),
                text(email.alert.id.as_str()),
                number(email.due_ms),
                number(now_ms + CLAIM_MS),
            ])
        })
        .collect::<Result<Vec<_>, _>>()?;
    let changed = db::write_together(db, statements).await?;
    Ok(due
        .into_iter()
        .zip(changed)
        .filter(|(_, changed)| *changed == 1)
        .map(|(email, _)| email)
        .collect())
}

/// What came of a try of an alert email.
pub enum Emailed {
    Sent,
    /// Try again at `at_ms`.
    Retry {
        error: String,
        at_ms: i64,
    },
    Failed {
        error: String,
    },
    /// Not sent, and not to be: `reason` (no Mailgun account).
    NotSent {
        reason: String,
    },
}

/// Records what came of the try `attempt` of `due`, and when the alert's next email is due.
pub async fn emailed(
    db: &Db,
    due: &DueEmail,
    attempt: u32,
    outcome: Emailed,
    now_ms: i64,
) -> Result<(), ApiError> {
    let (state, error, next_ms) = match outcome {
        Emailed::Sent => (EmailState::Sent, None, None),
        Emailed::Retry { error, at_ms } => (EmailState::Pending, Some(error), Some(at_ms)),
        Emailed::Failed { error } => (EmailState::Failed, Some(error), None),
        Emailed::NotSent { reason } => (EmailState::None, Some(reason), None),
    };
    let retrying = state == EmailState::Pending;
    // Once one email is settled, the other is due now if it is pending.
    let (which, next) = if due.resolved {
        ("resolved_email", "?6")
    } else {
        (
            "raised_email",
            "CASE WHEN ?6 IS NOT NULL THEN ?6 WHEN resolved_email = 'pending' THEN ?7 END",
        )
    };
    let mut values = vec![
        text(due.alert.id.as_str()),
        text(state.as_str()),
        optional_text(error.as_deref()),
        number(if retrying { i64::from(attempt) } else { 0 }),
        db::optional_number(next_ms),
    ];
    if !due.resolved {
        values.push(number(now_ms));
    }
    let tenant = Tenant::for_background(due.business_id.clone());
    db.scoped(
        &tenant,
        format!(
            "UPDATE alerts SET {which} = ?3, email_error = coalesce(?4, email_error), email_attempts = ?5, \
             email_next_ms = {next} WHERE business_id = ?1 AND id = ?2 AND {which} = 'pending'"
        ),
    )
    .bind(&values)?
    .run()
    .await?;
    Ok(())
}

/// Deletes up to `limit` alerts resolved before `before_ms`, of businesses settled on this shard.
pub async fn delete_resolved_before(
    db: &Db,
    moving: &Moving,
    before_ms: i64,
    limit: usize,
) -> Result<usize, ApiError> {
    let result = db
        .unscoped(
            "DELETE FROM alerts WHERE rowid IN (SELECT rowid FROM alerts WHERE resolved_ms < ?1 \
             AND business_id NOT IN (SELECT value FROM json_each(?3)) ORDER BY resolved_ms LIMIT ?2)",
        )
        .bind(&[number(before_ms), number(limit as i64), moving.param()])?
        .run()
        .await?;
    Ok(db::changes(&result))
}
