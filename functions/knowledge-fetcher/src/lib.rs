//! The consumer of `crm-edge-knowledge`: each message names a CRM link source to fetch (on add, on
//! a refresh or a push, or by the schedule) or the next slice of a run reading one; the fetcher
//! reads its data a slice at a time and makes it searchable (`edge::knowledge::index`).

use edge::Env;
use edge::console_error;
use edge::db::knowledge_sources::Due;
use edge::knowledge::backend::Rag;
use edge::knowledge::index::Fetcher;
use edge::platform::http;
use edge::platform::queue::Settle;

/// Our own failures (D1 unavailable, a misconfigured backend) are retried by the queue after this
/// long; the sweep finds the source due again in any case.
const OWN_FAULT_RETRY_SECONDS: u32 = 30;

pub async fn handle(env: Env, due: Due, _delivery_count: u32) -> Settle {
    let result = async {
        let db = env.db()?;
        let keys = env.keyring()?;
        let rag = Rag::from_env(&env)?;
        let fetcher = Fetcher {
            env: &env,
            db: &db,
            keys: &keys,
            rag: &rag,
            allow_loopback: http::allows_loopback(&env),
        };
        fetcher.run(&due).await
    }
    .await;
    match result {
        Ok(settle) => settle,
        Err(error) => {
            console_error!(
                "fetching CRM link {} failed on our side: {}",
                due.source_id,
                error.detail().unwrap_or(&error.body.message)
            );
            Settle::RetryIn(OWN_FAULT_RETRY_SECONDS)
        }
    }
}

edge::queue_consumer!(edge::db::knowledge_sources::Due, handle);
