//! The scrape-like workload shared by `benches/head_append.rs` and
//! `examples/head_append_cpu.rs`: 200 targets of 507 series each.

use koban_model::Labels;
use koban_storage::Appendable;
use koban_tsdb::Head;

pub const TARGETS: usize = 200;
pub const SERIES: usize = 507;
pub const T0: i64 = 1_700_000_000_000;

/// Creates every target's series (one commit per target at `T0`) and
/// returns their refs, per target in page order.
pub fn create_series(head: &Head) -> Vec<[u64; SERIES]> {
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
            *r = app.append(0, &l, T0, j as f64).expect("append");
        }
        app.commit().expect("commit");
    }
    refs
}

/// Value of series `j` in scrape round `k`: counters growing at different
/// rates, a quarter constant.
pub fn value(j: usize, k: i64) -> f64 {
    match j % 4 {
        0 => j as f64,
        1 => (k * j as i64) as f64,
        2 => (k * 1000 + (k * 7919) % 13) as f64,
        _ => (k as f64) * 0.25 + j as f64,
    }
}
