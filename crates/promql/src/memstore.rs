//! A small in-memory [`Queryable`] for tests and the promqltest runner.

use koban_model::{Labels, Matcher};
use koban_storage::{MemSeries, Querier, Queryable, Result, SelectHints, Series, SeriesSet};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

#[derive(Default)]
struct Inner {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    /// Series that (in the test file) held native histogram samples, which
    /// this engine does not support.
    histogram: std::collections::HashSet<Labels>,
    /// Series label sets by metric name, for `__name__="x"` selects.
    by_name: std::collections::HashMap<String, std::collections::BTreeSet<Labels>>,
}

/// In-memory storage: a sorted map of series to sorted samples.
#[derive(Default, Clone)]
pub struct MemStore {
    inner: Arc<RwLock<Inner>>,
    /// Set when a select returned a series marked as histogram.
    pub histogram_touched: Arc<AtomicBool>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples to a series (merged and kept sorted; later wins on equal timestamps).
    pub fn add(&self, labels: Labels, samples: &[(i64, f64)]) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.by_name
            .entry(labels.metric_name().to_string())
            .or_default()
            .insert(labels.clone());
        let s = g.series.entry(labels).or_default();
        s.extend_from_slice(samples);
        s.sort_by_key(|x| x.0);
        let mut out: Vec<(i64, f64)> = Vec::with_capacity(s.len());
        for x in s.drain(..) {
            match out.last_mut() {
                Some(l) if l.0 == x.0 => *l = x,
                _ => out.push(x),
            }
        }
        *s = out;
    }

    /// Marks a series as holding (unsupported) native histograms.
    pub fn mark_histogram(&self, labels: Labels) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.series.entry(labels.clone()).or_default();
        g.by_name
            .entry(labels.metric_name().to_string())
            .or_default()
            .insert(labels.clone());
        g.histogram.insert(labels);
    }

    pub fn clear(&self) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        g.series.clear();
        g.histogram.clear();
        g.by_name.clear();
    }
}

struct MemQuerier {
    store: MemStore,
    mint: i64,
    maxt: i64,
}

impl Queryable for MemStore {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>> {
        Ok(Box::new(MemQuerier {
            store: self.clone(),
            mint,
            maxt,
        }))
    }
}

fn matches(l: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(l.get(&m.name)))
}

impl Querier for MemQuerier {
    fn select(
        &self,
        _sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet> {
        let g = self.store.inner.read().unwrap_or_else(|e| e.into_inner());
        let (mint, maxt) = match hints {
            Some(h) => (h.start.max(self.mint), h.end.min(self.maxt)),
            None => (self.mint, self.maxt),
        };
        let mut out: Vec<Result<Box<dyn Series>>> = Vec::new();
        let name_eq = matchers.iter().find(|m| {
            m.name == koban_model::METRIC_NAME && m.kind == koban_model::MatchType::Equal
        });
        let candidates: Box<dyn Iterator<Item = (&Labels, &Vec<(i64, f64)>)>> = match name_eq {
            Some(m) => Box::new(
                g.by_name
                    .get(&m.value)
                    .into_iter()
                    .flat_map(|set| set.iter())
                    .filter_map(|l| g.series.get_key_value(l)),
            ),
            None => Box::new(g.series.iter()),
        };
        for (l, s) in candidates {
            if !matches(l, matchers) {
                continue;
            }
            if g.histogram.contains(l) {
                self.store.histogram_touched.store(true, Ordering::Relaxed);
            }
            let lo = s.partition_point(|x| x.0 < mint);
            let hi = s.partition_point(|x| x.0 <= maxt);
            if lo >= hi {
                continue;
            }
            out.push(Ok(Box::new(MemSeries {
                labels: l.clone(),
                samples: s[lo..hi].to_vec(),
            })));
        }
        Ok(Box::new(out.into_iter()))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        let g = self.store.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = g
            .series
            .keys()
            .filter(|l| matches(l, matchers) && l.has(name))
            .map(|l| l.get(name).to_string())
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let g = self.store.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = g
            .series
            .keys()
            .filter(|l| matches(l, matchers))
            .flat_map(|l| l.iter().map(|x| x.name.clone()))
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }
}
