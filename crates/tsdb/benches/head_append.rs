//! Head append + commit throughput in a scrape-like pattern: 200 targets of
//! 507 series each, one commit per target "scrape", targets taken in turn so
//! a target's series are cold in the CPU caches when it is scraped again
//! (as in `shared/bench/ingest.sh`). No WAL: this measures the head alone.
//! Per-sample figure: the "thrpt" line (elements = samples per scrape).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use koban_model::Labels;
use koban_storage::Appendable;
use koban_tsdb::{Head, HeadOptions};

// The allocator the binary uses: series records' placement matters here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TARGETS: usize = 200;
const SERIES: usize = 507;

fn bench(c: &mut Criterion) {
    let head = Head::new(HeadOptions {
        chunk_range_ms: 2 * 3600 * 1000,
    });
    let t0 = 1_700_000_000_000i64;
    let mut refs = vec![[0u64; SERIES]; TARGETS];
    for (i, tr) in refs.iter_mut().enumerate() {
        let mut app = head.appender();
        for (j, r) in tr.iter_mut().enumerate() {
            let l = Labels::from_pairs([
                ("__name__".to_string(), format!("node_metric_{}", j / 4)),
                ("cpu".into(), format!("{}", j % 4)),
                ("instance".into(), format!("127.0.0.1:{}", 21000 + i)),
                ("job".into(), "node".into()),
            ]);
            *r = app.append(0, &l, t0, j as f64).expect("append");
        }
        app.commit().expect("commit");
    }
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
            let t = t0 + k * 5_000;
            let mut app = head.appender();
            for (j, &r) in refs[i].iter().enumerate() {
                // Counters grow at different rates, a quarter stays constant.
                let v = match j % 4 {
                    0 => j as f64,
                    1 => (k * j as i64) as f64,
                    2 => (k * 1000 + (k * 7919) % 13) as f64,
                    _ => (k as f64) * 0.25 + j as f64,
                };
                black_box(app.append(r, &Labels::empty(), t, v).expect("append"));
            }
            app.commit().expect("commit");
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
