//! MSB-first bit streams for the block chunk encodings.

use crate::encoding::DecodeError;

/// Appends bits MSB-first to a byte vector.
#[derive(Debug, Default)]
pub struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    /// Bits held in `acc` (always < 8 between calls).
    n: u32,
}

impl BitWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the low `nbits` bits of `v` (nbits <= 64).
    #[inline]
    pub fn write(&mut self, v: u64, nbits: u32) {
        debug_assert!(nbits <= 64);
        if nbits == 0 {
            return;
        }
        if nbits > 56 {
            self.write(v >> 32, nbits - 32);
            self.write(v & 0xffff_ffff, 32);
            return;
        }
        let v = if nbits == 64 {
            v
        } else {
            v & ((1u64 << nbits) - 1)
        };
        self.acc = (self.acc << nbits) | v;
        self.n += nbits;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
        if self.n == 0 {
            self.acc = 0;
        } else {
            self.acc &= (1u64 << self.n) - 1;
        }
    }

    #[inline]
    pub fn bit(&mut self, b: bool) {
        self.write(u64::from(b), 1);
    }

    /// Bits written so far.
    pub fn len_bits(&self) -> usize {
        self.out.len() * 8 + self.n as usize
    }

    /// Pads to a byte boundary with zeros and returns the bytes.
    pub fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
        }
        self.out
    }
}

/// Reads bits MSB-first from a byte slice; reads past the end fail.
/// Keeps up to 64 bits buffered so most reads are a shift and a compare.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    b: &'a [u8],
    /// Next byte of `b` to load into `buf`.
    next: usize,
    /// Buffered bits, left-aligned.
    buf: u64,
    /// Number of valid bits in `buf`.
    avail: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        BitReader {
            b,
            next: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Bytes consumed, rounding a partial byte up.
    pub fn bytes_consumed(&self) -> usize {
        (self.next * 8 - self.avail as usize).div_ceil(8)
    }

    #[inline]
    fn refill(&mut self) {
        if self.next + 8 <= self.b.len() {
            let mut a = [0u8; 8];
            a.copy_from_slice(&self.b[self.next..self.next + 8]);
            let w = u64::from_be_bytes(a);
            // Take whole bytes while at least one fits.
            let take = (64 - self.avail) / 8;
            if take == 0 {
                return;
            }
            self.buf |= w >> self.avail;
            // Drop bits of a partially taken byte beyond what we account for.
            let keep = self.avail + take * 8;
            if keep < 64 {
                self.buf &= !(u64::MAX >> keep);
            }
            self.next += take as usize;
            self.avail = keep;
        } else {
            while self.avail <= 56 && self.next < self.b.len() {
                self.buf |= u64::from(self.b[self.next]) << (56 - self.avail);
                self.next += 1;
                self.avail += 8;
            }
        }
    }

    /// Reads `nbits` (<= 64) bits.
    #[inline(always)]
    pub fn read(&mut self, nbits: u32) -> Result<u64, DecodeError> {
        // Fast path: 1..=avail bits already buffered (nbits == 0 wraps and
        // takes the slow path).
        if nbits.wrapping_sub(1) < self.avail {
            let v = self.buf >> (64 - nbits);
            self.buf = self.buf.checked_shl(nbits).unwrap_or(0);
            self.avail -= nbits;
            return Ok(v);
        }
        self.read_slow(nbits)
    }

    #[inline(never)]
    fn read_slow(&mut self, nbits: u32) -> Result<u64, DecodeError> {
        if nbits == 0 {
            return Ok(0);
        }
        if nbits > 56 {
            let hi = self.read(nbits - 32)?;
            let lo = self.read(32)?;
            return Ok((hi << 32) | lo);
        }
        if nbits > self.avail {
            self.refill();
            if nbits > self.avail {
                return Err(DecodeError("bit stream truncated"));
            }
        }
        let v = self.buf >> (64 - nbits);
        self.buf <<= nbits;
        self.avail -= nbits;
        Ok(v)
    }

    #[inline]
    pub fn bit(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read(1)? == 1)
    }

    /// Reads a unary number: 1 bits ended by a 0 bit, returning the count of
    /// 1s. Fails past `max` ones or at the end of the stream.
    #[inline]
    pub fn unary(&mut self, max: u64) -> Result<u64, DecodeError> {
        let mut q = 0u64;
        loop {
            if self.avail == 0 {
                self.refill();
                if self.avail == 0 {
                    return Err(DecodeError("bit stream truncated"));
                }
            }
            let ones = (self.buf.leading_ones()).min(self.avail);
            q += u64::from(ones);
            if q > max {
                return Err(DecodeError("unary value out of range"));
            }
            if ones < self.avail {
                // Consume the ones and the terminating zero.
                self.buf = self.buf.checked_shl(ones + 1).unwrap_or(0);
                self.avail -= ones + 1;
                return Ok(q);
            }
            self.buf = 0;
            self.avail = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        let mut w = BitWriter::new();
        let items: Vec<(u64, u32)> = (0..200u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), (i % 65) as u32))
            .collect();
        for &(v, n) in &items {
            w.write(v, n);
        }
        let total = w.len_bits();
        let b = w.finish();
        assert_eq!(b.len(), total.div_ceil(8));
        let mut r = BitReader::new(&b);
        for &(v, n) in &items {
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            assert_eq!(r.read(n).unwrap(), v & mask, "n={n}");
        }
        assert!(r.read(16).is_err());
        // Consumed-bytes accounting after mixed reads.
        let mut r = BitReader::new(&[0xff; 20]);
        r.read(3).unwrap();
        assert_eq!(r.bytes_consumed(), 1);
        r.read(13).unwrap();
        assert_eq!(r.bytes_consumed(), 2);
        r.read(1).unwrap();
        assert_eq!(r.bytes_consumed(), 3);
        // Unary codes, including runs longer than the buffer.
        let mut w = BitWriter::new();
        let qs = [0u64, 1, 5, 63, 64, 130, 2, 63, 63];
        for q in qs {
            for _ in 0..q {
                w.bit(true);
            }
            w.bit(false);
        }
        let b = w.finish();
        let mut r = BitReader::new(&b);
        for q in qs {
            assert_eq!(r.unary(1000).unwrap(), q);
        }
        assert!(BitReader::new(&[0xff, 0xff]).unary(1000).is_err());
        assert!(BitReader::new(&[0xff, 0x00]).unary(3).is_err());
    }
}
