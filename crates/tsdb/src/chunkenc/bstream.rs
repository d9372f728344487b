//! Bit-level writer and reader used by the XOR chunk encoding.
//!
//! Bits are packed most-significant first into bytes; the final byte is
//! zero-padded.

/// Appends bits to a byte vector starting at byte offset `start` (the
/// bytes before it are left to the caller, e.g. a header).
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    /// Number of free (unwritten) low bits in the last byte of the buffer;
    /// 0 means the next bit starts a new byte.
    pub(crate) free: u8,
}

impl BitWriter {
    #[inline]
    pub(crate) fn write_bit(&mut self, buf: &mut Vec<u8>, bit: bool) {
        if self.free == 0 {
            buf.push(0);
            self.free = 8;
        }
        self.free -= 1;
        if bit {
            // The buffer is non-empty: a byte was pushed above or `free` > 0
            // implies an earlier push.
            if let Some(last) = buf.last_mut() {
                *last |= 1 << self.free;
            }
        }
    }

    /// Writes the low `n` bits of `v` (n <= 64), most significant first.
    #[inline]
    pub(crate) fn write_bits(&mut self, buf: &mut Vec<u8>, v: u64, mut n: u8) {
        debug_assert!(n <= 64);
        while n > 0 {
            if self.free == 0 {
                buf.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            // Bits [n-take, n) of v.
            let chunk = ((v >> (n - take)) & mask(take)) as u8;
            let shift = self.free - take;
            if let Some(last) = buf.last_mut() {
                *last |= chunk << shift;
            }
            self.free -= take;
            n -= take;
        }
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

/// Reads bits from a byte slice. Reading past the end yields `None`.
#[derive(Debug, Clone)]
pub(crate) struct BitReader {
    /// Byte offset of the next byte to load into `buf`.
    pos: usize,
    /// The low `valid` bits of `buf` are the next unread bits (MSB first).
    buf: u64,
    valid: u8,
}

impl BitReader {
    pub(crate) fn new(start: usize) -> Self {
        BitReader { pos: start, buf: 0, valid: 0 }
    }

    /// Number of bits consumed so far, counted from byte 0 of the slice.
    pub(crate) fn bits_consumed(&self) -> usize {
        self.pos * 8 - self.valid as usize
    }

    /// Loads more bytes; returns false when the slice is exhausted.
    #[inline]
    fn refill(&mut self, data: &[u8]) -> bool {
        // Only called with valid < 8 bits left... or 0; keep leftover bits.
        let room = (64 - self.valid) / 8; // whole bytes that fit
        if let Some(bytes) = data.get(self.pos..self.pos + 8) {
            if self.valid == 0 {
                let mut a = [0u8; 8];
                a.copy_from_slice(bytes);
                self.buf = u64::from_be_bytes(a);
                self.valid = 64;
                self.pos += 8;
                return true;
            }
        }
        let mut loaded = 0;
        while loaded < room {
            match data.get(self.pos) {
                Some(&b) => {
                    self.buf = (self.buf << 8) | b as u64;
                    self.valid += 8;
                    self.pos += 1;
                    loaded += 1;
                }
                None => break,
            }
        }
        loaded > 0
    }

    #[inline(always)]
    pub(crate) fn read_bit(&mut self, data: &[u8]) -> Option<bool> {
        if self.valid == 0 && !self.refill(data) {
            return None;
        }
        self.valid -= 1;
        Some((self.buf >> self.valid) & 1 == 1)
    }

    /// Reads `n` bits (n <= 64) as the low bits of the result.
    #[inline(always)]
    pub(crate) fn read_bits(&mut self, data: &[u8], n: u8) -> Option<u64> {
        if n <= self.valid {
            self.valid -= n;
            return Some((self.buf >> self.valid) & mask(n));
        }
        self.read_bits_slow(data, n)
    }

    #[inline(never)]
    fn read_bits_slow(&mut self, data: &[u8], n: u8) -> Option<u64> {
        // Take what is left, then refill for the rest.
        let have = self.valid;
        let hi = self.buf & mask(have);
        self.valid = 0;
        let need = n - have;
        if !self.refill(data) || self.valid < need {
            return None;
        }
        self.valid -= need;
        let lo = (self.buf >> self.valid) & mask(need);
        // need >= 1, so the shift is < 64 when have > 0; when have == 0 hi is 0.
        let v = if need >= 64 { lo } else { (hi << need) | lo };
        Some(v)
    }

    /// Reads up to 4 bits of a `1...10` prefix; returns the number of leading
    /// ones (0..=4), consuming the terminating zero when fewer than 4.
    #[inline(always)]
    pub(crate) fn read_dod_prefix(&mut self, data: &[u8]) -> Option<u8> {
        if self.valid >= 4 {
            let nib = ((self.buf >> (self.valid - 4)) & 0xf) as u8;
            // Count leading ones in the 4-bit nibble.
            let ones = (!(nib << 4)).leading_zeros() as u8; // 0..=8
            let ones = ones.min(4);
            let used = if ones == 4 { 4 } else { ones + 1 };
            self.valid -= used;
            return Some(ones);
        }
        let mut ones = 0;
        while ones < 4 {
            if !self.read_bit(data)? {
                break;
            }
            ones += 1;
        }
        Some(ones)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_mixed_widths() {
        let mut buf = Vec::new();
        let mut w = BitWriter::default();
        let items: Vec<(u64, u8)> =
            (0..500u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), (i % 64 + 1) as u8)).collect();
        for &(v, n) in &items {
            w.write_bits(&mut buf, v & mask(n), n);
            w.write_bit(&mut buf, v & 1 == 1);
        }
        let mut r = BitReader::new(0);
        for &(v, n) in &items {
            assert_eq!(r.read_bits(&buf, n), Some(v & mask(n)));
            assert_eq!(r.read_bit(&buf), Some(v & 1 == 1));
        }
    }

    #[test]
    fn dod_prefix() {
        for ones in 0..=4u8 {
            for pad in 0..70 {
                let mut buf = Vec::new();
                let mut w = BitWriter::default();
                w.write_bits(&mut buf, 0, pad % 64);
                w.write_bits(&mut buf, 0, pad / 64);
                for _ in 0..ones {
                    w.write_bit(&mut buf, true);
                }
                if ones < 4 {
                    w.write_bit(&mut buf, false);
                }
                w.write_bits(&mut buf, 0b101, 3);
                let mut r = BitReader::new(0);
                r.read_bits(&buf, pad % 64).unwrap();
                r.read_bits(&buf, pad / 64).unwrap();
                assert_eq!(r.read_dod_prefix(&buf), Some(ones));
                assert_eq!(r.read_bits(&buf, 3), Some(0b101));
            }
        }
    }

    #[test]
    fn reading_past_end_is_none() {
        let buf = [0xffu8];
        let mut r = BitReader::new(0);
        assert_eq!(r.read_bits(&buf, 8), Some(0xff));
        assert_eq!(r.read_bit(&buf), None);
        let mut r = BitReader::new(0);
        assert_eq!(r.read_bits(&buf, 9), None);
    }
}
