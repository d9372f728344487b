//! Gorilla-style XOR chunk encoding for float samples.
//!
//! Timestamps are delta-of-delta encoded, values XOR-ed with the previous
//! value; see `docs/format/chunks-xor.md` for the byte format. The encoding
//! is self-contained: a 2-byte big-endian sample count followed by the
//! bitstream. Values round-trip bit for bit (every NaN payload, including
//! the staleness marker).

mod bstream;
mod buf;

use bstream::{peek, read_bits, BitWriter, ByteSink};
use buf::ChunkBuf;
use koban_storage::SampleIterator;

/// Encoding id of the XOR chunk, for containers (block chunk files) that
/// store an encoding byte beside the chunk bytes.
pub const ENCODING_XOR: u8 = 1;

/// Maximum number of samples one chunk can hold (the header is a u16).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// Number of samples after which the head cuts a new chunk (as Prometheus).
pub const TARGET_SAMPLES: usize = 120;

/// Size of the sample-count header.
const HEADER_LEN: usize = 2;

/// Maximum size of an appendable chunk's encoding in bytes (its buffer's
/// length is a u16; see [`XorChunk::is_full`]).
pub const MAX_BYTES: usize = buf::MAX_LEN;

/// Most bits one append can add: a 10-byte varint and a 77-bit value for
/// the second sample (the first takes 80 + 64, later ones 68 + 77).
const MAX_APPEND_BITS: usize = 160;

/// Errors decoding a chunk.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk too short: {len} bytes")]
    TooShort { len: usize },
    #[error("chunk truncated: header says {want} samples, decoded {got}")]
    Truncated { want: usize, got: usize },
    #[error("chunk has {extra} trailing bytes after {samples} samples")]
    TrailingBytes { samples: usize, extra: usize },
    #[error("appender state does not fit a {len}-byte chunk of {samples} samples")]
    BadState { len: usize, samples: usize },
    #[error("chunk of {len} bytes is over the {max}-byte limit of an appendable chunk")]
    TooLong { len: usize, max: usize },
}

/// An appendable XOR chunk.
///
/// Samples must be appended in strictly increasing timestamp order for
/// queries to make sense; the encoding itself round-trips any i64 sequence.
/// A chunk holds at most [`MAX_SAMPLES`] samples and [`MAX_BYTES`] bytes
/// ([`XorChunk::is_full`]).
///
/// 56 bytes: the head keeps one in every series record.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct XorChunk {
    // Appender state first: the fields every append reads and writes sit
    // together in the first 40 bytes (the head keeps the chunk in the
    // series record and lays it out so they share its first cache line).
    t: i64,
    v: u64,
    /// Bits appended but not yet written to `buf`, right-aligned
    /// (`acc_n` of them). Appends touch `buf` only when 64 bits gathered:
    /// a head chunk's buffer is usually cold when its next scrape comes.
    acc: u64,
    t_delta: i64,
    /// Sample count. `buf`'s header is brought up to date lazily (see
    /// [`XorChunk::bytes`]), for the same reason.
    n: u16,
    leading: u8,
    trailing: u8,
    acc_n: u8,
    w: BitWriter,
    /// Header (2 bytes) followed by the bitstream, without the `acc` bits:
    /// its u16 length packs with the fields above, then its pointer.
    buf: ChunkBuf,
    first_t: i64,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

