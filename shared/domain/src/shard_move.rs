//! Moving a business to another shard (docs/scaling.md, `crm-edge move-business`): what is
//! copied, in which order, and where a move stands. The operator's command drives it one bounded
//! step at a time (`POST /admin/businesses/{id}/move`); each step reads the business's directory
//! entry and the command's cursor and does the next part:
//!
//! 1. **pause**: the entry names the shard the business moves to; every isolate sees it within the
//!    directory's freshness, and from then on the business's writes are answered 503;
//! 2. **copy**: delete what an earlier copy that broke off left on the new shard, then copy every
//!    table's rows of the business, parents first, in bounded steps;
//! 3. **verify and switch**: each table's rows on the new shard are its rows on the old one, every
//!    stored column compared (the keys a move numbers afresh and the computed columns aside), page
//!    by page; the entry then names the new shard, and the pause ends there;
//! 4. **delete the old copy** once every isolate has seen the switch (until then an isolate that
//!    has not reads the old copy, which has not changed since the pause, and may not write it).
//!
//! Until the switch a move can be **aborted** ([`abort`]): the entry names the old shard again, no
//! longer paused, and records the new shard's partial copy as the one to delete (`moved_from`
//! without `switched_ms`: the business never switched), which the abort then deletes in steps. A
//! copy that is not the business's own (the old one after a switch, an aborted one) is left alone
//! by the sweeps, and deleted by them when the command that should have deleted it stopped
//! ([`abandoned`]).

use std::fmt;

/// A table that holds a business's rows, as a move copies it.
#[derive(Debug)]
pub struct MovedTable {
    pub name: &'static str,
    /// The column that names the business (`id` for `businesses` itself).
    pub business_column: &'static str,
    /// An integer key the database numbers itself: the new shard numbers the copied rows afresh
    /// (in their order), since another business may have the same numbers there.
    pub renumbered: Option<&'static str>,
    /// Columns SQLite computes from the others (`GENERATED ALWAYS`): read with a row, and never
    /// written, since the database refuses a value for them.
    pub computed: &'static [&'static str],
    /// Columns holding a sealed secret (`crate::sealed`): copied as they are, never opened; a
    /// backup refuses one still in clear text from before sealing.
    pub sealed: &'static [&'static str],
}

const fn table(name: &'static str) -> MovedTable {
    MovedTable {
        name,
        business_column: "business_id",
        renumbered: None,
        computed: &[],
        sealed: &[],
    }
}

const fn sealed(name: &'static str, columns: &'static [&'static str]) -> MovedTable {
    MovedTable {
        sealed: columns,
        ..table(name)
    }
}

const fn renumbered(name: &'static str, key: &'static str) -> MovedTable {
    MovedTable {
        renumbered: Some(key),
        ..table(name)
    }
}

/// Every table with a business's rows, each after the tables its foreign keys name: copied in
/// this order, deleted in the reverse. The directory's tables (`business_shards`,
/// `channel_addresses`) stay on the first shard and are not among them.
pub const MOVED_TABLES: [MovedTable; 39] = [
    MovedTable {
        business_column: "id",
        ..table("businesses")
    },
    table("alert_settings"),
    table("alerts"),
    table("api_keys"),
    table("api_key_usage"),
    table("audit_log"),
    table("bots"),
    table("bot_answers"),
    table("bot_conversations"),
    table("bot_turns"),
    table("business_usage"),
    sealed("channel_accounts", &["secrets"]),
    table("console_sessions"),
    table("customers"),
    table("customer_erasures"),
    table("customer_identities"),
    table("conversations"),
    table("messages"),
    table("attachments"),
    table("sso_tokens"),
    sealed("crm_connectors", &["secrets"]),
    table("crm_call_minutes"),
    table("crm_contacts"),
    table("crm_inbound_events"),
    table("crm_links"),
    table("crm_satisfaction"),
    renumbered("crm_sync_jobs", "seq"),
    table("early_statuses"),
    table("escalations"),
    sealed("idempotency_keys", &["body"]),
    sealed("knowledge_sources", &["secrets"]),
    MovedTable {
        computed: &["fts_source", "fts_subject"],
        ..renumbered("knowledge_chunks", "seq")
    },
    table("knowledge_links"),
    table("knowledge_run_seen"),
    table("oauth_states"),
    sealed("webhook_endpoints", &["secret", "previous_secret"]),
    table("webhook_events"),
    table("webhook_deliveries"),
    renumbered("webhook_attempts", "id"),
];

/// Rows one step copies or deletes at most (each row one statement of the step's batch).
pub const ROWS_PER_STEP: usize = 200;

/// A shard's number, as the directory records it.
pub type ShardNumber = u16;

/// What the directory says of a business, as a move reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    pub shard: ShardNumber,
    /// Paused for a move to this shard (the copy there is being filled).
    pub moving_to: Option<ShardNumber>,
    pub move_started_ms: Option<i64>,
    /// A shard holding a copy of the business that is not its own, to delete: the old copy after
    /// a switch, or an aborted move's partial copy.
    pub moved_from: Option<ShardNumber>,
    /// When the business switched to `shard`; none with `moved_from` when it never did (aborted).
    pub switched_ms: Option<i64>,
    /// How many times the entry was written (0: never): a step writes an entry made from the one
    /// it read, with its revision, and the write is refused when another step wrote since.
    pub revision: i64,
}

