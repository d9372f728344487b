//! Deleting series from the head: samples disappear from queries at once
//! and stay deleted across a restart, whether the head comes back from
//! the WAL (crash), from a head snapshot (clean close) or from a WAL
//! checkpoint; samples appended after the deletion are kept.

use koban_model::{Labels, MatchType, Matcher};
use koban_storage::Appendable;
use koban_tsdb::{Db, DbOptions};

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
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
}

/// One commit per second in `ts` with a sample for each of `n` series.
fn write(db: &Db, n: usize, ts: std::ops::Range<i64>) {
    for t in ts {
        let mut app = db.appender();
        for i in 0..n {
            app.append(0, &series(i), t * 1000, (t * 10 + i as i64) as f64)
                .unwrap();
        }
        app.commit().unwrap();
    }
}

/// What `write` stored, without the samples `gone(i, t)` says were deleted.
fn expected(n: usize, ts: std::ops::Range<i64>, gone: impl Fn(usize, i64) -> bool) -> Dump {
    let mut v: Dump = (0..n)
        .map(|i| {
            (
                series(i).to_string(),
                ts.clone()
                    .filter(|&t| !gone(i, t))
                    .map(|t| (t * 1000, ((t * 10 + i as i64) as f64).to_bits()))
                    .collect(),
            )
        })
        .filter(|(_, s): &(String, Vec<_>)| !s.is_empty())
        .collect();
    v.sort();
    v
}

fn sel(i: &str) -> Vec<Vec<Matcher>> {
    vec![vec![Matcher::new(MatchType::Regex, "i", i).unwrap()]]
}

/// Series 1 loses [100 s, 200 s] (closed chunks and the open one), series
/// 2 loses everything; then 20 more seconds are appended.
fn delete_and_append(db: &Db) {
    let rep = db.delete_series(&sel("1"), 100_000, 200_000).unwrap();
    assert_eq!(rep.head_series, 1);
    let rep = db.delete_series(&sel("2"), i64::MIN, i64::MAX).unwrap();
    assert_eq!(rep.head_series, 1);
    // Nothing left to delete: no series touched.
    assert_eq!(
        db.delete_series(&sel("2"), i64::MIN, i64::MAX)
            .unwrap()
            .head_series,
        0
    );
    write(db, 3, 300..320);
}

fn want() -> Dump {
    let mut v = expected(3, 0..300, |i, t| {
        (i == 1 && (100..=200).contains(&t)) || i == 2
    });
    let more = expected(3, 300..320, |_, _| false);
    for (l, s) in more {
        match v.iter_mut().find(|x| x.0 == l) {
            Some(x) => x.1.extend(s),
            None => v.push((l, s)),
        }
    }
    v.sort();
    v
}

#[test]
fn deleted_head_samples_are_gone_at_once_and_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    write(&db, 3, 0..300);
    delete_and_append(&db);
    assert_eq!(dump(&db), want());
    // Kill: the head is rebuilt from the WAL, tombstone records included.
    db.crash();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.open_report().snapshot.is_none());
    assert_eq!(dump(&db), want());
}

#[test]
fn deleted_head_samples_stay_gone_after_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 3, 0..300);
        delete_and_append(&db);
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(
        db.open_report().snapshot.is_some(),
        "{:?}",
        db.open_report()
    );
    assert_eq!(dump(&db), want());
    // And once more through the WAL only.
    db.crash();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(dump(&db), want());
}

#[test]
fn deletions_survive_a_wal_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(
            dir.path(),
            DbOptions {
                snapshot_on_shutdown: false,
                ..opts()
            },
        )
        .unwrap();
        write(&db, 3, 0..300);
        delete_and_append(&db);
        // Every segment so far becomes a checkpoint (nothing is older than 0).
        db.truncate_wal(0).unwrap();
        db.crash();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.open_report().replay.checkpoint.is_some());
    assert_eq!(dump(&db), want());
}

#[test]
fn deleting_within_out_of_order_samples() {
    let dir = tempfile::tempdir().unwrap();
    let o = DbOptions {
        out_of_order_window_ms: 3_600_000,
        ..opts()
    };
    let db = Db::open(dir.path(), o.clone()).unwrap();
    write(&db, 1, 100..200);
    // Out-of-order samples at 10..20 s.
    let mut app = db.appender();
    for t in 10..20 {
        app.append(0, &series(0), t * 1000, (t * 10) as f64)
            .unwrap();
    }
    app.commit().unwrap();
    assert_eq!(db.stats().head.ooo_samples, 10);
    db.delete_series(&sel("0"), 15_000, 150_000).unwrap();
    assert_eq!(db.stats().head.ooo_samples, 5);
    let got = dump(&db);
    let times: Vec<i64> = got[0].1.iter().map(|s| s.0 / 1000).collect();
    let want: Vec<i64> = (10..15).chain(151..200).collect();
    assert_eq!(times, want);
    db.crash();
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(dump(&db), got);
}
