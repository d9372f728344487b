use super::*;
use crate::memstore::MemStore;

fn store() -> MemStore {
    let s = MemStore::new();
    for i in 0..3 {
        let l = Labels::from_pairs([("__name__", "m_total"), ("i", &i.to_string())]);
        let pts: Vec<(i64, f64)> = (0..100)
            .map(|k| (k * 15_000, (k * (i + 1)) as f64))
            .collect();
        s.add(l, &pts);
    }
    s
}

#[test]
fn instant_and_range() {
    let e = Engine::new(EngineOpts::default());
    let s = store();
    let r = e.instant(&s, "sum(rate(m_total[1m]))", 600_000).unwrap();
    match r.value {
        Value::Vector(v) => {
            assert_eq!(v.len(), 1);
            assert!((v[0].v - 6.0 / 15.0).abs() < 1e-9, "{}", v[0].v);
        }
        other => panic!("{other:?}"),
    }
    let r = e.range(&s, "m_total", 0, 120_000, 60_000).unwrap();
    match r.value {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 3);
            assert_eq!(m[0].points.len(), 3);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn range_blocks_agree_with_instant_queries() {
    let s = MemStore::new();
    for i in 0..3 {
        let l = Labels::from_pairs([("__name__", "c_total"), ("i", &i.to_string())]);
        let pts: Vec<(i64, f64)> = (0..3000)
            .map(|k| (k * 10_000, ((k * (i + 1)) % 977) as f64))
            .collect();
        s.add(l, &pts);
    }
    let e = Engine::new(EngineOpts::default());
    for q in [
        "c_total",
        "sum(rate(c_total[5m]))",
        "max_over_time(rate(c_total[2m])[10m:1m])",
        "c_total offset 3m * on(i) c_total",
        "sum(rate(c_total[5m] @ 900)) + c_total",
        "max_over_time(sum(c_total @ 600)[5m:1m]) - count(c_total)",
        "count(c_total)",
        "sum by (i) ((c_total))",
        "avg(c_total) + min(c_total) - max(c_total)",
        "stddev(c_total) + stdvar without (i) (c_total) + group(c_total)",
        "max_over_time(sum(c_total)[10m:1m])",
        "1 - c_total / (c_total offset 1m)",
        "c_total * on(i) group_left c_total offset 2m",
        "(c_total > 300) or (c_total offset 5m) unless c_total < 100",
    ] {
        let (start, end, step) = (3_000, 29_000_000, 60_000);
        let r = e.range(&s, q, start, end, step).unwrap();
        let Value::Matrix(m) = r.value else {
            panic!("{q}")
        };
        let mut t = start;
        while t <= end {
            let Value::Vector(v) = e.instant(&s, q, t).unwrap().value else {
                panic!("{q}")
            };
            for smp in v {
                let ser = m
                    .iter()
                    .find(|x| x.labels == smp.labels)
                    .unwrap_or_else(|| panic!("{q} {t}"));
                let p = ser
                    .points
                    .iter()
                    .find(|p| p.0 == t)
                    .unwrap_or_else(|| panic!("{q} {t}"));
                assert!(
                    p.1 == smp.v || (p.1.is_nan() && smp.v.is_nan()),
                    "{q} at {t}: {} vs {}",
                    p.1,
                    smp.v
                );
            }
            t += step * 7;
        }
    }
}

/// Large selectors take the block-at-once, two-thread path in range
/// queries: results must equal instant queries bit for bit (sums are
/// order sensitive), including stale markers and gaps.
#[test]
fn block_paths_agree_with_instant_queries() {
    let s = MemStore::new();
    for i in 0..150i64 {
        let l = Labels::from_pairs([
            ("__name__", "g_total"),
            ("i", &i.to_string()),
            ("m", if i % 3 == 0 { "a" } else { "b" }),
        ]);
        let pts: Vec<(i64, f64)> = (0..400)
            .filter(|k| (k + i) % 37 != 0)
            .map(|k| {
                let v = if (k * 7 + i) % 101 == 0 {
                    f64::from_bits(koban_model::STALE_NAN_BITS)
                } else {
                    ((k * (i + 3)) % 1009) as f64 * 0.1 + 1e-3 * i as f64
                };
                (k * 15_000 + i, v)
            })
            .collect();
        s.add(l, &pts);
    }
    let e = Engine::new(EngineOpts::default());
    for q in [
        "sum by (m) (g_total)",
        "avg(g_total)",
        "count(g_total)",
        "stddev by (m) (g_total)",
        "rate(g_total[1m])",
        "sum by (m) (rate(g_total[2m]))",
        "avg_over_time(g_total[3m])",
        "quantile_over_time(0.3, g_total[5m])",
        "max_over_time(rate(g_total[2m])[5m:1m])",
        "sum(max_over_time(g_total[2m:30s]))",
    ] {
        let (start, end, step) = (7_000, 5_900_000, 60_000);
        let Value::Matrix(m) = e.range(&s, q, start, end, step).unwrap().value else {
            panic!("{q}")
        };
        let mut t = start;
        let mut seen = 0;
        while t <= end {
            let Value::Vector(v) = e.instant(&s, q, t).unwrap().value else {
                panic!("{q}")
            };
            for smp in v {
                let ser = m
                    .iter()
                    .find(|x| x.labels == smp.labels)
                    .unwrap_or_else(|| panic!("{q} {t}"));
                let p = ser.points.iter().find(|p| p.0 == t).unwrap();
                assert!(
                    p.1.to_bits() == smp.v.to_bits() || (p.1.is_nan() && smp.v.is_nan()),
                    "{q} at {t}: {} vs {}",
                    p.1,
                    smp.v
                );
                seen += 1;
            }
            t += step;
        }
        let total: usize = m.iter().map(|x| x.points.len()).sum();
        assert_eq!(total, seen, "{q}");
    }
}

/// Every function and aggregation with well-typed arguments, instant and
/// range, must evaluate without panicking.
#[test]
fn every_function_evaluates() {
    use crate::ast::ValueType;
    let s = store();
    let e = Engine::new(EngineOpts::default());
    let arg = |t: ValueType, i: usize| match t {
        ValueType::Vector => "m_total".to_string(),
        ValueType::Matrix => {
            if i.is_multiple_of(2) {
                "m_total[2m]".to_string()
            } else {
                "m_total[2m:30s]".to_string()
            }
        }
        ValueType::Scalar => "0.5".to_string(),
        ValueType::String => "\"i\"".to_string(),
    };
    let mut queries = Vec::new();
    for f in crate::parser::FUNCTIONS {
        let args: Vec<String> = f
            .arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| arg(*t, i))
            .collect();
        queries.push(format!("{}({})", f.name, args.join(", ")));
        if f.variadic != 0 && !args.is_empty() {
            queries.push(format!("{}({})", f.name, args[..args.len() - 1].join(", ")));
        }
    }
    for a in [
        "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
    ] {
        queries.push(format!("{a} by (i) (m_total)"));
        queries.push(format!("{a} without (i) (rate(m_total[1m]))"));
    }
    for a in ["topk", "bottomk", "quantile", "limitk", "limit_ratio"] {
        queries.push(format!("{a}(2, m_total)"));
        queries.push(format!("{a} by (i) (-1, m_total)"));
    }
    queries.push("count_values(\"v\", m_total)".to_string());
    for q in &queries {
        let _ = e.instant(&s, q, 600_000);
        let _ = e.range(&s, q, 0, 1_500_000, 15_000);
    }
}

