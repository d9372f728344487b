//! Blocks end to end: writer -> open -> querier, matchers, corruption,
//! compaction and the OpenMetrics backfill, every float bit-exact.

use koban_model::{Labels, MatchType, Matcher};
use koban_storage::Querier;
use koban_tsdb::block::{Block, BlockWriter};
use koban_tsdb::compact::compact;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn m(kind: MatchType, n: &str, v: &str) -> Matcher {
    Matcher::new(kind, n, v).unwrap()
}

fn read_all(q: &dyn Querier, ms: &[Matcher]) -> BTreeMap<Labels, Vec<(i64, u64)>> {
    let mut out = BTreeMap::new();
    for s in q.select(true, None, ms).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        let mut v = Vec::new();
        while let Some((t, x)) = it.next() {
            v.push((t, x.to_bits()));
        }
        // Bulk reads agree with `next`, also after a first `next`.
        let mut bulk = Vec::new();
        s.iter().drain_into(&mut bulk);
        let bulk: Vec<(i64, u64)> = bulk.iter().map(|&(t, x)| (t, x.to_bits())).collect();
        assert_eq!(bulk, v, "{}", s.labels());
        let mut it = s.iter();
        let mut rest = Vec::new();
        if it.next().is_some() {
            it.drain_into(&mut rest);
            assert_eq!(rest.len() + 1, v.len());
            assert!(rest
                .iter()
                .map(|&(t, x)| (t, x.to_bits()))
                .eq(v[1..].iter().copied()));
        }
        out.insert(s.labels().clone(), v);
    }
    out
}

fn write_block(dir: &Path, series: &[(Labels, Vec<(i64, f64)>)]) -> Block {
    let mut w = BlockWriter::new(dir).unwrap();
    for (l, s) in series {
        w.add_series(l.clone(), s).unwrap();
    }
    Block::open(&w.finish().unwrap().unwrap()).unwrap()
}

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

const EDGE: [u64; 9] = [
    0x7ff0_0000_0000_0002,
    0x7ff8_0000_0000_0000,
    0xfff8_dead_beef_0001,
    0x8000_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    1,
    0x000f_ffff_ffff_ffff,
    0x7fef_ffff_ffff_ffff,
];

fn fixture_series() -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut out = Vec::new();
    for i in 0..20 {
        let name = ["up", "node_cpu_seconds_total", "go_goroutines", "edge"][i % 4];
        let labels = ls(&[
            ("__name__", name),
            ("instance", &format!("host-{i}")),
            ("job", if i % 3 == 0 { "a" } else { "b" }),
        ]);
        let samples: Vec<(i64, f64)> = (0..5000)
            .map(|k| {
                let t = 1_000_000 + k * 15_000 + if i % 5 == 0 { (k * 7) % 13 } else { 0 };
                let v = match name {
                    "up" => 1.0,
                    "node_cpu_seconds_total" => (k * (i as i64 + 3) * 37) as f64 / 100.0,
                    "go_goroutines" => ((k / 50) % 9) as f64,
                    _ => f64::from_bits(EDGE[(k as usize + i) % EDGE.len()]),
                };
                (t, v)
            })
            .collect();
        out.push((labels, samples));
    }
    out
}

