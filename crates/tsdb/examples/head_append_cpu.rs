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

#[path = "../benches/support/scrape_fleet.rs"]
mod fleet;
use fleet::{create_series, value, SERIES, T0, TARGETS};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let refs = create_series(&head);
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
            let t = T0 + k * 5_000;
            let mut app = head.appender();
            for (j, &r) in refs[i].iter().enumerate() {
                app.append(r, &Labels::empty(), t, value(j, k))
                    .expect("append");
            }
            app.commit().expect("commit");
        }
        let ns = (thread_cpu_ns() - start) as f64 / (scrapes * SERIES) as f64;
        best = best.min(ns);
    }
    println!("head append+commit: {best:.1} ns/sample (best of {runs}, thread CPU time)");
}