impl Entry {
    /// Whether a backup is being restored into the business's shard (`crate::backup`): written
    /// as paused for a move to its own shard, which no move ever is, so its writes are held and
    /// the sweeps leave it alone until the restore completes.
    pub fn restoring(&self) -> bool {
        self.moving_to == Some(self.shard)
    }

    /// Whether the business's rows on `shard` are its own, settled copy: the shard the entry
    /// names, with no move filling another. The sweeps act on a business only there: the copy a
    /// move fills, and the source it copies from, must not change under it (the sweeps are not
    /// paused by the pause), and a stale copy's work was handed over already.
    pub fn settled_on(&self, shard: ShardNumber) -> bool {
        self.moving_to.is_none() && self.shard == shard
    }
}

/// After this long past the switch, an old copy still there was left by a command that stopped:
/// the sweep deletes it. An aborted move's partial copy is the sweep's at once.
pub const ABANDONED_AFTER_MS: i64 = 60 * 60 * 1000;

/// The shard whose copy of the business nobody will delete but the sweep, at `now_ms`.
pub fn abandoned(entry: &Entry, now_ms: i64) -> Option<ShardNumber> {
    let from = entry.moved_from?;
    match entry.switched_ms {
        Some(switched) if now_ms - switched < ABANDONED_AFTER_MS => None,
        _ => Some(from),
    }
}

/// What the next step of a move to `to` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Record the pause in the directory.
    Start,
    /// Paused; not every isolate may know yet: wait this long.
    Pausing { wait_ms: i64 },
    /// Every isolate knows of the pause: copy (or verify and switch).
    Copying,
    /// Switched; not every isolate may know yet: wait this long before deleting the old copy.
    Switched { wait_ms: i64 },
    /// Delete the old copy on this shard.
    Cleaning { from: ShardNumber },
    /// The business lives on `to`, and nothing of it is left elsewhere.
    Done,
    /// Another move stands in the way; the message says which.
    Conflict(String),
}

/// A little past the directory's freshness, for clocks that differ between isolates.
const MARGIN_MS: i64 = 2_000;

