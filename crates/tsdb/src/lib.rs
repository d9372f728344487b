//! Koban's time-series database: head, WAL, chunks, index, blocks, compaction, retention.

pub mod analyze;
pub mod backfill;
pub mod block;
pub mod blockstore;
pub mod chunkenc;
pub mod compact;
pub mod db;
pub mod encoding;
pub mod head;
pub mod index;
pub mod wal;

pub use blockstore::{BlockStore, BlockStoreError, BlockStoreStats};
pub use db::{Db, DbOptions, TsdbError};
pub use head::{Head, HeadOptions, HeadStats};