/// Sentinel for "no leading/trailing window yet".
const NO_WINDOW: u8 = 0xff;

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> Self {
        Self::with_capacity(HEADER_LEN)
    }

    /// An empty chunk that has not allocated yet: a placeholder (the head
    /// keeps one in series without an open chunk). Appending to it works.
    pub const fn unallocated() -> Self {
        XorChunk {
            buf: ChunkBuf::EMPTY,
            w: BitWriter { free: 0 },
            first_t: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            acc: 0,
            acc_n: 0,
            leading: NO_WINDOW,
            trailing: 0,
            n: 0,
        }
    }

    /// An empty chunk (with its header allocated). `cap` is a hint only:
    /// the buffer's capacity follows its length, in small steps from 32
    /// bytes (a 120-sample scrape chunk typically needs 100..200 bytes).
    pub fn with_capacity(cap: usize) -> Self {
        let _ = cap;
        let mut c = Self::unallocated();
        c.buf.append(&[0, 0]);
        c
    }

    /// Number of samples in the chunk.
    #[inline]
    pub fn num_samples(&self) -> usize {
        self.n as usize
    }

    /// True if the chunk cannot take another sample: it holds
    /// [`MAX_SAMPLES`], or another sample might not fit in [`MAX_BYTES`].
    #[inline]
    pub fn is_full(&self) -> bool {
        self.num_samples() >= MAX_SAMPLES || self.bits() + MAX_APPEND_BITS > MAX_BYTES * 8
    }

    /// Length of the encoding in bits, header included.
    #[inline]
    fn bits(&self) -> usize {
        self.buf.len().max(HEADER_LEN) * 8 - self.w.free as usize + self.acc_n as usize
    }

    /// The encoded chunk: header + bitstream. Valid input to
    /// [`XorChunk::from_bytes`] and [`XorIterator::new`] at any time.
    /// Borrowed when the buffer is up to date (after [`XorChunk::sync`]),
    /// otherwise a copy completed with the pending bits and count.
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.is_synced() {
            return std::borrow::Cow::Borrowed(self.buf.as_slice());
        }
        let mut buf = Vec::with_capacity(self.buf.len().max(HEADER_LEN) + 8);
        buf.extend_from_slice(self.buf.as_slice());
        buf.resize(buf.len().max(HEADER_LEN), 0);
        let mut w = self.w.clone();
        w.write_bits(&mut buf, self.acc, self.acc_n);
        buf[..HEADER_LEN].copy_from_slice(&self.n.to_be_bytes());
        std::borrow::Cow::Owned(buf)
    }

    /// True if `buf` holds the whole encoding (no pending bits, header
    /// current).
    fn is_synced(&self) -> bool {
        self.acc_n == 0
            && self.buf.len() >= HEADER_LEN
            && self.buf.as_slice()[..HEADER_LEN] == self.n.to_be_bytes()
    }

    /// Writes the pending bits and the sample count into the buffer, so
    /// [`XorChunk::bytes`] borrows it.
    pub fn sync(&mut self) {
        self.flush_acc();
        let c = self.n.to_be_bytes();
        self.buf.as_mut_slice()[..HEADER_LEN].copy_from_slice(&c);
    }

    /// Consumes the chunk, returning its encoding (exact size).
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.sync();
        self.buf.as_slice().to_vec()
    }

    /// Brings the buffer up to date (call when a chunk is closed). The
    /// buffer's capacity follows its length: there is no spare to trim.
    pub fn shrink_to_fit(&mut self) {
        self.sync();
    }

    /// Moves the pending bits into `buf` (and writes the header's room if
    /// the buffer is empty).
    #[inline(never)]
    fn flush_acc(&mut self) {
        if self.buf.len() < HEADER_LEN {
            let missing = HEADER_LEN - self.buf.len();
            self.buf.append(&[0; HEADER_LEN][..missing]);
        }
        if self.acc_n > 0 {
            self.w.write_bits(&mut self.buf, self.acc, self.acc_n);
            self.acc = 0;
            self.acc_n = 0;
        }
    }

    /// Appends the low `n` bits of `v` (1..=64), most significant first.
    #[inline(always)]
    fn put(&mut self, v: u64, n: u8) {
        let v = v & bstream::mask(n);
        let total = self.acc_n as u32 + n as u32;
        if total <= 64 {
            // n == 64 only reaches here with nothing pending.
            self.acc = if n >= 64 { v } else { (self.acc << n) | v };
            self.acc_n = total as u8;
        } else {
            self.flush_acc();
            self.acc = v;
            self.acc_n = n;
        }
    }

    /// Timestamp of the first sample (0 when empty).
    pub fn min_time(&self) -> i64 {
        self.first_t
    }

    /// Timestamp of the last sample (0 when empty).
    pub fn max_time(&self) -> i64 {
        self.t
    }

    /// Value of the last sample, if any.
    pub fn last_value(&self) -> Option<f64> {
        (self.num_samples() > 0).then(|| f64::from_bits(self.v))
    }

    /// An iterator over the samples (brings the buffer up to date first).
    pub fn iter(&mut self) -> XorIterator<'_> {
        self.sync();
        XorIterator::new(self.buf.as_slice())
    }

    /// Appends a sample.
    ///
    /// The caller must not append to a full chunk ([`XorChunk::is_full`];
    /// the head cuts at [`TARGET_SAMPLES`]): doing so is a `BUG:` panic.
    pub fn append(&mut self, t: i64, v: f64) {
        let n = self.num_samples();
        assert!(!self.is_full(), "BUG: append to a full XOR chunk");
        let vb = v.to_bits();
        match n {
            0 => {
                self.put_varint(t);
                self.put(vb, 64);
                self.first_t = t;
            }
            1 => {
                let d = t.wrapping_sub(self.t);
                self.put_varint(d);
                self.write_value(vb);
                self.t_delta = d;
            }
            _ => {
                let d = t.wrapping_sub(self.t);
                let dod = d.wrapping_sub(self.t_delta);
                // Prefix and payload in one write.
                if dod == 0 {
                    self.put(0, 1);
                } else if fits(dod, 14) {
                    self.put((0b10 << 14) | (dod as u64 & 0x3fff), 16);
                } else if fits(dod, 17) {
                    self.put((0b110 << 17) | (dod as u64 & 0x1_ffff), 20);
                } else if fits(dod, 20) {
                    self.put((0b1110 << 20) | (dod as u64 & 0xf_ffff), 24);
                } else {
                    self.put(0b1111, 4);
                    self.put(dod as u64, 64);
                }
                self.write_value(vb);
                self.t_delta = d;
            }
        }
        self.t = t;
        self.v = vb;
        self.n = n as u16 + 1;
    }

    fn put_varint(&mut self, v: i64) {
        let mut u = ((v << 1) ^ (v >> 63)) as u64; // zigzag
        loop {
            let b = (u & 0x7f) as u8;
            u >>= 7;
            if u == 0 {
                self.put(b as u64, 8);
                return;
            }
            self.put((b | 0x80) as u64, 8);
        }
    }

    fn write_value(&mut self, vb: u64) {
        let x = vb ^ self.v;
        if x == 0 {
            self.put(0, 1);
            return;
        }
        let leading = (x.leading_zeros() as u8).min(31);
        let trailing = x.trailing_zeros() as u8;
        // Control bits and payload are combined into as few writes as fit
        // in 64 bits (the bit layout is the same as writing them apart).
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            let sig = 64 - self.leading - self.trailing;
            let payload = x >> self.trailing;
            if sig <= 62 {
                self.put((0b10 << sig) | payload, sig + 2);
            } else {
                self.put(0b10, 2);
                self.put(payload, sig);
            }
        } else {
            self.leading = leading;
            self.trailing = trailing;
            let sig = 64 - leading - trailing;
            // 64 significant bits do not fit in 6 bits; encoded as 0.
            let ctrl = (0b11 << 11) | ((leading as u64) << 6) | (sig & 63) as u64;
            let payload = x >> trailing;
            if sig <= 51 {
                self.put((ctrl << sig) | payload, sig + 13);
            } else {
                self.put(ctrl, 13);
                self.put(payload, sig);
            }
        }
    }

    /// Rebuilds an appendable chunk from its encoding, validating it
    /// (every sample decodes and no bytes trail the last one).
    pub fn from_bytes(buf: Vec<u8>) -> Result<XorChunk, ChunkError> {
        if buf.len() < HEADER_LEN {
            return Err(ChunkError::TooShort { len: buf.len() });
        }
        let n = u16::from_be_bytes([buf[0], buf[1]]) as usize;
        let mut it = XorIterator::new(&buf[..]);
        let mut got = 0;
        let mut first_t = 0;
        while let Some((t, _)) = it.next() {
            if got == 0 {
                first_t = t;
            }
            got += 1;
        }
        if got != n {
            return Err(ChunkError::Truncated { want: n, got });
        }
        let bits = it.cur.pos;
        let used = bits.div_ceil(8);
        if used != buf.len() {
            return Err(ChunkError::TrailingBytes {
                samples: n,
                extra: buf.len().saturating_sub(used),
            });
        }
        let free = (used * 8 - bits) as u8;
        let buf = ChunkBuf::from_slice(&buf).ok_or(ChunkError::TooLong {
            len: buf.len(),
            max: MAX_BYTES,
        })?;
        Ok(XorChunk {
            w: BitWriter { free },
            first_t,
            t: it.cur.t,
            v: it.cur.v,
            t_delta: it.cur.t_delta,
            leading: it.cur.leading(),
            trailing: it.cur.trailing as u8,
            acc: 0,
            acc_n: 0,
            n: n as u16,
            buf,
        })
    }
}

