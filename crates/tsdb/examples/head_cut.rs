//! Times a head cut and a compaction through `Db::maintain`:
//! `series` series scraped every 15s for 8h of synthetic time.
//!
//! `cargo run --release -p koban-tsdb --example head_cut [series]`

use koban_model::Labels;
use koban_storage::Appendable;
use koban_tsdb::{Db, DbOptions};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("koban-head-cut-{}", std::process::id()));
    let db = Arc::new(
        Db::open(
            &dir,
            DbOptions {
                wal_fsync_interval: None,
                ..Default::default()
            },
        )
        .expect("open"),
    );
    let store = db.clone();
    let sets: Vec<Labels> = (0..n)
        .map(|i| {
            Labels::from_pairs([
                ("__name__".to_string(), format!("metric_{}", i % 100)),
                ("instance".into(), format!("host-{}", i / 100)),
                ("job".into(), "node".into()),
            ])
        })
        .collect();
    let mut refs = vec![0u64; n];
    let t0 = Instant::now();
    let step = 15_000;
    let hours = 8;
    let mut samples = 0u64;
    let mut maintain_total = std::time::Duration::ZERO;
    for k in 0..(hours * 3600 * 1000 / step) {
        let t = k * step;
        let mut app = db.appender();
        for (i, r) in refs.iter_mut().enumerate() {
            *r = app
                .append(*r, &sets[i], t, (t / 1000 + i as i64) as f64)
                .expect("append");
        }
        app.commit().expect("commit");
        samples += n as u64;
        if t % (3600 * 1000) == 0 {
            let m = Instant::now();
            let r = store.maintain().expect("maintain");
            let took = m.elapsed();
            maintain_total += took;
            if !r.cut.is_empty() || !r.compacted.is_empty() {
                println!("t={}h maintain {:?}: {:?}", t / 3_600_000, took, r);
            }
        }
    }
    let st = store.stats().blocks;
    println!(
        "{samples} samples appended in {:?} (maintain {:?}); blocks={} bytes={} ({:.2} B/sample in blocks) cuts={} compactions={}",
        t0.elapsed(),
        maintain_total,
        st.blocks,
        st.bytes,
        st.bytes as f64 / store.block_metas().iter().map(|m| m.stats.num_samples).sum::<u64>().max(1) as f64,
        st.head_cuts,
        st.compactions
    );
    drop(store);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
