//! Byte-level helpers shared by the on-disk formats: LEB128 varints, zigzag,
//! and a bounds-checked decoding cursor.

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// Length in bytes of `v` as an unsigned varint.
#[inline]
pub fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends a length-prefixed byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Decoding failed: the input ended early or held an impossible value.
/// Callers wrap it with the file and section it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub &'static str);

/// A cursor over a byte slice whose reads fail instead of panicking.
#[derive(Debug, Clone)]
pub struct Decbuf<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Decbuf<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Decbuf { b, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }

    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.b.get(self.pos) else {
                return Err(DecodeError("truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
        }
    }

    #[inline]
    pub fn varint(&mut self) -> Result<i64, DecodeError> {
        self.uvarint().map(unzigzag)
    }

    /// A varint that must fit `usize` and be at most `max` (guards allocations).
    pub fn len_at_most(&mut self, max: usize) -> Result<usize, DecodeError> {
        let v = self.uvarint()?;
        if v > max as u64 {
            return Err(DecodeError("length out of range"));
        }
        Ok(v as usize)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let v = *self.b.get(self.pos).ok_or(DecodeError("truncated byte"))?;
        self.pos += 1;
        Ok(v)
    }

    pub fn u32_le(&mut self) -> Result<u32, DecodeError> {
        let s = self.bytes(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError("truncated bytes"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A length-prefixed byte string.
    pub fn len_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len_at_most(self.remaining())?;
        self.bytes(n)
    }

    pub fn len_str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.len_bytes()?).map_err(|_| DecodeError("invalid UTF-8 string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let vals = [0i64, 1, -1, 63, -64, 64, 1 << 40, i64::MAX, i64::MIN];
        let mut b = Vec::new();
        for &v in &vals {
            put_varint(&mut b, v);
            put_uvarint(&mut b, v as u64);
        }
        let mut d = Decbuf::new(&b);
        for &v in &vals {
            assert_eq!(d.varint().unwrap(), v);
            assert_eq!(d.uvarint().unwrap(), v as u64);
        }
        assert!(d.uvarint().is_err());
        assert_eq!(uvarint_len(0), 1);
        assert_eq!(uvarint_len(127), 1);
        assert_eq!(uvarint_len(128), 2);
        assert_eq!(uvarint_len(u64::MAX), 10);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let b = [0xffu8; 11];
        assert!(Decbuf::new(&b).uvarint().is_err());
    }
}
