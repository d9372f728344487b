//! Koban's time-series database: head, WAL, chunks, index, blocks, compaction, retention.
//!
//! [`Db`] is the one entry point: it owns the head, the WAL and the blocks.

pub mod analyze;
pub mod backfill;
pub mod block;
pub mod chunkenc;
pub mod compact;
pub mod db;
pub mod encoding;
pub mod head;
pub mod index;
pub mod wal;

pub use db::{BlocksStats, Db, DbOptions, DbStats, DeleteReport, MaintainReport, TsdbError};
pub use head::{CardinalityStats, Head, HeadOptions, HeadStats};
