//! What a statement's failure is, decided once where D1 answers ([`Error::of`]) and carried as a
//! value from there: a caller matches the variant it handles (a UNIQUE key written first by
//! someone else, a business held while it moves) and hands the rest up, where one conversion
//! decides the answer: 503 with `Retry-After` for a store out of reach, 409 for a batch whose
//! condition no longer held when it ran, 500 for the rest. A UNIQUE key that reaches the top is
//! among the rest: where a clash can happen, the code that writes the key handles it.

use crate::db::Shard;
use domain::error::{ApiError, Unavailable};
use domain::ids::BusinessId;
use domain::platform::d1_did_not_answer;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The shard's database did not answer (D1 restarts one in seconds).
    Unanswered { shard: Shard, cause: String },
    /// A write of a business held while it is moved to another shard.
    Moving { business: BusinessId },
    /// A write of a business held while it is restored from a backup.
    Restoring { business: BusinessId },
    /// D1 refused the statement for a constraint of the schema.
    Violation(Violation),
    /// Anything else: a statement over D1's limits, a row that does not read as its type, a
    /// binding that is missing. `doing` is the statement's start or what was being done.
    Failed { doing: String, cause: String },
}

impl Error {
    /// D1's failure of a statement on `shard`, classified.
    pub(crate) fn of(shard: Shard, error: &worker::Error) -> Self {
        let cause = error.to_string();
        if d1_did_not_answer(&cause) {
            return Self::Unanswered { shard, cause };
        }
        match Violation::of(error) {
            Some(violation) => Self::Violation(violation),
            None => Self::failed("running a statement", cause),
        }
    }

    pub fn failed(doing: impl Into<String>, cause: impl fmt::Display) -> Self {
        Self::Failed {
            doing: doing.into(),
            cause: cause.to_string(),
        }
    }

    /// The violated constraint, when that is what the failure was.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::Violation(violation) => Some(violation),
            _ => None,
        }
    }

    /// Whether the failure is a UNIQUE key on `table` that another write holds already.
    pub fn is_unique_on(&self, table: &str) -> bool {
        self.violation()
            .is_some_and(|violation| violation.is_unique_on(table))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unanswered { shard, cause } => write!(f, "shard {shard} did not answer: {cause}"),
            Self::Moving { business } => write!(f, "business {business} is held while it is moved"),
            Self::Restoring { business } => {
                write!(f, "business {business} is held while it is restored")
            }
            Self::Violation(Violation::Unique { columns }) => {
                write!(f, "UNIQUE constraint failed: {}", columns.join(", "))
            }
            Self::Violation(Violation::Aborted) => f.write_str(
                "NOT NULL constraint failed: batch_aborts.aborted (a batch's condition did not hold)",
            ),
            Self::Violation(Violation::Other(cause)) => f.write_str(cause),
            Self::Failed { doing, cause } => write!(f, "{doing}: {cause}"),
        }
    }
}

/// The one place a database failure becomes an answer.
impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let reason = match &error {
            Error::Unanswered { .. } => Unavailable::Unanswered,
            Error::Moving { .. } => Unavailable::Moving,
            Error::Restoring { .. } => Unavailable::Restoring,
            Error::Violation(Violation::Aborted) => {
                return ApiError::conflict("something this needed changed at the same moment; try again")
                    .with_detail(error);
            }
            Error::Violation(Violation::Unique { .. } | Violation::Other(_)) | Error::Failed { .. } => {
                return ApiError::internal("the database", error);
            }
        };
        ApiError::out_of_reach(reason, error)
    }
}

/// Why D1 refused a statement, when it was a constraint of the schema rather than a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A UNIQUE index already holds the key: someone else wrote it first. `columns` as SQLite
    /// names them (`customers.business_id`, `customers.email`).
    Unique { columns: Vec<String> },
    /// A statement built by [`crate::db::abort_unless`] found its condition false and rolled the
    /// batch back.
    Aborted,
    /// Any other constraint (CHECK, NOT NULL, FOREIGN KEY): a bug in our statements.
    Other(String),
}

impl Violation {
    /// The violation D1 reported, if the error is one; other failures are `None`.
    pub fn of(error: &worker::Error) -> Option<Self> {
        Self::parse(&crate::runtime::d1_cause(error)?)
    }

    /// Reads SQLite's report of a violated constraint, as D1 passes it on (and as [`Error`]
    /// writes it).
    pub(crate) fn parse(cause: &str) -> Option<Self> {
        if cause.contains("constraint failed: batch_aborts.") {
            return Some(Self::Aborted);
        }
        if let Some(at) = cause.find("UNIQUE constraint failed: ") {
            let list = &cause[at + "UNIQUE constraint failed: ".len()..];
            let list = list.split(": SQLITE").next().unwrap_or(list);
            let columns = list.split(',').map(|column| column.trim().to_owned()).collect();
            return Some(Self::Unique { columns });
        }
        cause
            .contains("constraint failed")
            .then(|| Self::Other(cause.to_owned()))
    }

    /// True for a UNIQUE violation on `table`.
    pub fn is_unique_on(&self, table: &str) -> bool {
        matches!(self, Self::Unique { columns } if columns.iter().any(|column| {
            column.split('.').next() == Some(table)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_read_from_sqlites_report() {
        let unique = Violation::parse(
            "UNIQUE constraint failed: customers.business_id, customers.email: SQLITE_CONSTRAINT",
        );
        assert_eq!(
            unique,
            Some(Violation::Unique {
                columns: vec!["customers.business_id".into(), "customers.email".into()]
            })
        );
        assert!(unique.is_some_and(|v| v.is_unique_on("customers") && !v.is_unique_on("messages")));
        assert_eq!(
            Violation::parse("NOT NULL constraint failed: batch_aborts.aborted: SQLITE_CONSTRAINT"),
            Some(Violation::Aborted)
        );
        assert_eq!(Violation::parse("D1_ERROR: no such table: x"), None);
    }

    #[test]
    fn each_failure_is_answered_as_what_it_is() {
        let business = BusinessId::generate([7; 16]);
        let answered = |error: Error| {
            let error = ApiError::from(error);
            (
                error.status(),
                error.retry_after_seconds.is_some(),
                error.unavailable_because(),
            )
        };
        assert_eq!(
            answered(Error::Unanswered {
                shard: 1,
                cause: "D1_ERROR: Network connection lost.".into()
            }),
            (503, true, Some(Unavailable::Unanswered))
        );
        assert_eq!(
            answered(Error::Moving {
                business: business.clone()
            }),
            (503, true, Some(Unavailable::Moving))
        );
        assert_eq!(
            answered(Error::Restoring { business }),
            (503, true, Some(Unavailable::Restoring))
        );
        assert_eq!(answered(Error::Violation(Violation::Aborted)), (409, false, None));
        assert_eq!(
            answered(Error::Violation(Violation::Unique {
                columns: vec!["t.k".into()]
            })),
            (500, false, None)
        );
        assert_eq!(
            answered(Error::Violation(Violation::Other("CHECK".into()))),
            (500, false, None)
        );
        assert_eq!(
            answered(Error::failed("reading a row", "no such column")),
            (500, false, None)
        );
        let hidden = ApiError::from(Error::Unanswered {
            shard: 3,
            cause: "overloaded".into(),
        });
        assert!(!hidden.body.message.contains("shard"), "{}", hidden.body.message);
        assert!(hidden.detail().is_some_and(|detail| detail.contains("shard 3")));
    }
}
