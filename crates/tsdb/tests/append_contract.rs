//! The TSDB's side of the storage contract beyond float appends: the
//! commit report, created-timestamp zero samples, and the clear refusal
//! of what the head does not store yet (histograms, exemplars, metadata).

use koban_model::{Exemplar, FloatHistogram, Histogram, Labels, Metadata};
use koban_storage::{Appendable, Queryable, StorageError, HISTOGRAMS_NOT_SUPPORTED};
use koban_tsdb::{Db, DbOptions};

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
    Labels::from_pairs([("__name__", "c_total".to_string()), ("i", i.to_string())])
}

/// Every sample of series `i` in [0, 20h].
fn samples(db: &Db, i: usize) -> Vec<(i64, f64)> {
    let q = db.querier(0, 20 * H).unwrap();
    let m = koban_model::Matcher::new(koban_model::MatchType::Equal, "i", i.to_string()).unwrap();
    let mut out = vec![];
    for s in q.select(true, None, &[m]).unwrap() {
        let s = s.unwrap();
        s.iter().drain_into(&mut out);
    }
    out
}

#[test]
fn commit_reports_what_it_stored_and_refused_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let mut app = db.appender();
    let r = app.append(0, &lbl(0), 10 * H, 1.0).unwrap();
    app.append(0, &lbl(1), 10 * H, 1.0).unwrap();
    let rep = app.commit().unwrap();
    assert_eq!((rep.floats, rep.refused()), (2, 0));

    let mut app = db.appender();
    // Refused at append time: the error comes back and is reported too.
    assert_eq!(
        app.append(r, &lbl(0), 10 * H - M, 2.0),
        Err(StorageError::OutOfOrder)
    );
    assert_eq!(
        app.append(r, &lbl(0), 10 * H, 5.0),
        Err(StorageError::DuplicateSample)
    );
    // Equal to what is stored: accepted, dropped, not counted.
    app.append(r, &lbl(0), 10 * H, 1.0).unwrap();
    // Refused at commit: conflicts within the batch.
    app.append(r, &lbl(0), 10 * H + 2 * M, 3.0).unwrap();
    app.append(r, &lbl(0), 10 * H + M, 4.0).unwrap();
    let rep = app.commit().unwrap();
    assert_eq!(rep.floats, 1);
    assert_eq!((rep.out_of_order, rep.duplicate), (2, 1));
    assert_eq!((rep.out_of_bounds, rep.too_old), (0, 0));
    assert_eq!(rep.refused(), 3);
    // The head's own counters agree.
    let st = db.stats();
    assert_eq!((st.head.out_of_order, st.head.duplicates), (2, 1));
}

#[test]
fn created_timestamp_zero_goes_in_once_and_never_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(H)).unwrap();
    let (ct, t0) = (10 * H - 5 * M, 10 * H);
    let mut app = db.appender();
    assert_eq!(
        app.append_created_timestamp(0, &lbl(0), ct, ct),
        Err(StorageError::CreatedTimestampNewerThanSample)
    );
    let r = app.append_created_timestamp(0, &lbl(0), t0, ct).unwrap();
    app.append(r, &lbl(0), t0, 7.0).unwrap();
    let rep = app.commit().unwrap();
    assert_eq!((rep.floats, rep.refused()), (2, 0));

    // Later scrapes carry the same created timestamp: behind the series
    // now, refused (even with an out-of-order window) and not counted.
    let mut app = db.appender();
    assert_eq!(
        app.append_created_timestamp(r, &lbl(0), t0 + M, ct),
        Err(StorageError::CreatedTimestampOutOfOrder)
    );
    app.append(r, &lbl(0), t0 + M, 9.0).unwrap();
    let rep = app.commit().unwrap();
    assert_eq!((rep.floats, rep.refused()), (1, 0));
    assert_eq!(samples(&db, 0), vec![(ct, 0.0), (t0, 7.0), (t0 + M, 9.0)]);
    assert_eq!(db.stats().head.out_of_order, 0);

    // A zero staged before a sample of the same batch that is earlier
    // still stays out of the window at commit.
    let mut app = db.appender();
    let r1 = app.append(0, &lbl(1), t0 + 2 * M, 1.0).unwrap();
    app.append_created_timestamp(r1, &lbl(1), t0 + 3 * M, t0 + M)
        .unwrap();
    let rep = app.commit().unwrap();
    assert_eq!((rep.floats, rep.refused()), (1, 0));
    assert_eq!(samples(&db, 1), vec![(t0 + 2 * M, 1.0)]);
}

#[test]
fn histograms_exemplars_and_metadata_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(0)).unwrap();
    let mut app = db.appender();
    let h = Histogram::default();
    let fh = FloatHistogram::default();
    for (hh, ff) in [(Some(&h), None), (None, Some(&fh))] {
        let e = app.append_histogram(0, &lbl(0), H, hh, ff).unwrap_err();
        assert_eq!(e, StorageError::NotSupported(HISTOGRAMS_NOT_SUPPORTED));
        assert_eq!(
            e.to_string(),
            "native histograms are not supported by Koban yet"
        );
    }
    let e = app
        .append_exemplar(0, &lbl(0), &Exemplar::default())
        .unwrap_err();
    assert!(matches!(e, StorageError::NotSupported(_)), "{e}");
    let e = app
        .update_metadata(0, &lbl(0), &Metadata::default())
        .unwrap_err();
    assert!(matches!(e, StorageError::NotSupported(_)), "{e}");
    // The batch stays usable.
    app.append(0, &lbl(0), H, 1.0).unwrap();
    assert_eq!(app.commit().unwrap().floats, 1);
}
