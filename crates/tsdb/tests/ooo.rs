//! Out-of-order window: appends within it are queryable, survive WAL
//! replay, head cuts and compaction; outside it samples are refused with a
//! counted reason; window 0 keeps the in-order rules. Synthetic timestamps.

use koban_model::Labels;
use koban_storage::{Appendable, Queryable, StorageError};
use koban_tsdb::{Db, DbOptions};
use std::collections::BTreeMap;
use std::sync::Arc;

const H: i64 = 3600 * 1000;
const M: i64 = 60_000;

fn opts(window: i64) -> DbOptions {
    DbOptions {
        wal_fsync_interval: None,
        out_of_order_window_ms: window,
        ..Default::default()
    }
}

fn lbl(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
}

fn add(db: &Db, i: usize, t: i64, v: f64) -> Result<(), StorageError> {
    let mut app = db.appender();
    app.append(0, &lbl(i), t, v)?;
    app.commit().map(|_| ())
}

#[path = "support/dump.rs"]
mod support;

/// Every series' samples in [mint, maxt] (all series of these tests are `m`).
type Dump = BTreeMap<String, Vec<(i64, u64)>>;

fn dump(db: &Db, mint: i64, maxt: i64) -> Dump {
    support::dump_querier(&*db.querier(mint, maxt).unwrap())
        .into_iter()
        .collect()
}

fn samples(d: &Dump, i: usize) -> Vec<i64> {
    d.get(&lbl(i).to_string())
        .map(|v| v.iter().map(|s| s.0).collect())
        .unwrap_or_default()
}

#[test]
fn window_accepts_refuses_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(30 * M)).unwrap();
    for t in [10 * H, 10 * H + 10 * M] {
        add(&db, 0, t, t as f64).unwrap();
    }
    // Within the window: accepted, merged in time order.
    add(&db, 0, 10 * H + 5 * M, 1.5).unwrap();
    add(&db, 0, 10 * H - 15 * M, 2.5).unwrap();
    // A new series may start up to half a block range back (in order).
    add(&db, 1, 10 * H - 10 * M, 3.5).unwrap();
    // Identical duplicates are ignored, others refused.
    add(&db, 0, 10 * H + 5 * M, 1.5).unwrap();
    assert_eq!(
        add(&db, 0, 10 * H + 5 * M, 9.0),
        Err(StorageError::DuplicateSample)
    );
    assert_eq!(add(&db, 0, 10 * H, 9.0), Err(StorageError::DuplicateSample));
    // Outside the window.
    assert_eq!(add(&db, 0, 10 * H - 21 * M, 1.0), Err(StorageError::TooOld));
    assert_eq!(add(&db, 2, 9 * H, 1.0), Err(StorageError::TooOld));
    let d = dump(&db, 0, 20 * H);
    assert_eq!(
        samples(&d, 0),
        vec![10 * H - 15 * M, 10 * H, 10 * H + 5 * M, 10 * H + 10 * M]
    );
    assert_eq!(samples(&d, 1), vec![10 * H - 10 * M]);
    let st = db.stats().head;
    assert_eq!(st.too_old, 2);
    assert_eq!(st.duplicates, 2);
    assert_eq!(st.ooo_appended, 2);
    assert_eq!(st.out_of_order, 0);
    // Range selection and seek over merged samples.
    let d = dump(&db, 10 * H - 12 * M, 10 * H + 6 * M);
    assert_eq!(samples(&d, 0), vec![10 * H, 10 * H + 5 * M]);
    assert_eq!(samples(&d, 1), vec![10 * H - 10 * M]);

    // Window 0 (e.g. after a reload): in-order rules again, data kept.
    db.set_out_of_order_window(0);
    assert_eq!(
        add(&db, 0, 10 * H + 7 * M, 1.0),
        Err(StorageError::OutOfOrder)
    );
    assert_eq!(add(&db, 0, 8 * H, 1.0), Err(StorageError::OutOfBounds));
    let st = db.stats().head;
    assert_eq!((st.out_of_order, st.out_of_bounds), (1, 1));
    assert_eq!(samples(&dump(&db, 0, 20 * H), 0).len(), 4);
}

#[test]
fn batch_conflicts_are_judged_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(H)).unwrap();
    add(&db, 0, 10 * H, 0.0).unwrap();
    let mut app = db.appender();
    let r = app.append(0, &lbl(0), 10 * H + 2 * M, 1.0).unwrap();
    app.append(r, &lbl(0), 10 * H + M, 2.0).unwrap();
    app.append(r, &lbl(0), 10 * H + M, 3.0).unwrap(); // duplicate in batch
    app.append(r, &lbl(0), 10 * H + 3 * M, 4.0).unwrap();
    app.commit().unwrap();
    let d = dump(&db, 0, 20 * H);
    assert_eq!(
        d[&lbl(0).to_string()],
        vec![
            (10 * H, 0f64.to_bits()),
            (10 * H + M, 2f64.to_bits()),
            (10 * H + 2 * M, 1f64.to_bits()),
            (10 * H + 3 * M, 4f64.to_bits()),
        ]
    );
    assert_eq!(db.stats().head.duplicates, 1);
    // The WAL holds only the accepted samples: replay rebuilds the same.
    drop(db);
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert_eq!(dump(&db, 0, 20 * H), d);
    // The head snapshot does not carry out-of-order samples: none is
    // written while the head holds some, and the WAL rebuilds them.
    drop(db);
    let db = Db::open(dir.path(), opts(0)).unwrap();
    assert!(db.open_report().snapshot.is_none());
    assert_eq!(dump(&db, 0, 20 * H), d);
}

