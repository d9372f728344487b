//! Koban's time-series database: head, WAL, chunks, index, blocks, compaction, retention.

pub mod chunkenc;
pub mod block;
pub mod encoding;
pub mod index;
pub mod backfill;
pub mod compact;
pub mod db;
pub mod head;
pub mod wal;
pub mod blockstore;
pub mod analyze;

pub use db::{Db, DbOptions, TsdbError};
pub use head::{Head, HeadOptions, HeadStats};
pub use blockstore::{BlockStore, BlockStoreError, BlockStoreStats};
