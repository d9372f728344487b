//! Times the benchmark queries over an OpenMetrics history file loaded into
//! the in-memory store.
//!
//! `python3 shared/bench/history.py --targets 2 --hours 8 > /tmp/h.om`
//! `cargo run --release -p koban-promql --example bench_queries -- /tmp/h.om shared/bench/queries.txt`

use koban_model::Labels;
use koban_promql::memstore::MemStore;
use koban_promql::{Engine, EngineOpts, Value};
use std::collections::HashMap;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench_queries HISTORY.om QUERIES.txt");
        std::process::exit(2);
    }
    let text = std::fs::read_to_string(&args[1]).expect("read history");
    let mut series: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some(close) = line.rfind('}') else {
            continue;
        };
        let (desc, rest) = line.split_at(close + 1);
        let mut it = rest.split_whitespace();
        let (Some(v), Some(t)) = (it.next(), it.next()) else {
            continue;
        };
        let v: f64 = v.parse().unwrap_or(f64::NAN);
        let t = (t.parse::<f64>().unwrap_or(0.0) * 1000.0) as i64;
        mint = mint.min(t);
        maxt = maxt.max(t);
        series.entry(desc.to_string()).or_default().push((t, v));
    }
    let store = MemStore::new();
    let n = series.len();
    for (desc, pts) in series {
        let Ok(koban_promql::Expr::VectorSelector(vs)) = koban_promql::parse(&desc) else {
            continue;
        };
        let l = Labels::from_pairs(vs.matchers.into_iter().map(|m| (m.name, m.value)));
        store.add(l, &pts);
    }
    eprintln!("loaded {n} series, {}..{}", mint, maxt);
    let engine = Engine::new(EngineOpts::default());
    let (start, end) = (mint + 7_000, maxt - 53_000);
    for q in std::fs::read_to_string(&args[2])
        .expect("read queries")
        .lines()
    {
        let q = q.trim();
        if q.is_empty() || q.starts_with('#') {
            continue;
        }
        let mut times = Vec::new();
        let mut nseries = 0;
        for _ in 0..3 {
            let t0 = Instant::now();
            let r = engine.range(&store, q, start, end, 60_000);
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            match r {
                Ok(r) => {
                    if let Value::Matrix(m) = r.value {
                        nseries = m.len();
                    }
                }
                Err(e) => eprintln!("{q}: {e}"),
            }
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        println!("{:9.1} ms {:6} series  {q}", times[1], nseries);
    }
}
