//! WAL record payloads: series, samples and tombstones. See
//! `docs/format/wal.md`.

use koban_model::{Label, Labels};

/// Record type byte: series definitions.
pub const TYPE_SERIES: u8 = 1;
/// Record type byte: float samples, first format (raw 8-byte values).
/// Still read; written by [`encode_samples_v1`] only (tests, fixtures).
pub const TYPE_SAMPLES: u8 = 2;
/// Record type byte: float samples, compact format (refs as deltas from
/// the previous sample, short decimals as varints). Written by
/// [`encode_samples`].
pub const TYPE_SAMPLES_COMPACT: u8 = 3;
/// Record type byte: tombstones (deleted time ranges of head series).
/// Written by [`encode_tombstones`].
pub const TYPE_TOMBSTONES: u8 = 4;

/// Frame header: type (1) + payload length u32 LE (4) + CRC32C u32 LE (4).
pub const HEADER_LEN: usize = 9;

/// A decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series: (ref, labels).
    Series(Vec<(u64, Labels)>),
    /// Samples: (ref, t, v).
    Samples(Vec<(u64, i64, f64)>),
    /// Deletions: (ref, mint, maxt), both ends included. Applies to the
    /// samples logged before the record only.
    Tombstones(Vec<(u64, i64, i64)>),
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
    #[error("invalid {what} {value:#x}")]
    Invalid { what: &'static str, value: u64 },
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

/// Encodes a framed tombstones record ([`TYPE_TOMBSTONES`]) into `out`:
/// per deletion the series ref, then mint and maxt as signed varints.
pub fn encode_tombstones(out: &mut Vec<u8>, scratch: &mut Vec<u8>, ts: &[(u64, i64, i64)]) {
    scratch.clear();
    for &(r, mint, maxt) in ts {
        put_uvarint(scratch, r);
        put_varint(scratch, mint);
        put_varint(scratch, maxt);
    }
    frame(out, TYPE_TOMBSTONES, scratch);
}

/// Encodes a framed samples record of the first format ([`TYPE_SAMPLES`])
/// into `out`: refs and timestamps as deltas from the first sample, values
/// as raw 8-byte LE bits. Koban no longer writes it (see
/// [`encode_samples`]); kept to test that old logs still read.
pub fn encode_samples_v1(out: &mut Vec<u8>, scratch: &mut Vec<u8>, samples: &[(u64, i64, f64)]) {
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

/// Powers of ten `10^0..=10^6`, all exact in f64.
const POW10: [f64; 7] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6];
/// 2^53: every integer of smaller magnitude is exact in f64.
const EXACT: f64 = 9_007_199_254_740_992.0;
/// Compact value header: "8 raw bytes follow".
const VALUE_RAW: u64 = 7;
/// Compact ref tags (low 2 bits of the ref header).
const REF_SAME: u64 = 0;
const REF_HI_ZERO: u64 = 1;
const REF_HI_EXPLICIT: u64 = 2;

/// `v` as a short decimal: `(m, k)` with `|m| < 2^53`, `k <= 6` minimal and
/// `(m as f64) / 10^k` equal to `v` bit for bit; `None` if there is none
/// (NaN, ±Inf, -0.0, subnormals, most computed floats). A few
/// multiplications and one division at most: cheap for any input.
///
/// Why the check is enough: with `|m| < 2^53` both operands of the
/// division are exact and IEEE division is correctly rounded, so
/// decoding computes exactly the value checked here; removing a factor 10
/// from `m` and from `10^k` leaves the exact quotient, hence its rounding,
/// unchanged.
#[inline]
pub(crate) fn decimal(v: f64) -> Option<(i64, u32)> {
    let a = v.abs();
    // |v| >= 2^53 (±Inf included) has no short decimal form.
    if a.is_nan() || a >= EXACT {
        return None;
    }
    // Integers (counters, most gauges): no division.
    let m = v as i64;
    if (m as f64).to_bits() == v.to_bits() {
        return Some((m, 0));
    }
    // The most decimals |v| * 10^k still below 2^53 allows.
    let mut k = 6;
    let mut x = v * POW10[6];
    while x.abs() >= EXACT {
        k -= 1;
        if k == 0 {
            return None; // not an integer, and no room for decimals
        }
        x = v * POW10[k];
    }
    // Nearest integer (half away from zero); only a candidate, checked below.
    let mut m = (x + 0.5f64.copysign(x)) as i64;
    if m.unsigned_abs() >= 1 << 53 || ((m as f64) / POW10[k]).to_bits() != v.to_bits() {
        return None;
    }
    // v is not an integer, so this stops before k reaches 0.
    while k > 1 && m % 10 == 0 {
        m /= 10;
        k -= 1;
    }
    Some((m, k as u32))
}

/// Encodes a framed samples record ([`TYPE_SAMPLES_COMPACT`]) into `out`.
///
/// Per sample: the ref as deltas of its low and high 32-bit halves from the
/// previous sample's (series created together have neighbouring ids, so this
/// is mostly one byte), the timestamp as a delta from the first sample's
/// (one byte for a scrape), and the value as a short decimal when it is one
/// bit for bit (see [`decimal`]), else its 8 raw bytes. Writes straight into
/// `out` (no scratch copy) and allocates nothing per sample.
pub fn encode_samples(out: &mut Vec<u8>, samples: &[(u64, i64, f64)]) {
    let start = out.len();
    out.reserve(HEADER_LEN + 16 + samples.len() * 8);
    out.extend_from_slice(&[TYPE_SAMPLES_COMPACT, 0, 0, 0, 0, 0, 0, 0, 0]);
    put_uvarint(out, samples.len() as u64);
    if let Some(&(_, t0, _)) = samples.first() {
        put_varint(out, t0);
        let (mut plo, mut phi) = (0u32, 0u32);
        for &(r, t, v) in samples {
            let (lo, hi) = (r as u32, (r >> 32) as u32);
            let dlo = lo.wrapping_sub(plo) as i32;
            let dhi = hi.wrapping_sub(phi) as i32;
            (plo, phi) = (lo, hi);
            let z = (((dlo << 1) ^ (dlo >> 31)) as u32 as u64) << 2;
            if dhi == dlo {
                put_uvarint(out, z | REF_SAME);
            } else if dhi == 0 {
                put_uvarint(out, z | REF_HI_ZERO);
            } else {
                put_uvarint(out, z | REF_HI_EXPLICIT);
                put_varint(out, dhi as i64);
            }
            put_varint(out, t.wrapping_sub(t0));
            match decimal(v) {
                Some((m, k)) => put_uvarint(out, (((m << 1) ^ (m >> 63)) as u64) << 3 | k as u64),
                None => {
                    out.push(VALUE_RAW as u8);
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
        }
    }
    let len = out.len() - start - HEADER_LEN;
    out[start + 1..start + 5].copy_from_slice(&(len as u32).to_le_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&[TYPE_SAMPLES_COMPACT]),
        &out[start + HEADER_LEN..],
    );
    out[start + 5..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
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
        TYPE_SAMPLES_COMPACT => {
            let n = d.uvarint()? as usize;
            // Each sample takes at least 3 bytes: bound the allocation.
            let mut out = Vec::with_capacity(n.min(payload.len() / 3 + 1));
            if n > 0 {
                let t0 = d.varint()?;
                let (mut lo, mut hi) = (0u32, 0u32);
                for _ in 0..n {
                    let h = d.uvarint()?;
                    let z = u32::try_from(h >> 2).map_err(|_| DecodeError::Invalid {
                        what: "ref header",
                        value: h,
                    })?;
                    let dlo = ((z >> 1) as i32) ^ -((z & 1) as i32);
                    let dhi = match h & 3 {
                        REF_SAME => dlo,
                        REF_HI_ZERO => 0,
                        REF_HI_EXPLICIT => {
                            let x = d.varint()?;
                            i32::try_from(x).map_err(|_| DecodeError::Invalid {
                                what: "ref high delta",
                                value: x as u64,
                            })?
                        }
                        _ => {
                            return Err(DecodeError::Invalid {
                                what: "ref header",
                                value: h,
                            })
                        }
                    };
                    lo = lo.wrapping_add(dlo as u32);
                    hi = hi.wrapping_add(dhi as u32);
                    let t = t0.wrapping_add(d.varint()?);
                    let vh = d.uvarint()?;
                    let v = if vh == VALUE_RAW {
                        let b = d.bytes(8)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(b);
                        f64::from_bits(u64::from_le_bytes(a))
                    } else {
                        let k = (vh & 7) as usize;
                        let z = vh >> 3;
                        let m = ((z >> 1) as i64) ^ -((z & 1) as i64);
                        if k == 7 || m.unsigned_abs() >= 1 << 53 {
                            return Err(DecodeError::Invalid {
                                what: "value header",
                                value: vh,
                            });
                        }
                        (m as f64) / POW10[k]
                    };
                    out.push((((hi as u64) << 32) | lo as u64, t, v));
                }
            }
            d.done()?;
            Ok(Record::Samples(out))
        }
        TYPE_TOMBSTONES => {
            let mut out = Vec::new();
            while d.pos < payload.len() {
                let r = d.uvarint()?;
                let mint = d.varint()?;
                let maxt = d.varint()?;
                out.push((r, mint, maxt));
            }
            Ok(Record::Tombstones(out))
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
    if !matches!(
        typ,
        TYPE_SERIES | TYPE_SAMPLES | TYPE_SAMPLES_COMPACT | TYPE_TOMBSTONES
    ) {
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

    /// The tombstones record as docs/format/wal.md specifies it, byte for
    /// byte: logs written now must read the same in later versions.
    #[test]
    fn tombstones_record_bytes_are_stable() {
        let ts = [(1u64, 100i64, 200i64), ((7 << 32) | 3, i64::MIN, -1)];
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        encode_tombstones(&mut out, &mut scratch, &ts);
        let payload: &[u8] = &[
            0x01, 0xc8, 0x01, 0x90, 0x03, // ref 1, mint 100, maxt 200
            0x83, 0x80, 0x80, 0x80, 0x70, // ref 7<<32|3
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // i64::MIN
            0x01, // -1
        ];
        assert_eq!(out[0], TYPE_TOMBSTONES);
        assert_eq!(&out[1..5], &(payload.len() as u32).to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&[4]), payload);
        assert_eq!(&out[5..9], &crc.to_le_bytes());
        assert_eq!(&out[HEADER_LEN..], payload);
        match parse_frame(&out) {
            Frame::Ok(typ, p, n) => {
                assert_eq!((typ, n), (TYPE_TOMBSTONES, out.len()));
                assert_eq!(decode(typ, p), Ok(Record::Tombstones(ts.to_vec())));
            }
            _ => panic!("frame not read back"),
        }
        // Truncated payloads are undecodable, not misread.
        assert_eq!(
            decode(TYPE_TOMBSTONES, &payload[..3]),
            Err(DecodeError::Eof)
        );
    }

    #[test]
    fn round_trip() {
        for v1 in [false, true] {
            round_trip_with(v1);
        }
    }

    fn round_trip_with(v1: bool) {
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
        if v1 {
            encode_samples_v1(&mut out, &mut scratch, &samples);
            encode_samples_v1(&mut out, &mut scratch, &[]);
        } else {
            encode_samples(&mut out, &samples);
            encode_samples(&mut out, &[]);
        }
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
            let _ = decode(TYPE_SAMPLES_COMPACT, &g);
        }
    }

    /// Decodes one framed record.
    fn decode_framed(buf: &[u8]) -> Record {
        match parse_frame(buf) {
            Frame::Ok(t, p, n) => {
                assert_eq!(n, buf.len());
                decode(t, p).unwrap()
            }
            _ => panic!("bad frame"),
        }
    }

    fn samples_of(r: Record) -> Vec<(u64, i64, u64)> {
        match r {
            Record::Samples(s) => s.into_iter().map(|(r, t, v)| (r, t, v.to_bits())).collect(),
            r => panic!("{r:?}"),
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Edge values, random bit patterns, random integers and random short
    /// decimals: each must come back bit for bit.
    fn test_values() -> Vec<f64> {
        let mut vals: Vec<f64> = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.2,
            0.3,
            -0.3,
            0.1 + 0.2,
            1.0 / 3.0,
            12.34,
            99.99,
            1e-6,
            1e-7,
            123456.789012,
            1.5e-300,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            9_007_199_254_740_993.0,
            -9_007_199_254_740_991.0,
            900_719_925.474_099_1,
            9_007_199_254.740_991,
            1.797_693_134_862_315_7e308,
            -1.797_693_134_862_315_7e308,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            8.481_811_251_2e10,
            1.8464e-05,
            5.824_921_6e7,
            1e15 + 0.5,
            1e10 + 0.25,
        ];
        for bits in [
            1u64,                  // smallest subnormal
            0x000f_ffff_ffff_ffff, // largest subnormal
            0x8000_0000_0000_0001,
            0x7ff0_0000_0000_0002, // stale marker
            0x7ff0_0000_0000_0001,
            0x7ff8_0000_0000_0001,
            0xfff8_dead_beef_0001,
            0x7fef_ffff_ffff_ffff,
        ] {
            vals.push(f64::from_bits(bits));
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            vals.push(f64::from_bits(rng.next()));
        }
        for _ in 0..20_000 {
            let bits = rng.next() % 54;
            let m = (rng.next() >> (64 - bits.max(1))) as i64;
            let m = if rng.next() & 1 == 1 { -m } else { m };
            let k = (rng.next() % 9) as i32;
            vals.push(m as f64 / 10f64.powi(k));
            vals.push(m as f64);
            vals.push(m as f64 * 10f64.powi(k));
        }
        for _ in 0..20_000 {
            // Computed floats near decimals.
            let x = (rng.next() % 1_000_000) as f64 / 100.0;
            vals.push(x * 1.01);
            vals.push(x + f64::EPSILON * x);
            vals.push(f64::from_bits(x.to_bits() + 1));
            vals.push(f64::from_bits(x.to_bits().wrapping_sub(1)));
        }
        vals
    }

    #[test]
    fn decimal_forms() {
        assert_eq!(decimal(0.0), Some((0, 0)));
        assert_eq!(decimal(-0.0), None);
        assert_eq!(decimal(1.0), Some((1, 0)));
        assert_eq!(decimal(-7.0), Some((-7, 0)));
        assert_eq!(decimal(0.1), Some((1, 1)));
        assert_eq!(decimal(0.3), Some((3, 1)));
        assert_eq!(decimal(0.1 + 0.2), None);
        assert_eq!(decimal(12.34), Some((1234, 2)));
        assert_eq!(decimal(-99.5), Some((-995, 1)));
        assert_eq!(decimal(1e-6), Some((1, 6)));
        assert_eq!(decimal(1e-7), None);
        assert_eq!(decimal(1e10 + 0.25), Some((1_000_000_000_025, 2)));
        assert_eq!(
            decimal(9_007_199_254_740_991.0),
            Some((9_007_199_254_740_991, 0))
        );
        assert_eq!(decimal(9_007_199_254_740_992.0), None);
        assert_eq!(decimal(8.481_811_251_2e10), Some((84_818_112_512, 0)));
        assert_eq!(decimal(1.0 / 3.0), None);
        assert_eq!(decimal(f64::NAN), None);
        assert_eq!(decimal(f64::INFINITY), None);
        assert_eq!(decimal(f64::from_bits(1)), None);
        assert_eq!(decimal(f64::from_bits(0x7ff0_0000_0000_0002)), None);
    }

    #[test]
    fn compact_values_round_trip_bit_exact() {
        let vals = test_values();
        let mut compact = 0;
        for &v in &vals {
            if let Some((m, k)) = decimal(v) {
                compact += 1;
                assert!(m.unsigned_abs() < 1 << 53 && k <= 6, "{v:e}: {m} {k}");
                let back = (m as f64) / POW10[k as usize];
                assert_eq!(back.to_bits(), v.to_bits(), "{v:e}: {m} / 10^{k}");
                if k > 0 {
                    assert_ne!(m % 10, 0, "{v:e}: k not minimal");
                }
            }
        }
        assert!(compact > vals.len() / 3, "{compact} of {}", vals.len());
        // Through whole records, in chunks, with assorted refs and times.
        let mut rng = Rng(7);
        let (mut out, mut expect) = (Vec::new(), Vec::new());
        for chunk in vals.chunks(997) {
            let s: Vec<(u64, i64, f64)> = chunk
                .iter()
                .map(|&v| (rng.next(), rng.next() as i64, v))
                .collect();
            encode_samples(&mut out, &s);
            expect.extend(s.iter().map(|&(r, t, v)| (r, t, v.to_bits())));
        }
        let mut got = Vec::new();
        let mut pos = 0;
        while pos < out.len() {
            let Frame::Ok(t, p, n) = parse_frame(&out[pos..]) else {
                panic!("bad frame at {pos}")
            };
            got.extend(samples_of(decode(t, p).unwrap()));
            pos += n;
        }
        assert_eq!(got, expect);
    }

    #[test]
    fn compact_refs_round_trip() {
        let seq = |i: u64| ((i + 5) << 32) | (i + 3);
        let cases: Vec<Vec<u64>> = vec![
            (0..100).map(seq).collect(),
            (0..100).rev().map(seq).collect(),
            (0..100).map(|i| i * 3).collect(),
            (0..100).map(|i| (i % 7) << 40 | (1000 - i)).collect(),
            vec![
                0,
                u64::MAX,
                0,
                1 << 63,
                u64::MAX - 1,
                1,
                0xffff_ffff,
                1 << 32,
            ],
            vec![seq(4); 10],
        ];
        for refs in cases {
            let s: Vec<_> = refs
                .iter()
                .enumerate()
                .map(|(i, &r)| (r, 1_700_000_000_000 + (i as i64 % 3) * 15_000, i as f64))
                .collect();
            let mut out = Vec::new();
            encode_samples(&mut out, &s);
            let want: Vec<_> = s.iter().map(|&(r, t, v)| (r, t, v.to_bits())).collect();
            assert_eq!(samples_of(decode_framed(&out)), want);
        }
        // Series created in order: one byte each for ref, time and a small value.
        let s: Vec<_> = (0..1000)
            .map(|i| (seq(i), 1_700_000_000_000i64, (i % 5) as f64))
            .collect();
        let mut out = Vec::new();
        encode_samples(&mut out, &s);
        assert!(out.len() < HEADER_LEN + 30 + 3 * 1000, "{}", out.len());
    }

    #[test]
    fn compact_truncated_or_garbled_payloads_are_errors() {
        let s: Vec<_> = test_values()
            .into_iter()
            .take(300)
            .enumerate()
            .map(|(i, v)| ((i as u64 * 7) << 32 | i as u64, i as i64 * 1000, v))
            .collect();
        let mut out = Vec::new();
        encode_samples(&mut out, &s);
        let payload = &out[HEADER_LEN..];
        for cut in 0..payload.len() {
            assert!(
                decode(TYPE_SAMPLES_COMPACT, &payload[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut longer = payload.to_vec();
        longer.push(0);
        assert_eq!(
            decode(TYPE_SAMPLES_COMPACT, &longer),
            Err(DecodeError::Trailing(1))
        );
        // Flipped bits: an error or some other record, never a panic.
        for i in 0..payload.len() {
            let mut b = payload.to_vec();
            b[i] ^= 0x55;
            let _ = decode(TYPE_SAMPLES_COMPACT, &b);
        }
        // Invalid headers.
        let bad_value = [1u8, 0, 0, 0, 0x0f];
        assert!(matches!(
            decode(TYPE_SAMPLES_COMPACT, &bad_value),
            Err(DecodeError::Invalid { .. })
        ));
        let bad_ref = [1u8, 0, 3, 0, 0];
        assert!(matches!(
            decode(TYPE_SAMPLES_COMPACT, &bad_ref),
            Err(DecodeError::Invalid { .. })
        ));
        // A huge count in a tiny payload allocates little and fails.
        let mut huge = Vec::new();
        put_uvarint(&mut huge, u64::MAX);
        huge.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(decode(TYPE_SAMPLES_COMPACT, &huge), Err(DecodeError::Eof));
    }

    /// A node-exporter-like scrape (values as a real host's evolve) takes
    /// far fewer bytes per sample in the compact record.
    #[test]
    fn compact_is_smaller_on_a_scrape() {
        let mut rng = Rng(3);
        let refs: Vec<u64> = (0..1000u64).map(|i| ((i + 1) << 32) | (i + 1)).collect();
        let mut vals: Vec<f64> = (0..1000)
            .map(|i| match i % 4 {
                0 => 0.0,
                1 => (rng.next() % 100_000_000) as f64,
                2 => (rng.next() % 100_000) as f64 / 100.0,
                _ => 1.0,
            })
            .collect();
        let (mut old, mut new, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
        for scrape in 0..10i64 {
            for (i, v) in vals.iter_mut().enumerate() {
                if i % 4 == 1 {
                    *v += (rng.next() % 5000) as f64;
                }
            }
            let s: Vec<_> = refs
                .iter()
                .zip(&vals)
                .map(|(&r, &v)| (r, 1_700_000_000_000 + scrape * 15_000, v))
                .collect();
            encode_samples_v1(&mut old, &mut scratch, &s);
            encode_samples(&mut new, &s);
        }
        assert!(new.len() * 3 < old.len(), "{} vs {}", new.len(), old.len());
    }
}
