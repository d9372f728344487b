//! Merging queriers: the head and block queriers of a `Db` appear as one.

use koban_model::{Labels, Matcher};
use koban_storage::{Querier, SampleIterator, SelectHints, Series, SeriesSet, StorageError};

/// A querier over several sources (blocks, head). Series with equal labels
/// are merged into one; samples with equal timestamps across sources are
/// returned once (the first source's value wins).
pub struct MergeQuerier {
    queriers: Vec<Box<dyn Querier>>,
}

impl MergeQuerier {
    pub fn new(queriers: Vec<Box<dyn Querier>>) -> Self {
        MergeQuerier { queriers }
    }
}

impl Querier for MergeQuerier {
    fn select(
        &self,
        sorted: bool,
        hints: Option<&SelectHints>,
        matchers: &[Matcher],
    ) -> Result<SeriesSet, StorageError> {
        if self.queriers.len() == 1 {
            return self.queriers[0].select(sorted, hints, matchers);
        }
        let mut sets: Vec<Vec<Box<dyn Series>>> = Vec::with_capacity(self.queriers.len());
        for q in &self.queriers {
            sets.push(q.select(true, hints, matchers)?.collect::<Result<_, _>>()?);
        }
        // Usually only one source (the blocks or the head) has the series:
        // nothing to merge.
        if sets.iter().filter(|s| !s.is_empty()).count() <= 1 {
            let only = sets.into_iter().find(|s| !s.is_empty()).unwrap_or_default();
            return Ok(Box::new(only.into_iter().map(Ok)));
        }
        // Every source sorted by labels, then a k-way merge.
        let mut all: Vec<(Labels, usize, Box<dyn Series>)> = Vec::new();
        for (i, set) in sets.into_iter().enumerate() {
            for s in set {
                all.push((s.labels().clone(), i, s));
            }
        }
        // A stable sort by (labels, source) is the merge of sorted runs.
        all.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut out: Vec<Box<dyn Series>> = Vec::new();
        let mut group: Vec<Box<dyn Series>> = Vec::new();
        let mut cur: Option<Labels> = None;
        for (l, _, s) in all {
            if cur.as_ref() != Some(&l) {
                if let Some(c) = cur.take() {
                    out.push(merged(c, std::mem::take(&mut group)));
                }
                cur = Some(l);
            }
            group.push(s);
        }
        if let Some(c) = cur {
            out.push(merged(c, group));
        }
        Ok(Box::new(out.into_iter().map(Ok)))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut v = Vec::new();
        for q in &self.queriers {
            v.extend(q.label_values(name, matchers)?);
        }
        v.sort();
        v.dedup();
        Ok(v)
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut v = Vec::new();
        for q in &self.queriers {
            v.extend(q.label_names(matchers)?);
        }
        v.sort();
        v.dedup();
        Ok(v)
    }
}

fn merged(labels: Labels, mut parts: Vec<Box<dyn Series>>) -> Box<dyn Series> {
    if parts.len() == 1 {
        if let Some(p) = parts.pop() {
            return p;
        }
    }
    Box::new(MergedSeries { labels, parts })
}

struct MergedSeries {
    labels: Labels,
    parts: Vec<Box<dyn Series>>,
}

impl Series for MergedSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        let its = self.parts.iter().map(|p| (p.iter(), None)).collect();
        Box::new(MergeIterator {
            its,
            started: false,
        })
    }
}

/// A source iterator with its peeked next sample.
type Peeked<'a> = (Box<dyn SampleIterator + 'a>, Option<(i64, f64)>);

/// K-way merge of sample iterators by timestamp, dropping duplicates.
struct MergeIterator<'a> {
    its: Vec<Peeked<'a>>,
    started: bool,
}

impl SampleIterator for MergeIterator<'_> {
    fn next(&mut self) -> Option<(i64, f64)> {
        if !self.started {
            self.started = true;
            for (it, peek) in &mut self.its {
                *peek = it.next();
            }
        }
        // Sources are few (blocks overlapping the range + head): linear scan.
        let mut best: Option<(usize, (i64, f64))> = None;
        for (i, (_, p)) in self.its.iter().enumerate() {
            if let Some(s) = p {
                if best.is_none_or(|b| s.0 < b.1 .0) {
                    best = Some((i, *s));
                }
            }
        }
        let (_, s) = best?;
        for (it, p) in &mut self.its {
            if p.is_some_and(|x| x.0 == s.0) {
                *p = it.next();
            }
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_model::MatchType;
    use koban_storage::MemSeries;

    struct Fixed(Vec<MemSeries>);

    impl Querier for Fixed {
        fn select(
            &self,
            _: bool,
            _: Option<&SelectHints>,
            _: &[Matcher],
        ) -> Result<SeriesSet, StorageError> {
            let v: Vec<_> = self.0.clone();
            Ok(Box::new(
                v.into_iter().map(|s| Ok(Box::new(s) as Box<dyn Series>)),
            ))
        }
        fn label_values(&self, name: &str, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
            Ok(self
                .0
                .iter()
                .map(|s| s.labels.get(name).to_string())
                .filter(|v| !v.is_empty())
                .collect())
        }
        fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>, StorageError> {
            Ok(self
                .0
                .iter()
                .flat_map(|s| s.labels.iter().map(|l| l.name.clone()))
                .collect())
        }
    }

    fn ms(name: &str, samples: &[(i64, f64)]) -> MemSeries {
        MemSeries {
            labels: Labels::from_pairs([("__name__", name)]),
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn merges_series_and_samples() {
        let block = Fixed(vec![ms("a", &[(1, 1.0), (2, 2.0)]), ms("b", &[(1, 9.0)])]);
        let head = Fixed(vec![ms("a", &[(2, 2.5), (3, 3.0)]), ms("c", &[(5, 5.0)])]);
        let q = MergeQuerier::new(vec![Box::new(block), Box::new(head)]);
        let m = Matcher::new(MatchType::Regex, "__name__", ".+").unwrap();
        let got: Vec<(String, Vec<(i64, f64)>)> = q
            .select(true, None, &[m])
            .unwrap()
            .map(|s| {
                let s = s.unwrap();
                let mut it = s.iter();
                let mut v = Vec::new();
                while let Some(x) = it.next() {
                    v.push(x);
                }
                (s.labels().metric_name().to_string(), v)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), vec![(1, 1.0), (2, 2.0), (3, 3.0)]),
                ("b".into(), vec![(1, 9.0)]),
                ("c".into(), vec![(5, 5.0)])
            ]
        );
        assert_eq!(
            q.label_values("__name__", &[]).unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__"]);
    }
}