#[test]
fn window_zero_refuses_in_batch_disorder_and_keeps_it_out_of_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let mut app = db.appender();
    let r = app.append(0, &lbl(0), 10 * H, 1.0).unwrap();
    app.append(r, &lbl(0), 10 * H - M, 2.0).unwrap();
    app.commit().unwrap();
    assert_eq!(db.stats().head.out_of_order, 1);
    drop(db);
    // Reopened with a window, the refused sample does not come back.
    let db = Db::open(dir.path(), opts(H)).unwrap();
    assert_eq!(samples(&dump(&db, 0, 20 * H), 0), vec![10 * H]);
}

#[test]
fn ooo_survives_replay_head_cut_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut want: BTreeMap<i64, f64> = BTreeMap::new();
    {
        let db = Db::open(dir.path(), opts(3 * H)).unwrap();
        for t in (0..4 * H).step_by(M as usize) {
            add(&db, 0, t, t as f64).unwrap();
            want.insert(t, t as f64);
        }
        // Out of order every 10 minutes, half a minute off the grid.
        for t in (H..4 * H).step_by(10 * M as usize) {
            add(&db, 0, t + 30_000, -1.0).unwrap();
            want.insert(t + 30_000, -1.0);
        }
        assert_eq!(db.stats().head.ooo_appended, 18);
    }
    let check = |db: &Db, want: &BTreeMap<i64, f64>| {
        let got: Vec<(i64, u64)> = dump(db, i64::MIN, i64::MAX)
            .remove(&lbl(0).to_string())
            .unwrap();
        let exp: Vec<(i64, u64)> = want.iter().map(|(t, v)| (*t, v.to_bits())).collect();
        let diff = got.iter().zip(&exp).position(|(a, b)| a != b);
        assert_eq!((got.len(), diff), (exp.len(), None), "first difference");
    };
    // WAL replay with another window (even none) keeps every sample.
    let db = Arc::new(Db::open(dir.path(), opts(0)).unwrap());
    check(&db, &want);
    assert_eq!(db.stats().head.ooo_samples, 18);
    db.set_out_of_order_window(5 * H);
    let bs = db.clone();
    // Push the head far enough for a cut of [0, 2h).
    for t in (4 * H..6 * H).step_by(M as usize) {
        add(&db, 0, t, t as f64).unwrap();
        want.insert(t, t as f64);
    }
    let rep = bs.maintain().unwrap();
    assert!(!rep.cut.is_empty());
    check(&db, &want);
    // Out-of-order samples older than the cut (the head keeps them until
    // the next cut, then they go into an overlapping block).
    for t in [3 * H + 15 * M + 10_000, 90 * M + 20_000] {
        add(&db, 0, t, 7.0).unwrap();
        want.insert(t, 7.0);
    }
    check(&db, &want);
    for t in (6 * H..9 * H).step_by(M as usize) {
        add(&db, 0, t, t as f64).unwrap();
        want.insert(t, t as f64);
    }
    let rep = bs.maintain().unwrap();
    // [4h, 6h) from the head, plus one block per older window holding
    // out-of-order samples, merged by compaction with the blocks there.
    assert_eq!(rep.cut.len(), 3, "{rep:?}");
    assert!(rep.compacted.len() >= 2, "{rep:?}");
    check(&db, &want);
    assert_eq!(db.head().ooo_min_time(), i64::MAX);
    assert_eq!(db.stats().head.ooo_samples, 0);
    // Overlapping blocks are compacted away.
    let metas = bs.block_metas();
    for w in metas.windows(2) {
        assert!(w[0].max_time <= w[1].min_time, "{metas:?}");
    }
    // And all of it survives a restart (blocks + WAL checkpoint).
    drop(bs);
    let db = Arc::try_unwrap(db).unwrap();
    drop(db);
    let db = Arc::new(Db::open(dir.path(), opts(0)).unwrap());
    check(&db, &want);
}

#[test]
fn window_zero_refuses_below_half_a_chunk_range() {
    // The bound that keeps appends out of a head cut in progress.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    add(&db, 0, 10 * H, 1.0).unwrap();
    // A new series may start up to half a block range back...
    add(&db, 1, 9 * H, 1.0).unwrap();
    // ...not further.
    assert_eq!(add(&db, 2, 9 * H - 1, 1.0), Err(StorageError::OutOfBounds));
    assert_eq!(db.stats().head.out_of_bounds, 1);
}
