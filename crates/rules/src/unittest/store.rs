//! In-memory storage for one test group: the input series are loaded into
//! it step by step, the rules under test append to it and queries read it.
//! It behaves like a TSDB without an out-of-order window: a sample older
//! than its series' last one is refused, an equal one is dropped and a
//! different value at the same timestamp is a duplicate.

use koban_model::{Labels, MatchType, Matcher, METRIC_NAME};
use koban_storage::{
    Appendable, Appender, CommitReport, MemSeries, Querier, Queryable, Result, SelectHints, Series,
    SeriesRef, SeriesSet, StorageError,
};
use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A series and its samples, as a select walks them.
type SeriesEntry<'a> = (&'a Labels, &'a Vec<(i64, f64)>);

#[derive(Default)]
struct Inner {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
    by_name: HashMap<String, BTreeSet<Labels>>,
}

impl Inner {
    /// Adds one sample with the TSDB's rules (see the module docs).
    fn add(&mut self, labels: &Labels, t: i64, v: f64) -> Result<()> {
        if labels.is_empty() {
            return Err(StorageError::InvalidLabels);
        }
        if !self.series.contains_key(labels) {
            self.by_name
                .entry(labels.metric_name().to_string())
                .or_default()
                .insert(labels.clone());
            self.series.insert(labels.clone(), Vec::new());
        }
        let s = self
            .series
            .get_mut(labels)
            .expect("BUG: series inserted above");
        match s.last() {
            Some(&(lt, lv)) if lt == t => {
                if lv.to_bits() == v.to_bits() {
                    Ok(())
                } else {
                    Err(StorageError::DuplicateSample)
                }
            }
            Some(&(lt, _)) if lt > t => Err(StorageError::OutOfOrder),
            _ => {
                s.push((t, v));
                Ok(())
            }
        }
    }
}

/// Shared handle; clones see the same data.
#[derive(Default, Clone)]
pub struct TestStorage {
    inner: Arc<RwLock<Inner>>,
}

impl TestStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one input sample directly (no appender); refusals are as an
    /// appender's and the sample is then left out.
    pub fn add(&self, labels: &Labels, t: i64, v: f64) -> Result<()> {
        self.inner.write().add(labels, t, v)
    }

    /// Every series with all its samples, in label order (for `--debug`).
    pub fn dump(&self) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let g = self.inner.read();
        g.series
            .iter()
            .map(|(l, s)| (l.clone(), s.clone()))
            .collect()
    }
}

struct TestAppender {
    store: TestStorage,
    staged: Vec<(Labels, i64, f64)>,
}

impl Appender for TestAppender {
    fn append(&mut self, _r: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        if labels.is_empty() {
            return Err(StorageError::InvalidLabels);
        }
        self.staged.push((labels.clone(), t, v));
        Ok(0)
    }

    fn commit(self: Box<Self>) -> Result<CommitReport> {
        let mut g = self.store.inner.write();
        let mut rep = CommitReport::default();
        for (l, t, v) in &self.staged {
            match g.add(l, *t, *v) {
                Ok(()) => rep.floats += 1,
                Err(e) => {
                    rep.count_refused(&e);
                }
            }
        }
        Ok(rep)
    }

    fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Appendable for TestStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(TestAppender {
            store: self.clone(),
            staged: Vec::new(),
        })
    }
}

struct TestQuerier {
    store: TestStorage,
    mint: i64,
    maxt: i64,
}

impl Queryable for TestStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>> {
        Ok(Box::new(TestQuerier {
            store: self.clone(),
            mint,
            maxt,
        }))
    }
}

fn matches(l: &Labels, ms: &[Matcher]) -> bool {
    ms.iter().all(|m| m.matches(l.get(&m.name)))
}

impl TestQuerier {
    /// Whether the series has a sample in the querier's range.
    fn in_range(&self, s: &[(i64, f64)]) -> bool {
        let lo = s.partition_point(|x| x.0 < self.mint);
        lo < s.len() && s[lo].0 <= self.maxt
    }
}

impl Querier for TestQuerier {
    fn select(
        &self,
        _sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet> {
        let g = self.store.inner.read();
        let (mint, maxt) = match hints {
            Some(h) => (h.start.max(self.mint), h.end.min(self.maxt)),
            None => (self.mint, self.maxt),
        };
        let name_eq = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && m.kind == MatchType::Equal);
        let candidates: Box<dyn Iterator<Item = SeriesEntry<'_>>> = match name_eq {
            Some(m) => Box::new(
                g.by_name
                    .get(&m.value)
                    .into_iter()
                    .flat_map(|set| set.iter())
                    .filter_map(|l| g.series.get_key_value(l)),
            ),
            None => Box::new(g.series.iter()),
        };
        let mut out: Vec<Result<Box<dyn Series>>> = Vec::new();
        for (l, s) in candidates {
            if !matches(l, matchers) {
                continue;
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
        let g = self.store.inner.read();
        let v: BTreeSet<String> = g
            .series
            .iter()
            .filter(|(l, s)| l.has(name) && matches(l, matchers) && self.in_range(s))
            .map(|(l, _)| l.get(name).to_string())
            .collect();
        Ok(v.into_iter().collect())
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        let g = self.store.inner.read();
        let v: BTreeSet<String> = g
            .series
            .iter()
            .filter(|(l, s)| matches(l, matchers) && self.in_range(s))
            .flat_map(|(l, _)| l.iter().map(|x| x.name.clone()))
            .collect();
        Ok(v.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str) -> Labels {
        Labels::from_pairs([(METRIC_NAME, name)])
    }

    #[test]
    fn appends_become_visible_on_commit_with_tsdb_refusals() {
        let s = TestStorage::new();
        let mut a = s.appender();
        a.append(0, &l("x"), 10, 1.0).unwrap();
        a.append(0, &l("x"), 10, 1.0).unwrap();
        a.append(0, &l("x"), 10, 2.0).unwrap();
        a.append(0, &l("x"), 5, 2.0).unwrap();
        assert!(s.dump().is_empty(), "nothing visible before commit");
        let rep = a.commit().unwrap();
        assert_eq!(rep.floats, 2);
        assert_eq!(rep.duplicate, 1);
        assert_eq!(rep.out_of_order, 1);
        assert_eq!(s.dump(), vec![(l("x"), vec![(10, 1.0)])]);
    }

    #[test]
    fn selects_by_name_and_time_range() {
        let s = TestStorage::new();
        for t in 0..5 {
            s.add(&l("x"), t * 10, t as f64).unwrap();
        }
        s.add(&l("y"), 0, 9.0).unwrap();
        let q = s.querier(10, 30).unwrap();
        let m = [Matcher::new(MatchType::Equal, METRIC_NAME, "x").unwrap()];
        let got: Vec<_> = q.select(true, None, &m).unwrap().collect();
        assert_eq!(got.len(), 1);
        let mut pts = Vec::new();
        got[0].as_ref().unwrap().iter().drain_into(&mut pts);
        assert_eq!(pts, vec![(10, 1.0), (20, 2.0), (30, 3.0)]);
        assert_eq!(q.label_values(METRIC_NAME, &[]).unwrap(), vec!["x"]);
    }
}