/// The appender state of an [`XorChunk`] beyond its bytes: what
/// [`XorChunk::from_bytes`] recovers by decoding every sample. Head
/// snapshots persist it so an open chunk is restored without that decode
/// (see `docs/format/head-snapshot.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XorAppendState {
    /// Timestamp of the first sample.
    pub first_t: i64,
    /// Timestamp of the last sample.
    pub t: i64,
    /// Bits of the last value.
    pub v: u64,
    /// Last timestamp delta.
    pub t_delta: i64,
    /// Current XOR window: leading zeros (0xff: none yet) and trailing zeros.
    pub leading: u8,
    pub trailing: u8,
    /// Unwritten low bits of the last byte (0..=7).
    pub free_bits: u8,
}

impl XorChunk {
    /// The appender state, for [`XorChunk::from_parts`].
    pub fn append_state(&self) -> XorAppendState {
        XorAppendState {
            first_t: self.first_t,
            t: self.t,
            v: self.v,
            t_delta: self.t_delta,
            leading: self.leading,
            trailing: self.trailing,
            // As after `sync` (the state goes with `bytes()`).
            free_bits: match self.acc_n {
                0 => self.w.free,
                k if k <= self.w.free => self.w.free - k,
                k => (8 - (k - self.w.free) % 8) % 8,
            },
        }
    }

    /// Rebuilds an appendable chunk from its bytes and the state
    /// [`XorChunk::append_state`] returned for them, without decoding the
    /// samples. Only cheap consistency checks are made (header present,
    /// state fields in range); the caller vouches (e.g. by a checksum) that
    /// bytes and state belong together. The bytes are copied once, into the
    /// chunk's own buffer.
    pub fn from_parts(buf: &[u8], st: XorAppendState) -> Result<XorChunk, ChunkError> {
        if buf.len() < HEADER_LEN {
            return Err(ChunkError::TooShort { len: buf.len() });
        }
        let n = u16::from_be_bytes([buf[0], buf[1]]);
        let consistent = st.free_bits < 8
            && (st.leading == NO_WINDOW || st.leading <= 31)
            && st.trailing <= 64
            && (n == 0) == (buf.len() == HEADER_LEN)
            && (buf.len() > HEADER_LEN || st.free_bits == 0);
        if !consistent {
            return Err(ChunkError::BadState {
                len: buf.len(),
                samples: n as usize,
            });
        }
        let buf = ChunkBuf::from_slice(buf).ok_or(ChunkError::TooLong {
            len: buf.len(),
            max: MAX_BYTES,
        })?;
        Ok(XorChunk {
            w: BitWriter { free: st.free_bits },
            first_t: st.first_t,
            t: st.t,
            v: st.v,
            t_delta: st.t_delta,
            leading: st.leading,
            trailing: st.trailing,
            acc: 0,
            acc_n: 0,
            n,
            buf,
        })
    }
}

/// True if `v` fits in an `n`-bit two's complement integer.
#[inline]
fn fits(v: i64, n: u32) -> bool {
    let lim = 1i64 << (n - 1);
    (-lim..lim).contains(&v)
}

