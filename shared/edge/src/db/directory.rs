//! The directory: which shard each business lives on (docs/scaling.md), kept on the first shard in
//! `business_shards`. A business without an entry lives on the first shard: every business of a
//! deployment that had one database. Each isolate keeps what it read for a minute
//! (`db::placements`, read by `Db` itself when a statement runs), so a business's
//! requests pay one directory read an isolate a minute (`DIRECTORY_FRESH_SECONDS`), and a business
//! moved to another shard (`crate::ops::shard_move`) is seen everywhere that long after its entry
//! changed: a move pauses the business that long before it copies, and waits that long after it
//! switches before it deletes the old copy.

use crate::db::Rows;
use crate::db::placements::Placement;
use crate::db::{self, Db, Param, Shard, number, optional_number, text};
use domain::error::ApiError;
use domain::ids::BusinessId;
use domain::shard_move::Entry;
use std::borrow::Cow;

/// How long an isolate trusts what it read, unless `DIRECTORY_FRESH_SECONDS` says otherwise.
pub const FRESH_MS: i64 = 60_000;

/// The business's whole entry, read now (a business without one lives on the first shard).
pub async fn entry(db: &Db, business: &BusinessId) -> Result<Entry, ApiError> {
    let row = db
        .directory()
        .unscoped(
            "SELECT business_id, shard, moving_to, move_started_ms, moved_from, switched_ms, revision \
             FROM business_shards WHERE business_id = ?1",
        )
        .bind(&[text(business.as_str())])?
        .first::<Row>(None)
        .await?;
    Ok(row.map_or_else(Entry::default, Row::entry))
}

/// An entry as its reads select it.
#[derive(serde::Deserialize)]
struct Row {
    business_id: BusinessId,
    shard: Shard,
    moving_to: Option<Shard>,
    move_started_ms: Option<i64>,
    moved_from: Option<Shard>,
    switched_ms: Option<i64>,
    revision: i64,
}

impl Row {
    fn entry(self) -> Entry {
        Entry {
            shard: self.shard,
            moving_to: self.moving_to,
            move_started_ms: self.move_started_ms,
            moved_from: self.moved_from,
            switched_ms: self.switched_ms,
            revision: self.revision,
        }
    }
}

/// Every entry a move is under way in or left behind it (paused, or a copy to delete): the
/// operator's moves in flight, a handful at most, read whole by each sweep.
pub async fn unsettled(db: &Db) -> Result<Vec<(BusinessId, Entry)>, ApiError> {
    let rows = db
        .directory()
        .unscoped(
            "SELECT business_id, shard, moving_to, move_started_ms, moved_from, switched_ms, revision \
             FROM business_shards WHERE moving_to IS NOT NULL OR moved_from IS NOT NULL",
        )
        .all()
        .await?
        .rows::<Row>()?;
    Ok(rows
        .into_iter()
        .map(|row| (row.business_id.clone(), row.entry()))
        .collect())
}