#[test]
fn write_open_query_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let series = fixture_series();
    let b = write_block(dir.path(), &series);
    assert_eq!(b.meta().stats.num_series, 20);
    assert_eq!(b.meta().stats.num_samples, 100_000);
    let q = b.querier(i64::MIN, i64::MAX);
    let got = read_all(&q, &[m(MatchType::Regex, "__name__", ".+")]);
    assert_eq!(got.len(), 20);
    for (l, s) in &series {
        let want: Vec<(i64, u64)> = s.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(got[l], want, "{l}");
    }
    // Range restriction and seek.
    let q = b.querier(1_000_000 + 15_000 * 100, 1_000_000 + 15_000 * 4500);
    let set = q
        .select(false, None, &[Matcher::equal("instance", "host-1")])
        .unwrap();
    let s: Vec<_> = set.map(|s| s.unwrap()).collect();
    assert_eq!(s.len(), 1);
    let mut it = s[0].iter();
    assert_eq!(it.next().unwrap().0, 1_000_000 + 15_000 * 100);
    assert_eq!(
        it.seek(1_000_000 + 15_000 * 4200).unwrap().0,
        1_000_000 + 15_000 * 4200
    );
    assert_eq!(it.seek(0).unwrap().0, 1_000_000 + 15_000 * 4201);
    let mut n = 2;
    while it.next().is_some() {
        n += 1;
    }
    assert_eq!(n, 4500 - 4200 + 1);
    let mut all = Vec::new();
    s[0].iter().drain_into(&mut all);
    assert_eq!(all.len(), 4500 - 100 + 1);
    assert_eq!(all[0].0, 1_000_000 + 15_000 * 100);
    assert_eq!(all.last().unwrap().0, 1_000_000 + 15_000 * 4500);
    let mut it = s[0].iter();
    it.seek(1_000_000 + 15_000 * 4200);
    let mut rest = Vec::new();
    it.drain_into(&mut rest);
    assert_eq!(rest.len(), 4500 - 4200);
    // Out of range querier sees nothing.
    let q = b.querier(0, 999_999);
    assert!(q
        .select(false, None, &[Matcher::equal("job", "a")])
        .unwrap()
        .next()
        .is_none());
    assert!(q.label_names(&[]).unwrap().is_empty());
}

#[test]
fn matchers_behave_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let s = |pairs: &[(&str, &str)]| (ls(pairs), vec![(1000, 1.0), (2000, 2.0)]);
    let b = write_block(
        dir.path(),
        &[
            s(&[("__name__", "up"), ("job", "api"), ("env", "prod")]),
            s(&[("__name__", "up"), ("job", "api"), ("env", "dev")]),
            s(&[("__name__", "up"), ("job", "db")]),
            s(&[("__name__", "down"), ("job", "dbx")]),
        ],
    );
    let q = b.querier(0, 5000);
    let count = |ms: &[Matcher]| read_all(&q, ms).len();
    assert_eq!(count(&[Matcher::equal("__name__", "up")]), 3);
    assert_eq!(
        count(&[Matcher::equal("__name__", "up"), Matcher::equal("env", "")]),
        1
    );
    assert_eq!(
        count(&[
            Matcher::equal("__name__", "up"),
            m(MatchType::NotEqual, "env", "")
        ]),
        2
    );
    assert_eq!(
        count(&[
            Matcher::equal("__name__", "up"),
            m(MatchType::NotEqual, "env", "prod")
        ]),
        2
    );
    assert_eq!(count(&[m(MatchType::Regex, "job", "db|api")]), 3);
    assert_eq!(count(&[m(MatchType::Regex, "job", "db.*")]), 2);
    assert_eq!(count(&[m(MatchType::Regex, "job", "d[a-z]+")]), 2);
    assert_eq!(
        count(&[
            m(MatchType::Regex, "__name__", ".+"),
            m(MatchType::NotRegex, "job", "db.*")
        ]),
        2
    );
    assert_eq!(
        count(&[
            Matcher::equal("__name__", "up"),
            m(MatchType::Regex, "env", "prod|")
        ]),
        2
    );
    assert_eq!(
        count(&[
            Matcher::equal("__name__", "up"),
            m(MatchType::NotRegex, "env", "")
        ]),
        2
    );
    assert_eq!(count(&[m(MatchType::NotEqual, "job", "api")]), 2);
    assert_eq!(count(&[Matcher::equal("__name__", "nope")]), 0);
    assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "env", "job"]);
    assert_eq!(
        q.label_names(&[Matcher::equal("job", "db")]).unwrap(),
        vec!["__name__", "job"]
    );
    assert_eq!(
        q.label_values("job", &[]).unwrap(),
        vec!["api", "db", "dbx"]
    );
    assert_eq!(
        q.label_values("env", &[Matcher::equal("__name__", "up")])
            .unwrap(),
        vec!["dev", "prod"]
    );
}

fn corrupt_byte(p: &Path, at: usize) {
    let mut b = std::fs::read(p).unwrap();
    b[at] ^= 0x10;
    std::fs::write(p, b).unwrap();
}

