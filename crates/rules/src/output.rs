//! Building output label sets without allocating when they are already
//! known, and appending through refs: the shared tools of recording and
//! alerting rules' write phase.
//!
//! An output label set is a base set (a query result's labels) with
//! *overrides*: sorted, unique `(name, value)` pairs that replace or add a
//! label, an empty value removing it. Rules hash the merged set to find
//! their previous output series by hash, compare it in place, and build
//! (allocate) it only for a series seen for the first time.

use koban_model::{Label, Labels};
use koban_storage::{Appender, SeriesRef, StorageError};

/// Sorted, unique overrides; an empty value removes the label.
pub(crate) type Overrides = Vec<(String, String)>;

/// Sorts `pairs` by name, the last of equal names winning.
pub(crate) fn overrides(pairs: impl IntoIterator<Item = (String, String)>) -> Overrides {
    let mut v: Overrides = pairs.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Overrides = Vec::with_capacity(v.len());
    for p in v {
        match out.last_mut() {
            Some(l) if l.0 == p.0 => *l = p,
            _ => out.push(p),
        }
    }
    out
}

/// Calls `f` with every pair of `base` merged with `ov`, in name order,
/// skipping empty values.
#[inline]
pub(crate) fn for_each_merged(
    base: &Labels,
    ov: &[(String, String)],
    mut f: impl FnMut(&str, &str),
) {
    let b = base.as_slice();
    let (mut i, mut j) = (0, 0);
    while i < b.len() || j < ov.len() {
        let take_base = match (b.get(i), ov.get(j)) {
            (Some(l), Some(o)) => match l.name.as_str().cmp(o.0.as_str()) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal => {
                    i += 1; // overridden
                    false
                }
                std::cmp::Ordering::Greater => false,
            },
            (Some(_), None) => true,
            _ => false,
        };
        if take_base {
            let l = &b[i];
            f(&l.name, &l.value);
            i += 1;
        } else {
            let o = &ov[j];
            if !o.1.is_empty() {
                f(&o.0, &o.1);
            }
            j += 1;
        }
    }
}

/// Hash of the merged set (xxh3 over name/value with separators).
pub(crate) fn merged_hash(base: &Labels, ov: &[(String, String)]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for_each_merged(base, ov, |n, v| {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    });
    h.digest()
}

/// True when the merged set equals `out`.
pub(crate) fn merged_eq(base: &Labels, ov: &[(String, String)], out: &Labels) -> bool {
    let o = out.as_slice();
    let mut k = 0;
    let mut eq = true;
    for_each_merged(base, ov, |n, v| {
        if eq {
            match o.get(k) {
                Some(l) if l.name == n && l.value == v => {}
                _ => eq = false,
            }
        }
        k += 1;
    });
    eq && k == o.len()
}

/// The merged set, allocated.
pub(crate) fn merged(base: &Labels, ov: &[(String, String)]) -> Labels {
    let mut v = Vec::with_capacity(base.len() + ov.len());
    for_each_merged(base, ov, |n, val| v.push(Label::new(n, val)));
    Labels::from_sorted_unchecked(v)
}

static EMPTY: Labels = Labels::empty();

/// One output series: its labels and the storage ref of its last append.
#[derive(Debug, Clone)]
pub(crate) struct OutSeries {
    pub labels: Labels,
    pub sref: SeriesRef,
}

impl OutSeries {
    pub fn new(labels: Labels) -> Self {
        OutSeries { labels, sref: 0 }
    }

    /// Appends `v` at `t`, by ref where the storage resolves refs itself
    /// (retrying with the labels when the ref went stale).
    pub fn append(
        &mut self,
        app: &mut dyn Appender,
        resolves_refs: bool,
        t: i64,
        v: f64,
    ) -> Result<(), StorageError> {
        let by_ref = resolves_refs && self.sref != 0;
        let l = if by_ref { &EMPTY } else { &self.labels };
        let r = match app.append(self.sref, l, t, v) {
            Err(StorageError::InvalidLabels) if by_ref => app.append(0, &self.labels, t, v),
            r => r,
        };
        match r {
            Ok(r) => {
                self.sref = r;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Appends a stale marker, ignoring the refusals Prometheus ignores for
/// them (the series may be written by another rule meanwhile).
pub(crate) fn append_stale(app: &mut dyn Appender, resolves_refs: bool, s: &mut OutSeries, t: i64) {
    match s.append(app, resolves_refs, t, koban_model::STALE_NAN) {
        Ok(())
        | Err(
            StorageError::OutOfOrder
            | StorageError::TooOld
            | StorageError::DuplicateSample
            | StorageError::OutOfBounds,
        ) => {}
        Err(e) => tracing::warn!(series = %s.labels, error = %e, "adding stale sample failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_overrides_adds_and_removes() {
        let base = Labels::from_pairs([("__name__", "up"), ("job", "a"), ("zone", "z")]);
        let ov = overrides([
            ("__name__".to_string(), "rec".to_string()),
            ("job".into(), "".into()),
            ("k".into(), "v".into()),
        ]);
        let m = merged(&base, &ov);
        assert_eq!(m.to_string(), r#"{__name__="rec", k="v", zone="z"}"#);
        assert!(merged_eq(&base, &ov, &m));
        assert_eq!(merged_hash(&base, &ov), m.hash());
        let other = Labels::from_pairs([("__name__", "rec"), ("k", "v")]);
        assert!(!merged_eq(&base, &ov, &other));
    }
}
