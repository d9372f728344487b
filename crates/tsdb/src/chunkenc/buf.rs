//! The byte buffer of an appendable XOR chunk: one pointer and a `u16`
//! length (10 bytes, where a `Vec<u8>` takes 24), the capacity a function
//! of the length.
//!
//! The head keeps an open chunk in every series record, so the buffer's
//! size there counts (see `head::MemSeries`). Without a stored capacity,
//! [`capacity`] must give the same answer for a length whenever the
//! buffer (re)allocates or frees: it is a pure function, growing in small
//! steps that match mimalloc's size classes (doubling would waste memory
//! in the many small head chunks).

use super::bstream::ByteSink;
use std::alloc::Layout;
use std::ptr::NonNull;

/// Largest length a [`ChunkBuf`] can have.
pub(crate) const MAX_LEN: usize = u16::MAX as usize;

/// Smallest capacity of an allocated buffer (a head chunk's first sample
/// and header take ~16 bytes, a constant 120-sample chunk ~40).
const MIN_CAP: usize = 32;

/// The capacity of a buffer of `len` bytes: 0 for 0, else at least
/// `MIN_CAP`, then multiples of 16 up to 128 bytes and above that four
/// steps per power of two (160, 192, 224, 256, 320, ...), as mimalloc's
/// size classes, so no allocated byte goes unused.
pub(crate) fn capacity(len: usize) -> usize {
    if len == 0 {
        0
    } else if len <= MIN_CAP {
        MIN_CAP
    } else if len <= 128 {
        len.next_multiple_of(16)
    } else {
        // The largest power of two below `len`, in quarters.
        let step = 1usize << (usize::BITS - 1 - (len - 1).leading_zeros() - 2);
        len.next_multiple_of(step)
    }
}

/// A growable byte buffer of at most [`MAX_LEN`] bytes. Packed so that the
/// length sits next to the chunk's other small fields and the pointer
/// right after them (reads of either are unaligned loads, free on x86).
#[repr(C, packed)]
pub(crate) struct ChunkBuf {
    len: u16,
    /// Dangling when the capacity is 0 (nothing allocated).
    ptr: NonNull<u8>,
}

// SAFETY: `ChunkBuf` uniquely owns its allocation, like a `Vec<u8>`.
unsafe impl Send for ChunkBuf {}
// SAFETY: shared access only reads the bytes, like `&Vec<u8>`.
unsafe impl Sync for ChunkBuf {}

impl ChunkBuf {
    /// An empty buffer without allocation.
    pub(crate) const EMPTY: ChunkBuf = ChunkBuf {
        len: 0,
        ptr: NonNull::dangling(),
    };

