//! Out-of-order samples of one series, kept apart from its in-order XOR
//! chunks (see `storage.tsdb.out_of_order_time_window`).
//!
//! A series gets an [`OooBuf`] (behind one pointer in `SeriesData`, `None`
//! for every series that never received an out-of-order sample) holding
//! raw samples sorted by timestamp, each with the commit sequence that made
//! it visible (queriers hide samples of commits newer than their watermark,
//! as for in-order samples).
//!
//! A head cut first *seals* the buffers (moves every sample into `sealed`),
//! writes the sealed samples into blocks, then drops the sealed samples it
//! persisted. Samples committed meanwhile go to `open` and stay in the head
//! until the next cut, so a sample appended during a cut is never lost.
//! No timestamp is in both lists.

/// One out-of-order sample and the commit sequence that added it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OooSample {
    pub(crate) t: i64,
    pub(crate) v: f64,
    pub(crate) seq: u64,
}

/// The out-of-order samples of one series.
#[derive(Debug, Default)]
pub(crate) struct OooBuf {
    /// Samples not handed to a head cut yet; sorted by `t`, unique `t`.
    open: Vec<OooSample>,
    /// Samples a head cut is writing into blocks; sorted, unique `t`.
    sealed: Vec<OooSample>,
}

fn find(v: &[OooSample], t: i64) -> Result<usize, usize> {
    v.binary_search_by_key(&t, |s| s.t)
}

impl OooBuf {
    /// Number of samples held.
    pub(crate) fn len(&self) -> usize {
        self.open.len() + self.sealed.len()
    }

    /// Value bits of the sample at `t`, if there is one.
    pub(crate) fn value_at(&self, t: i64) -> Option<u64> {
        for v in [&self.open, &self.sealed] {
            if let Ok(i) = find(v, t) {
                return Some(v[i].v.to_bits());
            }
        }
        None
    }

    /// Inserts a sample; returns false (and changes nothing) if a sample
    /// with that timestamp is already held.
    pub(crate) fn insert(&mut self, s: OooSample) -> bool {
        if find(&self.sealed, s.t).is_ok() {
            return false;
        }
        match find(&self.open, s.t) {
            Ok(_) => false,
            Err(i) => {
                self.open.insert(i, s);
                true
            }
        }
    }

    /// Smallest and largest timestamp held (None when empty).
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        let lo = [self.open.first(), self.sealed.first()]
            .into_iter()
            .flatten()
            .map(|s| s.t)
            .min()?;
        let hi = [self.open.last(), self.sealed.last()]
            .into_iter()
            .flatten()
            .map(|s| s.t)
            .max()?;
        Some((lo, hi))
    }

    /// Moves every open sample to the sealed list.
    pub(crate) fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        if self.sealed.is_empty() {
            std::mem::swap(&mut self.open, &mut self.sealed);
            return;
        }
        let open = std::mem::take(&mut self.open);
        self.sealed = merge(std::mem::take(&mut self.sealed), open);
    }

    /// The sealed samples (sorted).
    pub(crate) fn sealed(&self) -> &[OooSample] {
        &self.sealed
    }

    /// Drops the sealed samples older than `end` (persisted in blocks by
    /// the caller) and returns the rest of the sealed samples to the open
    /// list. Returns the number of samples dropped.
    pub(crate) fn release_sealed(&mut self, end: i64) -> usize {
        let keep_from = self.sealed.partition_point(|s| s.t < end);
        self.sealed.drain(..keep_from);
        if !self.sealed.is_empty() {
            let sealed = std::mem::take(&mut self.sealed);
            self.open = merge(std::mem::take(&mut self.open), sealed);
        }
        self.sealed = Vec::new();
        self.open.shrink_to(self.open.len().max(4));
        keep_from
    }

    /// Drops the samples in `[mint, maxt]` (open and sealed); returns how
    /// many were dropped.
    pub(crate) fn delete_range(&mut self, mint: i64, maxt: i64) -> usize {
        let mut n = 0;
        for v in [&mut self.open, &mut self.sealed] {
            let before = v.len();
            v.retain(|s| s.t < mint || s.t > maxt);
            n += before - v.len();
        }
        n
    }

    /// Appends the samples in `[mint, maxt]` visible at commit watermark
    /// `w` to `out`, in timestamp order.
    pub(crate) fn visible(&self, mint: i64, maxt: i64, w: u64, out: &mut Vec<(i64, f64)>) {
        let start = out.len();
        for v in [&self.open, &self.sealed] {
            let lo = v.partition_point(|s| s.t < mint);
            out.extend(
                v[lo..]
                    .iter()
                    .take_while(|s| s.t <= maxt)
                    .filter(|s| s.seq <= w)
                    .map(|s| (s.t, s.v)),
            );
        }
        if !self.sealed.is_empty() && !self.open.is_empty() {
            out[start..].sort_unstable_by_key(|s| s.0);
        }
    }
}

/// Merges two sorted lists with disjoint timestamps.
fn merge(a: Vec<OooSample>, b: Vec<OooSample>) -> Vec<OooSample> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].t <= b[j].t {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64) -> OooSample {
        OooSample {
            t,
            v: t as f64,
            seq: 1,
        }
    }

    #[test]
    fn insert_seal_release() {
        let mut b = OooBuf::default();
        assert!(b.insert(s(5)));
        assert!(b.insert(s(1)));
        assert!(!b.insert(s(5)));
        assert_eq!(b.value_at(1), Some(1f64.to_bits()));
        b.seal();
        assert_eq!(b.sealed().len(), 2);
        // Sealed timestamps still count as taken.
        assert!(!b.insert(s(1)));
        assert!(b.insert(s(3)));
        assert_eq!(b.time_range(), Some((1, 5)));
        let mut out = Vec::new();
        b.visible(i64::MIN, i64::MAX, 1, &mut out);
        assert_eq!(out, vec![(1, 1.0), (3, 3.0), (5, 5.0)]);
        // Only sealed samples before the end go; later ones reopen.
        assert_eq!(b.release_sealed(4), 1);
        assert!(b.sealed().is_empty());
        out.clear();
        b.visible(2, 5, 0, &mut out);
        assert!(out.is_empty(), "seq 1 hidden at watermark 0");
        b.visible(2, 5, 1, &mut out);
        assert_eq!(out, vec![(3, 3.0), (5, 5.0)]);
        assert_eq!(b.len(), 2);
    }
}
