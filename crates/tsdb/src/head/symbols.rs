//! String interning for label names and values.

use koban_model::{Label, Labels};
use std::collections::HashMap;
use std::sync::Arc;

/// Interned strings, each stored once and referred to by a u32 id.
/// Symbols are never freed while the process runs (label strings of
/// garbage-collected series stay; they are few compared to live ones).
#[derive(Default, Debug)]
pub(crate) struct SymbolTable {
    map: HashMap<Arc<str>, u32>,
    strs: Vec<Arc<str>>,
}

impl SymbolTable {
    /// The id of `s`, interning it if new.
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.map.get(s) {
            return id;
        }
        let a: Arc<str> = Arc::from(s);
        let id = self.strs.len() as u32;
        self.strs.push(a.clone());
        self.map.insert(a, id);
        id
    }

    /// The id of `s` if interned.
    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        self.map.get(s).copied()
    }

    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        self.strs.get(id as usize).map(|s| &**s)
    }

    /// Resolves a series' encoded label set into labels.
    pub(crate) fn resolve(&self, lset: &[u8]) -> Labels {
        let v: Vec<Label> = pairs(lset)
            .map(|(n, v)| Label::new(self.get(n).unwrap_or_default(), self.get(v).unwrap_or_default()))
            .collect();
        // Series labels were interned from a valid (sorted, unique) Labels.
        Labels::from_sorted_unchecked(v)
    }
}

/// Encodes symbol ids `name0, value0, name1, value1, ...` compactly as
/// LEB128 varints (most ids take 1..3 bytes instead of 4).
pub(crate) fn encode_lset(ids: impl Iterator<Item = u32>) -> Box<[u8]> {
    let mut out = Vec::with_capacity(32);
    for mut u in ids {
        while u >= 0x80 {
            out.push((u as u8) | 0x80);
            u >>= 7;
        }
        out.push(u as u8);
    }
    out.into_boxed_slice()
}

/// Iterates the (name, value) symbol pairs of an encoded label set.
pub(crate) fn pairs(lset: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let mut pos = 0;
    let mut next = move || -> Option<u32> {
        let mut u = 0u32;
        let mut shift = 0;
        loop {
            let b = *lset.get(pos)?;
            pos += 1;
            u |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Some(u);
            }
            shift += 7;
            if shift > 28 {
                return None;
            }
        }
    };
    std::iter::from_fn(move || Some((next()?, next()?)))
}

/// The value symbol of label `name` in an encoded label set.
pub(crate) fn lset_get(lset: &[u8], name: u32) -> Option<u32> {
    pairs(lset).find(|p| p.0 == name).map(|p| p.1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lset_round_trip() {
        let ids = [0u32, 1, 127, 128, 16_383, 16_384, u32::MAX, 5];
        let enc = super::encode_lset(ids.iter().copied());
        let got: Vec<(u32, u32)> = super::pairs(&enc).collect();
        assert_eq!(got, vec![(0, 1), (127, 128), (16_383, 16_384), (u32::MAX, 5)]);
        assert_eq!(super::lset_get(&enc, 127), Some(128));
        assert_eq!(super::lset_get(&enc, 9), None);
    }
}