    /// A copy of `b`, or `None` if it is longer than [`MAX_LEN`].
    pub(crate) fn from_slice(b: &[u8]) -> Option<ChunkBuf> {
        if b.len() > MAX_LEN {
            return None;
        }
        let mut c = ChunkBuf::EMPTY;
        c.append(b);
        Some(c)
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` initialized bytes that `self` owns
        // (or dangles with `len == 0`, valid for an empty slice).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }

    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len()) }
    }

    /// The allocation's layout for capacity `cap` (> 0).
    fn layout(cap: usize) -> Layout {
        // Cannot fail: `cap` <= capacity(MAX_LEN), far below isize::MAX.
        Layout::array::<u8>(cap).expect("BUG: chunk buffer layout")
    }

    /// Makes room for `new_len` bytes (the contents are kept).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, new_len: usize) {
        let (old, new) = (capacity(self.len()), capacity(new_len));
        let layout = Self::layout(new);
        let p = if old == 0 {
            // SAFETY: `layout` has a non-zero size (new_len > 0).
            unsafe { std::alloc::alloc(layout) }
        } else {
            // SAFETY: `ptr` was allocated by the global allocator with the
            // layout for capacity(len) = `old` (the capacity only changes
            // here, together with the length), and `new` is non-zero.
            unsafe { std::alloc::realloc(self.ptr.as_ptr(), Self::layout(old), new) }
        };
        match NonNull::new(p) {
            Some(p) => self.ptr = p,
            None => std::alloc::handle_alloc_error(layout),
        }
    }
}

impl ByteSink for ChunkBuf {
    #[inline]
    fn last_mut(&mut self) -> Option<&mut u8> {
        self.as_mut_slice().last_mut()
    }

    /// Appends `b`; the caller keeps the length within [`MAX_LEN`] (the
    /// chunk reports full before): exceeding it is a `BUG:` panic.
    #[inline]
    fn append(&mut self, b: &[u8]) {
        let len = self.len();
        let new_len = len + b.len();
        assert!(
            new_len <= MAX_LEN,
            "BUG: XOR chunk buffer over {MAX_LEN} bytes"
        );
        if capacity(new_len) != capacity(len) {
            self.grow(new_len);
        }
        // SAFETY: the allocation holds capacity(new_len) >= new_len bytes
        // (or `b` is empty and the copy is a no-op); `b` cannot overlap
        // the spare room beyond `len`, which nothing else refers to.
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), self.ptr.as_ptr().add(len), b.len());
        }
        self.len = new_len as u16;
    }
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        let cap = capacity(self.len());
        if cap > 0 {
            // SAFETY: allocated with the layout for capacity(len) (see
            // `grow`), freed once.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout(cap)) }
        }
    }
}

impl Clone for ChunkBuf {
    fn clone(&self) -> Self {
        let mut c = ChunkBuf::EMPTY;
        c.append(self.as_slice());
        c
    }
}

impl std::fmt::Debug for ChunkBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_classes() {
        assert_eq!(capacity(0), 0);
        assert_eq!(capacity(1), 32);
        assert_eq!(capacity(32), 32);
        assert_eq!(capacity(33), 48);
        assert_eq!(capacity(128), 128);
        assert_eq!(capacity(129), 160);
        assert_eq!(capacity(160), 160);
        assert_eq!(capacity(161), 192);
        assert_eq!(capacity(256), 256);
        assert_eq!(capacity(257), 320);
        assert_eq!(capacity(MAX_LEN), 65536);
        let mut prev = 0;
        for len in 0..=MAX_LEN {
            let c = capacity(len);
            assert!(c >= len && c >= prev, "{len}");
            // Growth steps stay small: at most a quarter past 128 bytes.
            assert!(
                len <= MIN_CAP || c <= len + (len / 4).max(16),
                "{len} -> {c}"
            );
            prev = c;
        }
    }

    #[test]
    fn grow_clone_and_drop() {
        assert_eq!(std::mem::size_of::<ChunkBuf>(), 10);
        assert_eq!(std::mem::align_of::<ChunkBuf>(), 1);
        let empty = ChunkBuf::EMPTY;
        assert_eq!(empty.as_slice(), &[] as &[u8]);
        let e2 = empty.clone();
        assert_eq!(e2.len(), 0);
        drop((empty, e2));
        let mut b = ChunkBuf::EMPTY;
        // Appending nothing to an empty buffer allocates nothing.
        b.append(&[]);
        assert_eq!(b.len(), 0);
        let mut want = Vec::new();
        let mut i = 0u32;
        // Steps of 0..=16 bytes through every capacity class up to MAX_LEN.
        while want.len() + 17 <= MAX_LEN {
            let k = (i % 17) as usize;
            let add: Vec<u8> = (0..k).map(|j| (i as usize * 31 + j) as u8).collect();
            b.append(&add);
            want.extend_from_slice(&add);
            if i.is_multiple_of(997) {
                assert_eq!(b.as_slice(), &want[..]);
                let c = b.clone();
                assert_eq!(c.as_slice(), &want[..]);
            }
            i += 1;
        }
        let rest = vec![0xa5; MAX_LEN - want.len()];
        b.append(&rest);
        want.extend_from_slice(&rest);
        assert_eq!(b.as_slice(), &want[..]);
        if let Some(l) = b.last_mut() {
            *l = 7;
        }
        assert_eq!(b.as_slice().last(), Some(&7));
        b.as_mut_slice()[0] = 9;
        assert_eq!(b.as_slice()[0], 9);
        assert!(ChunkBuf::from_slice(&want).is_some());
        want.push(0);
        assert!(ChunkBuf::from_slice(&want).is_none());
        let small = ChunkBuf::from_slice(&[1, 2, 3]).expect("fits");
        assert_eq!(format!("{small:?}"), "[1, 2, 3]");
    }

    #[test]
    #[should_panic(expected = "BUG")]
    fn appending_past_max_len_panics() {
        let mut b = ChunkBuf::from_slice(&vec![0; MAX_LEN]).expect("fits");
        b.append(&[1]);
    }

    #[test]
    fn shared_between_threads() {
        let b = std::sync::Arc::new(ChunkBuf::from_slice(&[1, 2, 3]).expect("fits"));
        let b2 = b.clone();
        std::thread::spawn(move || assert_eq!(b2.as_slice(), &[1, 2, 3]))
            .join()
            .expect("thread");
        assert_eq!(b.as_slice(), &[1, 2, 3]);
    }
}
