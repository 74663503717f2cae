//! The runtime a function runs on, chosen at compile time. In a wasm32 build it is the Workers
//! runtime (`workers`: the `worker` crate's types, and the few calls we make on JavaScript objects
//! ourselves); natively it is its in-process twin (`native`): SQLite migrated from `migrations/`
//! for each D1 shard, maps for KV and R2, queues that record what was sent, partners answered by
//! scripts, and a clock the test moves. Both halves offer the same types with the same methods, so
//! the rest of edge and every function are written once, against this module, and a whole
//! pipeline runs as a unit test without a bundle growing by a byte: nothing here is `dyn`.
//!
//! Besides the types, the clock and randomness are handed to pure code as values from here.

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
mod workers;

#[cfg(not(target_arch = "wasm32"))]
use native as imp;
#[cfg(target_arch = "wasm32")]
use workers as imp;

pub use imp::{
    AbortController, AbortSignal, Bindings, Bound, Bucket, ByteStream, Context, D1Database,
    D1PreparedStatement, D1Result, Data, Delay, Fetch, Fetcher, FixedLengthStream, FormData, FormEntry,
    Headers, Kv, ObjectNamespace, Queue, QueueMessage, Request, Response, at_url, bound, bound_text,
    d1_cause, decrypt, encrypt, isolate, keys_stored_before, outgoing, parse_form, prepare, request_method,
    request_url,
};
#[cfg(not(target_arch = "wasm32"))]
pub use native::log;
pub use worker::{D1ResultMeta, HttpMetadata, Method};

use domain::error::ApiError;
use domain::time::Timestamp;

/// A failure of the Workers runtime itself, not of a store or a partner: a binding missing, an
/// invocation over its limits, a header name it refuses, an answer it cannot make. It is ours (or
/// the platform's) and answered 500 with what was being done; each call says so, where a blanket
/// conversion of every error used to decide it silently.
pub trait Internal<T> {
    fn internal(self, doing: &'static str) -> Result<T, ApiError>;
}

impl<T> Internal<T> for worker::Result<T> {
    #[inline]
    fn internal(self, doing: &'static str) -> Result<T, ApiError> {
        match self {
            Ok(value) => Ok(value),
            Err(error) => Err(runtime_failed(doing, error)),
        }
    }
}

/// The answer to a failure of the runtime: one function, not one per type a call returns.
#[cold]
#[inline(never)]
fn runtime_failed(doing: &'static str, error: worker::Error) -> ApiError {
    ApiError::internal(doing, error)
}

/// A value bound to a statement's parameter, as D1 takes one. Plain data, so that statements
/// and their values are built, composed and checked natively; the D1 binding converts them when a
/// statement is prepared.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    /// Bound as a JavaScript number: exact up to 2^53, which covers microsecond times for the
    /// next 285 years and every count we store.
    Number(f64),
    Null,
}

/// The body of a request a worker makes.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
}

/// How loud a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Log,
    Warn,
    Error,
}

/// A line in the function's log (`wrangler tail`, the local stack's output, a native test's).
/// In a bundle it is the console call `worker`'s own macro makes, to the byte.
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! console_log {
    ($($t:tt)*) => { $crate::runtime::console::log_1(&format_args!($($t)*).to_string().into()) };
}

/// A warning in the function's log.
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! console_warn {
    ($($t:tt)*) => { $crate::runtime::console::warn_1(&format_args!($($t)*).to_string().into()) };
}

/// An error in the function's log.
#[cfg(target_arch = "wasm32")]
#[macro_export]
macro_rules! console_error {
    ($($t:tt)*) => { $crate::runtime::console::error_1(&format_args!($($t)*).to_string().into()) };
}

/// A line in the native stack's log (printed, and kept for the test to read).
#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! console_log {
    ($($t:tt)*) => { $crate::runtime::log($crate::runtime::Level::Log, format!($($t)*)) };
}

#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! console_warn {
    ($($t:tt)*) => { $crate::runtime::log($crate::runtime::Level::Warn, format!($($t)*)) };
}

#[cfg(not(target_arch = "wasm32"))]
#[macro_export]
macro_rules! console_error {
    ($($t:tt)*) => { $crate::runtime::log($crate::runtime::Level::Error, format!($($t)*)) };
}

/// The runtime's console, which the log macros write to in a bundle.
#[cfg(target_arch = "wasm32")]
pub use worker::web_sys::console;

/// The most `crypto.getRandomValues` fills in one call (WebCrypto's quota).
const RANDOM_VALUES_QUOTA: usize = 65_536;

/// The runtime's clock. (`SystemTime::now()` panics on wasm32-unknown-unknown; natively the clock
/// is the test's.)
pub fn now() -> Timestamp {
    Timestamp::from_millis(imp::now_ms())
}

/// The day of the week (0 for Monday) and the minute of the day at `at` in the IANA time zone
/// `zone` (`Europe/Dublin`); None for a zone the runtime does not know. In a bundle the runtime's
/// `Intl` reads it, natively the system's time zone database.
pub fn local_time(zone: &str, at: Timestamp) -> Option<(u8, u16)> {
    imp::local_time(zone, at.millis())
}

/// `count` random values of `N` bytes each, drawn from the runtime at once (one call across to it
/// for up to 64 KiB, where [`random`] in a loop would cross once per value).
pub fn randoms<const N: usize>(count: usize) -> Result<Vec<[u8; N]>, ApiError> {
    let mut bytes = vec![0u8; N * count];
    fill_random(&mut bytes)?;
    Ok(bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut value = [0u8; N];
            value.copy_from_slice(chunk);
            value
        })
        .collect())
}

pub fn random<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut bytes = [0u8; N];
    fill_random(&mut bytes)?;
    Ok(bytes)
}

/// `bytes` filled by the runtime's cryptographic random source.
fn fill_random(bytes: &mut [u8]) -> Result<(), ApiError> {
    for chunk in bytes.chunks_mut(RANDOM_VALUES_QUOTA) {
        imp::fill_random(chunk).map_err(|error| ApiError::internal("randomness", error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_clock_is_the_runtimes_and_random_values_are_drawn_fresh_each_time() {
        let stack = native::Stack::new();
        let before = now();
        stack.advance(Duration::from_secs(90));
        assert_eq!(now().millis() - before.millis(), 90_000);
        let many = randoms::<16>(5_000).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(many.len(), 5_000, "more than one quota's worth, drawn in chunks");
        let distinct: std::collections::BTreeSet<[u8; 16]> = many.iter().copied().collect();
        assert_eq!(distinct.len(), 5_000);
        assert_ne!(random::<32>().ok(), random::<32>().ok());
    }

    #[test]
    fn the_log_macros_reach_the_native_stacks_log_at_their_level() {
        let stack = native::Stack::new();
        crate::console_warn!("disk at {}%", 91);
        crate::console_error!("shard {} did not answer", 1);
        assert_eq!(stack.logged(Level::Warn, "disk at 91%").len(), 1);
        assert_eq!(stack.logged(Level::Error, "shard 1 did not answer").len(), 1);
        assert!(stack.logged(Level::Log, "disk").is_empty());
    }
}
