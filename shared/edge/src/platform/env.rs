//! The bindings of one invocation (a request, a queue batch, a cron run), each use counted against
//! what Cloudflare allows one invocation (`crate::platform::meter`).
//!
//! An invocation makes its `Env` once, at its entry (a function's fetch, `queue::consume`, the cron
//! handler; natively, the test that stands in for them), and every clone shares its count.

use crate::db::Db;
use crate::platform::bill::Settle;
pub use crate::platform::meter::Held;
use crate::platform::meter::Meter;
use crate::runtime::{Bindings, Bucket, Fetcher, Kv, ObjectNamespace, Queue};
use domain::error::ApiError;
use domain::media::MediaLinks;
use domain::platform::{Resource, Usage};
use domain::sealed::Keyring;
use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

/// The variable that turns enforcement on.
const PLATFORM_LIMITS: &str = "PLATFORM_LIMITS";
/// The D1 bindings businesses are spread over, in order (`scripts/configure` sets it).
const SHARDS: &str = "SHARDS";
/// The shards new businesses are placed on, by number (all of them where it is not set).
const NEW_BUSINESS_SHARDS: &str = "NEW_BUSINESS_SHARDS";
/// How long an isolate trusts what it read of the directory, in seconds (a minute where it is
/// not set; the test stack shortens it so that moving a business is tested in seconds).
const DIRECTORY_FRESH_SECONDS: &str = "DIRECTORY_FRESH_SECONDS";
/// The secret that signs download links (`domain::media::MediaLinks`).
const MEDIA_LINK_SECRET: &str = "MEDIA_LINK_SECRET";
/// The function's name, for the usage line (`scripts/configure` sets it in every config).
const FUNCTION: &str = "CRM_EDGE_FUNCTION";

#[derive(Clone)]
pub struct Env {
    bindings: Bindings,
    meter: Meter,
    /// The invocation's first `DB` and what settles its businesses' tally in it after its usage
    /// line (`crate::platform::bill`): set by [`Env::d1`], so that only a function that opens D1 links it.
    settle: Rc<RefCell<Option<(Db, Settle)>>>,
    /// The invocation's keyring, opened on first use (`crate::platform::secrets_key`).
    keyring: Rc<OnceCell<Rc<Keyring>>>,
    /// The invocation's signer of download links, made on first use (None: no secret is set).
    media_links: Rc<OnceCell<Option<Rc<MediaLinks>>>>,
}

