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
    if args.len() != 3 && !(args.len() == 4 && args[1] == "--verify") {
        eprintln!("usage: backfill IN OUT | --read OUT | --verify OUT IN");
        std::process::exit(2);
    }
    let (input, out) = (Path::new(&args[1]), Path::new(&args[2]));
    if args[1] == "--verify" {
        // Every sample of the input (argv[3]) must read back bit-exact from OUT.
        verify(out, Path::new(&args[3]));
        return;
    }
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

/// `name{a="1",b="2"}` with labels sorted and empty values dropped; values
/// in the history files hold no `",` so a split is enough.
fn canonical(series: &str) -> String {
    let Some((name, body)) = series.split_once('{') else {
        return format!("{series}{{}}");
    };
    let body = body.strip_suffix('}').unwrap_or(body);
    let mut pairs: Vec<String> = body
        .split("\",")
        .map(|p| p.trim_end_matches('"').to_string())
        .filter(|p| p.split_once("=\"").is_some_and(|(_, v)| !v.is_empty()))
        .map(|p| p + "\"")
        .collect();
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}

fn verify(out: &Path, input: &Path) {
    use std::collections::HashMap;
    use std::io::BufRead;
    let mut stored: HashMap<String, (Vec<(i64, u64)>, usize)> = HashMap::new();
    for e in std::fs::read_dir(out).expect("readable dir").flatten() {
        let b = koban_tsdb::block::Block::open(&e.path()).expect("open block");
        let q = b.querier(i64::MIN, i64::MAX);
        let m = koban_model::Matcher::new(koban_model::MatchType::Regex, "__name__", ".+")
            .expect("valid regex");
        for s in q.select(false, None, &[m]).expect("select") {
            let s = s.expect("series");
            let l = s.labels();
            let rest: Vec<String> = l
                .iter()
                .filter(|x| x.name != "__name__")
                .map(|x| format!("{}=\"{}\"", x.name, x.value))
                .collect();
            let key = format!("{}{{{}}}", l.metric_name(), rest.join(","));
            let mut it = s.iter();
            let e = stored.entry(key).or_default();
            while let Some((t, v)) = it.next() {
                e.0.push((t, v.to_bits()));
            }
        }
    }
    let f = std::io::BufReader::new(std::fs::File::open(input).expect("open input"));
    let (mut n, mut bad) = (0u64, 0u64);
    for line in f.lines() {
        let line = line.expect("read line");
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut parts = line.rsplitn(3, ' ');
        let ts: i64 = parts
            .next()
            .and_then(|x| x.parse().ok())
            .expect("timestamp");
        let v: f64 = parts.next().and_then(|x| x.parse().ok()).expect("value");
        let key = canonical(parts.next().expect("series"));
        n += 1;
        match stored.get_mut(&key) {
            Some((samples, pos)) if samples.get(*pos) == Some(&(ts * 1000, v.to_bits())) => {
                *pos += 1
            }
            _ => {
                bad += 1;
                if bad < 5 {
                    eprintln!("mismatch: {line}");
                }
            }
        }
    }
    let leftover: usize = stored.values().map(|(s, p)| s.len() - p).sum();
    println!("verified {n} input samples: {bad} mismatches, {leftover} extra stored samples");
    if bad > 0 || leftover > 0 {
        std::process::exit(1);
    }
}
