//! String interning for label names and values.

use koban_model::{Label, Labels};
use std::collections::HashMap;

/// Interned strings, each stored once and referred to by a u32 id.
///
/// Strings live back to back in one arena; a hash map from the string's
/// xxh3 hash to its id finds them (collisions go to a side map). About 30
/// bytes of overhead per distinct string. Symbols are never freed while the
/// process runs (label strings of garbage-collected series stay; they are
/// few compared to live ones).
#[derive(Default, Debug)]
pub(crate) struct SymbolTable {
    arena: String,
    /// id -> (offset, length) in `arena`.
    offs: Vec<(u32, u32)>,
    by_hash: HashMap<u64, u32, BuildIdHasher>,
    /// Further ids whose string has the same hash as `by_hash`'s.
    more: HashMap<u64, Vec<u32>>,
}

/// The xxh3 hash is already uniform: use it as the bucket hash.
#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct BuildIdHasher;

#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ *b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl std::hash::BuildHasher for BuildIdHasher {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

impl SymbolTable {
    /// The id of `s`, interning it if new.
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        let h = xxhash_rust::xxh3::xxh3_64(s.as_bytes());
        if let Some(id) = self.find(h, s) {
            return id;
        }
        let id = self.offs.len() as u32;
        self.offs.push((self.arena.len() as u32, s.len() as u32));
        self.arena.push_str(s);
        match self.by_hash.entry(h) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(h).or_default().push(id)
            }
        }
        id
    }

    fn find(&self, h: u64, s: &str) -> Option<u32> {
        let first = *self.by_hash.get(&h)?;
        if self.get(first) == Some(s) {
            return Some(first);
        }
        self.more
            .get(&h)?
            .iter()
            .copied()
            .find(|&id| self.get(id) == Some(s))
    }

    /// The id of `s` if interned.
    pub(crate) fn lookup(&self, s: &str) -> Option<u32> {
        self.find(xxhash_rust::xxh3::xxh3_64(s.as_bytes()), s)
    }

    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        let &(off, len) = self.offs.get(id as usize)?;
        self.arena.get(off as usize..(off + len) as usize)
    }

    /// Resolves a series' encoded label set into labels.
    pub(crate) fn resolve(&self, lset: &[u8]) -> Labels {
        let v: Vec<Label> = pairs(lset)
            .map(|(n, v)| {
                Label::new(
                    self.get(n).unwrap_or_default(),
                    self.get(v).unwrap_or_default(),
                )
            })
            .collect();
        // Series labels were interned from a valid (sorted, unique) Labels.
        Labels::from_sorted_unchecked(v)
    }
}

/// Encodes symbol ids `name0, value0, name1, value1, ...` compactly as
/// LEB128 varints (most ids take 1..3 bytes instead of 4).
pub(crate) fn encode_lset(ids: impl Iterator<Item = u32>) -> ThinBytes {
    let mut out = Vec::with_capacity(32);
    for mut u in ids {
        while u >= 0x80 {
            out.push((u as u8) | 0x80);
            u >>= 7;
        }
        out.push(u as u8);
    }
    ThinBytes::from(&out[..])
}

/// An immutable byte string behind one pointer (8 bytes where a
/// `Box<[u8]>` takes 16): the allocation holds the length as a LEB128
/// varint, then the bytes. Every series record keeps its encoded label
/// set in one.
pub(crate) struct ThinBytes(std::ptr::NonNull<u8>);

// SAFETY: `ThinBytes` uniquely owns its allocation, which is never
// mutated after construction (like `Box<[u8]>`).
unsafe impl Send for ThinBytes {}
// SAFETY: as above; `&ThinBytes` only gives out `&[u8]`.
unsafe impl Sync for ThinBytes {}

impl ThinBytes {
    /// Byte length of the length prefix and the byte string's length.
    #[inline]
    fn header(&self) -> (usize, usize) {
        let p = self.0.as_ptr();
        let (mut len, mut i) = (0usize, 0usize);
        loop {
            // SAFETY: the allocation starts with a complete varint (written
            // by `from`), so every byte up to its last one is in bounds.
            let b = unsafe { *p.add(i) };
            len |= ((b & 0x7f) as usize) << (7 * i);
            i += 1;
            if b & 0x80 == 0 {
                return (i, len);
            }
        }
    }

