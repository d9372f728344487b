use super::*;
use koban_model::{MatchType, Matcher, STALE_NAN_BITS};
use koban_storage::{Appendable, Queryable, StorageError};

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn m(kind: MatchType, n: &str, v: &str) -> Matcher {
    Matcher::new(kind, n, v).unwrap()
}

/// All series (labels as string, samples) matching, sorted.
fn query(
    q: &dyn Queryable,
    mint: i64,
    maxt: i64,
    ms: &[Matcher],
) -> Vec<(String, Vec<(i64, f64)>)> {
    let q = q.querier(mint, maxt).unwrap();
    collect(&*q, ms)
}

fn collect(q: &dyn Querier, ms: &[Matcher]) -> Vec<(String, Vec<(i64, f64)>)> {
    q.select(true, None, ms)
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            let mut it = s.iter();
            let mut v = Vec::new();
            while let Some(x) = it.next() {
                v.push(x);
            }
            (s.labels().to_string(), v)
        })
        .collect()
}

#[test]
fn commit_and_rollback_visibility() {
    let h = Head::default();
    let a = ls(&[("__name__", "up"), ("job", "a")]);
    let mut app = h.appender();
    let r = app.append(0, &a, 1000, 1.0).unwrap();
    assert_ne!(r, 0);
    assert_eq!(app.append(r, &Labels::empty(), 2000, 2.0).unwrap(), r);
    let all = [m(MatchType::Equal, "__name__", "up")];
    assert!(
        query(&h, 0, 10_000, &all).is_empty(),
        "staged samples are invisible"
    );
    app.commit().unwrap();
    assert_eq!(
        query(&h, 0, 10_000, &all),
        vec![(a.to_string(), vec![(1000, 1.0), (2000, 2.0)])]
    );

    let mut app = h.appender();
    app.append(r, &a, 3000, 3.0).unwrap();
    app.rollback().unwrap();
    let mut app = h.appender();
    app.append(r, &a, 4000, 4.0).unwrap();
    drop(app);
    assert_eq!(query(&h, 0, 10_000, &all)[0].1.len(), 2);
    // Range restriction.
    assert_eq!(query(&h, 1500, 2500, &all)[0].1, vec![(2000, 2.0)]);
    assert!(query(&h, 5000, 6000, &all).is_empty());
    let st = h.stats(10);
    assert_eq!(
        (st.num_series, st.samples_appended, st.min_time, st.max_time),
        (1, 2, 1000, 2000)
    );
    assert_eq!(st.series_per_metric, vec![("up".to_string(), 1)]);
}

