//! Measures resident memory per head series: 100k series with 10 labels
//! each and one open 120-sample chunk (15s scrape interval).
//!
//! `cargo run --release -p koban-tsdb --example head_rss [series]`

use koban_model::Labels;
use koban_storage::Appendable;
use koban_tsdb::{Head, HeadOptions};

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    // Build the label sets first so their memory is not charged to the head.
    let sets: Vec<Labels> = (0..n)
        .map(|i| {
            Labels::from_pairs([
                ("__name__".to_string(), format!("metric_{}", i % 200)),
                ("job".into(), format!("job_{}", i % 10)),
                (
                    "instance".into(),
                    format!("10.0.{}.{}:9100", (i / 250) % 250, i % 250),
                ),
                ("env".into(), ["prod", "staging", "dev"][i % 3].to_string()),
                ("region".into(), format!("region-{}", i % 7)),
                ("cluster".into(), format!("cluster-{}", i % 13)),
                ("pod".into(), format!("pod-{}", i / 10)),
                ("container".into(), format!("c{}", i % 5)),
                ("le".into(), format!("{}", (i % 12) as f64 * 0.5)),
                ("code".into(), ["200", "404", "500"][i % 3].to_string()),
            ])
        })
        .collect();
    let head = Head::new(HeadOptions {
        chunk_range_ms: 1 << 40,
    });
    let before = rss_bytes();
    let mut refs = vec![0u64; n];
    let t0 = 1_700_000_000_000i64;
    for k in 0..120i64 {
        let mut app = head.appender();
        for (i, l) in sets.iter().enumerate() {
            let v = if i % 4 == 0 {
                (k * (i as i64 % 50)) as f64
            } else {
                (i % 100) as f64
            };
            refs[i] = app.append(refs[i], l, t0 + k * 15_000, v).expect("append");
        }
        app.commit().expect("commit");
        if k == 0 {
            let r = rss_bytes();
            println!(
                "after first sample: bytes_per_series={}",
                (r - before) / n as u64
            );
        }
    }
    let after = rss_bytes();
    let st = head.stats(3);
    println!(
        "series={} samples={} rss_delta={} MiB bytes_per_series={}",
        st.num_series,
        st.samples_appended,
        (after - before) >> 20,
        (after - before) / n as u64
    );
    drop(sets);
}
