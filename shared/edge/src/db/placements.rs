//! What this isolate knows of where businesses live: each business's [`Placement`] as it read it
//! from the directory (`db::directory`), and when. `Db` reads an entry when it has none fresh
//! enough and remembers it here; the directory's own writes remember what they wrote.

use crate::runtime;
use domain::ids::BusinessId;
use std::cell::RefCell;
use std::collections::HashMap;

/// A shard's number: its place in the `SHARDS` list (`functions.toml`), the first being 0.
pub type Shard = u16;

/// Businesses an isolate remembers at most: past it, the stale go first, then everything.
const MAX_KNOWN: usize = 10_000;

/// The directory's statement of where a business lives and whether its writes are paused: 0 not,
/// 1 for a move, 2 for a restore (a move to its own shard, `domain::shard_move::Entry::restoring`).
pub(crate) const SHARD_OF: &str = "SELECT shard, CASE WHEN moving_to IS NULL THEN 0 \
     WHEN moving_to = shard THEN 2 ELSE 1 END AS paused FROM business_shards WHERE business_id = ?1";

/// Where a business lives, and whether its writes are paused: it is being moved, or restored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    pub shard: Shard,
    pub paused: bool,
    pub restoring: bool,
}

/// Where each business the isolate looked up lives, and when it read it (ms).
#[derive(Default)]
struct Known {
    isolate: u64,
    placements: HashMap<BusinessId, (Placement, i64)>,
}

thread_local! {
    static KNOWN: RefCell<Known> = RefCell::new(Known::default());
}

/// What the isolate running now knows (a new isolate knows nothing).
fn with_known<T>(use_it: impl FnOnce(&mut HashMap<BusinessId, (Placement, i64)>) -> T) -> T {
    KNOWN.with(|known| {
        let mut known = known.borrow_mut();
        let isolate = runtime::isolate();
        if known.isolate != isolate {
            known.isolate = isolate;
            known.placements.clear();
        }
        use_it(&mut known.placements)
    })
}

/// Where the business lives, if it was read less than `fresh_ms` before `now`.
pub(crate) fn known(business: &BusinessId, now: i64, fresh_ms: i64) -> Option<Placement> {
    with_known(|known| {
        known
            .get(business)
            .filter(|(_, read_at)| now - read_at < fresh_ms)
            .map(|(placement, _)| *placement)
    })
}

/// Remembers where the business lives, as read at `now`.
pub(crate) fn remember(business: &BusinessId, placement: Placement, now: i64, fresh_ms: i64) {
    with_known(|known| {
        if known.len() >= MAX_KNOWN {
            known.retain(|_, (_, read_at)| now - *read_at < fresh_ms);
            if known.len() >= MAX_KNOWN {
                known.clear();
            }
        }
        known.insert(business.clone(), (placement, now));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placement_is_trusted_only_while_it_is_fresh_and_only_by_its_isolate() {
        let stack = crate::runtime::native::Stack::new();
        let business = BusinessId::generate([7; 16]);
        let placement = Placement {
            shard: 1,
            paused: true,
            restoring: false,
        };
        remember(&business, placement, 1_000, 5_000);
        assert_eq!(known(&business, 5_999, 5_000), Some(placement));
        assert_eq!(known(&business, 6_000, 5_000), None);
        stack.restart_isolate();
        assert_eq!(known(&business, 1_000, 5_000), None);
    }
}