fn read_varint(data: &[u8], pos: &mut usize) -> Option<i64> {
    let mut u: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = bstream::read_bits(data, pos, 8) as u8;
        if shift >= 64 {
            return None;
        }
        u |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    Some(((u >> 1) as i64) ^ -((u & 1) as i64))
}

/// A borrowed or owned byte buffer holding one encoded XOR chunk.
pub trait ChunkBytes: AsRef<[u8]> + Send {}
impl<T: AsRef<[u8]> + Send> ChunkBytes for T {}

/// Decoder state between samples, kept in one `Copy` struct so the hot loops
/// work on locals (registers) and write back once.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Bit position of the next sample.
    pos: usize,
    t: i64,
    v: u64,
    t_delta: i64,
    /// Significant bits of the current XOR window; 0 = no window yet.
    sig: u32,
    /// Trailing zero bits of the current XOR window.
    trailing: u32,
}

impl Cursor {
    /// The window's leading-zero count as the appender stores it.
    fn leading(&self) -> u8 {
        if self.sig == 0 {
            NO_WINDOW
        } else {
            (64 - self.sig - self.trailing) as u8
        }
    }

    /// Decodes the first sample (`i == 0`) or the second (`i == 1`) and
    /// returns the cursor after it (by value: callers keep theirs in
    /// registers).
    #[cold]
    #[inline(never)]
    fn head(mut self, data: &[u8], i: usize) -> Option<Cursor> {
        let mut pos = self.pos;
        if i == 0 {
            self.t = read_varint(data, &mut pos)?;
            self.v = read_bits(data, &mut pos, 64);
            if pos > data.len() * 8 {
                return None;
            }
            self.pos = pos;
            return Some(self);
        }
        self.t_delta = read_varint(data, &mut pos)?;
        self.t = self.t.wrapping_add(self.t_delta);
        let w = peek(data, pos);
        self.value(data, pos, w, 57)?;
        Some(self)
    }

    /// Decodes one sample after the second; `w` is `peek(data, self.pos)`
    /// (the caller reads it: it also looks at the sample's first bits).
    /// Returns None on malformed input (the cursor is then unspecified).
    #[inline(always)]
    fn step(&mut self, data: &[u8], mut w: u64) -> Option<()> {
        let mut pos = self.pos;
        // `w` holds the bits at `pos`, left-aligned; the first 57 are exact.
        // Timestamp: delta of delta with a 1..4 bit prefix. Each bucket is its
        // own (well predicted) branch so the bit count is a constant there.
        // The prefix is read by testing one bit after another, not by
        // counting leading ones: without LZCNT (not in the x86-64 baseline)
        // that count is a BSR, slow on AMD (jittered timestamps: 4.9 -> 4.0
        // ns/sample).
        let used: u32 = if (w as i64) >= 0 {
            1
        } else if ((w << 1) as i64) >= 0 {
            self.t_delta = self.t_delta.wrapping_add(((w << 2) as i64) >> 50);
            16
        } else if ((w << 2) as i64) >= 0 {
            self.t_delta = self.t_delta.wrapping_add(((w << 3) as i64) >> 47);
            20
        } else if ((w << 3) as i64) >= 0 {
            self.t_delta = self.t_delta.wrapping_add(((w << 4) as i64) >> 44);
            24
        } else {
            pos += 4;
            let d = read_bits(data, &mut pos, 64) as i64;
            self.t_delta = self.t_delta.wrapping_add(d);
            w = peek(data, pos);
            0
        };
        self.t = self.t.wrapping_add(self.t_delta);
        self.value(data, pos + used as usize, w << used, 57 - used)
    }

    /// Decodes a value whose control bits start at `pos`; `w` holds the bits
    /// there (left-aligned), the first `avail` (>= 33) of them exact.
    #[inline(always)]
    fn value(&mut self, data: &[u8], mut pos: usize, mut w: u64, mut avail: u32) -> Option<()> {
        if (w as i64) < 0 {
            let hdr = if w & (1 << 62) == 0 {
                if self.sig == 0 {
                    return None;
                }
                2
            } else {
                let leading = ((w >> 57) & 31) as u32;
                let sig = match ((w >> 51) & 63) as u32 {
                    0 => 64,
                    s => s,
                };
                if leading + sig > 64 {
                    return None;
                }
                self.sig = sig;
                self.trailing = 64 - leading - sig;
                13
            };
            w <<= hdr;
            avail -= hdr;
            pos += hdr as usize;
            let sig = self.sig;
            let bits = if sig <= avail {
                pos += sig as usize;
                w >> (64 - sig)
            } else {
                read_bits(data, &mut pos, sig as u8)
            };
            self.v ^= bits << self.trailing;
        } else {
            pos += 1;
        }
        if pos > data.len() * 8 {
            return None;
        }
        self.pos = pos;
        Some(())
    }
}

/// Samples [`XorIter::next_bits`] decodes at a time: sample-at-a-time
/// callers get the bulk loop's speed (the cursor stays in registers for a
/// run of samples) for 256 bytes of look-ahead in the iterator.
const AHEAD: usize = 16;

