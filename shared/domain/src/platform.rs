//! What Cloudflare allows one invocation of a Worker (a request, a queue batch, a cron run), in
//! one place, with the page each figure comes from; and the count of what an invocation used,
//! which the runtime layer keeps (`edge::platform::meter`) and which refuses, in the local and test
//! stack, what production would refuse. `wrangler dev` enforces none of these.
//!
//! The figures are the Workers Paid plan's (Queues and Durable Objects need it), as the pages read
//! in November 2026:
//! - <https://developers.cloudflare.com/workers/platform/limits/> (subrequests: 10,000 by default
//!   since February 2026; memory 128 MB per isolate; 6 simultaneous connections);
//! - <https://developers.cloudflare.com/d1/platform/limits/> (1,000 queries per invocation, 100
//!   bound parameters and 100,000 bytes per statement, 2,000,000 bytes per string or row);
//! - <https://developers.cloudflare.com/kv/platform/limits/> (1,000 operations per invocation);
//! - <https://developers.cloudflare.com/queues/platform/limits/> (128 KB per message, 100 per
//!   batch, 15 minutes of wall time per consumer invocation);
//! - <https://developers.cloudflare.com/workers-ai/models/bge-small-en-v1.5/> (100 texts per call);
//! - <https://developers.cloudflare.com/vectorize/platform/limits/> (1,000 vectors per upsert
//!   through the binding, top-k 50 with metadata, a filter under 2,048 bytes).
//!
//! A D1 batch is counted as one query per statement: the page does not say how a batch counts,
//! so we assume the stricter reading.

use std::fmt;

/// D1 queries (statements, each statement of a batch counted) one invocation may run.
pub const D1_QUERIES: u32 = 1_000;
/// Bound parameters of one D1 statement.
pub const D1_BOUND_PARAMETERS: usize = 100;
/// Bytes of one D1 statement's SQL text.
pub const D1_STATEMENT_BYTES: usize = 100_000;
/// Bytes of one string, BLOB or row stored in D1.
pub const D1_VALUE_BYTES: usize = 2_000_000;
/// Subrequests (outbound fetches, and calls to KV, R2, Queues, Durable Objects and other
/// Workers) one invocation may make.
pub const SUBREQUESTS: u32 = 10_000;
/// KV operations one invocation may make.
pub const KV_OPERATIONS: u32 = 1_000;
/// The memory of an isolate, which the invocations it serves share.
pub const ISOLATE_MEMORY_BYTES: usize = 128 * 1024 * 1024;
/// What one invocation may hold in buffers it reads whole (bodies, files, pages) at once: half of
/// the isolate, which also holds the wasm module, the JavaScript runtime, and other invocations.
pub const BUFFERED_BYTES: usize = ISOLATE_MEMORY_BYTES / 2;
/// Bytes of a request body Cloudflare hands a Worker on the Free and Pro plans (more on Business
/// and Enterprise); past it Cloudflare answers 413 itself
/// (<https://developers.cloudflare.com/workers/platform/limits/>, "Request limits").
pub const REQUEST_BODY_BYTES: usize = 100 * 1000 * 1000;
/// Bytes of one queue message (1 KB = 1,000 bytes; about 100 go to Cloudflare's metadata).
pub const QUEUE_MESSAGE_BYTES: usize = 128_000;
/// Messages per queue batch, sent or consumed.
pub const QUEUE_BATCH_MESSAGES: usize = 100;
/// Wall time of one queue consumer or cron invocation.
pub const CONSUMER_WALL_SECONDS: i64 = 15 * 60;
/// Texts Workers AI embeds in one call of `@cf/baai/bge-small-en-v1.5`.
pub const AI_TEXTS_PER_CALL: usize = 100;
/// Vectors one Vectorize upsert through the binding may carry.
pub const VECTORIZE_UPSERT: usize = 1_000;
/// Results one Vectorize query may return with their metadata.
pub const VECTORIZE_TOP_K: usize = 50;

