//! Compatibility: a database directory with a version 1 head snapshot
//! and WAL records written after it (a restart, appends, then a crash) is
//! checked in under tests/fixtures/head_snapshot_v1/ and must keep opening
//! from the snapshot with the same data. Regenerate (only on a deliberate
//! format change) with
//! `cargo test -p koban-tsdb --test head_snapshot_fixture -- --ignored`.

use koban_model::Labels;
use koban_storage::Appendable;
use koban_tsdb::head::head_snapshot::{Snapshot, SNAPSHOT_FILE};
use koban_tsdb::wal::WalPosition;
use koban_tsdb::{Db, DbOptions};
use std::path::{Path, PathBuf};

#[path = "support/dump.rs"]
mod support;
use support::dump;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/head_snapshot_v1")
}

fn opts() -> DbOptions {
    DbOptions {
        wal_fsync_interval: None,
        ..Default::default()
    }
}

const T0: i64 = 1_700_000_000_000;
/// Samples per series before the snapshot (closed chunks and an open one).
const BEFORE: i64 = 300;
/// Samples per series appended after the snapshot restart.
const AFTER: i64 = 25;

fn labels(i: usize) -> Labels {
    let name = ["up", "counter_total", "gauge", "edge", "sparse", "late"][i % 6];
    Labels::from_pairs([
        ("__name__", name.to_string()),
        ("instance", format!("h{i}")),
        ("job", "fx".into()),
    ])
}

fn value(i: usize, k: i64) -> f64 {
    let edge = [
        0x7ff0_0000_0000_0002u64,
        0x7ff8_0000_0000_0000,
        0x8000_0000_0000_0000,
        0xfff0_0000_0000_0000,
        1,
    ];
    match i % 6 {
        0 => 1.0,
        1 => (k * k * (i as i64 + 1)) as f64,
        2 => ((k * 31 + i as i64) % 977) as f64 / 100.0,
        3 => f64::from_bits(edge[(k % 5) as usize]),
        4 => {
            if k % 40 == 0 {
                k as f64 * 1.25
            } else {
                0.5
            }
        }
        _ => f64::from_bits(0x4000_0000_0000_0000 ^ (k as u64).wrapping_mul(0x9e37_79b9)),
    }
}

fn ts(k: i64) -> i64 {
    T0 + k * 15_000 + (k * 7919) % 23
}

/// Series 0..10 get samples 0..BEFORE before the snapshot; series 0..10
/// get BEFORE..BEFORE+AFTER and the new series 10, 11 get 0..AFTER after it.
fn expected() -> Vec<(String, Vec<(i64, u64)>)> {
    let mut out: Vec<_> = (0..12)
        .map(|i| {
            let ks = if i < 10 { 0..BEFORE + AFTER } else { 0..AFTER };
            let v = ks.map(|k| (ts(k), value(i, k).to_bits())).collect();
            (labels(i).to_string(), v)
        })
        .collect();
    out.sort();
    out
}

fn append(db: &Db, series: std::ops::Range<usize>, ks: std::ops::Range<i64>) {
    for k in ks {
        let mut app = db.appender();
        for i in series.clone() {
            app.append(0, &labels(i), ts(k), value(i, k)).unwrap();
        }
        app.commit().unwrap();
    }
}

#[test]
#[ignore]
fn generate_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    {
        let db = Db::open(&dir, opts()).unwrap();
        append(&db, 0..10, 0..BEFORE);
        db.close().unwrap();
    }
    {
        let db = Db::open(&dir, opts()).unwrap();
        assert!(db.open_report().snapshot.is_some());
        append(&db, 0..10, BEFORE..BEFORE + AFTER);
        append(&db, 10..12, 0..AFTER);
        db.crash();
    }
    std::fs::remove_file(dir.join("lock")).unwrap();
}

/// Copies the fixture into a scratch directory (opening writes to it).
fn scratch() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), tmp.path());
    tmp
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

#[test]
fn fixture_snapshot_loads_and_wal_after_it_replays() {
    let snap = Snapshot::read(&fixture_dir()).unwrap().unwrap();
    let m = snap.meta();
    assert_eq!(
        m.wal,
        WalPosition {
            segment: 1,
            offset: std::fs::metadata(fixture_dir().join("wal/00000001"))
                .unwrap()
                .len()
        }
    );
    assert_eq!((m.num_series, m.chunk_range_ms), (10, 2 * 3600 * 1000));
    assert_eq!((m.min_time, m.max_time), (ts(0), ts(BEFORE - 1)));

    let tmp = scratch();
    let db = Db::open(tmp.path(), opts()).unwrap();
    let r = db.open_report().clone();
    let (st, pos) = r.snapshot.expect("snapshot used");
    assert_eq!(pos, m.wal);
    assert_eq!((st.series, st.samples), (10, 10 * BEFORE as u64));
    assert_eq!(r.replay.samples, (10 * AFTER + 2 * AFTER) as u64);
    assert_eq!(dump(&db), expected());
    assert_eq!(db.stats().head.num_series, 12);
    // The snapshot written on close loads back the same.
    drop(db);
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert!(db.open_report().snapshot.is_some());
    assert_eq!(db.open_report().replay.samples, 0);
    assert_eq!(dump(&db), expected());

    // The WAL alone says the same.
    let tmp = scratch();
    std::fs::remove_file(tmp.path().join(SNAPSHOT_FILE)).unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert!(db.open_report().snapshot.is_none());
    assert_eq!(dump(&db), expected());
}