#[test]
fn corrupt_files_fail_open_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let b = write_block(dir.path(), &fixture_series());
    let d = b.dir().to_path_buf();
    drop(b);
    let idx = d.join("index");
    corrupt_byte(&idx, 20);
    let e = Block::open(&d).unwrap_err().to_string();
    assert!(e.contains("index") && e.contains("checksum"), "{e}");
    corrupt_byte(&idx, 20);
    Block::open(&d).unwrap();
    let seg = d.join("chunks").join("000001");
    corrupt_byte(&seg, 100);
    let e = Block::open(&d).unwrap_err().to_string();
    assert!(e.contains("000001") && e.contains("checksum"), "{e}");
    corrupt_byte(&seg, 100);
    std::fs::write(d.join("meta.json"), b"{").unwrap();
    let e = Block::open(&d).unwrap_err().to_string();
    assert!(e.contains("meta.json"), "{e}");
}

#[test]
fn compaction_merges_and_deduplicates() {
    let dir = tempfile::tempdir().unwrap();
    let a = ls(&[("__name__", "x"), ("i", "1")]);
    let b = ls(&[("__name__", "x"), ("i", "2")]);
    let c = ls(&[("__name__", "y")]);
    let mut w = BlockWriter::new(dir.path()).unwrap();
    w.add_series_iter(a.clone(), (0..3).map(|k| (10 - k, k as f64)))
        .unwrap();
    let it_block = Block::open(&w.finish().unwrap().unwrap()).unwrap();
    assert_eq!(
        (it_block.meta().min_time, it_block.meta().max_time),
        (8, 11)
    );
    let b1 = write_block(
        dir.path(),
        &[
            (a.clone(), vec![(1, 1.0), (2, 2.0)]),
            (b.clone(), vec![(1, 5.0)]),
        ],
    );
    let b2 = write_block(
        dir.path(),
        &[
            (a.clone(), vec![(2, 2.0), (3, f64::from_bits(EDGE[0]))]),
            (c.clone(), vec![(7, 7.0)]),
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let nb = compact(&[b1.clone(), b2.clone()], out.path())
        .unwrap()
        .unwrap();
    assert_eq!(nb.meta().compaction.level, 2);
    assert_eq!(nb.meta().compaction.sources.len(), 2);
    assert_eq!((nb.meta().min_time, nb.meta().max_time), (1, 8));
    let got = read_all(
        &nb.querier(i64::MIN, i64::MAX),
        &[m(MatchType::Regex, "__name__", ".*")],
    );
    assert_eq!(
        got[&a],
        vec![(1, 1f64.to_bits()), (2, 2f64.to_bits()), (3, EDGE[0])]
    );
    assert_eq!(got[&b], vec![(1, 5f64.to_bits())]);
    assert_eq!(got[&c], vec![(7, 7f64.to_bits())]);
}

/// Parses history.py output independently of the backfill code.
fn expected_from_file(p: &Path) -> BTreeMap<String, Vec<(i64, u64)>> {
    let mut out: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for line in std::fs::read_to_string(p).unwrap().lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut parts = line.rsplitn(3, ' ');
        let ts: i64 = parts.next().unwrap().parse().unwrap();
        let v: f64 = parts.next().unwrap().parse().unwrap();
        let series = canonical(parts.next().unwrap());
        out.entry(series)
            .or_default()
            .push((ts * 1000, v.to_bits()));
    }
    out
}

/// `name{b="1",a="2"}` with the labels sorted (history.py values hold no `",`).
fn canonical(series: &str) -> String {
    let (name, body) = series.split_once('{').unwrap();
    let body = body.strip_suffix('}').unwrap();
    let mut pairs: Vec<String> = body
        .split("\",")
        .map(|p| p.trim_end_matches('"').to_string() + "\"")
        .collect();
    // Empty values mean "no label", as in Prometheus.
    pairs.retain(|p| p.split_once("=\"").is_some_and(|(_, v)| !v.is_empty()));
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}

fn render(l: &Labels) -> String {
    let mut s = l.metric_name().to_string();
    let rest: Vec<String> = l
        .iter()
        .filter(|x| x.name != "__name__")
        .map(|x| format!("{}=\"{}\"", x.name, x.value))
        .collect();
    s.push('{');
    s.push_str(&rest.join(","));
    s.push('}');
    s
}

fn history_script() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/history.py");
    let ok = p.exists()
        && std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    ok.then_some(p)
}