/// Decodes an XOR chunk. `B` is any byte container (`&[u8]`, `Vec<u8>`,
/// `Arc<[u8]>`); [`XorIterator`] is the borrowed form.
///
/// On a malformed chunk iteration stops early and [`XorIter::is_corrupt`]
/// reports it; it never panics. Samples before the damage are still
/// returned; `is_corrupt` may turn true a few samples before the last good
/// one is returned (the iterator decodes a little ahead). Besides
/// sample-at-a-time iteration, [`XorIter::decode_into`] (and
/// `SampleIterator::drain_into`) decode many samples per call into a
/// caller's buffer, which is faster.
#[derive(Debug, Clone)]
pub struct XorIter<B> {
    data: B,
    /// Decoder state after the last sample decoded (not necessarily
    /// returned: see `ahead`).
    cur: Cursor,
    /// Samples announced by the header (0 once the chunk is found corrupt).
    n: usize,
    /// Samples decoded so far.
    i: usize,
    corrupt: bool,
    /// Decoded samples not yet returned: `ahead[at..len]`.
    ahead: [(i64, u64); AHEAD],
    at: u8,
    len: u8,
}

/// Borrowed XOR chunk iterator.
pub type XorIterator<'a> = XorIter<&'a [u8]>;

impl<B: AsRef<[u8]>> XorIter<B> {
    /// Starts iterating an encoded chunk (header + bitstream).
    pub fn new(data: B) -> Self {
        let d = data.as_ref();
        let (n, corrupt) = match d {
            [a, b, ..] => (u16::from_be_bytes([*a, *b]) as usize, false),
            _ => (0, !d.is_empty()),
        };
        XorIter {
            data,
            cur: Cursor {
                pos: HEADER_LEN * 8,
                t: 0,
                v: 0,
                t_delta: 0,
                sig: 0,
                trailing: 0,
            },
            n,
            i: 0,
            corrupt,
            ahead: [(0, 0); AHEAD],
            at: 0,
            len: 0,
        }
    }

    /// Number of samples the header announces.
    pub fn num_samples(&self) -> usize {
        self.n
    }

    /// True if decoding stopped because the chunk was malformed.
    pub fn is_corrupt(&self) -> bool {
        self.corrupt
    }

    /// The next sample as (timestamp, raw value bits).
    #[inline(always)]
    pub fn next_bits(&mut self) -> Option<(i64, u64)> {
        if self.at < self.len {
            let s = self.ahead[self.at as usize];
            self.at += 1;
            return Some(s);
        }
        self.refill()
    }

    /// Decodes the next run of samples into `ahead` and returns the first.
    /// Inlined into the caller's loop on purpose: a call there makes the
    /// caller spill whatever it keeps in caller-saved registers (every
    /// float register) around it, and a float accumulator (`sum += v`) then
    /// lives in memory for the whole loop: a store-to-load round trip per
    /// sample (node-exporter chunks: 5.7 -> 3.1 ns/sample).
    #[inline(always)]
    fn refill(&mut self) -> Option<(i64, u64)> {
        let k = decode_run(
            self.data.as_ref(),
            &mut self.cur,
            &mut self.i,
            &mut self.n,
            &mut self.corrupt,
            &mut self.ahead,
        );
        if k == 0 {
            return None;
        }
        self.at = 1;
        self.len = k as u8;
        Some(self.ahead[0])
    }

    /// Decodes up to `out.len()` further samples into `out` (timestamps and
    /// raw value bits) and returns how many were written; 0 means the end
    /// (or a malformed chunk, see [`XorIter::is_corrupt`]). Equivalent to
    /// calling [`XorIter::next_bits`] that many times, but faster.
    pub fn decode_into(&mut self, out: &mut [(i64, u64)]) -> usize {
        let have = &self.ahead[self.at as usize..self.len as usize];
        if !have.is_empty() {
            let k = have.len().min(out.len());
            out[..k].copy_from_slice(&have[..k]);
            self.at += k as u8;
            return k;
        }
        decode_run(
            self.data.as_ref(),
            &mut self.cur,
            &mut self.i,
            &mut self.n,
            &mut self.corrupt,
            out,
        )
    }
}

/// Decodes up to `out.len()` samples of `data` after the `*i` already
/// decoded (state in `cur`) and returns how many were written. On damage
/// marks the chunk corrupt (`*corrupt`, `*n = 0`) and returns the samples
/// before it.
#[inline(always)]
fn decode_run<S: SampleSlot>(
    data: &[u8],
    cur: &mut Cursor,
    i: &mut usize,
    n: &mut usize,
    corrupt: &mut bool,
    out: &mut [S],
) -> usize {
    let mut c = *cur;
    let mut k = 0;
    while k < out.len() && *i < 2.min(*n) {
        match c.head(data, *i) {
            Some(h) => c = h,
            None => {
                *corrupt = true;
                *n = 0;
                return k;
            }
        }
        out[k].set(c.t, c.v);
        *i += 1;
        k += 1;
    }
    let end = k + n.saturating_sub(*i).min(out.len() - k);
    let bits = data.len() * 8;
    let mut j = k;
    while j < end {
        let w = peek(data, c.pos);
        if c.step(data, w).is_none() {
            *i += j - k;
            *corrupt = true;
            *n = 0;
            return j;
        }
        out[j].set(c.t, c.v);
        j += 1;
        if w >> 62 == 0 {
            // That sample was '00' (same delta, same value): most stored
            // samples are (unchanged gauges at the scrape interval), in long
            // runs. Take the rest of the run the exact bits show at once.
            let run = (((w << 2).leading_zeros().min(55) / 2) as usize)
                .min(end - j)
                .min(bits.saturating_sub(c.pos) / 2);
            if run > 0 {
                for slot in &mut out[j..j + run] {
                    c.t = c.t.wrapping_add(c.t_delta);
                    slot.set(c.t, c.v);
                }
                c.pos += 2 * run;
                j += run;
            }
        }
    }
    *i += end - k;
    *cur = c;
    end
}