#[test]
fn out_of_order_and_duplicates() {
    let h = Head::default();
    let a = ls(&[("__name__", "x")]);
    let mut app = h.appender();
    let r = app.append(0, &a, 1000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    assert_eq!(app.append(r, &a, 999, 1.0), Err(StorageError::OutOfOrder));
    assert_eq!(
        app.append(r, &a, 1000, 2.0),
        Err(StorageError::DuplicateSample)
    );
    assert_eq!(
        app.append(r, &a, 1000, 1.0),
        Ok(r),
        "identical duplicate is ignored"
    );
    // Within one batch, a later out-of-order sample is dropped at commit.
    app.append(r, &a, 3000, 3.0).unwrap();
    app.append(r, &a, 2000, 2.0).unwrap();
    app.commit().unwrap();
    assert_eq!(
        query(&h, 0, 10_000, &[m(MatchType::Equal, "__name__", "x")])[0].1,
        vec![(1000, 1.0), (3000, 3.0)]
    );
    assert_eq!(h.stats(1).out_of_order, 2);
    let mut app = h.appender();
    assert_eq!(
        app.append(0, &Labels::empty(), 1, 1.0),
        Err(StorageError::InvalidLabels)
    );
    assert_eq!(
        app.append(0, &ls(&[("job", "x")]), 1, 1.0),
        Err(StorageError::InvalidLabels)
    );
}

#[test]
fn stale_markers_and_nans_bit_exact() {
    let h = Head::default();
    let a = ls(&[("__name__", "x")]);
    let mut app = h.appender();
    let vals = [
        1.0,
        f64::from_bits(STALE_NAN_BITS),
        f64::NAN,
        f64::from_bits(0x7ff8_0000_0000_0042),
        -0.0,
    ];
    for (i, v) in vals.iter().enumerate() {
        app.append(0, &a, i as i64, *v).unwrap();
    }
    app.commit().unwrap();
    let got = &query(&h, 0, 100, &[m(MatchType::Equal, "__name__", "x")])[0].1;
    let bits: Vec<u64> = got.iter().map(|s| s.1.to_bits()).collect();
    assert_eq!(bits, vals.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
}

fn fixture() -> Head {
    let h = Head::default();
    let mut app = h.appender();
    for (i, (name, job, inst)) in [
        ("up", "api", "a:1"),
        ("up", "api", "b:1"),
        ("up", "db", "c:1"),
        ("http_requests_total", "api", "a:1"),
        ("http_requests_total", "web", ""),
    ]
    .into_iter()
    .enumerate()
    {
        app.append(
            0,
            &ls(&[("__name__", name), ("job", job), ("instance", inst)]),
            100,
            i as f64,
        )
        .unwrap();
    }
    app.commit().unwrap();
    h
}

fn names(h: &Head, ms: &[Matcher]) -> Vec<String> {
    query(h, 0, 1000, ms).into_iter().map(|s| s.0).collect()
}

#[test]
fn matchers_all_kinds() {
    let h = fixture();
    let up = m(MatchType::Equal, "__name__", "up");
    assert_eq!(names(&h, std::slice::from_ref(&up)).len(), 3);
    assert_eq!(
        names(&h, &[up.clone(), m(MatchType::Equal, "job", "api")]).len(),
        2
    );
    assert_eq!(
        names(&h, &[up.clone(), m(MatchType::NotEqual, "job", "api")]),
        vec![r#"{__name__="up", instance="c:1", job="db"}"#]
    );
    assert_eq!(names(&h, &[m(MatchType::Regex, "job", "api|db")]).len(), 4);
    assert_eq!(
        names(&h, &[m(MatchType::Regex, "__name__", "http.*")]).len(),
        2
    );
    assert_eq!(
        names(&h, &[m(MatchType::Regex, "instance", "[ab]:.")]).len(),
        3
    );
    assert_eq!(
        names(
            &h,
            &[up.clone(), m(MatchType::NotRegex, "instance", "a.*|c.*")]
        )
        .len(),
        1
    );
    // Matchers matching the empty string select series without the label.
    assert_eq!(
        names(
            &h,
            &[
                m(MatchType::Regex, "__name__", ".+"),
                m(MatchType::Equal, "instance", "")
            ]
        ),
        vec![r#"{__name__="http_requests_total", job="web"}"#]
    );
    assert_eq!(
        names(&h, &[m(MatchType::NotEqual, "instance", "")]).len(),
        4
    );
    assert_eq!(names(&h, &[m(MatchType::Regex, "job", "web|")]).len(), 1);
    assert!(names(&h, &[m(MatchType::Equal, "nope", "x")]).is_empty());
    assert!(names(&h, &[up.clone(), m(MatchType::Equal, "job", "zzz")]).is_empty());

    let q = h.querier(0, 1000).unwrap();
    assert_eq!(
        q.label_values("job", &[]).unwrap(),
        vec!["api", "db", "web"]
    );
    assert_eq!(
        q.label_values("job", std::slice::from_ref(&up)).unwrap(),
        vec!["api", "db"]
    );
    assert_eq!(
        q.label_names(&[]).unwrap(),
        vec!["__name__", "instance", "job"]
    );
    assert_eq!(
        q.label_names(&[m(MatchType::Equal, "job", "web")]).unwrap(),
        vec!["__name__", "job"]
    );
    assert!(h
        .querier(5000, 6000)
        .unwrap()
        .label_values("job", &[])
        .unwrap()
        .is_empty());
}

#[test]
fn querier_isolation_across_selects() {
    let h = Head::default();
    let a = ls(&[("__name__", "a")]);
    let b = ls(&[("__name__", "b")]);
    let mut app = h.appender();
    app.append(0, &a, 1, 1.0).unwrap();
    app.append(0, &b, 1, 1.0).unwrap();
    app.commit().unwrap();
    let q = h.querier(0, 100).unwrap();
    // Later commits, each touching both series, plus a new series.
    for t in 2..=6 {
        let mut app = h.appender();
        app.append(0, &a, t, t as f64).unwrap();
        app.append(0, &b, t, t as f64).unwrap();
        app.append(0, &ls(&[("__name__", "c")]), t, 0.0).unwrap();
        app.commit().unwrap();
    }
    let ma = [m(MatchType::Equal, "__name__", "a")];
    let mb = [m(MatchType::Equal, "__name__", "b")];
    assert_eq!(collect(&*q, &ma)[0].1, vec![(1, 1.0)]);
    assert_eq!(collect(&*q, &mb)[0].1, vec![(1, 1.0)]);
    assert!(collect(&*q, &[m(MatchType::Equal, "__name__", "c")]).is_empty());
    let q2 = h.querier(0, 100).unwrap();
    assert_eq!(collect(&*q2, &ma)[0].1.len(), 6);
    drop((q, q2));
    // With no open querier the per-series history shrinks back to one entry.
    let mut app = h.appender();
    app.append(0, &a, 7, 7.0).unwrap();
    app.commit().unwrap();
    let s = h.get_or_create(&a).unwrap().0;
    assert_eq!(s.data.lock().commits.iter().count(), 1);
}

#[test]
fn chunks_cut_and_seek() {
    let h = Head::new(HeadOptions {
        chunk_range_ms: 1_000_000,
    });
    let a = ls(&[("__name__", "a")]);
    let mut r = 0;
    for i in 0..400i64 {
        let mut app = h.appender();
        r = app.append(r, &a, i * 1000, i as f64).unwrap();
        app.commit().unwrap();
    }
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let s = q
        .select(false, None, &[m(MatchType::Equal, "__name__", "a")])
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut it = s.iter();
    let mut n = 0;
    while let Some((t, v)) = it.next() {
        assert_eq!((t, v), (n * 1000, n as f64));
        n += 1;
    }
    assert_eq!(n, 400);
    let mut it = s.iter();
    assert_eq!(it.seek(250_500), Some((251_000, 251.0)));
    assert_eq!(it.seek(0), Some((252_000, 252.0)));
    assert_eq!(it.seek(399_000), Some((399_000, 399.0)));
    assert_eq!(it.next(), None);
    // Draining (whole chunks in bulk, edge chunks sample by sample) gives
    // what walking gives, for ranges cutting chunks anywhere, also after a
    // few samples were read one at a time.
    for (mint, maxt) in [
        (i64::MIN, i64::MAX),
        (0, 399_000),
        (5_000, 300_500),
        (120_000, 239_000),
        (119_000, 240_000),
        (130_000, 131_000),
        (398_500, 600_000),
        (500_000, 600_000),
    ] {
        let q = h.querier(mint, maxt).unwrap();
        let mut ss = q
            .select(false, None, &[m(MatchType::Equal, "__name__", "a")])
            .unwrap();
        let want: Vec<(i64, f64)> = (0..400)
            .map(|i| (i * 1000, i as f64))
            .filter(|s| mint <= s.0 && s.0 <= maxt)
            .collect();
        let Some(s) = ss.next() else {
            assert!(want.is_empty(), "range {mint}..{maxt}");
            continue;
        };
        let s = s.unwrap();
        for first in [0, 1, 3] {
            let mut it = s.iter();
            let mut got: Vec<(i64, f64)> = (0..first).map_while(|_| it.next()).collect();
            it.drain_into(&mut got);
            assert_eq!(got, want, "range {mint}..{maxt}, {first} read first");
        }
    }
    // Chunks: 120-sample cuts plus a cut at the 1_000_000 ms range boundary.
    let hs = HeadQuerier::new(h.clone(), i64::MIN, i64::MAX)
        .select_series(false, &[m(MatchType::Equal, "__name__", "a")]);
    let bounds: Vec<(i64, i64)> = hs[0].chunks().map(|c| (c.0, c.1)).collect();
    assert_eq!(
        bounds,
        vec![
            (0, 119_000),
            (120_000, 239_000),
            (240_000, 359_000),
            (360_000, 399_000)
        ]
    );
}

#[test]
fn truncate_drops_old_data_and_series() {
    let h = Head::default();
    let mut app = h.appender();
    app.append(0, &ls(&[("__name__", "old")]), 1000, 1.0)
        .unwrap();
    app.append(0, &ls(&[("__name__", "new")]), 1000, 1.0)
        .unwrap();
    app.append(0, &ls(&[("__name__", "new")]), 9_000_000, 2.0)
        .unwrap();
    app.commit().unwrap();
    assert_eq!(h.truncate(7_200_000), 1);
    assert_eq!(h.num_series(), 1);
    let all = [m(MatchType::Regex, "__name__", ".+")];
    assert_eq!(
        query(&h, i64::MIN, i64::MAX, &all),
        vec![(r#"{__name__="new"}"#.to_string(), vec![(9_000_000, 2.0)])]
    );
    let mut app = h.appender();
    assert_eq!(
        app.append(0, &ls(&[("__name__", "x")]), 1000, 1.0),
        Err(StorageError::OutOfBounds)
    );
    // A series removed by truncation can be appended again (new ref).
    let r = app
        .append(0, &ls(&[("__name__", "old")]), 8_000_000, 1.0)
        .unwrap();
    app.commit().unwrap();
    assert!(h.series_by_id(r).is_some());
    assert_eq!(query(&h, i64::MIN, i64::MAX, &all).len(), 2);
}

#[test]
fn concurrent_appenders() {
    let h = Head::default();
    std::thread::scope(|s| {
        for w in 0..4 {
            let h = h.clone();
            s.spawn(move || {
                let labels: Vec<Labels> = (0..200)
                    .map(|i| {
                        ls(&[
                            ("__name__", "m"),
                            ("w", &w.to_string()),
                            ("i", &i.to_string()),
                        ])
                    })
                    .collect();
                let mut refs = vec![0u64; labels.len()];
                for t in 0..50 {
                    let mut app = h.appender();
                    for (k, l) in labels.iter().enumerate() {
                        refs[k] = app.append(refs[k], l, t, t as f64).unwrap();
                    }
                    app.commit().unwrap();
                }
            });
        }
    });
    let st = h.stats(10);
    assert_eq!((st.num_series, st.samples_appended), (800, 800 * 50));
    let q = h.querier(0, 100).unwrap();
    assert_eq!(q.label_values("w", &[]).unwrap(), vec!["0", "1", "2", "3"]);
    let res = collect(&*q, &[m(MatchType::Equal, "w", "2")]);
    assert_eq!(res.len(), 200);
    assert!(res.iter().all(|s| s.1.len() == 50));
}

#[test]
fn slots_are_reused_and_stale_refs_fall_back_to_labels() {
    let h = Head::default();
    let old = ls(&[("__name__", "old")]);
    let mut app = h.appender();
    let r_old = app.append(0, &old, 1000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(h.truncate(5000), 1);
    let mut app = h.appender();
    let r_new = app
        .append(0, &ls(&[("__name__", "new")]), 6000, 2.0)
        .unwrap();
    assert_eq!(r_new as u32, r_old as u32, "slot reused");
    assert_ne!(r_new, r_old, "but the id differs");
    // The stale ref is not taken for the new series: labels decide.
    let r_old2 = app.append(r_old, &old, 7000, 3.0).unwrap();
    assert_ne!(r_old2, r_new);
    app.commit().unwrap();
    let got = query(&h, 0, 10_000, &[m(MatchType::Regex, "__name__", ".+")]);
    assert_eq!(
        got,
        vec![
            (r#"{__name__="new"}"#.to_string(), vec![(6000, 2.0)]),
            (r#"{__name__="old"}"#.to_string(), vec![(7000, 3.0)])
        ]
    );
}

#[test]
fn readers_never_see_half_a_commit() {
    // Each commit appends the same counter value to 20 series; every
    // querier must see all of them at the same count.
    let h = Head::default();
    let labels: Vec<Labels> = (0..20)
        .map(|i| ls(&[("__name__", "iso"), ("i", &i.to_string())]))
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut refs = vec![0u64; labels.len()];
            for t in 1..=2000i64 {
                let mut app = h.appender();
                for (k, l) in labels.iter().enumerate() {
                    refs[k] = app.append(refs[k], l, t, t as f64).unwrap();
                }
                app.commit().unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        s.spawn(|| {
            let mut checks = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) || checks < 10 {
                let q = h.querier(0, i64::MAX).unwrap();
                // Two selects on one querier: both see the same commit.
                let a = collect(&*q, &[m(MatchType::Regex, "i", "1?[02468]")]);
                let b = collect(&*q, &[m(MatchType::Regex, "i", "1?[13579]")]);
                let counts: Vec<usize> = a.iter().chain(&b).map(|s| s.1.len()).collect();
                if let Some(&c) = counts.first() {
                    assert!(counts.iter().all(|&x| x == c), "torn view: {counts:?}");
                    assert!(
                        c == 0 || counts.len() == 20,
                        "missing series: {}",
                        counts.len()
                    );
                }
                checks += 1;
            }
        });
    });
}

#[test]
fn commit_log_trim_and_visibility() {
    let mut c = CommitLog::default();
    assert_eq!(c.visible_until(0), i64::MAX);
    for seq in 1..=5u64 {
        c.record(seq, 0, seq as i64 * 10);
    }
    assert_eq!(c.iter().count(), 5);
    assert_eq!(c.visible_until(0), 10);
    assert_eq!(c.visible_until(3), 40);
    assert_eq!(c.visible_until(5), i64::MAX);
    c.record(6, 4, 60);
    assert_eq!(c.iter().map(|e| e.0).collect::<Vec<_>>(), vec![5, 6]);
    c.record(7, 7, 70);
    assert_eq!(c.iter().collect::<Vec<_>>(), vec![(7, 70)]);
    assert!(c.rare.is_none(), "an emptied overflow frees the rare box");
    // Head chunk 56 + flags + commit log 24 (with the rare box) + closed
    // chunks 8.
    assert_eq!(std::mem::size_of::<SeriesData>(), 96);
    // id 8 + lock 8 + data 96 + label set 8: with the Arc's count a
    // series takes a 128-byte allocation (a mimalloc size class).
    assert_eq!(std::mem::size_of::<MemSeries>(), 120);
}

#[test]
fn rare_box_holds_commit_overflow_and_ooo_samples() {
    let mut d = SeriesData::new();
    assert!(d.ooo().is_none() && d.commits.rare.is_none());
    d.commits.record(1, 0, 10);
    d.commits.record(2, 0, 20);
    assert!(d.commits.rare.is_some());
    assert!(d.append_ooo(5, 1.5, 2));
    assert_eq!(d.ooo().map(|o| o.len()), Some(1));
    // Trimming the overflow keeps the box for the out-of-order samples.
    d.commits.record(3, 2, 30);
    assert_eq!(d.commits.iter().collect::<Vec<_>>(), vec![(3, 30)]);
    assert_eq!(d.value_at(5), Some(1.5f64.to_bits()));
    d.clear_ooo();
    assert!(d.ooo().is_none() && d.commits.rare.is_none());
    // And the other way round.
    assert!(d.append_ooo(6, 2.5, 3));
    d.commits.record(4, 0, 40);
    d.clear_ooo();
    assert_eq!(d.commits.iter().count(), 2);
    assert!(d.commits.rare.is_some());
    d.commits.record(5, 4, 50);
    assert!(d.commits.rare.is_none());
    assert_eq!(d.commits.last_seq(), 5);
}

/// The append path's fields share the series record's first cache line
/// (assuming `Arc`'s count before the value, as triomphe lays it out), the
/// commit's the second, and the allocation is 128 bytes: two lines.
#[test]
fn series_record_hot_fields_in_first_cache_line() {
    use std::mem::{align_of, offset_of, size_of, size_of_val};
    // The Arc allocation: the count, then the record, in 128 bytes.
    let alloc = 8 + size_of::<MemSeries>();
    assert!(align_of::<MemSeries>() <= 8 && alloc == 128, "{alloc}");
    let data = offset_of!(MemSeries, data);
    let m = parking_lot::Mutex::new(SeriesData::new());
    let inner = m.data_ptr() as usize - (&m as *const _ as usize);
    println!(
        "SeriesData at {inner} in the mutex of {} bytes",
        size_of_val(&m)
    );
    let head = data + inner + offset_of!(SeriesData, head);
    assert!(8 + offset_of!(MemSeries, id) + 8 <= 64);
    // The lock word.
    assert!(8 + data + inner <= 64);
    // t, v, acc, t_delta, the count/window bytes and the buffer's length:
    // 40 bytes from the chunk start.
    assert!(8 + head + 40 <= 64, "head chunk state at {}", 8 + head);
    // The commit log and flags end within the second 64 bytes.
    let commits = data + inner + offset_of!(SeriesData, commits);
    assert!(
        8 + commits + size_of::<CommitLog>() <= 128,
        "{}",
        8 + commits
    );
}

#[test]
fn cardinality_stats_as_the_tsdb_status_page_shows_them() {
    let h = Head::new(HeadOptions {
        chunk_range_ms: 1_000_000,
    });
    let mut app = h.appender();
    // 3 series of "up" (jobs a, a, b), 1 of "go_info".
    for (i, (name, job, inst)) in [
        ("up", "a", "x:1"),
        ("up", "a", "y:1"),
        ("up", "b", "x:1"),
        ("go_info", "b", "x:1"),
    ]
    .into_iter()
    .enumerate()
    {
        let l = ls(&[("__name__", name), ("instance", inst), ("job", job)]);
        app.append(0, &l, 1000 + i as i64, 1.0).unwrap();
    }
    app.commit().unwrap();
    let s = h.cardinality(10);
    assert_eq!(s.num_series, 4);
    // __name__: up, go_info; instance: x:1, y:1; job: a, b.
    assert_eq!(s.num_label_pairs, 6);
    assert_eq!(s.chunk_count, 4);
    assert_eq!((s.min_time, s.max_time), (1000, 1003));
    let v = |p: &[(&str, u64)]| -> Vec<(String, u64)> {
        p.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    };
    assert_eq!(
        s.series_count_by_metric_name,
        v(&[("up", 3), ("go_info", 1)])
    );
    assert_eq!(
        s.label_value_count_by_label_name,
        v(&[("__name__", 2), ("instance", 2), ("job", 2)])
    );
    // Bytes of values times series: "up" 2*3 + "go_info" 7; "x:1" 3*3 + "y:1" 3.
    assert_eq!(
        s.memory_in_bytes_by_label_name,
        v(&[("__name__", 13), ("instance", 12), ("job", 4)])
    );
    assert_eq!(
        s.series_count_by_label_value_pair[..3],
        v(&[("__name__=up", 3), ("instance=x:1", 3), ("job=a", 2)])[..]
    );
    // Cut to the limit.
    assert_eq!(h.cardinality(1).series_count_by_label_value_pair.len(), 1);
    let e = Head::default().cardinality(10);
    assert_eq!((e.num_series, e.num_label_pairs, e.chunk_count), (0, 0, 0));
}