#[test]
fn hostile_inputs_are_errors() {
    let e = Engine::new(EngineOpts {
        max_samples: 100,
        ..Default::default()
    });
    let s = store();
    assert!(matches!(
        e.range(&s, "m_total", 0, 100, 0),
        Err(QueryError::Execution(_))
    ));
    assert!(
        matches!(e.range(&s, "m_total", 0, 100_000_000, 1), Err(QueryError::Execution(m)) if m.contains("11,000"))
    );
    assert!(matches!(
        e.instant(&s, "m_total[1y]", 1_500_000),
        Err(QueryError::TooManySamples)
    ));
    assert!(matches!(
        e.instant(&s, &"(".repeat(5000), 0),
        Err(QueryError::Parse(_))
    ));
    // Extreme offsets and timestamps must not panic.
    let _ = e.instant(&s, "m_total offset 9223372036854775s", 0);
    let _ = e.instant(&s, "m_total @ -9223372036854775", 0);
    let _ = e.instant(&s, "rate(m_total[5m] offset -9223372036854775s)", 0);
    // Deep but accepted nesting must evaluate without overflowing a 2 MiB stack.
    let deep = "abs(".repeat(60) + "m_total" + &")".repeat(60);
    assert!(e.instant(&s, &deep, 0).is_ok());
    let deep = "max_over_time(".repeat(20) + "m_total" + &"[1m:30s])".repeat(20);
    let _ = Engine::new(EngineOpts {
        timeout: Duration::from_millis(200),
        ..Default::default()
    })
    .instant(&s, &deep, 0);
    let deep = "-(".repeat(40) + "m_total" + &")".repeat(40);
    assert!(e.instant(&s, &deep, 0).is_ok());
    let cancel = AtomicBool::new(true);
    assert!(matches!(
        e.instant_with_cancel(&s, "m_total", 0, Some(&cancel)),
        Err(QueryError::Canceled)
    ));
    let e = Engine::new(EngineOpts {
        timeout: Duration::from_millis(50),
        ..Default::default()
    });
    let r = e.instant(&s, "count_over_time(vector(1)[1000y:1s])", 1_000);
    assert!(
        matches!(
            r,
            Err(QueryError::Timeout(_)) | Err(QueryError::TooManySamples)
        ),
        "{r:?}"
    );
}

