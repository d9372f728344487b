//! Compatibility: a block written by the v1 code is checked in under
//! tests/fixtures/block_v1/ and must keep reading back the same data.
//! Regenerate (only on a deliberate format change) with
//! `cargo test -p koban-tsdb --test block_fixture -- --ignored`.

use koban_model::{Labels, MatchType, Matcher};
use koban_storage::Querier;
use koban_tsdb::block::{Block, BlockWriter};
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/block_v1")
}

/// Deterministic content exercising every value mode and integer mode.
fn content() -> Vec<(Labels, Vec<(i64, f64)>)> {
    let edge = [
        0x7ff0_0000_0000_0002u64,
        0x7ff8_0000_0000_0000,
        0x8000_0000_0000_0000,
        0xfff0_0000_0000_0000,
        1,
    ];
    let mut out = Vec::new();
    for i in 0..12i64 {
        let name = ["up", "counter_total", "gauge", "edge", "sparse", "jitter"][i as usize % 6];
        let labels = Labels::from_pairs([
            ("__name__", name.to_string()),
            ("instance", format!("h{i}")),
            ("job", "fx".into()),
        ]);
        let n = 300 + i * 37;
        let samples = (0..n)
            .map(|k| {
                let jitter = if name == "jitter" { (k * 7919) % 23 } else { 0 };
                let t = 1_700_000_000_000 + k * 15_000 + jitter
                    - if k > 100 && name == "up" { 5_000 } else { 0 };
                let v = match name {
                    "up" => 1.0,
                    "counter_total" => (k * k * (i + 1)) as f64,
                    "gauge" => ((k * 31 + i) % 977) as f64 / 100.0,
                    "edge" => f64::from_bits(edge[(k % 5) as usize]),
                    "sparse" => {
                        if k % 40 == 0 {
                            k as f64 * 1.25
                        } else {
                            0.5
                        }
                    }
                    _ => {
                        f64::from_bits(0x4000_0000_0000_0000 ^ (k as u64).wrapping_mul(0x9e37_79b9))
                    }
                };
                (t, v)
            })
            .collect();
        out.push((labels, samples));
    }
    out
}

#[test]
#[ignore]
fn generate_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut w = BlockWriter::new(&dir).unwrap();
    for (l, s) in content() {
        w.add_series(l, &s).unwrap();
    }
    w.finish().unwrap().unwrap();
}

#[test]
fn fixture_block_reads_back() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one block in the fixture dir");
    let b = Block::open(&dirs.pop().unwrap()).unwrap();
    let want = content();
    assert_eq!(b.meta().stats.num_series, want.len() as u64);
    let q = b.querier(i64::MIN, i64::MAX);
    let set = q
        .select(
            true,
            None,
            &[Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()],
        )
        .unwrap();
    let mut got = Vec::new();
    for s in set {
        let s = s.unwrap();
        let mut it = s.iter();
        let mut v = Vec::new();
        while let Some((t, x)) = it.next() {
            v.push((t, x.to_bits()));
        }
        got.push((s.labels().clone(), v));
    }
    let mut want: Vec<(Labels, Vec<(i64, u64)>)> = want
        .into_iter()
        .map(|(l, s)| (l, s.into_iter().map(|(t, v)| (t, v.to_bits())).collect()))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.0, w.0);
        assert!(g.1 == w.1, "{} differs", g.0);
    }
}