impl<B: ChunkBytes> SampleIterator for XorIter<B> {
    #[inline(always)]
    fn next(&mut self) -> Option<(i64, f64)> {
        self.next_bits().map(|(t, v)| (t, f64::from_bits(v)))
    }

    fn drain_into(&mut self, out: &mut Vec<(i64, f64)>) {
        for &(t, v) in &self.ahead[self.at as usize..self.len as usize] {
            out.push((t, f64::from_bits(v)));
        }
        self.at = self.len;
        // Decode in place into zeroed room (cheaper than a push per sample).
        let old = out.len();
        out.resize(old + self.n.saturating_sub(self.i), (0, 0.0));
        let k = decode_run(
            self.data.as_ref(),
            &mut self.cur,
            &mut self.i,
            &mut self.n,
            &mut self.corrupt,
            &mut out[old..],
        );
        out.truncate(old + k);
    }
}

/// An output element of the bulk decoder: raw bits or a float.
trait SampleSlot {
    fn set(&mut self, t: i64, v: u64);
}

impl SampleSlot for (i64, u64) {
    #[inline(always)]
    fn set(&mut self, t: i64, v: u64) {
        *self = (t, v);
    }
}

impl SampleSlot for (i64, f64) {
    #[inline(always)]
    fn set(&mut self, t: i64, v: u64) {
        *self = (t, f64::from_bits(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_model::STALE_NAN_BITS;

    /// Pending (not yet flushed) bits: after every append, `bytes()` and
    /// `append_state()` describe exactly the samples so far, and a chunk
    /// rebuilt from them continues bit for bit like the original.
    #[test]
    fn unsynced_bytes_and_state_match_every_prefix() {
        let mut x: u64 = 7;
        let mut c = XorChunk::new();
        let mut t = 1_700_000_000_000i64;
        let mut want = Vec::new();
        for i in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += match i % 7 {
                0 => 15_000 + (x % 2_000_000) as i64,
                _ => 15_000,
            };
            let v = match x % 5 {
                0 => f64::from_bits(x),
                1 => (i / 3) as f64,
                2 => f64::from_bits(STALE_NAN_BITS),
                _ => 0.25 * (x % 1000) as f64,
            };
            c.append(t, v);
            want.push((t, v.to_bits()));
            let b = c.bytes().into_owned();
            let mut it = XorIterator::new(&b[..]);
            let mut got = Vec::new();
            while let Some(s) = it.next_bits() {
                got.push(s);
            }
            assert!(!it.is_corrupt());
            assert_eq!(got, want, "after {} samples", i + 1);
            let d = XorChunk::from_bytes(b.clone()).unwrap();
            assert_eq!(d.append_state(), c.append_state());
            let mut e = XorChunk::from_parts(&b, c.append_state()).unwrap();
            let mut c2 = c.clone();
            e.append(t + 1, 3.5);
            c2.append(t + 1, 3.5);
            assert_eq!(e.bytes(), c2.bytes());
        }
        c.sync();
        assert!(matches!(c.bytes(), std::borrow::Cow::Borrowed(_)));
    }

    fn round_trip(samples: &[(i64, u64)]) {
        let mut c = XorChunk::new();
        for &(t, v) in samples {
            c.append(t, f64::from_bits(v));
        }
        assert_eq!(c.num_samples(), samples.len());
        let mut it = c.iter();
        let mut got = Vec::new();
        while let Some(s) = it.next_bits() {
            got.push(s);
        }
        assert!(!it.is_corrupt());
        assert_eq!(got, samples);
        // from_bytes and continued appends.
        let mut c2 = XorChunk::from_bytes(c.bytes().to_vec()).unwrap();
        // from_parts restores the same appender state without decoding.
        assert_eq!(c2.append_state(), c.append_state());
        let mut c3 = XorChunk::from_parts(&c.bytes(), c.append_state()).unwrap();
        let mut c1 = c.clone();
        let t = samples.last().map_or(0, |s| s.0) + 15_000;
        c1.append(t, 1.5);
        c2.append(t, 1.5);
        c3.append(t, 1.5);
        assert_eq!(c1.bytes(), c2.bytes());
        assert_eq!(c1.bytes(), c3.bytes());
        assert_eq!(c1.append_state(), c3.append_state());
        if !samples.is_empty() {
            assert_eq!(c.min_time(), samples[0].0);
            assert_eq!(c.max_time(), samples.last().unwrap().0);
        }
    }

    /// Random 64-bit values take ~19 bytes a sample: the chunk reports
    /// full at its byte limit long before MAX_SAMPLES, and stays valid.
    #[test]
    fn full_at_the_byte_limit() {
        assert_eq!(std::mem::size_of::<XorChunk>(), 56);
        let mut c = XorChunk::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut t = 0i64;
        let mut want = Vec::new();
        while !c.is_full() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Irregular timestamps hit the 64-bit delta-of-delta case.
            t += if x.is_multiple_of(3) {
                (x >> 4) as i64 & 0xff_ffff_ffff
            } else {
                15_000
            };
            c.append(t, f64::from_bits(x));
            want.push((t, x));
        }
        assert!(c.num_samples() < MAX_SAMPLES);
        let b = c.bytes().into_owned();
        assert!(b.len() <= MAX_BYTES && b.len() + MAX_APPEND_BITS / 8 > MAX_BYTES);
        c.sync();
        assert_eq!(c.bytes().len(), b.len());
        let mut it = XorIterator::new(&b[..]);
        let mut got = Vec::new();
        while let Some(s) = it.next_bits() {
            got.push(s);
        }
        assert_eq!(got, want);
        assert_eq!(
            XorChunk::from_bytes(b.clone()).unwrap().append_state(),
            c.append_state()
        );
        assert!(XorChunk::from_parts(&b, c.append_state())
            .unwrap()
            .is_full());
        let r = std::panic::catch_unwind(move || c.clone().append(t + 1, 0.5));
        assert!(r.is_err(), "appending to a full chunk is a BUG panic");
    }

    #[test]
    fn over_long_chunks_are_errors() {
        let mut b = vec![0u8; MAX_BYTES + 1];
        b[1] = 1;
        let st = XorAppendState {
            first_t: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
            free_bits: 0,
        };
        assert!(matches!(
            XorChunk::from_parts(&b, st),
            Err(ChunkError::TooLong { .. })
        ));
    }

    #[test]
    fn empty_clone_and_into_bytes() {
        let u = XorChunk::unallocated();
        assert_eq!(u.clone().into_bytes(), vec![0, 0]);
        assert_eq!(&u.bytes()[..], &[0, 0]);
        let mut w = XorChunk::with_capacity(0);
        assert!(matches!(w.bytes(), std::borrow::Cow::Borrowed(_)));
        w.append(5, 1.0);
        let w2 = w.clone();
        drop(w);
        assert_eq!(
            XorChunk::from_bytes(w2.into_bytes()).unwrap().num_samples(),
            1
        );
    }

    #[test]
    fn from_parts_rejects_inconsistent_state() {
        let mut c = XorChunk::new();
        c.append(1000, 2.0);
        let st = c.append_state();
        let bad = |f: &dyn Fn(&mut XorAppendState)| {
            let mut s = st;
            f(&mut s);
            XorChunk::from_parts(&c.bytes(), s).is_err()
        };
        assert!(bad(&|s| s.free_bits = 8));
        assert!(bad(&|s| s.leading = 40));
        assert!(bad(&|s| s.trailing = 65));
        assert!(XorChunk::from_parts(&[0], st).is_err());
        assert!(XorChunk::from_parts(&[0, 0, 1], st).is_err());
        assert!(XorChunk::from_parts(&[0, 1], XorChunk::new().append_state()).is_err());
    }

    #[test]
    fn empty_and_single() {
        round_trip(&[]);
        round_trip(&[(1_700_000_000_000, 1.0f64.to_bits())]);
        round_trip(&[(-5, 0)]);
    }

    #[test]
    fn regular_scrape() {
        let s: Vec<_> = (0..120)
            .map(|i| (1_700_000_000_000 + i * 15_000, ((i * 3) as f64).to_bits()))
            .collect();
        round_trip(&s);
        let mut c = XorChunk::new();
        for &(t, v) in &s {
            c.append(t, f64::from_bits(v));
        }
        assert!(c.bytes().len() < 120 * 3, "{} bytes", c.bytes().len());
    }

    #[test]
    fn special_values_bit_exact() {
        let vals = [
            STALE_NAN_BITS,
            f64::NAN.to_bits(),
            0x7ff8_0000_0000_0001,
            0xfff8_0000_dead_beef,
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            0,
            (-0.0f64).to_bits(),
            1,
            u64::MAX,
            f64::MAX.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
            STALE_NAN_BITS,
            STALE_NAN_BITS,
        ];
        let s: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 1000, v))
            .collect();
        round_trip(&s);
    }

    #[test]
    fn irregular_timestamps_all_buckets() {
        let deltas = [
            1i64,
            1,
            2,
            8191,
            -8000,
            8192,
            65535,
            65536,
            524287,
            524288,
            1 << 40,
            3,
            1 << 62,
            7,
        ];
        let mut t = i64::MIN / 4;
        let mut s = Vec::new();
        for (i, d) in deltas.iter().enumerate() {
            t = t.wrapping_add(*d);
            s.push((t, (i as f64 * 0.1).to_bits()));
        }
        round_trip(&s);
        // Extremes wrap consistently.
        round_trip(&[(i64::MIN, 0), (i64::MAX, 1), (i64::MIN, 2), (0, 3)]);
    }

    #[test]
    fn pseudo_random_values() {
        let mut x: u64 = 0x1234_5678;
        let mut s = Vec::new();
        let mut t = 0i64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += (x % 30_000) as i64 + 1;
            let v = match x % 4 {
                0 => x,
                1 => ((x >> 40) as f64).to_bits(),
                2 => ((x % 100) as f64 / 7.0).to_bits(),
                _ => s.last().map_or(0, |p: &(i64, u64)| p.1),
            };
            s.push((t, v));
        }
        round_trip(&s);
    }

    #[test]
    fn corrupt_input_does_not_panic() {
        let mut c = XorChunk::new();
        for i in 0..50 {
            c.append(i * 1000, i as f64 * 1.7);
        }
        let b = c.bytes();
        for cut in 0..b.len() {
            let mut it = XorIterator::new(&b[..cut]);
            while it.next().is_some() {}
            assert!(it.is_corrupt() || cut == 0, "cut {cut}");
            assert!(XorChunk::from_bytes(b[..cut].to_vec()).is_err());
        }
        let mut extra = b.to_vec();
        extra.push(0);
        assert!(matches!(
            XorChunk::from_bytes(extra),
            Err(ChunkError::TrailingBytes { .. })
        ));
        // Garbage never panics.
        let mut x: u32 = 7;
        for _ in 0..200 {
            let g: Vec<u8> = (0..40)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let mut it = XorIterator::new(&g[..]);
            while it.next().is_some() {}
            let _ = XorChunk::from_bytes(g);
        }
    }

    #[test]
    fn batch_decoding_matches_next() {
        let mut x: u64 = 99;
        let mut c = XorChunk::new();
        let mut t = 0i64;
        for i in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += [15_000, 15_001, 1 << 40, 14_000][(x % 4) as usize];
            let v = match i % 5 {
                0 => f64::from_bits(x),
                1 | 2 => 1.0,
                _ => (x % 1000) as f64 / 8.0,
            };
            c.append(t, v);
        }
        let b = c.bytes();
        for cut in [0, 1, 2, 3, 10, 11, b.len() / 2, b.len() - 1, b.len()] {
            let data = &b[..cut];
            let mut want = Vec::new();
            let mut it = XorIterator::new(data);
            while let Some(s) = it.next_bits() {
                want.push(s);
            }
            let corrupt = it.is_corrupt();
            let mut drained = Vec::new();
            let mut it = XorIterator::new(data);
            if let Some((t, v)) = it.next() {
                drained.push((t, v));
            }
            it.drain_into(&mut drained);
            assert_eq!(it.is_corrupt(), corrupt, "cut {cut}");
            let bits: Vec<_> = drained.iter().map(|s| (s.0, s.1.to_bits())).collect();
            assert_eq!(bits, want, "cut {cut}");
            for batch in [1, 3, 64] {
                let mut it = XorIterator::new(data);
                let mut got = Vec::new();
                let mut buf = vec![(0, 0); batch];
                loop {
                    let k = it.decode_into(&mut buf);
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..k]);
                }
                assert_eq!(got, want, "cut {cut} batch {batch}");
                assert_eq!(it.is_corrupt(), corrupt, "cut {cut}");
            }
            // Sample-at-a-time reads decode ahead: mixing them with bulk
            // reads loses and repeats nothing.
            let mut it = XorIterator::new(data);
            let mut got = Vec::new();
            let mut buf = [(0, 0); 5];
            for round in 0.. {
                if round % 2 == 0 {
                    match it.next_bits() {
                        Some(s) => got.push(s),
                        None => break,
                    }
                } else {
                    let k = it.decode_into(&mut buf);
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..k]);
                }
            }
            assert_eq!(got, want, "cut {cut} mixed");
            assert_eq!(it.is_corrupt(), corrupt, "cut {cut} mixed");
        }
    }

    /// Sample-by-sample decoding with the cursor alone (no look-ahead, no
    /// runs): the reference for the iterator's faster paths.
    fn one_at_a_time(data: &[u8]) -> (Vec<(i64, u64)>, bool) {
        let n = match data {
            [a, b, ..] => u16::from_be_bytes([*a, *b]) as usize,
            _ => return (Vec::new(), !data.is_empty()),
        };
        let mut c = XorIterator::new(data).cur;
        let mut got = Vec::new();
        for i in 0..n {
            let next = if i < 2 {
                c.head(data, i)
            } else {
                let w = peek(data, c.pos);
                c.step(data, w).map(|()| c)
            };
            match next {
                Some(nc) => c = nc,
                None => return (got, true),
            }
            got.push((c.t, c.v));
        }
        (got, false)
    }

    #[test]
    fn runs_of_unchanged_samples_cut_anywhere() {
        // Long runs of '00' samples (same interval, same value), broken by
        // changes, as unchanged gauges give; decoded whole and cut at every
        // byte (the header still announcing every sample).
        let mut c = XorChunk::new();
        for i in 0..400i64 {
            let v = [1.0, 1.0, 2.5, 7.0][((i / 37) % 4) as usize];
            let t = i * 15_000 + if i % 97 == 0 { 3 } else { 0 };
            c.append(t, v);
        }
        let b = c.bytes();
        for cut in 0..=b.len() {
            let data = &b[..cut];
            let want = one_at_a_time(data);
            for batch in [1, 2, 7, 120, 400] {
                let mut it = XorIterator::new(data);
                let mut got = Vec::new();
                let mut buf = vec![(0, 0); batch];
                loop {
                    let k = it.decode_into(&mut buf);
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..k]);
                }
                assert_eq!((got, it.is_corrupt()), want, "cut {cut} batch {batch}");
            }
            let mut it = XorIterator::new(data);
            let got: Vec<_> = std::iter::from_fn(|| it.next_bits()).collect();
            assert_eq!((got, it.is_corrupt()), want, "cut {cut} next");
        }
        assert_eq!(one_at_a_time(&b).0.len(), 400);
    }

    #[test]
    fn owned_iterator_and_seek() {
        let mut c = XorChunk::new();
        for i in 0..10 {
            c.append(i * 10, i as f64);
        }
        let owned: std::sync::Arc<[u8]> = c.bytes().into();
        let mut it = XorIter::new(owned);
        assert_eq!(it.seek(35), Some((40, 4.0)));
        assert_eq!(it.seek(0), Some((50, 5.0)));
        assert_eq!(it.seek(1000), None);
        assert_eq!(it.next(), None);
    }
}
