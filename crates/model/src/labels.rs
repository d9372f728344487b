//! Label sets: sorted, de-duplicated name/value pairs identifying a series.

use std::fmt;

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set sorted by name with unique names and no empty values.
///
/// Constructors sort and drop empty values, so the invariant holds for every
/// value of this type; code may rely on it (binary search, merge joins).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// The empty label set.
    pub const fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs in any order. Later duplicates of a name
    /// win; empty values are dropped (Prometheus treats them as absent).
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect();
        Self::normalize(&mut v);
        Labels(v)
    }

    /// Builds from a vector, sorting and de-duplicating as [`Labels::from_pairs`].
    pub fn from_vec(mut v: Vec<Label>) -> Self {
        Self::normalize(&mut v);
        Labels(v)
    }

    /// Builds from a vector the caller guarantees is sorted by name and
    /// unique (checked in debug builds). A label set has no empty values;
    /// annotations, which share the type, may.
    pub fn from_sorted_unchecked(v: Vec<Label>) -> Self {
        debug_assert!(
            v.windows(2).all(|w| w[0].name < w[1].name),
            "BUG: labels not sorted"
        );
        Labels(v)
    }

    fn normalize(v: &mut Vec<Label>) {
        // Stable sort keeps insertion order among equal names; keep the last.
        v.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v.drain(..) {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        out.retain(|l| !l.value.is_empty());
        *v = out;
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// The value of `name`, or "" when absent (as Prometheus).
    pub fn get(&self, name: &str) -> &str {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => &self.0[i].value,
            Err(_) => "",
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .is_ok()
    }

    /// The metric name, or "" when absent.
    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME)
    }

    /// A stable 64-bit hash of the whole set (xxh3 over name/value with separators).
    pub fn hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }

    /// Hash of only the named labels (for `by`/`on` grouping).
    pub fn hash_for_labels(&self, names: &[String]) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            if names.iter().any(|n| n == &l.name) {
                h.update(l.name.as_bytes());
                h.update(&[0xff]);
                h.update(l.value.as_bytes());
                h.update(&[0xff]);
            }
        }
        h.digest()
    }

    /// Hash of all labels except the named ones and `__name__` (for `without`/`ignoring`).
    pub fn hash_without_labels(&self, names: &[String]) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            if l.name != METRIC_NAME && !names.iter().any(|n| n == &l.name) {
                h.update(l.name.as_bytes());
                h.update(&[0xff]);
                h.update(l.value.as_bytes());
                h.update(&[0xff]);
            }
        }
        h.digest()
    }

    /// A builder seeded with this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.clone(),
        }
    }

    /// Copy without the metric name.
    pub fn without_metric_name(&self) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| l.name != METRIC_NAME)
                .cloned()
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Writes `{a="1", b="2"}` with Go-style escaping, as Prometheus's `Labels.String()`.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}=\"{}\"", l.name, escape_label_value(&l.value))?;
        }
        f.write_str("}")
    }
}

/// Escapes `\`, `"` and newline as the exposition format requires.
pub fn escape_label_value(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut s = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    std::borrow::Cow::Owned(s)
}

/// True if `s` is a valid legacy label name `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// True if `s` is a valid legacy metric name `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// Mutable label set used while relabelling or building results.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) if value.is_empty() => {
                let n = l.name.clone();
                self.labels.retain(|l| l.name != n);
            }
            Some(l) => l.value = value.to_string(),
            None if value.is_empty() => {}
            None => self.labels.push(Label::new(name, value)),
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    pub fn get(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
            .unwrap_or("")
    }

    /// Keeps only labels for which `f` is true.
    pub fn retain(&mut self, f: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(f);
        self
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    pub fn labels(&self) -> Labels {
        Labels::from_vec(self.labels.clone())
    }

    pub fn into_labels(self) -> Labels {
        Labels::from_vec(self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_dedups_and_drops_empty() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        assert_eq!(l.to_string(), r#"{a="3", b="2"}"#);
        assert_eq!(l.get("a"), "3");
        assert_eq!(l.get("zz"), "");
    }

    #[test]
    fn hash_distinguishes_boundaries() {
        let a = Labels::from_pairs([("a", "bc")]);
        let b = Labels::from_pairs([("ab", "c")]);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn display_escapes() {
        let l = Labels::from_pairs([("a", "x\"y\\z\n")]);
        assert_eq!(l.to_string(), r#"{a="x\"y\\z\n"}"#);
    }

    #[test]
    fn builder_set_and_delete() {
        let mut b = Labels::from_pairs([("a", "1")]).builder();
        b.set("b", "2").set("a", "");
        assert_eq!(b.labels().to_string(), r#"{b="2"}"#);
    }
}
