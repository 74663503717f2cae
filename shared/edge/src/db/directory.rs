//! The directory: which shard each business lives on (docs/scaling.md), kept on the first shard in
//! `business_shards`. A business without an entry lives on the first shard: every business of a
//! deployment that had one database. Each isolate keeps what it read for a minute, so a business's
//! requests pay one directory read an isolate a minute, and a business moved to another shard is
//! seen everywhere a minute after its entry changed (moving one pauses it that long first).

use crate::db::{Db, Shard, number, text};
use domain::error::ApiError;
use domain::ids::BusinessId;
use std::cell::RefCell;
use std::collections::HashMap;

/// How long an isolate trusts what it read.
const FRESH_MS: i64 = 60_000;
/// Businesses an isolate remembers at most: past it, the stale go first, then everything.
const MAX_KNOWN: usize = 10_000;

pub(crate) const SHARD_OF: &str = "SELECT shard FROM business_shards WHERE business_id = ?1";

thread_local! {
    /// The shard of each business this isolate looked up, and when (ms).
    static KNOWN: RefCell<HashMap<BusinessId, (Shard, i64)>> = RefCell::new(HashMap::new());
}

/// The shard the business lives on.
pub async fn shard_of(db: &Db, business: &BusinessId) -> worker::Result<Shard> {
    if db.shard_count() == 1 {
        return Ok(0);
    }
    let now = crate::runtime::now().millis();
    let known = KNOWN.with(|known| known.borrow().get(business).copied());
    if let Some((shard, read_at)) = known
        && now - read_at < FRESH_MS
    {
        return Ok(shard);
    }
    let shard = db.read_directory(business).await?.unwrap_or(0);
    KNOWN.with(|known| {
        let mut known = known.borrow_mut();
        if known.len() >= MAX_KNOWN {
            known.retain(|_, (_, read_at)| now - *read_at < FRESH_MS);
            if known.len() >= MAX_KNOWN {
                known.clear();
            }
        }
        known.insert(business.clone(), (shard, now));
    });
    Ok(shard)
}

/// Records that a new business lives on `shard`, before any of its rows is written there.
pub async fn place(db: &Db, business: &BusinessId, shard: Shard) -> Result<(), ApiError> {
    db.directory()
        .unscoped("INSERT INTO business_shards (business_id, shard) VALUES (?1, ?2)")
        .bind(&[text(business.as_str()), number(i64::from(shard))])?
        .run()
        .await?;
    KNOWN.with(|known| {
        known
            .borrow_mut()
            .insert(business.clone(), (shard, crate::runtime::now().millis()))
    });
    Ok(())
}

/// Claims a channel's address for the business: false when another business holds it (an
/// address is one business's, whatever the shards). Claimed again by its holder, it stays so.
pub async fn claim_address(
    db: &Db,
    channel: &str,
    address: &str,
    business: &BusinessId,
) -> Result<bool, ApiError> {
    #[derive(serde::Deserialize)]
    struct Row {
        business_id: String,
    }
    let holder = db
        .directory()
        .unscoped(
            "INSERT INTO channel_addresses (channel, address, business_id) VALUES (?1, ?2, ?3) \
             ON CONFLICT (channel, address) DO UPDATE SET business_id = business_id RETURNING business_id",
        )
        .bind(&[text(channel), text(address), text(business.as_str())])?
        .first::<Row>(None)
        .await?;
    Ok(holder.is_some_and(|row| row.business_id == business.as_str()))
}

/// Lets go of a claim whose account could not be written.
pub async fn release_address(
    db: &Db,
    channel: &str,
    address: &str,
    business: &BusinessId,
) -> Result<(), ApiError> {
    db.directory()
        .unscoped("DELETE FROM channel_addresses WHERE channel = ?1 AND address = ?2 AND business_id = ?3")
        .bind(&[text(channel), text(address), text(business.as_str())])?
        .run()
        .await?;
    Ok(())
}

/// The shard a new business is placed on: one of `open`, the same for the same id, spread evenly
/// over them by the id's last hex digits (ids are random).
pub fn choose(business: &BusinessId, open: &[Shard]) -> Shard {
    let tail = business.as_str().len().saturating_sub(8);
    let drawn = u32::from_str_radix(&business.as_str()[tail..], 16).unwrap_or(0);
    match open.len() {
        0 => 0,
        count => open[drawn as usize % count],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A business id whose last eight hex digits are `tail`.
    fn id(tail: u32) -> BusinessId {
        let mut random = [0x8c; 16];
        random[12..].copy_from_slice(&tail.to_be_bytes());
        BusinessId::generate(random)
    }

    #[test]
    fn new_businesses_spread_over_the_open_shards() {
        let mut placed = [0u32; 4];
        for n in 0..4000u32 {
            placed[usize::from(choose(&id(n), &[1, 2, 3]))] += 1;
        }
        assert_eq!(placed[0], 0, "a closed shard takes none");
        assert!(
            placed[1..].iter().all(|count| (1200..=1467).contains(count)),
            "{placed:?}"
        );
        assert_eq!(choose(&id(7), &[2]), 2);
        assert_eq!(choose(&id(7), &[]), 0);
    }
}