    /// The allocation's layout for a prefix of `h` bytes and `len` bytes.
    fn layout(h: usize, len: usize) -> std::alloc::Layout {
        // Cannot fail: `from` made this layout (from an existing slice's
        // length, so no overflow) before allocating.
        std::alloc::Layout::array::<u8>(h + len).expect("BUG: thin bytes layout")
    }
}

impl From<&[u8]> for ThinBytes {
    fn from(b: &[u8]) -> Self {
        let mut hdr = [0u8; 10];
        let (mut h, mut u) = (0, b.len());
        loop {
            let more = u >= 0x80;
            hdr[h] = (u as u8 & 0x7f) | if more { 0x80 } else { 0 };
            h += 1;
            u >>= 7;
            if !more {
                break;
            }
        }
        // At least one byte (the prefix): never a zero-size allocation.
        let layout = Self::layout(h, b.len());
        // SAFETY: `layout` has a non-zero size.
        let p = unsafe { std::alloc::alloc(layout) };
        let Some(p) = std::ptr::NonNull::new(p) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: the allocation holds `h + b.len()` bytes; the sources
        // are valid for those lengths and cannot overlap a fresh block.
        unsafe {
            std::ptr::copy_nonoverlapping(hdr.as_ptr(), p.as_ptr(), h);
            std::ptr::copy_nonoverlapping(b.as_ptr(), p.as_ptr().add(h), b.len());
        }
        ThinBytes(p)
    }
}

impl std::ops::Deref for ThinBytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let (h, len) = self.header();
        // SAFETY: `from` wrote `len` initialized bytes after the `h`-byte
        // prefix, and they live (unchanged) as long as `self`.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(h), len) }
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        let (h, len) = self.header();
        // SAFETY: allocated by `from` with this same layout, freed once.
        unsafe { std::alloc::dealloc(self.0.as_ptr(), Self::layout(h, len)) }
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> Self {
        ThinBytes::from(&self[..])
    }
}

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for ThinBytes {
    fn eq(&self, o: &Self) -> bool {
        self[..] == o[..]
    }
}
impl Eq for ThinBytes {}

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
    fn interning() {
        let mut t = super::SymbolTable::default();
        let a = t.intern("alpha");
        let b = t.intern("");
        let c = t.intern("日本");
        assert_eq!(
            (t.intern("alpha"), t.intern(""), t.intern("日本")),
            (a, b, c)
        );
        assert_eq!(t.get(c), Some("日本"));
        assert_eq!(t.get(b), Some(""));
        assert_eq!(t.lookup("beta"), None);
        assert_eq!(t.lookup("alpha"), Some(a));
        for i in 0..10_000 {
            let id = t.intern(&i.to_string());
            assert_eq!(t.get(id), Some(i.to_string().as_str()));
        }
    }

    #[test]
    fn lset_round_trip() {
        let ids = [0u32, 1, 127, 128, 16_383, 16_384, u32::MAX, 5];
        let enc = super::encode_lset(ids.iter().copied());
        let got: Vec<(u32, u32)> = super::pairs(&enc).collect();
        assert_eq!(
            got,
            vec![(0, 1), (127, 128), (16_383, 16_384), (u32::MAX, 5)]
        );
        assert_eq!(super::lset_get(&enc, 127), Some(128));
        assert_eq!(super::lset_get(&enc, 9), None);
    }

    #[test]
    fn thin_bytes_round_trip() {
        use super::ThinBytes;
        assert_eq!(std::mem::size_of::<ThinBytes>(), 8);
        assert_eq!(std::mem::size_of::<Option<ThinBytes>>(), 8);
        // Empty, one-byte prefix limits, two- and three-byte prefixes.
        for n in [0usize, 1, 2, 31, 127, 128, 129, 300, 16_383, 16_384, 70_000] {
            let src: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            let t = ThinBytes::from(&src[..]);
            assert_eq!(&t[..], &src[..], "len {n}");
            let c = t.clone();
            drop(t);
            assert_eq!(&c[..], &src[..], "clone of len {n}");
            assert_eq!(c, ThinBytes::from(&src[..]));
        }
        let e = ThinBytes::from(&[][..]);
        assert!(e.is_empty());
        assert_eq!(format!("{e:?}"), "[]");
        // Shared across threads like the series records that hold them.
        let t = std::sync::Arc::new(ThinBytes::from(&b"abc"[..]));
        let t2 = t.clone();
        std::thread::spawn(move || assert_eq!(&t2[..], b"abc"))
            .join()
            .unwrap();
        assert_eq!(&t[..], b"abc");
    }
}
