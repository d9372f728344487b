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

    /// Resolves a series' `[name, value, ...]` symbol ids into labels.
    pub(crate) fn resolve(&self, lset: &[u32]) -> Labels {
        let v: Vec<Label> = lset
            .chunks_exact(2)
            .map(|p| Label::new(self.get(p[0]).unwrap_or_default(), self.get(p[1]).unwrap_or_default()))
            .collect();
        // Series labels were interned from a valid (sorted, unique) Labels.
        Labels::from_sorted_unchecked(v)
    }
}