/// A Rust stand-in for history.py (same line shape) when python3 or the script is missing.
fn generate_history(p: &Path) {
    use std::fmt::Write;
    let mut s = String::new();
    let mut x: u64 = 0x1234_5678;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for j in 0..60 {
        let mut v = 1000.0f64;
        writeln!(s, "# TYPE m{j} gauge").unwrap();
        for k in 0..480i64 {
            match j % 3 {
                0 => v += (rnd() % 3000) as f64,
                1 if rnd() % 10 == 0 => {
                    v = ((v * (1.0 + ((rnd() % 400) as f64 - 200.0) / 10_000.0)) * 100.0).round()
                        / 100.0
                }
                _ => {}
            }
            writeln!(
                s,
                "m{j}{{job=\"node\",instance=\"127.0.0.1:21000\"}} {v:?} {}",
                1_700_000_000 + k * 15
            )
            .unwrap();
        }
    }
    s.push_str("# EOF\n");
    std::fs::write(p, s).unwrap();
}

#[test]
fn backfill_history_reads_back_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("history.om");
    match history_script() {
        Some(script) => {
            let out = std::process::Command::new("python3")
                .arg(script)
                .args(["--targets", "1", "--hours", "2", "--format", "openmetrics"])
                .output()
                .unwrap();
            assert!(out.status.success());
            std::fs::write(&om, out.stdout).unwrap();
        }
        None => generate_history(&om),
    }
    let want = expected_from_file(&om);
    let total: usize = want.values().map(Vec::len).sum();
    let data = dir.path().join("data");
    let mut calls = 0;
    let stats = koban_tsdb::backfill::create_blocks_from_openmetrics_with(
        &om,
        &data,
        // Small flushes force several staged blocks and a real compaction.
        &koban_tsdb::backfill::BackfillOptions {
            flush_samples: total / 3 + 1,
            ..Default::default()
        },
        |_, _| calls += 1,
    )
    .unwrap();
    assert!(calls > 0);
    assert_eq!(stats.samples as usize, total);
    assert_eq!(stats.blocks.len(), 1, "fully compacted into one block");
    let entries: Vec<_> = std::fs::read_dir(&data).unwrap().collect();
    assert_eq!(entries.len(), 1, "staging removed");
    let b = Block::open(&stats.blocks[0]).unwrap();
    assert_eq!(b.meta().stats.num_samples as usize, total);
    let got = read_all(
        &b.querier(i64::MIN, i64::MAX),
        &[m(MatchType::Regex, "__name__", ".+")],
    );
    assert_eq!(got.len(), want.len());
    for (l, s) in &got {
        let key = render(l);
        assert!(Some(s) == want.get(&key), "{key} differs");
    }
}

#[test]
fn backfill_scrape_ordered_input_with_duplicates() {
    use std::fmt::Write;
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("scrapes.om");
    let mut s = String::from("# HELP a_total A.\n# TYPE a_total counter\n");
    let t0 = 1_700_000_000i64;
    // 5h of 60s scrapes across 2h windows, three series interleaved.
    for k in 0..300 {
        for i in 0..3 {
            writeln!(
                s,
                "a_total{{i=\"{i}\",path=\"/x\\\"y\"}} {} {}",
                k * (i + 1),
                t0 + k * 60
            )
            .unwrap();
        }
    }
    // A duplicate (later value wins) and an out-of-order sample.
    writeln!(s, "a_total{{i=\"0\",path=\"/x\\\"y\"}} 12345 {}", t0 + 60).unwrap();
    writeln!(s, "b 0.5 {}.5", t0 - 3600).unwrap();
    s.push_str("# EOF\n");
    std::fs::write(&om, s).unwrap();
    let data = dir.path().join("data");
    let stats = koban_tsdb::backfill::create_blocks_from_openmetrics_with(
        &om,
        &data,
        &koban_tsdb::backfill::BackfillOptions {
            flush_samples: 100,
            ..Default::default()
        },
        |_, _| {},
    )
    .unwrap();
    assert_eq!(stats.samples, 902);
    assert_eq!(stats.series, 4);
    assert_eq!(stats.blocks.len(), 1);
    let b = Block::open(&stats.blocks[0]).unwrap();
    assert_eq!(b.meta().stats.num_samples, 901);
    assert_eq!(b.meta().min_time, (t0 - 3600) * 1000 + 500);
    let got = read_all(
        &b.querier(i64::MIN, i64::MAX),
        &[m(MatchType::Regex, "__name__", ".+")],
    );
    let a0 = ls(&[("__name__", "a_total"), ("i", "0"), ("path", "/x\"y")]);
    assert_eq!(got[&a0].len(), 300);
    assert_eq!(got[&a0][1], ((t0 + 60) * 1000, 12345f64.to_bits()));
    let a2 = ls(&[("__name__", "a_total"), ("i", "2"), ("path", "/x\"y")]);
    assert_eq!(
        got[&a2][299],
        ((t0 + 299 * 60) * 1000, (299f64 * 3.0).to_bits())
    );
}

