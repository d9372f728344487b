//! WAL samples record: size and encode/decode cost on node-exporter-like
//! scrapes. Prints bytes/sample of the first (type 2) and compact (type 3)
//! formats, then benchmarks encoding and decoding one scrape (per-sample
//! figures: read the "thrpt" line). A criterion benchmark run as an
//! example (no Cargo.toml entry needed):
//! `KOBAN_SHARED_DIR=/work/shared cargo run --release -p koban-tsdb --example wal_record -- --bench`
//!
//! The page is `$KOBAN_SHARED_DIR/bench/node_template.prom` when set, its
//! values evolved as `bench/fleet.py` does (counters grow at a per-series
//! rate, gauges drift now and then, rounded to integers or 2 decimals);
//! otherwise a synthetic page of the same shape.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use koban_tsdb::wal::record::{self, Record};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Other,
}

/// (kind, rate, value, integer-valued) per series of the page.
fn template() -> Vec<(Kind, f64, f64, bool)> {
    let mut rng = Rng(1);
    let text = std::env::var("KOBAN_SHARED_DIR")
        .ok()
        .and_then(|d| std::fs::read_to_string(format!("{d}/bench/node_template.prom")).ok());
    let Some(text) = text else {
        eprintln!("KOBAN_SHARED_DIR not set: synthetic page");
        return (0..1000)
            .map(|i| match i % 4 {
                0 => (Kind::Other, 0.0, 0.0, true),
                1 => (
                    Kind::Counter,
                    rng.pick(&[0.0, 0.5, 3.0, 40.0, 2000.0]),
                    1e6,
                    true,
                ),
                2 => (Kind::Gauge, 0.05, 1234.56, false),
                _ => (Kind::Other, 0.0, 1.0, true),
            })
            .collect();
    };
    let mut types = std::collections::HashMap::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(n), Some(t)) = (it.next(), it.next()) {
                types.insert(n.to_string(), t.to_string());
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, val)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = val.parse::<f64>() else { continue };
        let name = key.split('{').next().unwrap_or(key);
        let mut base = name;
        for suf in ["_bucket", "_sum", "_count", "_total"] {
            if let Some(b) = name.strip_suffix(suf) {
                if types.contains_key(b) {
                    base = b;
                }
            }
        }
        let typ = types.get(base).or(types.get(name)).map_or("untyped", |s| s);
        let int = val
            .trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit());
        let (kind, rate) = if typ == "summary" && key.contains("quantile=") {
            (Kind::Gauge, 0.2)
        } else if matches!(typ, "counter" | "summary" | "histogram") {
            (
                Kind::Counter,
                rng.pick(&[0.0, 0.0, 0.01, 0.5, 3.0, 40.0, 2000.0]),
            )
        } else if typ == "gauge" {
            (Kind::Gauge, rng.pick(&[0.0, 0.0, 0.0, 0.05, 0.2]))
        } else {
            (Kind::Other, 0.0)
        };
        out.push((kind, rate, v, int));
    }
    out
}

/// One scrape `dt` seconds after the previous, as fleet.py renders it.
fn evolve(page: &mut [(Kind, f64, f64, bool)], rng: &mut Rng, dt: f64) {
    for (kind, rate, v, int) in page.iter_mut() {
        if *rate == 0.0 {
            continue;
        }
        if *kind == Kind::Gauge {
            if rng.unit() < *rate && *v != 0.0 {
                *v *= 1.0 + (rng.unit() * 0.04 - 0.02);
            }
        } else {
            *v += *rate * dt * (0.5 + rng.unit());
        }
        *v = if *int {
            v.round()
        } else {
            (*v * 100.0).round() / 100.0
        };
    }
}

/// `targets` x `scrapes` commits of one page each, with head-like refs
/// (`generation << 32 | slot`, created in page order per target).
fn scrapes(targets: usize, scrapes: usize) -> Vec<Vec<(u64, i64, f64)>> {
    let tmpl = template();
    let mut rng = Rng(2);
    let mut pages: Vec<_> = (0..targets).map(|_| tmpl.clone()).collect();
    let mut out = Vec::new();
    for s in 0..scrapes {
        for (j, page) in pages.iter_mut().enumerate() {
            evolve(page, &mut rng, 5.0);
            let t = 1_700_000_000_000 + s as i64 * 5_000 + j as i64;
            out.push(
                page.iter()
                    .enumerate()
                    .map(|(i, &(_, _, v, _))| {
                        let id = (j * page.len() + i + 1) as u64;
                        ((id << 32) | id, t, v)
                    })
                    .collect(),
            );
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let all = scrapes(50, 20);
    let n: usize = all.iter().map(Vec::len).sum();
    let (mut v1, mut v3, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    for s in &all {
        record::encode_samples_v1(&mut v1, &mut scratch, s);
        record::encode_samples(&mut v3, s);
    }
    eprintln!(
        "samples record bytes/sample over {} scrapes of {} series: type 2 {:.2}, compact {:.2}",
        all.len(),
        all[0].len(),
        v1.len() as f64 / n as f64,
        v3.len() as f64 / n as f64
    );

    let page = all
        .last()
        .expect("BUG: scrapes() returns at least one page");
    let mut g = c.benchmark_group("wal_samples_record");
    g.throughput(Throughput::Elements(page.len() as u64));
    let mut out = Vec::new();
    g.bench_function("encode_v1", |b| {
        b.iter(|| {
            out.clear();
            record::encode_samples_v1(&mut out, &mut scratch, black_box(page));
            black_box(out.len())
        })
    });
    g.bench_function("encode_compact", |b| {
        b.iter(|| {
            out.clear();
            record::encode_samples(&mut out, black_box(page));
            black_box(out.len())
        })
    });
    for (name, enc) in [("decode_v1", true), ("decode_compact", false)] {
        out.clear();
        if enc {
            record::encode_samples_v1(&mut out, &mut scratch, page);
        } else {
            record::encode_samples(&mut out, page);
        }
        let (typ, payload) = (out[0], out[record::HEADER_LEN..].to_vec());
        g.bench_function(name, |b| {
            b.iter(|| match record::decode(typ, black_box(&payload)) {
                Ok(Record::Samples(s)) => black_box(s.len()),
                _ => 0,
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
