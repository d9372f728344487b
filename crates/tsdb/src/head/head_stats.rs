//! Cardinality statistics of the head for the TSDB status page
//! (`/api/v1/status/tsdb`), computed as Prometheus computes them from its
//! head postings.

use super::Head;
use std::sync::atomic::Ordering;

/// The head's cardinality figures; every list is sorted by count (largest
/// first, then by name) and cut to the asked limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardinalityStats {
    pub num_series: u64,
    /// Distinct label name/value pairs.
    pub num_label_pairs: u64,
    /// In-memory chunks (closed and open) of every series.
    pub chunk_count: u64,
    /// Smallest and largest sample time; `i64::MAX`/`i64::MIN` when empty.
    pub min_time: i64,
    pub max_time: i64,
    /// (metric name, series count).
    pub series_count_by_metric_name: Vec<(String, u64)>,
    /// (label name, number of distinct values).
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// (label name, bytes of its values summed over the series having them).
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    /// ("name=value", series count).
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// Keeps the top `n` of `v` by count, then name.
fn top(mut v: Vec<(String, u64)>, n: usize) -> Vec<(String, u64)> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

impl Head {
    /// Cardinality statistics (top `limit` of each list). Walks the
    /// postings and every series: for status pages, not hot paths.
    pub fn cardinality(&self, limit: usize) -> CardinalityStats {
        let i = &self.inner;
        let (mut by_metric, mut values, mut bytes, mut pairs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut num_pairs = 0u64;
        {
            let syms = i.symbols.read();
            let p = i.postings.read();
            let metric = syms.lookup(koban_model::METRIC_NAME);
            for n in p.names() {
                let name = syms.get(n).unwrap_or_default();
                let (mut distinct, mut size) = (0u64, 0u64);
                for (v, list) in p.values(n) {
                    let value = syms.get(v).unwrap_or_default();
                    let count = list.len() as u64;
                    distinct += 1;
                    size += value.len() as u64 * count;
                    if Some(n) == metric {
                        by_metric.push((value.to_string(), count));
                    }
                    pairs.push((format!("{name}={value}"), count));
                }
                num_pairs += distinct;
                values.push((name.to_string(), distinct));
                bytes.push((name.to_string(), size));
            }
        }
        let mut chunks = 0u64;
        for shard in &i.slab {
            let series: Vec<_> = shard.read().slots.iter().flatten().cloned().collect();
            for s in series {
                let d = s.data.lock();
                chunks += d.closed.len() as u64 + u64::from(d.head.num_samples() > 0);
            }
        }
        CardinalityStats {
            num_series: i.num_series.load(Ordering::Relaxed),
            num_label_pairs: num_pairs,
            chunk_count: chunks,
            min_time: self.min_time().min(self.ooo_min_time()),
            max_time: self.max_time(),
            series_count_by_metric_name: top(by_metric, limit),
            label_value_count_by_label_name: top(values, limit),
            memory_in_bytes_by_label_name: top(bytes, limit),
            series_count_by_label_value_pair: top(pairs, limit),
        }
    }
}
