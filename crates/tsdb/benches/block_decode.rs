//! Decode speed of the block chunk encoding (ns/sample is time / 4096).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use koban_tsdb::block::chunk_encoding::{decode, encode, DecodeScratch};
use koban_tsdb::encoding::Decbuf;

fn series(kind: u32) -> Vec<(i64, f64)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut acc = 0i64;
    (0..4096)
        .map(|i| {
            acc += 15000 + (rnd() % 30000) as i64;
            let v = match kind {
                0 => 42.0,
                1 => acc as f64,
                2 => acc as f64 / 100.0,
                3 => {
                    if rnd() % 5 == 0 {
                        (rnd() % 100_000) as f64 / 100.0
                    } else {
                        1.5
                    }
                }
                _ => f64::from_bits(rnd() >> 2),
            };
            (1_700_000_000_000 + i * 15_000, v)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("block_chunk_decode_4096");
    g.throughput(Throughput::Elements(4096));
    for (kind, name) in [
        (0, "const"),
        (1, "int_counter"),
        (2, "decimal_counter"),
        (3, "sparse_gauge"),
        (4, "random_floats"),
    ] {
        let s = series(kind);
        let mut b = Vec::new();
        encode(&s, &mut b);
        let mut out = Vec::with_capacity(4096);
        let mut scratch = DecodeScratch::default();
        g.bench_function(name, |bch| {
            bch.iter(|| {
                out.clear();
                decode(&mut Decbuf::new(&b), s[0].0, &mut out, &mut scratch).expect("valid chunk");
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
