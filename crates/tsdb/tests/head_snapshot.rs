//! Head snapshots written on close and loaded on open: every sample comes
//! back bit-exact whether the snapshot is used, rejected (corrupt, stale,
//! WAL checkpointed past it) or followed by a crash.

use koban_model::{Labels, STALE_NAN_BITS};
use koban_storage::Appendable;
use koban_tsdb::head::head_snapshot::{Snapshot, SNAPSHOT_FILE};
use koban_tsdb::{Db, DbOptions};
use std::path::Path;

#[path = "support/dump.rs"]
mod support;
use support::{dump, Dump};

fn opts() -> DbOptions {
    DbOptions {
        wal_fsync_interval: None,
        ..Default::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("m{}", i % 4)),
        ("i", i.to_string()),
        ("job", "snap".to_string()),
    ])
}

fn value(i: usize, t: i64) -> f64 {
    match (i as i64 + t) % 7 {
        0 => f64::from_bits(STALE_NAN_BITS),
        1 => f64::from_bits(0x7ff8_0000_0000_0000 | (t as u64 & 0xffff)),
        2 => -0.0,
        _ => (t as f64) * 0.1 + i as f64,
    }
}

/// One commit per second in `ts` with a sample for each of `n` series.
fn write(db: &Db, n: usize, ts: std::ops::Range<i64>) {
    let mut refs = vec![0u64; n];
    for t in ts {
        let mut app = db.appender();
        for (i, r) in refs.iter_mut().enumerate() {
            *r = app.append(*r, &series(i), t * 1000, value(i, t)).unwrap();
        }
        app.commit().unwrap();
    }
}

fn expected(n: usize, ts: std::ops::Range<i64>) -> Dump {
    let mut v: Vec<_> = (0..n)
        .map(|i| {
            (
                series(i).to_string(),
                ts.clone()
                    .map(|t| (t * 1000, value(i, t).to_bits()))
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
}

#[track_caller]
fn check(got: Dump, want: Dump) {
    if got != want {
        let summary = |v: &[(String, Vec<(i64, u64)>)]| -> Vec<String> {
            v.iter()
                .map(|(l, s)| format!("{l}: {} samples {:?}..{:?}", s.len(), s.first(), s.last()))
                .collect()
        };
        panic!(
            "mismatch\n got: {:#?}\nwant: {:#?}",
            summary(&got),
            summary(&want)
        );
    }
}

fn snapshot_used(db: &Db) -> bool {
    db.open_report().snapshot.is_some()
}

fn wal_segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn clean_close_writes_a_snapshot_the_next_open_loads() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        assert!(!snapshot_used(&db));
        // 130 commits: closed chunks (120 samples) and open ones.
        write(&db, 30, 0..130);
        db.close().unwrap();
        assert!(dir.path().join(SNAPSHOT_FILE).is_file());
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(snapshot_used(&db), "{:?}", db.open_report());
    let r = db.open_report();
    assert_eq!(r.replay.samples, 0, "nothing to replay after the snapshot");
    assert_eq!(r.snapshot.as_ref().unwrap().0.samples, 30 * 130);
    check(dump(&db), expected(30, 0..130));
    let st = db.stats().head;
    assert_eq!((st.num_series, st.samples_appended), (30, 30 * 130));
    assert_eq!((st.min_time, st.max_time), (0, 129_000));
    // Appends continue (no out-of-order, no duplicate series) and survive.
    write(&db, 30, 130..300);
    assert_eq!(db.stats().head.num_series, 30);
    assert_eq!(db.stats().head.out_of_order, 0);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(snapshot_used(&db));
    check(dump(&db), expected(30, 0..300));
}

#[test]
fn crash_after_a_snapshot_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 10, 0..50);
    }
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        assert!(snapshot_used(&db));
        write(&db, 10, 50..80);
        // New series after the snapshot, too.
        write(&db, 14, 80..90);
        db.crash();
    }
    // The stale snapshot plus the WAL after its position.
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(snapshot_used(&db), "{:?}", db.open_report());
    assert_eq!(db.open_report().replay.samples, 10 * 30 + 14 * 10);
    let mut want = expected(10, 0..90);
    want.extend(expected(14, 80..90).into_iter().filter(|s| {
        ["\"10\"", "\"11\"", "\"12\"", "\"13\""]
            .iter()
            .any(|n| s.0.contains(n))
    }));
    want.sort();
    check(dump(&db), want.clone());
    // Crash again without any append: same state.
    db.crash();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), want.clone());
    // And the same without the snapshot.
    drop(db);
    std::fs::remove_file(dir.path().join(SNAPSHOT_FILE)).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(!snapshot_used(&db));
    check(dump(&db), want);
}

