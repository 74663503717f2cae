//! The bindings of one invocation (a request, a queue batch, a cron run), each use counted against
//! what Cloudflare allows one invocation (`crate::meter`).
//!
//! An invocation makes its `Env` once, at its entry (a function's fetch, `queue::consume`, the cron
//! handler; natively, the test that stands in for them), and every clone shares its count.

use crate::db::Db;
pub use crate::meter::Held;
use crate::meter::Meter;
use crate::runtime::{Bindings, Bucket, Fetcher, Kv, ObjectNamespace, Queue};
use domain::platform::{Resource, Usage};

/// The variable that turns enforcement on.
const PLATFORM_LIMITS: &str = "PLATFORM_LIMITS";
/// The D1 bindings businesses are spread over, in order (`scripts/configure` sets it).
const SHARDS: &str = "SHARDS";
/// The shards new businesses are placed on, by number (all of them where it is not set).
const NEW_BUSINESS_SHARDS: &str = "NEW_BUSINESS_SHARDS";
/// How long an isolate trusts what it read of the directory, in seconds (a minute where it is
/// not set; the test stack shortens it so that moving a business is tested in seconds).
const DIRECTORY_FRESH_SECONDS: &str = "DIRECTORY_FRESH_SECONDS";
/// The function's name, for the usage line (`scripts/configure` sets it in every config).
const FUNCTION: &str = "CRM_EDGE_FUNCTION";

#[derive(Clone)]
pub struct Env {
    bindings: Bindings,
    meter: Meter,
}

impl Env {
    /// The bindings of a new invocation; `entry` says what started it (`fetch`, `queue`, `cron`).
    pub fn new(bindings: impl Into<Bindings>, entry: &str) -> Self {
        let bindings = bindings.into();
        let enforce = bindings
            .var(PLATFORM_LIMITS)
            .is_some_and(|value| value.trim() == "enforce");
        let function = bindings.var(FUNCTION).unwrap_or_else(|| "worker".to_owned());
        Self {
            meter: Meter::new(format!("{function} {entry}"), enforce),
            bindings,
        }
    }

    /// The runtime's bindings, for what is not counted.
    pub fn bindings(&self) -> &Bindings {
        &self.bindings
    }

    /// The variable `name`, if the deployment sets it.
    pub fn var(&self, name: &str) -> Option<String> {
        self.bindings.var(name)
    }

    /// The secret `name`, if the deployment sets it.
    pub fn secret(&self, name: &str) -> Option<String> {
        self.bindings.secret(name)
    }

    /// The variable `name`, or else the secret of that name: a setting a deployment may keep
    /// either way.
    pub fn setting(&self, name: &str) -> Option<String> {
        self.var(name).or_else(|| self.secret(name))
    }

    /// The D1 database bound as `name`, its statements counted.
    /// `DB` is every shard (docs/scaling.md): the bindings the `SHARDS` variable lists, in
    /// order, or `DB` alone where it lists none.
    pub fn d1(&self, name: &str) -> worker::Result<Db> {
        let shards = match self.var(SHARDS) {
            Some(list) if name == crate::DB => list
                .split(',')
                .map(|binding| self.bindings.d1(binding.trim()))
                .collect::<worker::Result<Vec<_>>>()?,
            _ => vec![self.bindings.d1(name)?],
        };
        let open = self
            .var(NEW_BUSINESS_SHARDS)
            .map(|list| {
                list.split(',')
                    .filter_map(|shard| shard.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let directory_fresh_ms = self
            .var(DIRECTORY_FRESH_SECONDS)
            .and_then(|seconds| seconds.trim().parse::<i64>().ok())
            .filter(|seconds| *seconds > 0)
            .map_or(crate::db::directory::FRESH_MS, |seconds| seconds * 1000);
        Ok(Db::new(shards, open, directory_fresh_ms, self.meter.clone()))
    }

    // The handles below are counted when they are taken, one use each: take one for each
    // operation (a KV get, an R2 put, a queue send or batch, a call to a Worker or an object).

    /// The KV namespace bound as `name`, for one operation.
    pub fn kv(&self, name: &str) -> worker::Result<Kv> {
        self.charge(Resource::KvOperation, 1)?;
        self.bindings.kv(name)
    }

    /// The queue bound as `name`, for one send (of a message or a batch).
    pub fn queue(&self, name: &str) -> worker::Result<Queue> {
        self.charge(Resource::Subrequest, 1)?;
        self.bindings.queue(name)
    }

    /// The R2 bucket bound as `name`, for one operation.
    pub fn bucket(&self, name: &str) -> worker::Result<Bucket> {
        self.charge(Resource::Subrequest, 1)?;
        self.bindings.bucket(name)
    }

    /// The Worker bound as `name`, for one call.
    pub fn service(&self, name: &str) -> worker::Result<Fetcher> {
        self.charge(Resource::Subrequest, 1)?;
        self.bindings.service(name)
    }

    /// The static assets bound as `name`, for one read (counted as a subrequest, as a service
    /// binding's call is).
    pub fn assets(&self, name: &str) -> worker::Result<Fetcher> {
        self.charge(Resource::Subrequest, 1)?;
        self.bindings.assets(name)
    }

    /// The Durable Object namespace bound as `name`, for one call to one of its objects.
    pub fn durable_object(&self, name: &str) -> worker::Result<ObjectNamespace> {
        self.charge(Resource::Subrequest, 1)?;
        self.bindings.durable_object(name)
    }

    /// The invocation's count.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Counts `count` uses of `resource`; past its limit, an error when enforcing.
    pub fn charge(&self, resource: Resource, count: u32) -> worker::Result<()> {
        self.meter.charge(resource, count)
    }

    /// Counts `bytes` read whole into memory until the returned guard is dropped.
    pub fn hold(&self, bytes: usize) -> worker::Result<Held> {
        self.meter.hold(bytes)
    }

    /// Bytes the invocation may still hold in buffers.
    pub fn room(&self) -> usize {
        self.meter.room()
    }

    /// What the invocation used so far.
    pub fn usage(&self) -> Usage {
        self.meter.usage()
    }

    /// Logs the invocation's usage line, when enforcing (the local stack).
    pub fn report(&self) {
        self.meter.report();
    }
}