/// The next step of a move of a business whose entry is `entry` to shard `to`, at `now_ms`, when
/// isolates trust what they read of the directory for `fresh_ms`.
pub fn phase(entry: &Entry, to: ShardNumber, now_ms: i64, fresh_ms: i64) -> Phase {
    let settled = |since: Option<i64>| since.unwrap_or(0) + fresh_ms + MARGIN_MS - now_ms;
    match (entry.moving_to, entry.moved_from) {
        _ if entry.restoring() => Phase::Conflict(RESTORING.to_owned()),
        (Some(moving_to), _) if moving_to != to => Phase::Conflict(format!(
            "the business is being moved to shard {moving_to}: finish that move first, or abort it"
        )),
        (None, Some(from)) if entry.switched_ms.is_none() => Phase::Conflict(format!(
            "a move to shard {from} was aborted and its partial copy there is not deleted yet: \
             finish the abort first"
        )),
        (Some(_), _) => match settled(entry.move_started_ms) {
            wait_ms if wait_ms > 0 => Phase::Pausing { wait_ms },
            _ => Phase::Copying,
        },
        (None, Some(from)) if entry.shard == to => match settled(entry.switched_ms) {
            wait_ms if wait_ms > 0 => Phase::Switched { wait_ms },
            _ => Phase::Cleaning { from },
        },
        (None, Some(from)) => Phase::Conflict(format!(
            "the business's old copy on shard {from} is not deleted yet: finish its move to shard {} first",
            entry.shard
        )),
        (None, None) if entry.shard == to => Phase::Done,
        (None, None) => Phase::Start,
    }
}

/// Why a business being restored is not moved.
const RESTORING: &str =
    "a backup of the business is being restored: finish the restore (crm-edge admin restore) first";

/// What an abort's next step is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// Paused for a move to `to`: end the pause (the business stays where it is), then delete
    /// what was copied to `to`.
    EndPause { to: ShardNumber },
    /// The pause is over: delete the partial copy on `from`.
    Deleting { from: ShardNumber },
    /// Nothing to abort; the message says why.
    Conflict(String),
}

/// The next step of aborting the move of a business whose entry is `entry`.
pub fn abort(entry: &Entry) -> Abort {
    match (entry.moving_to, entry.moved_from, entry.switched_ms) {
        _ if entry.restoring() => Abort::Conflict(RESTORING.to_owned()),
        (Some(to), _, _) => Abort::EndPause { to },
        (None, Some(from), None) => Abort::Deleting { from },
        (None, Some(from), Some(_)) => Abort::Conflict(format!(
            "the move finished: the business lives on shard {} since its switch; a move is aborted \
             only before it switches. Its old copy on shard {from} is still being deleted: finish \
             that with the move to shard {}",
            entry.shard, entry.shard
        )),
        (None, None, _) => Abort::Conflict(format!(
            "no move of the business is under way: it lives on shard {}",
            entry.shard
        )),
    }
}

/// Where a copy or a deletion stands, as the operator's command hands it back step after step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Deleting the business's rows of `MOVED_TABLES[table]` and of those before it, the last
    /// first (a shard's leftovers before a copy, the old copy after a switch).
    Delete { table: usize },
    /// Copying `MOVED_TABLES[table]`'s rows past `after` (a rowid), then the tables after it.
    Copy { table: usize, after: i64 },
    /// Everything is copied: comparing `MOVED_TABLES[table]`'s rows past rowid `source_after` on
    /// the old shard with its rows past `target_after` on the new one, then the tables after it;
    /// then the switch.
    Verify {
        table: usize,
        source_after: i64,
        target_after: i64,
    },
}

impl Cursor {
    /// Where deleting a business's rows from a shard starts: the last table.
    pub const DELETE_ALL: Cursor = Cursor::Delete {
        table: MOVED_TABLES.len() - 1,
    };

    /// Where copying starts.
    pub const COPY_ALL: Cursor = Cursor::Copy { table: 0, after: 0 };

    /// Where verifying starts.
    pub const VERIFY_ALL: Cursor = Cursor::Verify {
        table: 0,
        source_after: 0,
        target_after: 0,
    };

