//! Db block maintenance tests: head cut, compaction, retention, corrupt blocks,
//! restart, backfill output and analyze. Synthetic timestamps, no sleeps.

use koban_model::{Labels, MatchType, Matcher, STALE_NAN_BITS};
use koban_storage::{Appendable, Queryable};
use koban_tsdb::block::{Block, BlockWriter};
use koban_tsdb::{Db, DbOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[path = "support/dump.rs"]
mod support;
use support::{dump, dump_querier, Dump};

const H: i64 = 3600 * 1000;
const STEP: i64 = 60_000;

fn opts() -> DbOptions {
    DbOptions {
        wal_fsync_interval: None,
        ..Default::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
}

fn value(i: usize, t: i64) -> f64 {
    match (i as i64 + t / STEP) % 7 {
        0 => f64::from_bits(STALE_NAN_BITS),
        1 => f64::from_bits(0x7ff8_0000_0000_0000 | (t as u64 & 0xffff)),
        _ => (t as f64) * 0.1 + i as f64,
    }
}

/// Timestamps of one sample per minute in `[start, end)`.
fn times(start: i64, end: i64) -> impl Iterator<Item = i64> + Clone {
    (start..end).step_by(STEP as usize)
}

fn append(db: &Db, n: usize, start: i64, end: i64) {
    let mut refs = vec![0u64; n];
    for t in times(start, end) {
        let mut app = db.appender();
        for (i, r) in refs.iter_mut().enumerate() {
            *r = app.append(*r, &series(i), t, value(i, t)).unwrap();
        }
        app.commit().unwrap();
    }
}

/// Writes a level-1 block of `n` series with samples in `[start, end)`.
fn write_block(dir: &Path, n: usize, start: i64, end: i64) -> Block {
    let mut w = BlockWriter::new(dir).unwrap();
    for i in 0..n {
        let s: Vec<(i64, f64)> = times(start, end).map(|t| (t, value(i, t))).collect();
        w.add_series(series(i), &s).unwrap();
    }
    Block::open(&w.finish().unwrap().unwrap()).unwrap()
}

fn expected(n: usize, start: i64, end: i64) -> Dump {
    let mut v: Dump = (0..n)
        .map(|i| {
            (
                series(i).to_string(),
                times(start, end)
                    .map(|t| (t, value(i, t).to_bits()))
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
}

fn open(dir: &Path, o: DbOptions) -> (Arc<Db>, Arc<Db>) {
    let db = Arc::new(Db::open(dir, o).unwrap());
    let store = db.clone();
    (db, store)
}

#[test]
fn head_is_cut_into_blocks_and_restart_serves_blocks_and_wal() {
    let d = tempfile::tempdir().unwrap();
    let n = 20;
    {
        let (db, store) = open(d.path(), opts());
        append(&db, n, 0, 5 * H);
        let r = store.maintain().unwrap();
        assert_eq!(r.cut.len(), 1, "{r:?}");
        let st = store.stats().blocks;
        assert_eq!((st.blocks, st.head_cuts), (1, 1));
        assert!(st.bytes > 0);
        let m = &store.block_metas()[0];
        assert_eq!((m.min_time, m.max_time), (0, 2 * H - STEP + 1));
        assert_eq!(m.stats.num_series, n as u64);
        assert!(
            db.head().min_time() >= 2 * H,
            "head min {}",
            db.head().min_time()
        );
        assert_eq!(dump(&db), expected(n, 0, 5 * H));
        // A second pass has nothing to do.
        assert_eq!(store.maintain().unwrap(), Default::default());
        // More data: the next window is cut.
        append(&db, n, 5 * H, 8 * H);
        assert_eq!(store.maintain().unwrap().cut.len(), 2);
        assert_eq!(store.stats().blocks.blocks, 3);
        assert_eq!(dump(&db), expected(n, 0, 8 * H));
    }
    // Restart: blocks + WAL (checkpoint + segments) give back everything.
    let (db, store) = open(d.path(), opts());
    assert_eq!(store.stats().blocks.blocks, 3);
    assert!(db.head().min_time() >= 4 * H);
    assert_eq!(dump(&db), expected(n, 0, 8 * H));
    // And the data goes on.
    append(&db, n, 8 * H, 9 * H);
    assert_eq!(dump(&db), expected(n, 0, 9 * H));
}

#[test]
fn three_2h_blocks_compact_into_one_6h_block_while_a_querier_reads() {
    let d = tempfile::tempdir().unwrap();
    let n = 5;
    for w in 0..4 {
        write_block(d.path(), n, w * 2 * H, (w + 1) * 2 * H);
    }
    let (db, store) = open(d.path(), opts());
    assert_eq!(store.stats().blocks.blocks, 4);
    let q = db.querier(0, 8 * H).unwrap();
    let r = store.maintain().unwrap();
    assert_eq!(r.compacted.len(), 1, "{r:?}");
    let metas = store.block_metas();
    assert_eq!(metas.len(), 2);
    assert_eq!(
        (metas[0].min_time, metas[0].max_time),
        (0, 6 * H - STEP + 1)
    );
    assert_eq!(metas[0].compaction.level, 2);
    assert_eq!(metas[0].compaction.parents.len(), 3);
    assert_eq!(store.stats().blocks.compactions, 1);
    // The sources are gone from disk; the old querier still reads them.
    let dirs = std::fs::read_dir(d.path())
        .unwrap()
        .filter(|e| koban_tsdb::db::is_block_id(&e.as_ref().unwrap().file_name().to_string_lossy()))
        .count();
    assert_eq!(dirs, 2);
    assert_eq!(dump_querier(&*q), expected(n, 0, 8 * H));
    drop(q);
    assert_eq!(dump(&db), expected(n, 0, 8 * H));
    // Restart sees the compacted layout.
    drop(store);
    drop(db);
    let (db, store) = open(d.path(), opts());
    assert_eq!(store.stats().blocks.blocks, 2);
    assert_eq!(dump(&db), expected(n, 0, 8 * H));
}

#[test]
fn interrupted_compaction_leftover_parents_are_removed_on_open() {
    let d = tempfile::tempdir().unwrap();
    let bs: Vec<Block> = (0..3)
        .map(|w| write_block(d.path(), 2, w * 2 * H, (w + 1) * 2 * H))
        .collect();
    // Merged block written, parents not yet deleted (crash).
    koban_tsdb::compact::compact(&bs, d.path())
        .unwrap()
        .unwrap();
    drop(bs);
    let (db, store) = open(d.path(), opts());
    assert_eq!(store.stats().blocks.blocks, 1);
    assert_eq!(dump(&db), expected(2, 0, 6 * H));
}

#[test]
fn retention_by_time() {
    let d = tempfile::tempdir().unwrap();
    for w in 0..3 {
        write_block(d.path(), 3, w * 2 * H, (w + 1) * 2 * H);
    }
    // 3h retention: ranges capped at 18min, so no leveled compaction.
    let (db, store) = open(
        d.path(),
        DbOptions {
            retention: Some(Duration::from_secs(3 * 3600)),
            ..opts()
        },
    );
    let r = store.maintain().unwrap();
    assert_eq!(r.deleted.len(), 1, "{r:?}");
    assert!(r.compacted.is_empty());
    let st = store.stats().blocks;
    assert_eq!((st.blocks, st.retention_deletions_time), (2, 1));
    assert_eq!(st.min_time, Some(2 * H));
    assert_eq!(dump(&db), expected(3, 2 * H, 6 * H));
}

fn du(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        du(&e.path())
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn retention_by_size_deletes_oldest_first() {
    let d = tempfile::tempdir().unwrap();
    let bs: Vec<Block> = (0..3)
        .map(|w| write_block(d.path(), 3, w * 2 * H, (w + 1) * 2 * H))
        .collect();
    let sizes: Vec<u64> = bs.iter().map(Block::size).collect();
    drop(bs);
    // Keep the two newest blocks (plus the WAL, which counts too).
    let keep = sizes[1] + sizes[2];
    let wal = {
        let (db, _s) = open(d.path(), opts());
        drop(_s);
        drop(db);
        du(&d.path().join("wal"))
    };
    let o = DbOptions {
        retention: Some(Duration::from_secs(3600 * 24 * 365)),
        retention_size: Some(keep + wal + 512),
        ..opts()
    };
    let (db, store) = open(d.path(), o);
    let r = store.maintain().unwrap();
    assert_eq!(r.deleted.len(), 1, "{r:?} wal={wal} sizes={sizes:?}");
    let st = store.stats().blocks;
    assert_eq!(
        (
            st.blocks,
            st.retention_deletions_size,
            st.retention_deletions_time
        ),
        (2, 1, 0)
    );
    assert_eq!(dump(&db), expected(3, 2 * H, 6 * H));
}

#[test]
fn corrupt_block_is_moved_aside_and_the_others_served() {
    let d = tempfile::tempdir().unwrap();
    let bs: Vec<Block> = (0..3)
        .map(|w| write_block(d.path(), 4, w * 2 * H, (w + 1) * 2 * H))
        .collect();
    let bad = bs[1].meta().ulid.clone();
    let idx = bs[1].dir().join("index");
    drop(bs);
    let len = std::fs::metadata(&idx).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&idx)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // A leftover temporary block is cleaned; unrelated directories are left alone.
    std::fs::create_dir(
        d.path()
            .join(format!("{}.tmp", koban_tsdb::block::new_block_id())),
    )
    .unwrap();
    std::fs::create_dir(d.path().join("notes")).unwrap();
    // A block directory without meta.json is corrupt too.
    let empty = koban_tsdb::block::new_block_id();
    std::fs::create_dir(d.path().join(&empty)).unwrap();
    std::fs::write(d.path().join(&empty).join("index"), b"junk").unwrap();
    let (db, store) = open(d.path(), opts());
    let st = store.stats().blocks;
    assert_eq!((st.blocks, st.corrupted_blocks), (2, 2));
    assert!(d
        .path()
        .join("corrupted")
        .join(&empty)
        .join("index")
        .is_file());
    assert!(d
        .path()
        .join("corrupted")
        .join(&bad)
        .join("index")
        .is_file());
    assert!(!d.path().join(&bad).exists());
    assert!(d.path().join("notes").is_dir());
    let mut want = expected(4, 0, 2 * H);
    for (w, x) in want.iter_mut().zip(expected(4, 4 * H, 6 * H)) {
        w.1.extend(x.1);
    }
    assert_eq!(dump(&db), want);
    // Maintenance works around the hole.
    store.maintain().unwrap();
}

#[test]
fn backfilled_blocks_are_served() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.om");
    let mut text = String::from("# TYPE foo gauge\n");
    for k in 0..100 {
        text.push_str(&format!("foo{{a=\"1\"}} {k} {}\n", 1_700_000_000 + k * 60));
    }
    text.push_str("# EOF\n");
    std::fs::write(&input, text).unwrap();
    let data = d.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let st =
        koban_tsdb::backfill::create_blocks_from_openmetrics(&input, &data, |_, _| {}).unwrap();
    assert_eq!(st.samples, 100);
    let (db, store) = open(&data, opts());
    assert!(store.stats().blocks.blocks >= 1);
    let got = dump(&db);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.len(), 100);
    assert_eq!(got[0].1[0], (1_700_000_000_000, 0f64.to_bits()));
    // Analyze reads the same directory.
    let rep = koban_tsdb::analyze::analyze(&data).unwrap().to_string();
    assert!(
        rep.contains("Highest cardinality metric names:\n1 foo\n"),
        "{rep}"
    );
}

#[test]
fn analyze_after_head_cut() {
    let d = tempfile::tempdir().unwrap();
    let (db, store) = open(d.path(), opts());
    append(&db, 7, 0, 4 * H);
    assert_eq!(store.maintain().unwrap().cut.len(), 1);
    let rep = koban_tsdb::analyze::analyze(d.path()).unwrap();
    assert_eq!(rep.series, 7);
    let s = rep.to_string();
    assert!(s.contains("Block ID: "), "{s}");
    assert!(
        s.contains("Highest cardinality labels:\n7 i\n1 __name__\n"),
        "{s}"
    );
    assert!(
        s.contains("Highest cardinality metric names:\n7 m\n"),
        "{s}"
    );
}

#[test]
fn background_thread_stops_on_cancel() {
    let d = tempfile::tempdir().unwrap();
    let (db, store) = open(d.path(), opts());
    append(&db, 3, 0, 4 * H);
    let cancel = tokio_util::sync::CancellationToken::new();
    store.start_maintenance(cancel.clone()).unwrap();
    cancel.cancel();
    // The first pass runs unless cancel came first; either way the data is intact.
    assert!(store.stats().blocks.maintain_runs <= 1);
    assert_eq!(dump(&db), expected(3, 0, 4 * H));
}

#[test]
fn delete_series_clean_tombstones_and_snapshot() {
    let d = tempfile::tempdir().unwrap();
    for w in 0..2 {
        write_block(d.path(), 3, w * 2 * H, (w + 1) * 2 * H);
    }
    let (db, store) = open(d.path(), opts());
    append(&db, 3, 4 * H, 5 * H);
    let sel = vec![vec![Matcher::new(MatchType::Equal, "i", "1").unwrap()]];
    // Delete series i=1 in [1h, 3h) from the blocks.
    let rep = store.delete_series(&sel, H, 3 * H - 1).unwrap();
    assert_eq!((rep.head_series, rep.block_series), (0, 2));
    let mut want = expected(3, 0, 5 * H);
    want[1].1.retain(|s| s.0 < H || s.0 >= 3 * H);
    assert_eq!(dump(&db), want);
    let before: Vec<String> = store.block_metas().into_iter().map(|m| m.ulid).collect();
    assert_eq!(store.clean_tombstones().unwrap().len(), 2);
    let after: Vec<String> = store.block_metas().into_iter().map(|m| m.ulid).collect();
    assert_eq!(after.len(), 2);
    assert!(before
        .iter()
        .all(|b| !after.contains(b) && !d.path().join(b).exists()));
    assert_eq!(dump(&db), want);
    assert!(store.clean_tombstones().unwrap().is_empty());
    // A snapshot with the head is a complete data directory.
    let snap = d.path().join("snapshots").join("s1");
    let ids = store.snapshot(&snap, true).unwrap();
    assert_eq!(ids.len(), 3);
    drop(store);
    drop(db);
    let (db2, store2) = open(&snap, opts());
    assert_eq!(store2.stats().blocks.blocks, 3);
    assert_eq!(dump(&db2), want);
    // The snapshots directory is not mistaken for a block.
    drop(store2);
    drop(db2);
    let (_db, store) = open(d.path(), opts());
    assert_eq!(
        (
            store.stats().blocks.blocks,
            store.stats().blocks.corrupted_blocks
        ),
        (2, 0)
    );
}

#[test]
fn maintenance_concurrent_with_appends_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (db, store) = open(d.path(), opts());
    let n = 10;
    let end = 20 * H;
    let writer = {
        let db = db.clone();
        std::thread::spawn(move || append(&db, n, 0, end))
    };
    let mut cuts = 0;
    while !writer.is_finished() {
        cuts += store.maintain().unwrap().cut.len();
    }
    writer.join().unwrap();
    cuts += store.maintain().unwrap().cut.len();
    assert!(cuts >= 8, "cuts {cuts}");
    assert!(store.stats().blocks.compactions >= 1);
    assert_eq!(dump(&db), expected(n, 0, end));
    drop(store);
    drop(db);
    let (db, _store) = open(d.path(), opts());
    assert_eq!(dump(&db), expected(n, 0, end));
}

#[test]
fn head_truncation_waits_for_queriers_opened_before_the_cut() {
    let d = tempfile::tempdir().unwrap();
    let (db, store) = open(d.path(), opts());
    let n = 4;
    append(&db, n, 0, 4 * H);
    // Opened before any block exists: it reads the head only.
    let q = db.querier(0, 4 * H).unwrap();
    let m = {
        let store = store.clone();
        std::thread::spawn(move || store.maintain().unwrap())
    };
    while store.stats().blocks.head_cuts == 0 {
        std::thread::yield_now();
    }
    // The block is served, but the head is not truncated while q lives.
    assert!(db.head().min_time() < 2 * H);
    assert_eq!(dump_querier(&*q), expected(n, 0, 4 * H));
    drop(q);
    assert_eq!(m.join().unwrap().cut.len(), 1);
    assert!(db.head().min_time() >= 2 * H);
    assert_eq!(dump(&db), expected(n, 0, 4 * H));
}
