//! CPU time per sample of head append + commit in the scrape pattern of
//! `benches/head_append.rs` (200 targets x 507 series, one commit per
//! target scrape, targets in turn), as thread CPU time: steadier than wall
//! time on a shared machine. Prints the best of 5 runs of 2,000 scrapes.
//!
//! `cargo run --release -p koban-tsdb --example head_append_cpu [SCRAPES] [RUNS]`
//! (under `valgrind --tool=cachegrind --cache-sim=yes` with e.g. `400 2`,
//! the last-level misses are the figure to compare)

use koban_model::Labels;
use koban_storage::Appendable;
use koban_tsdb::{Head, HeadOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TARGETS: usize = 200;
const SERIES: usize = 507;

fn thread_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split_whitespace()
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

fn main() {
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
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (scrapes, runs) = (arg(1, 2000), arg(2, 5));
    let mut k = 1i64;
    let mut best = f64::MAX;
    for _ in 0..runs {
        let start = thread_cpu_ns();
        for s in 0..scrapes {
            let i = s % TARGETS;
            if i == 0 {
                k += 1;
            }
            let t = t0 + k * 5_000;
            let mut app = head.appender();
            for (j, &r) in refs[i].iter().enumerate() {
                let v = match j % 4 {
                    0 => j as f64,
                    1 => (k * j as i64) as f64,
                    2 => (k * 1000 + (k * 7919) % 13) as f64,
                    _ => (k as f64) * 0.25 + j as f64,
                };
                app.append(r, &Labels::empty(), t, v).expect("append");
            }
            app.commit().expect("commit");
        }
        let ns = (thread_cpu_ns() - start) as f64 / (scrapes * SERIES) as f64;
        best = best.min(ns);
    }
    println!("head append+commit: {best:.1} ns/sample (best of {runs}, thread CPU time)");
}
