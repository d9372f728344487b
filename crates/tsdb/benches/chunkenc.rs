//! XOR chunk append and decode throughput (per-sample figures: divide the
//! reported time by the element count, or read the "thrpt" line).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use koban_storage::SampleIterator;
use koban_tsdb::chunkenc::{XorChunk, XorIterator};

/// A synthetic scrape series: 15s interval with ±2 ms jitter
/// (delta-of-delta is 0 only about 1 time in 5; the scrape loop aligns
/// timestamps within 2 ms to the schedule, as Prometheus does, so stored
/// data is rarely like this) or, with `aligned`, exactly every 15 s; a
/// counter-like value that changes at random one sample in three (the same
/// in both).
///
/// These groups decode one chunk again and again: the branch predictor can
/// learn its 120-sample pattern, or fail to (the same code measures ~4.5 or
/// ~9 ns/sample depending on code layout and on the predictor's state). The
/// node group below decodes many distinct chunks of real-shaped data.
fn samples(n: usize, aligned: bool) -> Vec<(i64, f64)> {
    let mut x: u64 = 42;
    let mut t = 1_700_000_000_000i64;
    let mut v = 1000.0;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += if aligned {
                15_000
            } else {
                15_000 + (x % 5) as i64 - 2
            };
            if x.is_multiple_of(3) {
                v += (x % 100) as f64;
            }
            (t, v)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    bench_group(c, "xor_chunk_120", &samples(120, false), true);
    bench_group(c, "xor_chunk_120_aligned", &samples(120, true), false);
    bench_node(c);
}

/// Head chunks as a node exporter fills them: the first 30 minutes (120
/// samples at 15 s) of each of the 507 series of one target, from
/// `shared/bench/history.py --targets 1 --hours 0.5`, encoded by
/// `XorChunk::append` (framing: a 2-byte big-endian length before each
/// chunk). Decoding them all, one after another, is what a query over the
/// head decodes; unlike decoding one chunk again and again, the branch
/// predictor cannot learn the bit pattern.
fn bench_node(c: &mut Criterion) {
    let mut data: &[u8] = include_bytes!("data/node_head_chunks.bin");
    let mut chunks = Vec::new();
    while let [a, b, rest @ ..] = data {
        let n = u16::from_be_bytes([*a, *b]) as usize;
        chunks.push(&rest[..n]);
        data = &rest[n..];
    }
    let total: usize = chunks
        .iter()
        .map(|b| XorIterator::new(*b).num_samples())
        .sum();
    let mut g = c.benchmark_group("xor_chunk_node_507x120");
    g.throughput(Throughput::Elements(total as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut acc = 0.0;
            let mut n = 0i64;
            for ch in &chunks {
                let mut it = XorIterator::new(black_box(*ch));
                while let Some((t, v)) = it.next() {
                    acc += v;
                    n ^= t;
                }
            }
            black_box((acc, n))
        })
    });
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(120);
    g.bench_function("decode_drain", |b| {
        b.iter(|| {
            let mut n = 0;
            for ch in &chunks {
                out.clear();
                XorIterator::new(black_box(*ch)).drain_into(&mut out);
                n += out.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

fn bench_group(c: &mut Criterion, name: &str, s: &[(i64, f64)], append: bool) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(s.len() as u64));
    if append {
        g.bench_function("append", |b| {
            b.iter(|| {
                let mut ch = XorChunk::with_capacity(256);
                for &(t, v) in s {
                    ch.append(t, v);
                }
                black_box(ch.bytes().len())
            })
        });
    }
    let mut ch = XorChunk::new();
    for &(t, v) in s {
        ch.append(t, v);
    }
    let bytes = ch.bytes().to_vec();
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut it = XorIterator::new(black_box(&bytes[..]));
            let mut acc = 0.0;
            let mut n = 0i64;
            while let Some((t, v)) = it.next() {
                acc += v;
                n ^= t;
            }
            black_box((acc, n))
        })
    });
    // The bulk path queries use (`SampleIterator::drain_into`).
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(s.len());
    g.bench_function("decode_drain", |b| {
        b.iter(|| {
            out.clear();
            XorIterator::new(black_box(&bytes[..])).drain_into(&mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
