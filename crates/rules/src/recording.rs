//! Recording rules: a query result renamed and relabelled, written as new
//! series, with stale markers for series that left the result.

use crate::group::{RuleError, Written};
use crate::output::{
    append_stale, merged, merged_eq, merged_hash, overrides, OutSeries, Overrides,
};
use koban_model::{Labels, METRIC_NAME};
use koban_promql::Sample;
use koban_storage::Appender;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Identity hasher for keys that are already hashes.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// Map keyed by a label-set hash.
pub(crate) type HashKeyed<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// One recorded series and the evaluation that last wrote it.
#[derive(Debug)]
struct Recorded {
    out: OutSeries,
    gen: u64,
}

/// The state of one recording rule: the series it wrote last time.
#[derive(Debug)]
pub(crate) struct RecordingRule {
    /// `__name__` = record plus the rule's (and group's) labels.
    ov: Overrides,
    series: HashKeyed<Recorded>,
    gen: u64,
    /// Per-evaluation scratch: (hash, index into the result).
    scratch: Vec<(u64, usize)>,
}

impl RecordingRule {
    pub fn new(record: &str, labels: &std::collections::BTreeMap<String, String>) -> Self {
        let ov = overrides(
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain([(METRIC_NAME.to_string(), record.to_string())]),
        );
        RecordingRule {
            ov,
            series: HashKeyed::default(),
            gen: 0,
            scratch: Vec::new(),
        }
    }

    /// Writes one evaluation's result at `t`: every sample renamed and
    /// relabelled, then stale markers for the series of the previous
    /// evaluation that are gone. On error (duplicate label sets, limit)
    /// nothing is written and the previous series stay as they were.
    pub fn write(
        &mut self,
        result: &[Sample],
        limit: u64,
        app: &mut dyn Appender,
        resolves_refs: bool,
        t: i64,
        w: &mut Written,
    ) -> Result<(), RuleError> {
        self.scratch.clear();
        for (i, s) in result.iter().enumerate() {
            self.scratch.push((merged_hash(&s.labels, &self.ov), i));
        }
        // Duplicates: equal hashes next to each other once sorted.
        self.scratch.sort_unstable();
        if self.scratch.windows(2).any(|p| p[0].0 == p[1].0) {
            return Err(RuleError::Eval(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            ));
        }
        if limit > 0 && result.len() as u64 > limit {
            return Err(RuleError::Eval(format!(
                "exceeded limit of {limit} with {} series",
                result.len()
            )));
        }
        self.gen += 1;
        let gen = self.gen;
        for &(h, i) in &self.scratch {
            let s = &result[i];
            let rec = match self.series.get_mut(&h) {
                Some(r) if merged_eq(&s.labels, &self.ov, &r.out.labels) => r,
                Some(_) => {
                    // A 64-bit hash collision between two different
                    // series: write this one untracked (no stale marker).
                    let mut o = OutSeries::new(merged(&s.labels, &self.ov));
                    w.record(o.append(app, resolves_refs, t, s.v));
                    continue;
                }
                None => self.series.entry(h).or_insert(Recorded {
                    out: OutSeries::new(merged(&s.labels, &self.ov)),
                    gen,
                }),
            };
            rec.gen = gen;
            w.record(rec.out.append(app, resolves_refs, t, s.v));
        }
        self.series.retain(|_, r| {
            if r.gen == gen {
                return true;
            }
            append_stale(app, resolves_refs, &mut r.out, t);
            false
        });
        Ok(())
    }

    /// Stale markers at `t` for every series (the rule is going).
    pub fn mark_all_stale(&mut self, app: &mut dyn Appender, resolves_refs: bool, t: i64) {
        for (_, mut r) in self.series.drain() {
            append_stale(app, resolves_refs, &mut r.out, t);
        }
    }

    /// Takes over `old`'s series (a reload kept this rule).
    pub fn take_state(&mut self, old: &mut RecordingRule) {
        std::mem::swap(&mut self.series, &mut old.series);
        self.gen = old.gen;
    }

    /// The series this rule wrote last, for stale markers after a reload
    /// removed it.
    pub fn drain_series(&mut self) -> Vec<OutSeries> {
        self.series.drain().map(|(_, r)| r.out).collect()
    }

    /// Number of series written by the last evaluation.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    #[allow(dead_code)]
    pub fn labels_of(&self) -> Vec<Labels> {
        self.series.values().map(|r| r.out.labels.clone()).collect()
    }
}
