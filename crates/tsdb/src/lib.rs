//! Koban's time-series database: head, WAL, chunks, index, blocks, compaction, retention.

pub mod chunkenc;