/// True when a D1 failure says the database did not answer (it is busy, overloaded, restarting or
/// out of reach) rather than refused the SQL we sent: the first is worth trying again shortly, the
/// second is our bug. The phrases are those of D1's list of errors
/// (<https://developers.cloudflare.com/d1/observability/debug-d1/>: "Network connection lost",
/// "… caused object to be reset", "… was reset", "D1 DB is overloaded", "internal error") and
/// SQLite's own for a database another writer holds (`SQLITE_BUSY`, which the local stack reports
/// inside an "internal error"). A violated constraint is never one of them.
pub fn d1_did_not_answer(cause: &str) -> bool {
    const UNANSWERED: [&str; 7] = [
        "Network connection lost",
        "to be reset",
        "was reset",
        "overloaded",
        "internal error",
        "database is locked",
        "SQLITE_BUSY",
    ];
    !cause.contains("constraint failed") && UNANSWERED.iter().any(|phrase| cause.contains(phrase))
}

/// What an invocation uses of what is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    D1Query,
    Subrequest,
    KvOperation,
}

impl Resource {
    pub fn limit(self) -> u32 {
        match self {
            Self::D1Query => D1_QUERIES,
            Self::Subrequest => SUBREQUESTS,
            Self::KvOperation => KV_OPERATIONS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::D1Query => "D1 queries",
            Self::Subrequest => "subrequests",
            Self::KvOperation => "KV operations",
        }
    }
}

/// A limit an invocation went past: production would have failed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded(pub String);

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "over Cloudflare's per-invocation limit, as production would be: {}",
            self.0
        )
    }
}

/// The count of one invocation: what it used, the most it held in buffers at once, and the rows
/// D1 says it read and wrote (what D1 bills).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub d1_queries: u32,
    /// D1 calls: a batch is one round trip however many statements it carries.
    pub d1_round_trips: u32,
    pub d1_rows_read: u64,
    pub d1_rows_written: u64,
    pub subrequests: u32,
    pub kv_operations: u32,
    pub buffered_bytes: usize,
    pub peak_buffered_bytes: usize,
    /// What the invocation used that Cloudflare bills beyond D1's rows.
    pub billed: Billed,
}

/// What an invocation used that Cloudflare bills beyond D1's rows, as its usage line names it
/// (`crate::pricing` prices each; the cost benches read the line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Billed {
    pub kv_reads: u32,
    /// Writes and deletes, each billed at ten times a read.
    pub kv_writes: u32,
    /// Messages written, read and deleted (each up to 64 KB).
    pub queue_operations: u32,
    pub r2_class_a: u32,
    pub r2_class_b: u32,
    pub do_requests: u32,
}

impl Usage {
    /// Counts `count` more of `resource`; past its limit, says so (the count still grows, so the
    /// report shows how far past).
    pub fn charge(&mut self, resource: Resource, count: u32) -> Result<(), Exceeded> {
        let used = match resource {
            Resource::D1Query => &mut self.d1_queries,
            Resource::Subrequest => &mut self.subrequests,
            Resource::KvOperation => &mut self.kv_operations,
        };
        *used = used.saturating_add(count);
        if *used > resource.limit() {
            return Err(Exceeded(format!(
                "{} {} in one invocation; the limit is {}",
                *used,
                resource.name(),
                resource.limit()
            )));
        }
        Ok(())
    }

    /// Counts `bytes` more held in buffers; past [`BUFFERED_BYTES`], says so.
    pub fn hold(&mut self, bytes: usize) -> Result<(), Exceeded> {
        self.buffered_bytes = self.buffered_bytes.saturating_add(bytes);
        self.peak_buffered_bytes = self.peak_buffered_bytes.max(self.buffered_bytes);
        if self.buffered_bytes > BUFFERED_BYTES {
            return Err(Exceeded(format!(
                "{} bytes held in buffers at once; an isolate has {} bytes for everything",
                self.buffered_bytes, ISOLATE_MEMORY_BYTES
            )));
        }
        Ok(())
    }

    /// Bytes that may still be held before [`BUFFERED_BYTES`] is reached.
    pub fn room(&self) -> usize {
        BUFFERED_BYTES.saturating_sub(self.buffered_bytes)
    }

    /// `bytes` held by [`Usage::hold`] are no longer held.
    pub fn release(&mut self, bytes: usize) {
        self.buffered_bytes = self.buffered_bytes.saturating_sub(bytes);
    }
}

