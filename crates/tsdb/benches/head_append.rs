//! Head append + commit throughput in a scrape-like pattern: 200 targets of
//! 507 series each, one commit per target "scrape", targets taken in turn so
//! a target's series are cold in the CPU caches when it is scraped again
//! (as in `shared/bench/ingest.sh`). No WAL: this measures the head alone.
//! Per-sample figure: the "thrpt" line (elements = samples per scrape).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use koban_model::Labels;
use koban_storage::Appendable;
use koban_tsdb::{Head, HeadOptions};

#[path = "support/scrape_fleet.rs"]
mod fleet;
use fleet::{create_series, value, SERIES, T0, TARGETS};

// The allocator the binary uses: series records' placement matters here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let head = Head::new(HeadOptions {
        chunk_range_ms: 2 * 3600 * 1000,
    });
    let refs = create_series(&head);
    let mut round = vec![1i64; TARGETS];
    let mut next = 0usize;
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("scrape_append_commit", |b| {
        b.iter(|| {
            let i = next;
            next = (next + 1) % TARGETS;
            let k = round[i];
            round[i] += 1;
            let t = T0 + k * 5_000;
            let mut app = head.appender();
            for (j, &r) in refs[i].iter().enumerate() {
                black_box(
                    app.append(r, &Labels::empty(), t, value(j, k))
                        .expect("append"),
                );
            }
            app.commit().expect("commit");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