    /// Reads a cursor as [`Cursor`]'s `Display` writes it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("cursor {text:?} is not one a move step answered");
        let table = |index: &str| {
            index
                .parse::<usize>()
                .ok()
                .filter(|index| *index < MOVED_TABLES.len())
                .ok_or_else(bad)
        };
        let rowid = |text: &str| text.parse::<i64>().map_err(|_| bad());
        let mut parts = text.split(':');
        let cursor = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            // What a step answered before verification went page by page.
            (Some("verify"), None, None, None) => Cursor::VERIFY_ALL,
            (Some("verify"), Some(index), Some(source), Some(target)) => Cursor::Verify {
                table: table(index)?,
                source_after: rowid(source)?,
                target_after: rowid(target)?,
            },
            (Some("delete"), Some(index), None, None) => Cursor::Delete { table: table(index)? },
            (Some("copy"), Some(index), Some(after), None) => Cursor::Copy {
                table: table(index)?,
                after: rowid(after)?,
            },
            _ => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(cursor)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cursor::Delete { table } => write!(f, "delete:{table}"),
            Cursor::Copy { table, after } => write!(f, "copy:{table}:{after}"),
            Cursor::Verify {
                table,
                source_after,
                target_after,
            } => write!(f, "verify:{table}:{source_after}:{target_after}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: i64 = 60_000;

    fn entry(shard: ShardNumber) -> Entry {
        Entry {
            shard,
            ..Entry::default()
        }
    }

    #[test]
    fn a_move_pauses_waits_for_every_isolate_copies_switches_waits_again_and_cleans() {
        let at_rest = entry(0);
        assert_eq!(phase(&at_rest, 1, 1_000, FRESH), Phase::Start);
        assert_eq!(phase(&at_rest, 0, 1_000, FRESH), Phase::Done, "already there");
        let paused = Entry {
            moving_to: Some(1),
            move_started_ms: Some(1_000),
            ..at_rest
        };
        assert_eq!(
            phase(&paused, 1, 1_000, FRESH),
            Phase::Pausing {
                wait_ms: FRESH + MARGIN_MS
            }
        );
        assert_eq!(
            phase(&paused, 1, 1_000 + FRESH + MARGIN_MS, FRESH),
            Phase::Copying
        );
        let switched = Entry {
            shard: 1,
            moved_from: Some(0),
            switched_ms: Some(100_000),
            ..Entry::default()
        };
        assert_eq!(
            phase(&switched, 1, 100_000 + FRESH, FRESH),
            Phase::Switched { wait_ms: MARGIN_MS }
        );
        assert_eq!(phase(&switched, 1, 200_000, FRESH), Phase::Cleaning { from: 0 });
        assert_eq!(phase(&entry(1), 1, 200_000, FRESH), Phase::Done);
    }

    #[test]
    fn a_move_does_not_start_over_another() {
        let paused = Entry {
            moving_to: Some(1),
            move_started_ms: Some(0),
            ..entry(0)
        };
        assert!(matches!(phase(&paused, 2, 0, FRESH), Phase::Conflict(_)));
        let cleaning = Entry {
            shard: 1,
            moved_from: Some(0),
            switched_ms: Some(0),
            ..Entry::default()
        };
        assert!(matches!(phase(&cleaning, 0, 0, FRESH), Phase::Conflict(_)));
    }

    #[test]
    fn a_move_is_aborted_only_before_its_switch_and_its_partial_copy_is_then_deleted() {
        let paused = Entry {
            moving_to: Some(1),
            move_started_ms: Some(0),
            ..entry(0)
        };
        assert_eq!(abort(&paused), Abort::EndPause { to: 1 });
        let aborted = Entry {
            moved_from: Some(1),
            ..entry(0)
        };
        assert_eq!(abort(&aborted), Abort::Deleting { from: 1 });
        assert!(
            matches!(phase(&aborted, 1, 0, FRESH), Phase::Conflict(why) if why.contains("aborted")),
            "a new move waits for the abort to end"
        );
        let switched = Entry {
            shard: 1,
            moved_from: Some(0),
            switched_ms: Some(0),
            ..Entry::default()
        };
        assert!(
            matches!(abort(&switched), Abort::Conflict(why) if why.contains("the move finished")),
            "after the switch"
        );
        assert!(matches!(abort(&entry(0)), Abort::Conflict(why) if why.contains("no move")));
    }

    #[test]
    fn the_sweeps_act_on_a_business_only_on_its_settled_shard_and_take_over_copies_left_behind() {
        let cases = [
            ("at rest", entry(0), [true, false], None),
            (
                "paused for a move to 1",
                Entry {
                    moving_to: Some(1),
                    move_started_ms: Some(0),
                    ..entry(0)
                },
                [false, false],
                None,
            ),
            (
                "switched a minute ago",
                Entry {
                    shard: 1,
                    moved_from: Some(0),
                    switched_ms: Some(ABANDONED_AFTER_MS),
                    ..Entry::default()
                },
                [false, true],
                None,
            ),
            (
                "switched long ago, its old copy never deleted",
                Entry {
                    shard: 1,
                    moved_from: Some(0),
                    switched_ms: Some(0),
                    ..Entry::default()
                },
                [false, true],
                Some(0),
            ),
            (
                "aborted",
                Entry {
                    moved_from: Some(1),
                    ..entry(0)
                },
                [true, false],
                Some(1),
            ),
        ];
        let now = ABANDONED_AFTER_MS + 60_000;
        for (what, entry, settled, left) in cases {
            assert_eq!(
                [entry.settled_on(0), entry.settled_on(1)],
                settled,
                "{what}: settled on shards 0 and 1"
            );
            assert_eq!(abandoned(&entry, now), left, "{what}: the copy the sweep deletes");
        }
    }

    #[test]
    fn a_cursor_reads_back_as_written_and_nothing_else_is_one() {
        for cursor in [
            Cursor::DELETE_ALL,
            Cursor::COPY_ALL,
            Cursor::Copy {
                table: 7,
                after: 12_345,
            },
            Cursor::VERIFY_ALL,
            Cursor::Verify {
                table: 27,
                source_after: 9,
                target_after: 3,
            },
        ] {
            assert_eq!(Cursor::parse(&cursor.to_string()), Ok(cursor));
        }
        assert_eq!(
            Cursor::parse("verify"),
            Ok(Cursor::VERIFY_ALL),
            "a cursor answered before verification went page by page"
        );
        let past = MOVED_TABLES.len();
        for text in [
            "",
            "copy:1",
            "copy:x:1",
            &format!("copy:{past}:0"),
            "delete:-1",
            "verify:1",
            "verify:1:2",
            &format!("verify:{past}:0:0"),
            "verify:1:x:0",
            "verify:1:2:3:4",
            "copy:1:2:3",
        ] {
            assert!(Cursor::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_business_being_restored_is_neither_moved_nor_aborted() {
        let restoring = Entry {
            shard: 1,
            moving_to: Some(1),
            move_started_ms: Some(0),
            ..Entry::default()
        };
        assert!(restoring.restoring());
        for to in [0, 1] {
            assert!(
                matches!(phase(&restoring, to, 1_000_000, FRESH), Phase::Conflict(why) if why.contains("restored")),
                "a move to shard {to}"
            );
        }
        assert!(matches!(abort(&restoring), Abort::Conflict(why) if why.contains("restored")));
        assert!(!restoring.settled_on(1), "the sweeps leave it alone");
        let moving = Entry {
            moving_to: Some(1),
            ..entry(0)
        };
        assert!(!moving.restoring(), "a move to another shard");
    }

    #[test]
    fn the_businesses_row_is_copied_first_and_deleted_last() {
        assert_eq!(MOVED_TABLES[0].name, "businesses");
        assert_eq!(MOVED_TABLES[0].business_column, "id");
        assert!(
            MOVED_TABLES[1..]
                .iter()
                .all(|table| table.business_column == "business_id")
        );
    }
}
