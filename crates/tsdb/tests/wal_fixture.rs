//! Compatibility of the WAL samples records (docs/format/wal.md).
//!
//! * tests/fixtures/wal_compact_v1/ is a database directory left by a
//!   crash (no head snapshot), whose WAL holds series records and compact
//!   samples records (type 3) only; it must keep replaying to the same
//!   data. Regenerate (only on a deliberate format change) with
//!   `cargo test -p koban-tsdb --test wal_fixture -- --ignored`.
//! * The first samples format (type 2) is covered by the
//!   tests/fixtures/head_snapshot_v1/ WAL (tests/head_snapshot_fixture.rs)
//!   and by a hand-written mixed log below.

use koban_model::Labels;
use koban_storage::Appendable;
use koban_tsdb::wal::record::{self, TYPE_SAMPLES, TYPE_SAMPLES_COMPACT, TYPE_SERIES};
use koban_tsdb::{Db, DbOptions};
use std::path::{Path, PathBuf};

#[path = "support/dump.rs"]
mod support;
use support::dump;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal_compact_v1")
}

fn opts() -> DbOptions {
    DbOptions {
        wal_fsync_interval: None,
        ..Default::default()
    }
}

const T0: i64 = 1_700_000_000_000;
const SERIES: usize = 12;
const SCRAPES: i64 = 40;

fn labels(i: usize) -> Labels {
    let name = ["up", "counter_total", "gauge", "edge", "decimal", "random"][i % 6];
    Labels::from_pairs([
        ("__name__", name.to_string()),
        ("instance", format!("h{i}")),
        ("job", "wal".into()),
    ])
}

/// Integers, short decimals, values no decimal form reproduces, and every
/// special float (NaN payloads, the stale marker, ±Inf, -0.0, subnormals).
fn value(i: usize, k: i64) -> f64 {
    const EDGE: [u64; 10] = [
        0x7ff0_0000_0000_0002, // stale marker
        0x7ff8_0000_0000_0000,
        0xfff8_0000_dead_beef,
        0x8000_0000_0000_0000, // -0.0
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        1,
        0x000f_ffff_ffff_ffff,
        0x7fef_ffff_ffff_ffff,
        0x4340_0000_0000_0001, // 2^53 + 2
    ];
    match i % 6 {
        0 => 1.0,
        1 => (k * k * 1_000_003 * (i as i64 + 1)) as f64,
        2 => ((k * 31 + i as i64) % 977) as f64 / 100.0 - 3.0,
        3 => f64::from_bits(EDGE[(k as usize + i) % EDGE.len()]),
        4 => [
            0.1,
            0.3,
            1e-6,
            1e-7,
            123_456.789_012,
            -42.5,
            9_007_199_254.740_991,
        ][k as usize % 7],
        _ => f64::from_bits(
            0x3ff0_0000_0000_0000 ^ ((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 12),
        ),
    }
}

fn ts(i: usize, k: i64) -> i64 {
    // Mostly one timestamp per commit; some series a little off it.
    T0 + k * 15_000 + if i % 5 == 4 { (k * 7919) % 23 - 11 } else { 0 }
}

fn expected() -> Vec<(String, Vec<(i64, u64)>)> {
    let mut out: Vec<_> = (0..SERIES)
        .map(|i| {
            let v = (0..SCRAPES)
                .map(|k| (ts(i, k), value(i, k).to_bits()))
                .collect();
            (labels(i).to_string(), v)
        })
        .collect();
    out.sort();
    out
}

#[test]
#[ignore]
fn generate_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let db = Db::open(&dir, opts()).unwrap();
    for k in 0..SCRAPES {
        let mut app = db.appender();
        for i in 0..SERIES {
            app.append(0, &labels(i), ts(i, k), value(i, k)).unwrap();
        }
        app.commit().unwrap();
    }
    db.crash();
    std::fs::remove_file(dir.join("lock")).unwrap();
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

/// Record type bytes of the frames in a segment file.
fn record_types(path: &Path) -> Vec<u8> {
    let data = std::fs::read(path).unwrap();
    let mut pos = 0;
    let mut types = Vec::new();
    while pos < data.len() {
        let len = u32::from_le_bytes(data[pos + 1..pos + 5].try_into().unwrap()) as usize;
        types.push(data[pos]);
        pos += record::HEADER_LEN + len;
    }
    assert_eq!(pos, data.len(), "{}", path.display());
    types
}

#[test]
fn fixture_compact_wal_replays() {
    let seg = fixture_dir().join("wal/00000001");
    let types = record_types(&seg);
    assert!(types.contains(&TYPE_SERIES));
    assert_eq!(
        types.iter().filter(|&&t| t == TYPE_SAMPLES_COMPACT).count(),
        SCRAPES as usize
    );
    assert!(!types.contains(&TYPE_SAMPLES));

    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir(), tmp.path());
    let db = Db::open(tmp.path(), opts()).unwrap();
    let r = db.open_report().clone();
    assert!(r.snapshot.is_none());
    assert_eq!(r.replay.samples, SERIES as u64 * SCRAPES as u64);
    assert!(r.replay.truncated_tail.is_none() && r.replay.corrupt.is_none());
    assert_eq!(dump(&db), expected());
}

/// A log holding first-format samples records followed by compact ones
/// (an upgrade) replays completely, and what the new version appends is
/// compact.
#[test]
fn mixed_old_and_compact_records_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = tmp.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    let series: Vec<(u64, Labels)> = (0..SERIES)
        .map(|i| ((i as u64 + 1) << 32 | (i as u64 + 1), labels(i)))
        .collect();
    let samples = |k: i64| -> Vec<(u64, i64, f64)> {
        (0..SERIES)
            .map(|i| (series[i].0, ts(i, k), value(i, k)))
            .collect()
    };
    let (mut buf, mut scratch) = (Vec::new(), Vec::new());
    record::encode_series(&mut buf, &mut scratch, &series);
    for k in 0..SCRAPES / 2 {
        record::encode_samples_v1(&mut buf, &mut scratch, &samples(k));
    }
    for k in SCRAPES / 2..SCRAPES - 5 {
        record::encode_samples(&mut buf, &samples(k));
    }
    std::fs::write(wal.join("00000001"), &buf).unwrap();
    {
        let db = Db::open(tmp.path(), opts()).unwrap();
        assert_eq!(
            db.open_report().replay.samples,
            SERIES as u64 * (SCRAPES as u64 - 5)
        );
        for k in SCRAPES - 5..SCRAPES {
            let mut app = db.appender();
            for i in 0..SERIES {
                app.append(0, &labels(i), ts(i, k), value(i, k)).unwrap();
            }
            app.commit().unwrap();
        }
        db.crash();
    }
    let types = record_types(&wal.join("00000002"));
    assert_eq!(types, vec![TYPE_SAMPLES_COMPACT; 5]);
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(
        db.open_report().replay.samples,
        SERIES as u64 * SCRAPES as u64
    );
    assert_eq!(dump(&db), expected());
}
