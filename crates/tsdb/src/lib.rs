//! Koban's time-series database: head, WAL, chunks, index, blocks, compaction, retention.

pub mod chunkenc;
pub mod block;
pub mod encoding;
pub mod index;
pub mod backfill;
pub mod compact;