impl Env {
    /// The bindings of a new invocation; `entry` says what started it (`fetch`, `queue`, `cron`).
    pub fn new(bindings: impl Into<Bindings>, entry: &'static str) -> Self {
        let bindings = bindings.into();
        let enforce = bindings
            .var(PLATFORM_LIMITS)
            .is_some_and(|value| value.trim() == "enforce");
        let function = bindings.var(FUNCTION).unwrap_or_else(|| "worker".to_owned());
        Self {
            meter: Meter::new(format!("{function} {entry}"), entry, enforce),
            bindings,
            settle: Rc::default(),
            keyring: Rc::default(),
            media_links: Rc::default(),
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

    /// The invocation's database (every shard), made on first use and shared by every clone of
    /// this `Env`: one `Db` an invocation, its statements counted.
    pub fn db(&self) -> Result<Db, ApiError> {
        if let Some((db, _)) = self.settle.borrow().as_ref() {
            return Ok(db.clone());
        }
        self.d1(crate::DB)
            .map_err(|error| ApiError::internal("the DB binding", error))
    }

    /// The invocation's keyring of `SECRETS_KEY`, opened on first use and shared by every clone.
    pub fn keyring(&self) -> Result<Rc<Keyring>, ApiError> {
        if let Some(keys) = self.keyring.get() {
            return Ok(keys.clone());
        }
        let keys = Rc::new(crate::platform::secrets_key::open_ring(
            self.secret(crate::platform::secrets_key::SECRETS_KEY),
        )?);
        Ok(self.keyring.get_or_init(|| keys).clone())
    }

    /// The invocation's signer of download links (`MEDIA_LINK_SECRET`), made on first use and shared
    /// by every clone; None where the deployment sets no secret.
    pub fn media_links(&self) -> Option<Rc<MediaLinks>> {
        self.media_links
            .get_or_init(|| MediaLinks::of(self.secret(MEDIA_LINK_SECRET)).map(Rc::new))
            .clone()
    }

    /// [`Env::media_links`], for a function that cannot answer without them: a deployment that
    /// sets no `MEDIA_LINK_SECRET` is ours to fix (500), said in the log.
    pub fn required_media_links(&self) -> Result<Rc<MediaLinks>, ApiError> {
        self.media_links().ok_or_else(|| {
            ApiError::internal(
                "signing download links",
                "the MEDIA_LINK_SECRET secret is not configured",
            )
        })
    }

    /// The D1 database bound as `name`, its statements counted.
    /// `DB` is every shard (docs/scaling.md): the bindings the `SHARDS` variable lists, in
    /// order, or `DB` alone where it lists none.
    fn d1(&self, name: &str) -> worker::Result<Db> {
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
        let db = Db::new(shards, open, directory_fresh_ms, self.meter.clone());
        if name == crate::DB {
            self.settle
                .borrow_mut()
                .get_or_insert_with(|| (db.clone(), crate::platform::bill::settle_boxed));
        }
        Ok(db)
    }

    // The handles below are counted when they are taken, one use each: take one for each
    // operation (a KV get, an R2 put, a queue send or batch, a call to a Worker or an object).

    /// The KV namespace bound as `name`, for one read.
    pub fn kv(&self, name: &str) -> worker::Result<Kv> {
        self.charge(Resource::KvOperation, 1)?;
        self.meter.bill(|billed| billed.kv_reads += 1);
        self.bindings.kv(name)
    }

    /// The KV namespace bound as `name`, for one write or delete (billed at ten times a read).
    pub fn kv_write(&self, name: &str) -> worker::Result<Kv> {
        self.charge(Resource::KvOperation, 1)?;
        self.meter.bill(|billed| billed.kv_writes += 1);
        self.bindings.kv(name)
    }

    /// The queue bound as `name`, for one send of `messages` messages (one, or a batch's): each
    /// is a queue operation written now, and two more (its read and its delete) when consumed.
    pub fn queue(&self, name: &str, messages: usize) -> worker::Result<Queue> {
        self.charge(Resource::Subrequest, 1)?;
        self.meter
            .bill(|billed| billed.queue_operations += messages as u32);
        self.bindings.queue(name)
    }

    /// The R2 bucket bound as `name`, for one read (`get`, `head`: R2's class B).
    pub fn bucket_read(&self, name: &str) -> worker::Result<Bucket> {
        self.charge(Resource::Subrequest, 1)?;
        self.meter.bill(|billed| billed.r2_class_b += 1);
        self.bindings.bucket(name)
    }

    /// The R2 bucket bound as `name`, for one write (`put`, `delete`, `list`, a multipart step:
    /// R2's class A).
    pub fn bucket_write(&self, name: &str) -> worker::Result<Bucket> {
        self.charge(Resource::Subrequest, 1)?;
        self.meter.bill(|billed| billed.r2_class_a += 1);
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
        self.meter.bill(|billed| billed.do_requests += 1);
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

    /// Settles the businesses' tally (`crate::platform::bill`) when the invocation opened D1: every entry's
    /// last step, after its usage line.
    pub async fn after_report(&self) {
        let settle = self.settle.borrow_mut().take();
        if let Some((db, settle)) = settle {
            settle(&self.meter, &db, self.var(crate::platform::bill::STORE_EVERY)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::native::Stack;

    fn env_with(vars: &[(&str, &str)]) -> Env {
        let stack = Stack::new();
        for (name, value) in vars {
            stack.set_var(name, value);
        }
        Env::new(stack, "test")
    }

    #[test]
    fn an_invocation_signs_links_with_one_signer_and_without_the_secret_with_none() {
        let env = env_with(&[]);
        let (first, second) = (env.media_links(), env.clone().media_links());
        assert!(
            first
                .zip(second)
                .is_some_and(|(first, second)| Rc::ptr_eq(&first, &second)),
            "one signer an invocation, shared by its clones"
        );
        let stack = Stack::new();
        stack.remove_secret(MEDIA_LINK_SECRET);
        let env = Env::new(stack, "test");
        assert!(env.media_links().is_none());
        assert_eq!(
            env.required_media_links().err().map(|error| error.status()),
            Some(500)
        );
    }

    #[test]
    fn db_is_every_shard_the_shards_variable_lists_or_db_alone() {
        let listed = env_with(&[])
            .d1(crate::DB)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(listed.shard_count(), 2);
        let stack = Stack::new();
        stack.remove_var(SHARDS);
        let alone = Env::new(stack, "test")
            .d1(crate::DB)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(alone.shard_count(), 1);
        let unbound = env_with(&[(SHARDS, "DB,DB_7")]).d1(crate::DB).err();
        assert!(
            unbound.is_some(),
            "a shard the deployment does not bind is a configuration error, not a smaller database"
        );
    }

    #[test]
    fn new_businesses_go_to_the_open_shards_that_are_bound_or_else_to_all() {
        let cases: [(Option<&str>, &[u16], &str); 4] = [
            (None, &[0, 1], "not set: all"),
            (Some("1"), &[1], "the second only"),
            (Some(" 1 , 0 "), &[1, 0], "spaces around the numbers"),
            (Some("5,x"), &[0, 1], "none of them bound: all"),
        ];
        for (setting, open, description) in cases {
            let vars: Vec<(&str, &str)> = setting
                .map(|value| (NEW_BUSINESS_SHARDS, value))
                .into_iter()
                .collect();
            let db = env_with(&vars)
                .d1(crate::DB)
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(db.open_shards(), open, "{description}");
        }
    }

    #[test]
    fn the_directory_is_trusted_for_a_minute_unless_the_deployment_says_otherwise() {
        let cases = [
            (None, 60_000, "not set"),
            (Some("5"), 5_000, "seconds"),
            (Some("0"), 60_000, "zero is not a freshness"),
            (Some("-3"), 60_000, "nor a negative"),
            (Some("soon"), 60_000, "nor a word"),
        ];
        for (setting, fresh_ms, description) in cases {
            let vars: Vec<(&str, &str)> = setting
                .map(|value| (DIRECTORY_FRESH_SECONDS, value))
                .into_iter()
                .collect();
            let db = env_with(&vars)
                .d1(crate::DB)
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(db.directory_fresh_ms(), fresh_ms, "{description}");
        }
    }

    #[test]
    fn a_setting_is_the_variable_where_both_are_set_else_the_secret() {
        let stack = Stack::new();
        stack.set_secret("PUBLIC_BASE_URL", "https://secret.example");
        let env = Env::new(stack.clone(), "test");
        assert_eq!(
            env.setting("PUBLIC_BASE_URL").as_deref(),
            Some("https://secret.example")
        );
        stack.set_var("PUBLIC_BASE_URL", "https://var.example");
        assert_eq!(
            env.setting("PUBLIC_BASE_URL").as_deref(),
            Some("https://var.example")
        );
        assert_eq!(env.setting("NOT_SET"), None);
    }

    #[test]
    fn every_handle_taken_is_one_use_of_the_invocation_and_clones_share_the_count() {
        let env = env_with(&[]);
        let clone = env.clone();
        env.queue("OUTBOUND", 3).unwrap_or_else(|error| panic!("{error}"));
        clone
            .bucket_read("ATTACHMENTS")
            .unwrap_or_else(|error| panic!("{error}"));
        env.bucket_write("ATTACHMENTS")
            .unwrap_or_else(|error| panic!("{error}"));
        env.service("GATEWAY").unwrap_or_else(|error| panic!("{error}"));
        env.durable_object("RATE_LIMITER")
            .unwrap_or_else(|error| panic!("{error}"));
        clone.assets("ASSETS").unwrap_or_else(|error| panic!("{error}"));
        env.kv(crate::AUTH_CACHE)
            .unwrap_or_else(|error| panic!("{error}"));
        clone
            .kv_write(crate::AUTH_CACHE)
            .unwrap_or_else(|error| panic!("{error}"));
        let usage = env.usage();
        assert_eq!((usage.subrequests, usage.kv_operations), (6, 2));
        assert_eq!(clone.usage(), usage);
        // What each handle is billed as: a batch of three messages, a read and a write of R2 and
        // of KV, one call to an object; a service binding's and the assets' calls are free.
        let billed = domain::platform::Billed {
            kv_reads: 1,
            kv_writes: 1,
            queue_operations: 3,
            r2_class_a: 1,
            r2_class_b: 1,
            do_requests: 1,
        };
        assert_eq!(usage.billed, billed);
    }

    #[test]
    fn limits_are_enforced_only_where_the_variable_says_enforce() {
        for (setting, enforced) in [
            (Some("enforce"), true),
            (Some(" enforce "), true),
            (Some("log"), false),
            (None, false),
        ] {
            let stack = Stack::new();
            match setting {
                Some(value) => stack.set_var(PLATFORM_LIMITS, value),
                None => stack.remove_var(PLATFORM_LIMITS),
            }
            let env = Env::new(stack, "test");
            let refused = env
                .charge(Resource::Subrequest, domain::platform::SUBREQUESTS + 1)
                .is_err();
            assert_eq!(refused, enforced, "{setting:?}");
        }
    }
}
