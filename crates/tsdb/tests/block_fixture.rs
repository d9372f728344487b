//! Compatibility: blocks written by earlier code are checked in under
//! tests/fixtures/block_v<N>/ and must keep reading back the same data:
//! v1 (value modes CONST, DECIMAL, XOR, DECIMAL+) and v2 (v1's series plus
//! high-entropy ones, which v2 stores in the RAW value mode). Old fixtures
//! are never rewritten; a deliberate format change adds the next version,
//! generated with `cargo test -p koban-tsdb --test block_fixture -- --ignored`
//! after raising `NEWEST`.

use koban_model::{Labels, MatchType, Matcher};
use koban_storage::Querier;
use koban_tsdb::block::{Block, BlockWriter};
use std::path::PathBuf;

/// The newest fixture version (the one `generate_fixture` writes).
const NEWEST: u32 = 2;

fn fixture_dir(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/block_v{version}"))
}

/// Deterministic content exercising every value mode and integer mode of
/// fixture `version`.
fn content(version: u32) -> Vec<(Labels, Vec<(i64, f64)>)> {
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
    if version >= 2 {
        // Random bit patterns (RAW), one series with NaN payloads among them.
        for i in 0..2u64 {
            let labels = Labels::from_pairs([
                ("__name__", "random".to_string()),
                ("instance", format!("r{i}")),
                ("job", "fx".into()),
            ]);
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i;
            let samples = (0..400i64)
                .map(|k| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let bits = if i == 1 && k % 9 == 0 {
                        0x7ff0_0000_0000_0000 | x >> 12
                    } else {
                        x
                    };
                    (1_700_000_000_000 + k * 15_000, f64::from_bits(bits))
                })
                .collect();
            out.push((labels, samples));
        }
    }
    out
}

#[test]
#[ignore]
fn generate_fixture() {
    let dir = fixture_dir(NEWEST);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut w = BlockWriter::new(&dir).unwrap();
    for (l, s) in content(NEWEST) {
        w.add_series(l, &s).unwrap();
    }
    w.finish().unwrap().unwrap();
}

#[test]
fn fixture_blocks_read_back() {
    for version in 1..=NEWEST {
        fixture_reads_back(version);
    }
}

fn fixture_reads_back(version: u32) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixture_dir(version))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one block in the fixture dir");
    let b = Block::open(&dirs.pop().unwrap()).unwrap();
    let want = content(version);
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
