//! Exposition parser throughput on a node_exporter-like page.
//!
//! Reports time per sample (`Throughput::Elements(samples)`) for iterating
//! entries without materialising labels, and with full label materialisation.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use koban_model::exposition::{Entry, Format, Parser};

fn load_page() -> Vec<u8> {
    let candidates = [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/bench/node_template.prom"
        ),
        "/work/shared/bench/node_template.prom",
    ];
    for c in candidates {
        if let Ok(b) = std::fs::read(c) {
            return b;
        }
    }
    // Fallback: a synthetic page of similar shape.
    let mut s = String::new();
    for i in 0..500 {
        s.push_str(&format!("# HELP metric_{i} Some help text for the metric number {i}.\n# TYPE metric_{i} gauge\n"));
        s.push_str(&format!(
            "metric_{i}{{cpu=\"{}\",mode=\"idle\"}} {}.25\n",
            i % 8,
            i * 1000
        ));
    }
    s.into_bytes()
}

fn count_samples(page: &[u8]) -> u64 {
    let mut p = Parser::new(page, Format::Text);
    let mut n = 0;
    while let Ok(Some(e)) = p.next() {
        if matches!(e, Entry::Sample(_)) {
            n += 1;
        }
    }
    n
}

fn memchr_count(page: &[u8]) -> usize {
    page.iter().filter(|&&b| b == b'\n').count()
}

fn bench(c: &mut Criterion) {
    let page = load_page();
    let samples = count_samples(&page);
    let mut g = c.benchmark_group("exposition");
    g.throughput(Throughput::Elements(samples));
    g.bench_function("parse_no_labels", |b| {
        b.iter(|| {
            let mut p = Parser::new(black_box(&page), Format::Text);
            let mut sum = 0.0;
            while let Ok(Some(e)) = p.next() {
                if let Entry::Sample(s) = e {
                    sum += s.value;
                    black_box(s.series);
                }
            }
            sum
        })
    });
    g.bench_function("parse_with_labels", |b| {
        b.iter(|| {
            let mut p = Parser::new(black_box(&page), Format::Text);
            let mut n = 0;
            while let Ok(Some(e)) = p.next() {
                if let Entry::Sample(s) = e {
                    n += s.labels().len();
                }
            }
            n
        })
    });
    g.bench_function("parse_visit_labels", |b| {
        b.iter(|| {
            let mut p = Parser::new(black_box(&page), Format::Text);
            let mut n = 0;
            while let Ok(Some(e)) = p.next() {
                if let Entry::Sample(s) = e {
                    s.for_each_label(|k, v| n += k.len() + v.len());
                }
            }
            n
        })
    });
    // Calibration: the cost of merely finding every line end.
    g.bench_function("baseline_count_lines", |b| {
        b.iter(|| memchr_count(black_box(&page)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
