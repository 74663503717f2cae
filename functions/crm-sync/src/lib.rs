//! The consumer of `crm-edge-crm-sync`: each message names a contact of a connector with CRM work
//! to do; the worker that takes the contact's lease does its work in order (`edge::crm::sync`).

use edge::Env;
use edge::crm::sync;
use edge::db::crm_sync_jobs::Contact;
use edge::platform::queue::Settle;

/// Our own failures (D1 unavailable) are retried by the queue after this long.
const OWN_FAULT_RETRY_SECONDS: u32 = 5;

pub async fn handle(env: Env, contact: Contact, _delivery_count: u32) -> Settle {
    let result = async {
        let db = env.db()?;
        let keys = env.keyring()?;
        sync::drain(&env, &db, &keys, &contact).await
    }
    .await;
    match result {
        Ok(()) => Settle::Ack,
        Err(error) => {
            sync::log_own_failure(&contact, &error);
            Settle::RetryIn(OWN_FAULT_RETRY_SECONDS)
        }
    }
}

edge::queue_consumer!(edge::db::crm_sync_jobs::Contact, handle);