#[test]
fn backfill_reports_the_bad_line_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("bad.om");
    std::fs::write(&om, "# TYPE x gauge\nx 1 100\nx{a=\"b} 2 200\n# EOF\n").unwrap();
    let data = dir.path().join("data");
    let e = koban_tsdb::backfill::create_blocks_from_openmetrics(&om, &data, |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.om:3:"), "{e}");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
}

#[test]
fn many_series_cross_postings_containers() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlockWriter::new(dir.path()).unwrap();
    for i in 0..70_000u32 {
        let l = ls(&[
            ("__name__", "s"),
            ("i", &i.to_string()),
            ("odd", if i % 2 == 1 { "1" } else { "0" }),
        ]);
        w.add_series(l, &[(i64::from(i), f64::from(i)), (100_000, 1.0)])
            .unwrap();
    }
    let b = Block::open(&w.finish().unwrap().unwrap()).unwrap();
    assert_eq!(b.index().num_series(), 70_000);
    let q = b.querier(i64::MIN, i64::MAX);
    let n = q
        .select(
            false,
            None,
            &[Matcher::equal("odd", "1"), m(MatchType::Regex, "i", "6.*")],
        )
        .unwrap()
        .count();
    // i starting with 6 below 70000: 6, 60-69, 600-699, 6000-6999, 60000-69999 -> 11111; half odd.
    assert_eq!(n, 5_555);
    let got = read_all(&q, &[Matcher::equal("i", "69999")]);
    let l = ls(&[("__name__", "s"), ("i", "69999"), ("odd", "1")]);
    assert_eq!(
        got[&l],
        vec![(69_999, 69_999f64.to_bits()), (100_000, 1f64.to_bits())]
    );
    assert_eq!(q.label_values("odd", &[]).unwrap(), vec!["0", "1"]);
}

#[test]
fn tombstones_hide_samples_persist_and_compact_away() {
    let dir = tempfile::tempdir().unwrap();
    let a = ls(&[("__name__", "x"), ("i", "1")]);
    let b = ls(&[("__name__", "x"), ("i", "2")]);
    let samples: Vec<(i64, f64)> = (0..100).map(|k| (k * 10, k as f64)).collect();
    let blk = write_block(
        dir.path(),
        &[(a.clone(), samples.clone()), (b.clone(), samples.clone())],
    );
    let before = blk.querier(0, 1000);
    assert_eq!(
        blk.delete(100, 199, &[Matcher::equal("i", "1")]).unwrap(),
        1
    );
    assert_eq!(blk.delete(0, 2000, &[Matcher::equal("i", "2")]).unwrap(), 1);
    // A querier opened before the delete keeps its snapshot.
    assert_eq!(
        read_all(&before, &[Matcher::equal("__name__", "x")])[&a].len(),
        100
    );
    let check = |blk: &Block| {
        let got = read_all(&blk.querier(0, 1000), &[Matcher::equal("__name__", "x")]);
        assert_eq!(got.len(), 1, "fully deleted series is gone");
        assert_eq!(got[&a].len(), 90);
        assert!(got[&a].iter().all(|s| !(100..=199).contains(&s.0)));
    };
    check(&blk);
    let reopened = Block::open(blk.dir()).unwrap();
    check(&reopened);
    let out = tempfile::tempdir().unwrap();
    let c = compact(&[reopened], out.path()).unwrap().unwrap();
    assert!(c.tombstones().is_empty());
    assert_eq!(c.meta().stats.num_samples, 90);
    check(&c);
}
