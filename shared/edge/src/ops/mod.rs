//! The operator's work: the periodic sweep of lost work, due fetches and expired history
//! (`maintenance`), alert rules (`alerting`), backups and restores (`backup`), moving a business
//! between shards (`shard_move`) and erasing a customer (`erasure`).

pub mod alerting;
pub mod backup;
pub mod erasure;
pub mod maintenance;
pub mod shard_move;
