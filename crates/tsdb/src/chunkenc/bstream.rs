//! Bit-level writer and reader used by the XOR chunk encoding.
//!
//! Bits are packed most-significant first into bytes; the final byte is
//! zero-padded.

/// Where a [`BitWriter`] writes: a byte buffer that grows at the end.
pub(crate) trait ByteSink {
    /// The last byte, if any.
    fn last_mut(&mut self) -> Option<&mut u8>;
    /// Appends bytes, growing in small steps (head chunks are many and
    /// small: doubling would waste a quarter of their memory on average).
    fn append(&mut self, b: &[u8]);
}

impl ByteSink for Vec<u8> {
    #[inline]
    fn last_mut(&mut self) -> Option<&mut u8> {
        self.as_mut_slice().last_mut()
    }

    #[inline]
    fn append(&mut self, b: &[u8]) {
        if self.capacity() - self.len() < b.len() {
            self.reserve_exact(b.len().max(self.len() / 8).max(16));
        }
        self.extend_from_slice(b);
    }
}

/// Appends bits to a byte buffer (whose last byte may be partly filled).
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    /// Number of free (unwritten) low bits in the last byte of the buffer;
    /// 0 means the next bit starts a new byte.
    pub(crate) free: u8,
}

impl BitWriter {
    #[cfg(test)]
    pub(crate) fn write_bit(&mut self, buf: &mut impl ByteSink, bit: bool) {
        self.write_bits(buf, bit as u64, 1);
    }

    /// Writes the low `n` bits of `v` (n <= 64), most significant first.
    #[inline]
    pub(crate) fn write_bits(&mut self, buf: &mut impl ByteSink, v: u64, mut n: u8) {
        debug_assert!(n <= 64);
        if n == 0 {
            return;
        }
        if self.free > 0 {
            let take = n.min(self.free);
            let chunk = ((v >> (n - take)) & mask(take)) as u8;
            if let Some(last) = buf.last_mut() {
                *last |= chunk << (self.free - take);
            }
            self.free -= take;
            n -= take;
            if n == 0 {
                return;
            }
        }
        // The last byte is full: append the low `n` bits as new bytes.
        let aligned = ((v & mask(n)) as u128) << (128 - n as u32);
        let nbytes = (n as usize).div_ceil(8);
        buf.append(&aligned.to_be_bytes()[..nbytes]);
        self.free = (nbytes * 8 - n as usize) as u8;
    }
}

#[inline(always)]
pub(crate) fn mask(n: u8) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// The 64 bits starting at bit `pos` of `data`, left-aligned; at least the
/// first 57 are exact, bits past the end of `data` read as zero.
#[inline(always)]
pub(crate) fn peek(data: &[u8], pos: usize) -> u64 {
    let b = pos >> 3;
    let w = match data.get(b..b + 8) {
        Some(s) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_be_bytes(a)
        }
        None => peek_slow(data, b),
    };
    w << (pos & 7)
}

#[cold]
#[inline(never)]
fn peek_slow(data: &[u8], b: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = data.get(b..) {
        let n = s.len().min(8);
        a[..n].copy_from_slice(&s[..n]);
    }
    u64::from_be_bytes(a)
}

/// Reads `n` bits (0..=64) at `*pos`, advancing it.
#[inline(always)]
pub(crate) fn read_bits(data: &[u8], pos: &mut usize, n: u8) -> u64 {
    if n == 0 {
        return 0;
    }
    if n <= 57 {
        let v = peek(data, *pos) >> (64 - n as u32);
        *pos += n as usize;
        return v;
    }
    let hi = peek(data, *pos) >> 32;
    *pos += 32;
    let lo_n = n - 32;
    let lo = peek(data, *pos) >> (64 - lo_n as u32);
    *pos += lo_n as usize;
    (hi << lo_n) | lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_mixed_widths() {
        let mut buf = Vec::new();
        let mut w = BitWriter::default();
        let items: Vec<(u64, u8)> = (0..500u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), (i % 65) as u8))
            .collect();
        for &(v, n) in &items {
            w.write_bits(&mut buf, v & mask(n), n);
            w.write_bit(&mut buf, v & 1 == 1);
        }
        let mut pos = 0;
        for &(v, n) in &items {
            assert_eq!(read_bits(&buf, &mut pos, n), v & mask(n));
            assert_eq!(read_bits(&buf, &mut pos, 1), v & 1);
        }
        assert!(pos <= buf.len() * 8 && pos + 8 > buf.len() * 8);
    }

    #[test]
    fn reading_past_end_is_zero() {
        let buf = [0xffu8];
        let mut pos = 0;
        assert_eq!(read_bits(&buf, &mut pos, 8), 0xff);
        assert_eq!(read_bits(&buf, &mut pos, 64), 0);
        assert_eq!(pos, 72);
    }
}
