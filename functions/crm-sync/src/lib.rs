//! The consumer of `crm-edge-crm-sync`: each message names a contact of a connector with CRM work
//! to do; the worker takes the batch's contacts' leases and does each one's work in order
//! (`edge::crm::sync`), a connector's several contacts first handed to its CRM together.

use edge::Env;
use edge::crm::sync;
use edge::db::crm_sync_jobs::Contact;
use edge::platform::queue::Settle;

/// Our own failures (D1 unavailable) are retried by the queue after this long.
const OWN_FAULT_RETRY_SECONDS: u32 = 5;

pub async fn handle(env: Env, work: Vec<(Contact, u32)>) -> Vec<Settle> {
    let contacts: Vec<Contact> = work.into_iter().map(|(contact, _)| contact).collect();
    let results = match (env.db(), env.keyring()) {
        (Ok(db), Ok(keys)) => sync::drain_batch(&env, &db, &keys, &contacts).await,
        (Err(error), _) | (_, Err(error)) => contacts.iter().map(|_| Err(error.clone())).collect(),
    };
    contacts
        .iter()
        .zip(results)
        .map(|(contact, result)| match result {
            Ok(()) => Settle::Ack,
            Err(error) => {
                sync::log_own_failure(contact, &error);
                Settle::RetryIn(OWN_FAULT_RETRY_SECONDS)
            }
        })
        .collect()
}

edge::queue_consumer!(edge::db::crm_sync_jobs::Contact, batch handle);
