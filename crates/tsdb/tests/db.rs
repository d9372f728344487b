//! Db-level tests: WAL replay, torn and corrupt WAL, lock file, checkpoints.

use koban_model::{Labels, STALE_NAN_BITS};
use koban_storage::{Appendable, Queryable};
use koban_tsdb::{Db, DbOptions, TsdbError};
use std::path::Path;

#[path = "support/dump.rs"]
mod support;
use support::dump;

fn opts() -> DbOptions {
    DbOptions {
        wal_fsync_interval: None,
        ..Default::default()
    }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
}

/// Appends `batches` commits of one sample for each of `n` series; value
/// bits vary (including NaN payloads and the stale marker).
fn value(i: usize, t: i64) -> f64 {
    match (i as i64 + t) % 7 {
        0 => f64::from_bits(STALE_NAN_BITS),
        1 => f64::from_bits(0x7ff8_0000_0000_0000 | (t as u64 & 0xffff)),
        _ => (t as f64) * 0.1 + i as f64,
    }
}

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

fn expected(n: usize, ts: std::ops::Range<i64>) -> Vec<(String, Vec<(i64, u64)>)> {
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

/// Compares dumps, printing a short summary on mismatch.
#[track_caller]
fn check(got: Vec<(String, Vec<(i64, u64)>)>, want: Vec<(String, Vec<(i64, u64)>)>) {
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

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn wal_replay_restores_everything_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 50, 0..300);
        check(dump(&db), expected(50, 0..300));
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), expected(50, 0..300));
    let st = db.stats().head;
    assert_eq!((st.num_series, st.samples_appended), (50, 50 * 300));
    // Appends continue after reopen (same refs space, no OOO), and survive again.
    write(&db, 50, 300..310);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), expected(50, 0..310));
}

#[test]
fn small_segments_are_cut_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let o = DbOptions {
        // Compact samples records take ~80 bytes per commit here.
        wal_segment_size: 1024,
        ..opts()
    };
    {
        let db = Db::open(dir.path(), o.clone()).unwrap();
        write(&db, 20, 0..200);
    }
    assert!(segments(dir.path()).len() > 10);
    let db = Db::open(dir.path(), o).unwrap();
    check(dump(&db), expected(20, 0..200));
}

#[test]
fn torn_tail_is_truncated_and_earlier_data_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 10, 0..100);
    }
    let seg = segments(dir.path())
        .into_iter()
        .rfind(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let db = Db::open(dir.path(), opts()).unwrap();
    // The last commit (t = 99) is lost, everything before is intact.
    check(dump(&db), expected(10, 0..99));
    // New appends after the repaired tail survive another reopen.
    write(&db, 10, 99..120);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), expected(10, 0..120));
}

#[test]
fn corruption_in_the_middle_keeps_prefix_and_moves_rest_aside() {
    let dir = tempfile::tempdir().unwrap();
    // Without a head snapshot: it would hold the data the corruption hides
    // (tests/head_snapshot.rs covers that case).
    let opts = || DbOptions {
        snapshot_on_shutdown: false,
        ..opts()
    };
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 10, 0..100);
    }
    let seg = segments(dir.path()).into_iter().next().unwrap();
    let mut b = std::fs::read(&seg).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    std::fs::write(&seg, &b).unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let got = dump(&db);
    // A prefix of the commits is there, complete and exact.
    let n = got[0].1.len() as i64;
    assert!(n > 10 && n < 100, "{n}");
    check(got, expected(10, 0..n));
    let aside: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("corrupted-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    // The database goes on working.
    write(&db, 10, n..n + 5);
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), expected(10, 0..n + 5));
}

#[test]
fn second_open_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let err = Db::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, TsdbError::Locked { .. }));
    let want = format!(
        "another process holds the lock on {}",
        dir.path().join("lock").display()
    );
    assert_eq!(err.to_string(), want);
    drop(db);
    Db::open(dir.path(), opts()).unwrap();
}

#[test]
fn wal_checkpoint_keeps_live_series_and_recent_samples() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(
            dir.path(),
            DbOptions {
                wal_segment_size: 8192,
                ..opts()
            },
        )
        .unwrap();
        write(&db, 10, 0..200);
        // Pretend blocks now hold everything before t=150s.
        db.head().truncate(150_000);
        db.truncate_wal(150_000).unwrap();
        check(dump(&db), expected(10, 150..200));
        write(&db, 10, 200..210);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with("checkpoint.")),
            "{names:?}"
        );
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), expected(10, 150..210));
    // A second checkpoint replaces the first.
    db.head().truncate(205_000);
    db.truncate_wal(205_000).unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), expected(10, 205..210));
    let cps = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with("checkpoint.")
        })
        .count();
    assert_eq!(cps, 1);
}

#[test]
fn closed_db_refuses_appends_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let mut app = db.appender();
    app.append(0, &series(0), 1, 1.0).unwrap();
    db.close().unwrap();
    assert_eq!(app.commit(), Err(koban_storage::StorageError::Closed));
    assert!(db.querier(0, 1).is_err());
    db.sync().unwrap();
}

#[test]
fn blocks_in_the_directory_are_merged_with_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = koban_tsdb::block::BlockWriter::new(dir.path()).unwrap();
    w.add_series(series(0), &[(1000, value(0, 1)), (2000, value(0, 2))])
        .unwrap();
    w.finish().unwrap().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.stats().blocks.blocks, 1);
    write(&db, 2, 10..12);
    let mut want = expected(2, 10..12);
    want[0].1.splice(
        0..0,
        [(1000, value(0, 1).to_bits()), (2000, value(0, 2).to_bits())],
    );
    check(dump(&db), want);
}

#[test]
fn checkpoint_without_segments_still_replays_new_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 3, 0..10);
        db.truncate_wal(0).unwrap();
    }
    // Remove every segment file, keeping only the checkpoint.
    for p in segments(dir.path()) {
        std::fs::remove_file(p).unwrap();
    }
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        check(dump(&db), expected(3, 0..10));
        write(&db, 3, 10..20);
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    check(dump(&db), expected(3, 0..20));
}

#[test]
fn concurrent_committers_replay_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let o = DbOptions {
        wal_segment_size: 16 << 10,
        ..opts()
    };
    {
        let db = Db::open(dir.path(), o.clone()).unwrap();
        std::thread::scope(|s| {
            for w in 0..4usize {
                let db = &db;
                s.spawn(move || {
                    let mut refs = [0u64; 10];
                    for t in 0..100i64 {
                        let mut app = db.appender();
                        for (k, r) in refs.iter_mut().enumerate() {
                            *r = app
                                .append(*r, &series(w * 10 + k), t * 1000, value(w * 10 + k, t))
                                .unwrap();
                        }
                        app.commit().unwrap();
                    }
                });
            }
        });
        check(dump(&db), expected(40, 0..100));
    }
    let db = Db::open(dir.path(), o).unwrap();
    check(dump(&db), expected(40, 0..100));
}