/// Checks one D1 statement before it runs: its SQL's length in bytes, its bound parameters, and
/// the bytes of its largest bound value (a string or BLOB, as D1 counts it).
pub fn check_statement(sql_bytes: usize, parameters: usize, largest_value: usize) -> Result<(), Exceeded> {
    if sql_bytes > D1_STATEMENT_BYTES {
        return Err(Exceeded(format!(
            "a D1 statement of {sql_bytes} bytes; the limit is {D1_STATEMENT_BYTES}"
        )));
    }
    if parameters > D1_BOUND_PARAMETERS {
        return Err(Exceeded(format!(
            "a D1 statement with {parameters} bound parameters; the limit is {D1_BOUND_PARAMETERS}"
        )));
    }
    if largest_value > D1_VALUE_BYTES {
        return Err(Exceeded(format!(
            "a D1 statement binding a value of {largest_value} bytes; the limit is {D1_VALUE_BYTES}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_did_not_answer_is_told_from_sql_it_refused() {
        for cause in [
            "D1_ERROR: Network connection lost.",
            "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset.",
            "D1_ERROR: D1 DB is overloaded. Too many requests queued.",
            "D1_ERROR: Failed to parse body as JSON, got: Error: internal error; reference = x1",
            "D1_ERROR: database is locked: SQLITE_BUSY",
        ] {
            assert!(d1_did_not_answer(cause), "{cause}");
        }
        for cause in [
            "D1_ERROR: UNIQUE constraint failed: customers.business_id, customers.email: SQLITE_CONSTRAINT",
            "D1_ERROR: no such table: customer: SQLITE_ERROR",
            "D1_ERROR: near \"SELEC\": syntax error at offset 0: SQLITE_ERROR",
            "D1_ERROR: NOT NULL constraint failed: batch_aborts.aborted (internal error)",
        ] {
            assert!(!d1_did_not_answer(cause), "{cause}");
        }
    }

    #[test]
    fn a_statement_over_d1s_size_parameter_or_value_limit_is_refused_before_it_runs() {
        let cases = [
            (
                "all at the limit",
                (D1_STATEMENT_BYTES, D1_BOUND_PARAMETERS, D1_VALUE_BYTES),
                None,
            ),
            (
                "SQL a byte too long",
                (D1_STATEMENT_BYTES + 1, 1, 1),
                Some("100001 bytes"),
            ),
            (
                "a parameter too many",
                (10, D1_BOUND_PARAMETERS + 1, 1),
                Some("101 bound parameters"),
            ),
            (
                "a value a byte too long",
                (10, 1, D1_VALUE_BYTES + 1),
                Some("a value of 2000001 bytes"),
            ),
        ];
        for (description, (sql, parameters, value), refused) in cases {
            let checked = check_statement(sql, parameters, value);
            match refused {
                None => assert_eq!(checked, Ok(()), "{description}"),
                Some(why) => assert!(
                    checked.as_ref().is_err_and(|e| e.to_string().contains(why)),
                    "{description}: {checked:?}"
                ),
            }
        }
    }

    #[test]
    fn an_invocation_may_use_up_to_each_limit_and_no_more() {
        let mut usage = Usage::default();
        assert_eq!(usage.charge(Resource::D1Query, D1_QUERIES), Ok(()));
        let over = usage.charge(Resource::D1Query, 1);
        assert!(over.is_err_and(|e| e.to_string().contains("1001 D1 queries")));
        assert_eq!(usage.charge(Resource::Subrequest, SUBREQUESTS), Ok(()));
        assert!(usage.charge(Resource::KvOperation, KV_OPERATIONS + 1).is_err());
    }

    #[test]
    fn buffers_count_while_they_are_held_and_the_peak_is_kept() {
        let mut usage = Usage::default();
        assert_eq!(usage.hold(40 << 20), Ok(()));
        usage.release(40 << 20);
        assert_eq!(usage.hold(30 << 20), Ok(()));
        assert_eq!(
            (usage.buffered_bytes, usage.peak_buffered_bytes),
            (30 << 20, 40 << 20)
        );
        assert!(
            usage.hold(40 << 20).is_err(),
            "70 MiB at once is more than half an isolate"
        );
    }
}
