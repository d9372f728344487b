//! In-memory inverted index: label name -> value -> sorted series ids.

use super::symbols::SymbolTable;
use std::collections::HashMap;

#[derive(Default, Debug)]
pub(crate) struct MemPostings {
    /// name symbol -> value symbol -> sorted series slots.
    m: HashMap<u32, HashMap<u32, Vec<u32>>>,
}

impl MemPostings {
    /// Adds slot `id` under every (name, value) pair.
    pub(crate) fn add(&mut self, pairs: impl Iterator<Item = (u32, u32)>, id: u32) {
        for p in pairs {
            let list = self.m.entry(p.0).or_default().entry(p.1).or_default();
            // Fresh slots mostly increase; reused ones are inserted in place.
            match list.last() {
                Some(&last) if last > id => {
                    if let Err(pos) = list.binary_search(&id) {
                        list.insert(pos, id);
                    }
                }
                Some(&last) if last == id => {}
                _ => list.push(id),
            }
        }
    }

    pub(crate) fn remove(&mut self, pairs: impl Iterator<Item = (u32, u32)>, id: u32) {
        for p in pairs {
            if let Some(vals) = self.m.get_mut(&p.0) {
                if let Some(list) = vals.get_mut(&p.1) {
                    if let Ok(pos) = list.binary_search(&id) {
                        list.remove(pos);
                    }
                    if list.is_empty() {
                        vals.remove(&p.1);
                    }
                }
                if vals.is_empty() {
                    self.m.remove(&p.0);
                }
            }
        }
    }

    /// Series ids with label `name`=`value` (symbols).
    pub(crate) fn get(&self, name: u32, value: u32) -> &[u32] {
        self.m
            .get(&name)
            .and_then(|v| v.get(&value))
            .map_or(&[], |l| l.as_slice())
    }

    /// Every value (symbol) of `name` with its postings.
    pub(crate) fn values(&self, name: u32) -> impl Iterator<Item = (u32, &[u32])> {
        self.m
            .get(&name)
            .into_iter()
            .flat_map(|v| v.iter().map(|(k, l)| (*k, l.as_slice())))
    }

    /// Every label name symbol.
    pub(crate) fn names(&self) -> impl Iterator<Item = u32> + '_ {
        self.m.keys().copied()
    }

    /// (value, number of series) for every value of `name`.
    pub(crate) fn value_counts(&self, syms: &SymbolTable, name: &str) -> Vec<(String, u64)> {
        let Some(n) = syms.lookup(name) else {
            return Vec::new();
        };
        self.values(n)
            .map(|(v, l)| (syms.get(v).unwrap_or_default().to_string(), l.len() as u64))
            .collect()
    }
}

/// Intersection of two sorted id lists.
pub(crate) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len() * 16 < large.len() {
        for x in small {
            if large.binary_search(x).is_ok() {
                out.push(*x);
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Union of several sorted id lists.
pub(crate) fn union(lists: Vec<&[u32]>) -> Vec<u32> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists[0].to_vec(),
        _ => {
            let mut v: Vec<u32> = lists.into_iter().flatten().copied().collect();
            v.sort_unstable();
            v.dedup();
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        let big: Vec<u32> = (0..1000).collect();
        assert_eq!(intersect(&[5, 999, 2000], &big), vec![5, 999]);
        assert_eq!(union(vec![&[1, 5], &[2, 5, 9], &[]]), vec![1, 2, 5, 9]);
    }

    #[test]
    fn add_out_of_order_and_remove() {
        let mut p = MemPostings::default();
        let one = || std::iter::once((0u32, 1u32));
        p.add(one(), 5);
        p.add(one(), 3);
        p.add(one(), 9);
        assert_eq!(p.get(0, 1), &[3, 5, 9]);
        p.remove(one(), 5);
        assert_eq!(p.get(0, 1), &[3, 9]);
        p.remove(one(), 3);
        p.remove(one(), 9);
        assert_eq!(p.get(0, 1), &[] as &[u32]);
        assert_eq!(p.names().count(), 0);
    }
}