/// The businesses a sweep of one shard leaves alone, whose rows there are not their settled copy
/// (`Entry::settled_on`): a copy a move fills or copies from, which must not change under it, or
/// one left behind, whose work was handed over with the business. Bound as one JSON array, which
/// a sweep's statement reads as `business_id NOT IN (SELECT value FROM json_each(?N))`.
#[derive(Debug, Clone)]
pub struct Moving(Cow<'static, str>);

impl Moving {
    /// No business is left alone (a deployment with no move under way).
    pub const NONE: Moving = Moving(Cow::Borrowed("[]"));

    /// The businesses of `entries` whose rows on `shard` are not their settled copy.
    pub fn on(shard: Shard, entries: &[(BusinessId, Entry)]) -> Self {
        let ids: Vec<&str> = entries
            .iter()
            .filter(|(_, entry)| !entry.settled_on(shard))
            .map(|(business, _)| business.as_str())
            .collect();
        Moving(Cow::Owned(serde_json::Value::from(ids).to_string()))
    }

    pub fn param(&self) -> Param {
        text(&self.0)
    }
}

/// Writes the business's entry as `entry` says (a business without one gets one), if it is still
/// at the revision `entry` was made from (`entry.revision`, the revision read): 409 when another
/// step wrote it since (a move's switch landing after an abort, two restores' first pages), and
/// nothing is written. The entry as written (its next revision) comes back.
pub async fn record(db: &Db, business: &BusinessId, entry: &Entry) -> Result<Entry, ApiError> {
    let shard = |shard: Option<Shard>| optional_number(shard.map(i64::from));
    let values: [Param; 7] = [
        text(business.as_str()),
        number(i64::from(entry.shard)),
        shard(entry.moving_to),
        optional_number(entry.move_started_ms),
        shard(entry.moved_from),
        optional_number(entry.switched_ms),
        number(entry.revision),
    ];
    // An entry read as none (revision 0) is inserted, unless one was meanwhile; one read is
    // updated only at its revision.
    let sql = if entry.revision == 0 {
        "INSERT INTO business_shards (business_id, shard, moving_to, move_started_ms, moved_from, switched_ms, revision) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1) ON CONFLICT (business_id) DO UPDATE SET shard = excluded.shard, \
         moving_to = excluded.moving_to, move_started_ms = excluded.move_started_ms, moved_from = excluded.moved_from, \
         switched_ms = excluded.switched_ms, revision = 1 WHERE business_shards.revision = ?7"
    } else {
        "UPDATE business_shards SET shard = ?2, moving_to = ?3, move_started_ms = ?4, moved_from = ?5, \
         switched_ms = ?6, revision = ?7 + 1 WHERE business_id = ?1 AND revision = ?7"
    };
    let result = db.directory().unscoped(sql).bind(&values)?.run().await?;
    if crate::db::changes(&result) != 1 {
        return Err(ApiError::conflict(format!(
            "business {business}'s directory entry changed while this step ran (another move, abort or restore \
             step of it wrote it): nothing was written; run the command again"
        )));
    }
    db.remember(
        business,
        Placement {
            shard: entry.shard,
            paused: entry.moving_to.is_some(),
            restoring: entry.restoring(),
        },
    );
    Ok(Entry {
        revision: entry.revision + 1,
        ..*entry
    })
}

/// Forgets the business's copy on `from` once it is deleted, unless the entry has changed since
/// (another command settled it, or a new move began).
pub async fn forget_copy(db: &Db, business: &BusinessId, from: Shard) -> Result<(), ApiError> {
    db.directory()
        .unscoped(
            "UPDATE business_shards SET moved_from = NULL, switched_ms = NULL \
             WHERE business_id = ?1 AND moved_from = ?2 AND moving_to IS NULL",
        )
        .bind(&[text(business.as_str()), number(i64::from(from))])?
        .run()
        .await?;
    Ok(())
}

/// Forgets a business that no longer exists anywhere (a discarded restore's): its addresses'
/// claims and its entry, if the entry is still at the revision of `entry` (409 otherwise).
pub async fn forget_business(db: &Db, business: &BusinessId, entry: &Entry) -> Result<(), ApiError> {
    let directory = db.directory();
    let changed = db::write_together(
        &directory,
        vec![
            directory
                .unscoped("DELETE FROM business_shards WHERE business_id = ?1 AND revision = ?2")
                .bind(&[text(business.as_str()), number(entry.revision)])?,
            directory
                .unscoped(
                    "DELETE FROM channel_addresses WHERE business_id = ?1 \
                     AND NOT EXISTS (SELECT 1 FROM business_shards WHERE business_id = ?1)",
                )
                .bind(&[text(business.as_str())])?,
        ],
    )
    .await?;
    if changed.first() == Some(&0) {
        return Err(ApiError::conflict(format!(
            "business {business}'s directory entry changed while its restore was discarded; try again"
        )));
    }
    Ok(())
}

/// Records that a new business lives on `shard`, before any of its rows is written there.
pub async fn place(db: &Db, business: &BusinessId, shard: Shard) -> Result<(), ApiError> {
    db.directory()
        .unscoped("INSERT INTO business_shards (business_id, shard) VALUES (?1, ?2)")
        .bind(&[text(business.as_str()), number(i64::from(shard))])?
        .run()
        .await?;
    db.remember(
        business,
        Placement {
            shard,
            ..Placement::default()
        },
    );
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

/// Hands `from`'s claim of an address to `to` (a claim `from` does not hold stays as it is).
pub async fn hand_over_address(
    db: &Db,
    channel: &str,
    address: &str,
    from: &BusinessId,
    to: &BusinessId,
) -> Result<(), ApiError> {
    db.directory()
        .unscoped("UPDATE channel_addresses SET business_id = ?4 WHERE channel = ?1 AND address = ?2 AND business_id = ?3")
        .bind(&[text(channel), text(address), text(from.as_str()), text(to.as_str())])?
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

#[cfg(test)]
mod on_data {
    use super::*;
    use crate::db::Violation;
    use crate::testing::{Fixture, Must, random, violation};
    use domain::error::ErrorCode;

    #[test]
    fn a_business_without_an_entry_lives_on_the_first_shard_and_an_entry_reads_back_as_written() {
        let fixture = Fixture::new();
        fixture.run(async {
            let unplaced = BusinessId::generate(random());
            assert_eq!(entry(&fixture.db, &unplaced).await.must(), Entry::default());
            let acme = fixture.business_on("Acme", 1).await;
            assert_eq!(
                entry(&fixture.db, &acme.business_id).await.must(),
                Entry {
                    shard: 1,
                    ..Entry::default()
                }
            );
            let moving = Entry {
                shard: 1,
                moving_to: Some(0),
                move_started_ms: Some(fixture.now().millis()),
                moved_from: None,
                switched_ms: None,
                revision: 0,
            };
            let written = record(&fixture.db, &acme.business_id, &moving).await.must();
            assert_eq!(
                written,
                Entry {
                    revision: 1,
                    ..moving
                }
            );
            assert_eq!(entry(&fixture.db, &acme.business_id).await.must(), written);
            let rows = fixture.rows_on("DB", "business_shards", "business_id");
            assert_eq!(
                rows.len(),
                1,
                "one entry, changed in place, on the first shard: {rows:?}"
            );
            assert!(
                fixture
                    .rows_on("DB_1", "business_shards", "business_id")
                    .is_empty()
            );
            let placed_twice = place(&fixture.db, &acme.business_id, 0).await;
            assert_eq!(
                violation(placed_twice),
                Violation::Unique {
                    columns: vec!["business_shards.business_id".to_owned()]
                }
            );
        });
    }

    #[test]
    fn a_business_being_moved_reads_but_does_not_write_until_its_entry_switches() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 1).await;
            let moving = Entry {
                shard: 1,
                moving_to: Some(0),
                move_started_ms: Some(0),
                moved_from: None,
                switched_ms: None,
                revision: 0,
            };
            let moved = record(&fixture.db, &acme.business_id, &moving).await.must();
            let statement = fixture
                .db
                .scoped(&acme, "UPDATE businesses SET name = name WHERE id = ?1");
            let write = statement.run().await.err().map(ApiError::from);
            assert_eq!(
                write.map(|error| error.code()),
                Some(ErrorCode::ServiceUnavailable),
                "a write waits for the move"
            );
            let read = crate::db::businesses::find(&fixture.db, &acme.business_id)
                .await
                .must();
            assert!(read.is_some(), "reads go on");
            record(
                &fixture.db,
                &acme.business_id,
                &Entry {
                    shard: 1,
                    revision: moved.revision,
                    ..Entry::default()
                },
            )
            .await
            .must();
            assert!(
                fixture
                    .db
                    .scoped(&acme, "UPDATE businesses SET name = name WHERE id = ?1")
                    .run()
                    .await
                    .is_ok()
            );
        });
    }

    #[test]
    fn a_step_that_writes_an_entry_changed_since_it_read_it_is_refused_and_writes_nothing() {
        let fixture = Fixture::new();
        fixture.run(async {
            let acme = fixture.business_on("Acme", 0).await;
            // A move's last verify step reads the paused entry...
            let read = record(
                &fixture.db,
                &acme.business_id,
                &Entry {
                    moving_to: Some(1),
                    move_started_ms: Some(0),
                    ..entry(&fixture.db, &acme.business_id).await.must()
                },
            )
            .await
            .must();
            // ...an abort ends the pause meanwhile...
            let aborted = record(
                &fixture.db,
                &acme.business_id,
                &Entry {
                    moving_to: None,
                    move_started_ms: None,
                    moved_from: Some(1),
                    ..read
                },
            )
            .await
            .must();
            // ...and the switch the verify step made from what it read lands after it.
            let switched = Entry {
                shard: 1,
                moving_to: None,
                move_started_ms: None,
                moved_from: Some(0),
                switched_ms: Some(5),
                ..read
            };
            let refused = record(&fixture.db, &acme.business_id, &switched).await.err();
            assert_eq!(
                refused.map(|error| error.status()),
                Some(409),
                "the business stays where the abort left it"
            );
            assert_eq!(entry(&fixture.db, &acme.business_id).await.must(), aborted);
            // Two restores' first pages, each placing a business that had no entry.
            let new = BusinessId::generate(random());
            let none = entry(&fixture.db, &new).await.must();
            let holding = |shard| Entry {
                shard,
                moving_to: Some(shard),
                ..none
            };
            record(&fixture.db, &new, &holding(1)).await.must();
            let second = record(&fixture.db, &new, &holding(0)).await.err();
            assert_eq!(second.map(|error| error.status()), Some(409));
            assert_eq!(entry(&fixture.db, &new).await.must().shard, 1);
        });
    }

    #[test]
    fn an_address_is_held_by_the_first_business_that_claims_it_until_it_lets_go() {
        let fixture = Fixture::new();
        fixture.run(async {
            let (acme, globex) = (BusinessId::generate(random()), BusinessId::generate(random()));
            let claim = |business| claim_address(&fixture.db, "whatsapp", "1055501234", business);
            assert!(claim(&acme).await.must());
            assert!(!claim(&globex).await.must(), "held by Acme");
            assert!(claim(&acme).await.must(), "claimed again by its holder");
            assert!(
                claim_address(&fixture.db, "sms", "1055501234", &globex)
                    .await
                    .must(),
                "another channel's address"
            );
            release_address(&fixture.db, "whatsapp", "1055501234", &globex)
                .await
                .must();
            assert!(!claim(&globex).await.must(), "only the holder lets go");
            release_address(&fixture.db, "whatsapp", "1055501234", &acme)
                .await
                .must();
            assert!(claim(&globex).await.must());
        });
    }
}
