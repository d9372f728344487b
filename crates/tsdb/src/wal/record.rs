//! WAL record payloads: series and samples. See `docs/format/wal.md`.

use koban_model::{Label, Labels};

/// Record type byte: series definitions.
pub const TYPE_SERIES: u8 = 1;
/// Record type byte: float samples.
pub const TYPE_SAMPLES: u8 = 2;

/// Frame header: type (1) + payload length u32 LE (4) + CRC32C u32 LE (4).
pub const HEADER_LEN: usize = 9;

/// A decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series: (ref, labels).
    Series(Vec<(u64, Labels)>),
    /// Samples: (ref, t, v).
    Samples(Vec<(u64, i64, f64)>),
}

/// Why a payload failed to decode.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unexpected end of record")]
    Eof,
    #[error("invalid varint")]
    Varint,
    #[error("invalid utf-8 in label")]
    Utf8,
    #[error("unknown record type {0}")]
    UnknownType(u8),
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        buf.push((u as u8) | 0x80);
        u >>= 7;
    }
    buf.push(u as u8);
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut u = 0u64;
        for shift in (0..70).step_by(7) {
            let b = *self.b.get(self.pos).ok_or(DecodeError::Eof)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(DecodeError::Varint);
            }
            u |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(u);
            }
        }
        Err(DecodeError::Varint)
    }

    fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Eof)?;
        let s = self.b.get(self.pos..end).ok_or(DecodeError::Eof)?;
        self.pos = end;
        Ok(s)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.uvarint()? as usize;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| DecodeError::Utf8)
    }

    fn done(&self) -> Result<(), DecodeError> {
        match self.b.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Appends a framed record (header + payload) to `out`; `payload` is a
/// scratch buffer.
fn frame(out: &mut Vec<u8>, typ: u8, payload: &[u8]) {
    out.push(typ);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[typ]), payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Encodes a framed series record into `out`.
pub fn encode_series(out: &mut Vec<u8>, scratch: &mut Vec<u8>, series: &[(u64, Labels)]) {
    scratch.clear();
    for (r, ls) in series {
        put_uvarint(scratch, *r);
        put_uvarint(scratch, ls.len() as u64);
        for l in ls {
            put_uvarint(scratch, l.name.len() as u64);
            scratch.extend_from_slice(l.name.as_bytes());
            put_uvarint(scratch, l.value.len() as u64);
            scratch.extend_from_slice(l.value.as_bytes());
        }
    }
    frame(out, TYPE_SERIES, scratch);
}

/// Encodes a framed samples record into `out`: refs and timestamps as
/// deltas from the first sample, values as raw 8-byte LE bits.
pub fn encode_samples(out: &mut Vec<u8>, scratch: &mut Vec<u8>, samples: &[(u64, i64, f64)]) {
    scratch.clear();
    put_uvarint(scratch, samples.len() as u64);
    if let Some(&(r0, t0, _)) = samples.first() {
        put_uvarint(scratch, r0);
        put_varint(scratch, t0);
        for &(r, t, v) in samples {
            put_varint(scratch, r.wrapping_sub(r0) as i64);
            put_varint(scratch, t.wrapping_sub(t0));
            scratch.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
    frame(out, TYPE_SAMPLES, scratch);
}

/// Decodes a record payload of type `typ`.
pub fn decode(typ: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    let mut d = Dec { b: payload, pos: 0 };
    match typ {
        TYPE_SERIES => {
            let mut out = Vec::new();
            while d.pos < payload.len() {
                let r = d.uvarint()?;
                let n = d.uvarint()? as usize;
                let mut ls = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    let name = d.str()?;
                    let value = d.str()?;
                    ls.push(Label::new(name, value));
                }
                out.push((r, Labels::from_vec(ls)));
            }
            Ok(Record::Series(out))
        }
        TYPE_SAMPLES => {
            let n = d.uvarint()? as usize;
            // Each sample takes at least 10 bytes: bound the allocation.
            let mut out = Vec::with_capacity(n.min(payload.len() / 10 + 1));
            if n > 0 {
                let r0 = d.uvarint()?;
                let t0 = d.varint()?;
                for _ in 0..n {
                    let r = r0.wrapping_add(d.varint()? as u64);
                    let t = t0.wrapping_add(d.varint()?);
                    let b = d.bytes(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    out.push((r, t, f64::from_bits(u64::from_le_bytes(a))));
                }
            }
            d.done()?;
            Ok(Record::Samples(out))
        }
        t => Err(DecodeError::UnknownType(t)),
    }
}

/// Result of parsing one frame at the start of `buf`.
pub(crate) enum Frame<'a> {
    /// A complete, checksummed frame: (type, payload, total frame length).
    Ok(u8, &'a [u8], usize),
    /// The frame extends past the end of `buf` (torn write).
    Incomplete,
    /// Checksum mismatch or impossible header.
    Corrupt(String),
}

pub(crate) fn parse_frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < HEADER_LEN {
        return Frame::Incomplete;
    }
    let typ = buf[0];
    let len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    let crc = u32::from_le_bytes([buf[5], buf[6], buf[7], buf[8]]);
    if typ != TYPE_SERIES && typ != TYPE_SAMPLES {
        return Frame::Corrupt(format!("unknown record type {typ}"));
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Frame::Incomplete;
    };
    let got = crc32c::crc32c_append(crc32c::crc32c(&[typ]), payload);
    if got != crc {
        return Frame::Corrupt(format!(
            "checksum mismatch: want {crc:#010x}, got {got:#010x}"
        ));
    }
    Frame::Ok(typ, payload, HEADER_LEN + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let series = vec![
            (1u64, Labels::from_pairs([("__name__", "up"), ("job", "a")])),
            (7, Labels::from_pairs([("__name__", "x"), ("é", "日本")])),
        ];
        let samples = vec![
            (7u64, 1000i64, 1.5f64),
            (1, 999, f64::from_bits(0x7ff0_0000_0000_0002)),
            (u64::MAX, i64::MIN, -0.0),
        ];
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        encode_series(&mut out, &mut scratch, &series);
        encode_samples(&mut out, &mut scratch, &samples);
        encode_samples(&mut out, &mut scratch, &[]);
        let mut pos = 0;
        let mut recs = Vec::new();
        while pos < out.len() {
            match parse_frame(&out[pos..]) {
                Frame::Ok(t, p, n) => {
                    recs.push(decode(t, p).unwrap());
                    pos += n;
                }
                _ => panic!("bad frame"),
            }
        }
        assert_eq!(recs[0], Record::Series(series));
        match &recs[1] {
            Record::Samples(s) => {
                assert_eq!(s.len(), 3);
                for (a, b) in s.iter().zip(&samples) {
                    assert_eq!((a.0, a.1, a.2.to_bits()), (b.0, b.1, b.2.to_bits()));
                }
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(recs[2], Record::Samples(vec![]));
        // Every truncation is Incomplete; every bit flip is detected.
        let first_len = match parse_frame(&out) {
            Frame::Ok(_, _, n) => n,
            _ => unreachable!(),
        };
        for cut in 0..first_len {
            assert!(
                matches!(parse_frame(&out[..cut]), Frame::Incomplete),
                "cut {cut}"
            );
        }
        for i in 0..first_len {
            let mut b = out.clone();
            b[i] ^= 0x10;
            assert!(!matches!(parse_frame(&b), Frame::Ok(..)), "flip {i}");
        }
    }

    #[test]
    fn garbage_payloads_do_not_panic() {
        let mut x: u32 = 1;
        for len in 0..200 {
            let g: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = decode(TYPE_SERIES, &g);
            let _ = decode(TYPE_SAMPLES, &g);
        }
    }
}
