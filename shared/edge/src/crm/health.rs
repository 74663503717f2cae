//! The health counts of calls to businesses' CRMs (`domain::crm::health`), a connector's or a CRM
//! link's fetches: each call is counted in the isolate by its source and minute, and what an
//! invocation counted is added to `crm_call_minutes` as it ends (`invocation::end`): one D1 round
//! trip per invocation that made calls, however many it made, and none on the calls' own way.

use crate::Env;
use crate::db::crm_call_minutes::{self, SourceMinute};
use crate::{console_error, platform::invocation, runtime};
use domain::crm::health::Minute;
use domain::error::ApiError;
use domain::tenant::Tenant;
use futures_util::future::LocalBoxFuture;
use std::cell::RefCell;

thread_local! {
    /// What this isolate's calls counted and has not stored, with whose each minute is: a few
    /// entries (sources times minutes of an invocation), so a list.
    static COUNTED: RefCell<Vec<(Tenant, SourceMinute)>> = const { RefCell::new(Vec::new()) };
}

/// Counts a call of `source` (a connector's id, or a CRM link's) to the tenant's CRM that took
/// `millis` and failed or not; it is stored when the invocation ends.
pub fn record(tenant: &Tenant, source: &str, millis: u64, failed: bool) {
    let minute_ms = Minute::start_of(runtime::now().millis());
    COUNTED.with(|counted| {
        let mut counted = counted.borrow_mut();
        let at = counted.iter().position(|(of, counted)| {
            counted.source == source && counted.minute_ms == minute_ms && of.business_id == tenant.business_id
        });
        let at = at.unwrap_or_else(|| {
            let minute = SourceMinute {
                source: source.to_owned(),
                minute_ms,
                counts: Minute::default(),
            };
            counted.push((tenant.clone(), minute));
            counted.len() - 1
        });
        counted[at].1.counts.record(millis, failed);
    });
    invocation::at_end(store);
}

fn store(env: &Env) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        let mut counted = COUNTED.with(|counted| std::mem::take(&mut *counted.borrow_mut()));
        let Ok(db) = env.db() else {
            return;
        };
        // One batch per business: a batch runs on its business's shard.
        while let Some((tenant, _)) = counted.first() {
            let tenant = tenant.clone();
            let mut minutes = Vec::new();
            counted.retain(|(of, minute)| {
                let its = of.business_id == tenant.business_id;
                if its {
                    minutes.push(minute.clone());
                }
                !its
            });
            let stored = match crm_call_minutes::add(&db, &tenant, &minutes) {
                Ok(statement) => db.batch(vec![statement]).await.map_err(ApiError::from),
                Err(error) => Err(error),
            };
            if let Err(error) = stored {
                console_error!(
                    "the health counts of {} minutes of calls were not stored: {error:?}",
                    minutes.len()
                );
            }
        }
    })
}