#[test]
fn corrupt_snapshot_falls_back_to_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 10, 0..150);
    }
    let path = dir.path().join(SNAPSHOT_FILE);
    let good = std::fs::read(&path).unwrap();
    let mut bad_versions = good.clone();
    bad_versions[4] = 99;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flip", {
            let mut b = good.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x20;
            b
        }),
        ("truncated", good[..good.len() - 3].to_vec()),
        ("empty", Vec::new()),
        ("version", bad_versions),
        ("garbage", vec![0xab; 4096]),
    ];
    for (name, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        assert!(!snapshot_used(&db), "{name}");
        let why = db
            .open_report()
            .snapshot_rejected
            .clone()
            .unwrap_or_default();
        assert!(why.contains("head snapshot"), "{name}: {why}");
        assert!(!path.exists(), "{name}: the bad snapshot is removed");
        check(dump(&db), expected(10, 0..150));
        // The clean close writes a good one again.
        drop(db);
        assert!(Snapshot::read(dir.path()).unwrap().is_some(), "{name}");
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(snapshot_used(&db));
    check(dump(&db), expected(10, 0..150));
}

#[test]
fn snapshot_is_not_used_when_its_wal_position_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 5, 0..40);
    }
    let meta = Snapshot::read(dir.path()).unwrap().unwrap().meta().clone();
    let seg = dir
        .path()
        .join("wal")
        .join(koban_tsdb::wal::segment_name(meta.wal.segment));
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), meta.wal.offset);
    // A shorter segment (torn-tail repair after a power loss).
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(meta.wal.offset - 1).unwrap();
    drop(f);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(!snapshot_used(&db));
    let why = db.open_report().snapshot_rejected.clone().unwrap();
    assert!(why.contains("bytes"), "{why}");
    // The torn last commit is lost as in any WAL replay; the rest is there.
    check(dump(&db), expected(5, 0..39));
    write(&db, 5, 39..45);
    drop(db);
    // Segment removed.
    let meta = Snapshot::read(dir.path()).unwrap().unwrap().meta().clone();
    let seg = dir
        .path()
        .join("wal")
        .join(koban_tsdb::wal::segment_name(meta.wal.segment));
    std::fs::remove_file(&seg).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(!snapshot_used(&db));
    check(dump(&db), expected(5, 0..39));
}

#[test]
fn wal_corruption_before_the_snapshot_position_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 10, 0..100);
    }
    let seg = wal_segments(dir.path()).into_iter().next().unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(snapshot_used(&db));
    check(dump(&db), expected(10, 0..100));
}

#[test]
fn checkpoint_before_the_snapshot_is_skipped_after_it_voids_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = DbOptions {
        wal_segment_size: 8192,
        ..opts()
    };
    {
        let db = Db::open(dir.path(), o.clone()).unwrap();
        write(&db, 10, 0..200);
        // Blocks hold everything before 150s: head cut + WAL checkpoint.
        db.head().truncate(150_000);
        db.truncate_wal(150_000).unwrap();
        write(&db, 10, 200..220);
    }
    // Checkpoint older than the snapshot: skipped, snapshot used.
    let db = Db::open(dir.path(), o.clone()).unwrap();
    assert!(snapshot_used(&db), "{:?}", db.open_report());
    assert_eq!(db.open_report().replay.checkpoint, None);
    check(dump(&db), expected(10, 150..220));
    // Appends after the snapshot restart, then a head cut whose checkpoint
    // covers the snapshot's segment, then a crash.
    write(&db, 10, 220..260);
    db.head().truncate(230_000);
    db.truncate_wal(230_000).unwrap();
    write(&db, 10, 260..270);
    db.crash();
    let db = Db::open(dir.path(), o.clone()).unwrap();
    assert!(!snapshot_used(&db));
    let why = db.open_report().snapshot_rejected.clone().unwrap();
    assert!(why.contains("checkpoint"), "{why}");
    check(dump(&db), expected(10, 230..270));
    // Crash between the head cut and the checkpoint: the snapshot still
    // applies; the cut samples come back from the WAL as they would in a
    // full replay (blocks hold them too, queries de-duplicate).
    drop(db);
    let db = Db::open(dir.path(), o.clone()).unwrap();
    assert!(snapshot_used(&db));
    write(&db, 10, 270..300);
    db.head().truncate(280_000);
    db.crash();
    let db = Db::open(dir.path(), o.clone()).unwrap();
    assert!(snapshot_used(&db));
    check(dump(&db), expected(10, 230..300));
    drop(db);
    let db = Db::open(dir.path(), o).unwrap();
    check(dump(&db), expected(10, 230..300));
}

#[test]
fn truncated_head_keeps_refusing_old_samples_after_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 3, 0..100);
        db.head().truncate(50_000);
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(snapshot_used(&db));
    check(dump(&db), expected(3, 50..100));
    let mut app = db.appender();
    let err = app.append(0, &series(7), 10_000, 1.0).unwrap_err();
    assert_eq!(err, koban_storage::StorageError::OutOfBounds);
}

#[test]
fn disabled_snapshots_are_removed_and_the_wal_replayed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 4, 0..30);
    }
    assert!(dir.path().join(SNAPSHOT_FILE).exists());
    let o = DbOptions {
        snapshot_on_shutdown: false,
        ..opts()
    };
    {
        let db = Db::open(dir.path(), o.clone()).unwrap();
        assert!(!snapshot_used(&db));
        assert!(!dir.path().join(SNAPSHOT_FILE).exists());
        check(dump(&db), expected(4, 0..30));
        write(&db, 4, 30..40);
    }
    assert!(!dir.path().join(SNAPSHOT_FILE).exists());
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), expected(4, 0..40));
}