/// Data with gaps longer than the lookback delta, stale markers and
/// series that start and end at different times.
fn gappy() -> MemStore {
    let s = MemStore::new();
    for i in 0..4i64 {
        let l = Labels::from_pairs([("__name__", "g"), ("i", &i.to_string())]);
        let pts: Vec<(i64, f64)> = (0..600i64)
            .filter(|k| (k / (40 + 10 * i)) % 3 != 1 && *k >= 30 * i)
            .map(|k| {
                let v = if k % 97 == 13 {
                    f64::from_bits(koban_model::STALE_NAN_BITS)
                } else {
                    (k * (i + 1) % 89) as f64
                };
                (3_600_000 + k * 15_000 + i * 1000, v)
            })
            .collect();
        s.add(l, &pts);
    }
    s
}

/// Subqueries step only where their inner expression can have output;
/// the answers must equal stepping every inner step (`and on() vector(1)`
/// keeps the values but can have output anywhere, so it is stepped in full).
#[test]
fn sparse_subqueries_agree_with_full_stepping() {
    let s = gappy();
    let e = Engine::new(EngineOpts::default());
    for inner in [
        "g",
        "g offset 7m",
        "g offset -3m",
        "rate(g[2m])",
        "sum by (i) (g)",
        "count(g)",
        "g * 2 > 40",
        "-g",
        "g + on(i) g offset 10m",
        "g or g offset 1h",
        "g unless g offset 30m",
        "max_over_time(g[3m:20s])",
        "max_over_time(g[3m:20s] offset 2m)",
        "label_replace(g, \"x\", \"$1\", \"i\", \"(.*)\")",
        "timestamp(g)",
        "clamp_max(g, 20)",
    ] {
        let dense = format!("(({inner}) and on() vector(1))");
        for (q, qd) in [
            (format!("({inner})[3h:7s]"), format!("{dense}[3h:7s]")),
            (
                format!("count_over_time(({inner})[3h:13s])"),
                format!("count_over_time({dense}[3h:13s])"),
            ),
        ] {
            for t in [0, 3_600_000, 5_000_000, 9_000_000, 12_345_000, 20_000_000] {
                let a = e.instant(&s, &q, t).unwrap().value;
                let b = e.instant(&s, &qd, t).unwrap().value;
                assert_eq!(a, b, "{q} at {t}");
            }
        }
        for (f, sq) in [
            ("sum_over_time", "[20m:30s]"),
            ("count_over_time", "[5m:1m]"),
        ] {
            let q = format!("{f}(({inner}){sq})");
            let qd = format!("{f}({dense}{sq})");
            let a = e
                .range(&s, &q, 3_000_000, 14_000_000, 60_000)
                .unwrap()
                .value;
            let b = e
                .range(&s, &qd, 3_000_000, 14_000_000, 60_000)
                .unwrap()
                .value;
            assert_eq!(a, b, "{q}");
            let Value::Matrix(m) = a else { panic!("{q}") };
            assert!(!m.is_empty(), "{q}");
        }
    }
}

/// A subquery over years at a one-second step over minutes of data
/// answers from the samples it reads.
#[test]
fn long_subquery_over_short_data_answers() {
    let s = store();
    let e = Engine::new(EngineOpts {
        timeout: Duration::from_secs(60),
        ..Default::default()
    });
    let Value::Vector(v) = e
        .instant(&s, "count_over_time(m_total[100y:1s])", 1_500_000)
        .unwrap()
        .value
    else {
        panic!()
    };
    // Samples every 15s from 0s to 1485s, each visible for the 300s
    // lookback: every second from 0s to 1500s.
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].v, 1_501.0);
    let Value::Matrix(m) = e
        .range(&s, "sum_over_time(m_total[1y:1s])", 0, 3_000_000, 600_000)
        .unwrap()
        .value
    else {
        panic!()
    };
    assert_eq!(m.len(), 3);
}

/// `max_samples` bounds the step path, the block paths of range queries
/// (grids, block range functions, subquery blocks) and sparse subqueries.
#[test]
fn sample_limit_bounds_every_path() {
    let s = MemStore::new();
    for i in 0..150i64 {
        let l = Labels::from_pairs([("__name__", "c"), ("i", &i.to_string())]);
        let pts: Vec<(i64, f64)> = (0..400).map(|k| (k * 15_000, (k * i) as f64)).collect();
        s.add(l, &pts);
    }
    let small = Engine::new(EngineOpts {
        max_samples: 100,
        ..Default::default()
    });
    let big = Engine::new(EngineOpts::default());
    for q in [
        "c",
        "sum(c)",
        "rate(c[5m])",
        "sum by (i) (rate(c[5m]))",
        "max_over_time(c[10m:1m])",
        "sum(max_over_time(rate(c[2m])[10m:1m]))",
        "count_over_time(c[100y:1s])",
    ] {
        assert!(big.range(&s, q, 600_000, 5_000_000, 60_000).is_ok(), "{q}");
        let r = small.range(&s, q, 600_000, 5_000_000, 60_000);
        assert!(matches!(r, Err(QueryError::TooManySamples)), "{q}: {r:?}");
        let r = small.instant(&s, q, 3_000_000);
        assert!(matches!(r, Err(QueryError::TooManySamples)), "{q}: {r:?}");
    }
}
