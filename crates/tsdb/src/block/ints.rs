//! Integer sequence codec used by the block chunk encoding for timestamp
//! deltas and decimal-scaled values. Picks, per sequence, the smallest of:
//!
//! - `CONST` (0): every element equal: `varint(v)`.
//! - `RLE` (1): `uvarint(runs)`, then per run `varint(value) uvarint(len-1)`.
//! - `FOR` (2): frame of reference: `varint(min) u8(width)` then every
//!   `x - min` in `width` bits, MSB first, padded to a byte.
//! - `SPARSE` (3): a base value with exceptions: `varint(base)
//!   uvarint(exceptions) u8(k) varint(min) u8(width)` then a bit stream of the
//!   exception positions as gaps (Rice-coded with parameter `k`), followed by
//!   each exception's `x - min` in `width` bits, padded to a byte.
//!
//! The element count is not stored: the caller knows it. All arithmetic is
//! wrapping, so any `i64` sequence round-trips.

use super::bits::{BitReader, BitWriter};
use crate::encoding::{put_uvarint, put_varint, uvarint_len, zigzag, Decbuf, DecodeError};

/// Mode byte of a sequence whose elements are all equal.
pub(crate) const CONST: u8 = 0;
const RLE: u8 = 1;
const FOR: u8 = 2;
const SPARSE: u8 = 3;

#[inline]
fn width_of(range: u64) -> u32 {
    64 - range.leading_zeros()
}

fn min_max(xs: &[i64]) -> (i64, i64) {
    let mut mn = i64::MAX;
    let mut mx = i64::MIN;
    for &x in xs {
        mn = mn.min(x);
        mx = mx.max(x);
    }
    (mn, mx)
}

/// Majority-vote candidate (the majority element when one exists).
fn majority(xs: &[i64]) -> i64 {
    let mut cand = xs[0];
    let mut c = 0usize;
    for &x in xs {
        if c == 0 {
            cand = x;
            c = 1;
        } else if x == cand {
            c += 1;
        } else {
            c -= 1;
        }
    }
    cand
}

struct Plan {
    mode: u8,
    size: usize,
    /// SPARSE: base, rice k.
    base: i64,
    k: u32,
}

fn plan(xs: &[i64]) -> Plan {
    let (mn, mx) = min_max(xs);
    if mn == mx {
        return Plan {
            mode: CONST,
            size: 1 + uvarint_len(zigzag(mn)),
            base: 0,
            k: 0,
        };
    }
    // FOR
    let w = width_of(mx.wrapping_sub(mn) as u64);
    let for_size = 1 + uvarint_len(zigzag(mn)) + 1 + (xs.len() * w as usize).div_ceil(8);
    let mut best = Plan {
        mode: FOR,
        size: for_size,
        base: 0,
        k: 0,
    };
    // RLE
    let mut rle = 1usize;
    let mut runs = 0u64;
    let mut i = 0;
    while i < xs.len() {
        let mut j = i + 1;
        while j < xs.len() && xs[j] == xs[i] {
            j += 1;
        }
        rle += uvarint_len(zigzag(xs[i])) + uvarint_len((j - i - 1) as u64);
        runs += 1;
        i = j;
        if rle > best.size {
            break;
        }
    }
    rle += uvarint_len(runs);
    if i >= xs.len() && rle < best.size {
        best = Plan {
            mode: RLE,
            size: rle,
            base: 0,
            k: 0,
        };
    }
    // SPARSE around the majority value.
    let base = majority(xs);
    let mut nexc = 0usize;
    let mut emn = i64::MAX;
    let mut emx = i64::MIN;
    for &x in xs {
        if x != base {
            nexc += 1;
            emn = emn.min(x);
            emx = emx.max(x);
        }
    }
    if nexc * 2 <= xs.len() {
        let ew = width_of(emx.wrapping_sub(emn) as u64) as usize;
        let mut best_k = 0u32;
        let mut best_bits = usize::MAX;
        for k in 0..=20u32 {
            let mut bits = 0usize;
            let mut prev: usize = 0;
            for (p, &x) in xs.iter().enumerate() {
                if x != base {
                    let gap = p - prev;
                    bits += (gap >> k) + 1 + k as usize;
                    prev = p + 1;
                }
            }
            if bits < best_bits {
                best_bits = bits;
                best_k = k;
            }
        }
        let size = 1
            + uvarint_len(zigzag(base))
            + uvarint_len(nexc as u64)
            + 1
            + uvarint_len(zigzag(emn))
            + 1
            + (best_bits + nexc * ew).div_ceil(8);
        if size < best.size {
            best = Plan {
                mode: SPARSE,
                size,
                base,
                k: best_k,
            };
        }
    }
    best
}

/// Encoded size in bytes of `xs` (non-empty).
pub fn encoded_size(xs: &[i64]) -> usize {
    if xs.is_empty() {
        return 0;
    }
    plan(xs).size
}

/// Appends the encoding of `xs`. An empty sequence encodes as nothing.
pub fn encode(xs: &[i64], out: &mut Vec<u8>) {
    if xs.is_empty() {
        return;
    }
    let p = plan(xs);
    out.push(p.mode);
    match p.mode {
        CONST => put_varint(out, xs[0]),
        RLE => {
            let mut runs: Vec<(i64, u64)> = Vec::new();
            for &x in xs {
                match runs.last_mut() {
                    Some((v, c)) if *v == x => *c += 1,
                    _ => runs.push((x, 1)),
                }
            }
            put_uvarint(out, runs.len() as u64);
            for (v, c) in runs {
                put_varint(out, v);
                put_uvarint(out, c - 1);
            }
        }
        FOR => {
            let (mn, mx) = min_max(xs);
            let w = width_of(mx.wrapping_sub(mn) as u64);
            put_varint(out, mn);
            out.push(w as u8);
            let mut bw = BitWriter::new();
            for &x in xs {
                bw.write(x.wrapping_sub(mn) as u64, w);
            }
            out.extend_from_slice(&bw.finish());
        }
        _ => {
            let base = p.base;
            let exc: Vec<(usize, i64)> = xs
                .iter()
                .copied()
                .enumerate()
                .filter(|&(_, x)| x != base)
                .collect();
            let (emn, emx) = exc
                .iter()
                .fold((i64::MAX, i64::MIN), |(a, b), &(_, x)| (a.min(x), b.max(x)));
            let ew = width_of(emx.wrapping_sub(emn) as u64);
            put_varint(out, base);
            put_uvarint(out, exc.len() as u64);
            out.push(p.k as u8);
            put_varint(out, emn);
            out.push(ew as u8);
            let mut bw = BitWriter::new();
            let mut prev = 0usize;
            for &(pos, _) in &exc {
                let gap = (pos - prev) as u64;
                let q = gap >> p.k;
                for _ in 0..q {
                    bw.bit(true);
                }
                bw.bit(false);
                bw.write(gap, p.k);
                prev = pos + 1;
            }
            for &(_, x) in &exc {
                bw.write(x.wrapping_sub(emn) as u64, ew);
            }
            out.extend_from_slice(&bw.finish());
        }
    }
    debug_assert!(out.len() >= p.size, "BUG: size plan larger than encoding");
}

/// Appends `n` values of `w` bits each (plus `mn`) read from `b`, which
/// holds at least `n * w` bits.
fn unpack_for(b: &[u8], n: usize, w: u32, mn: i64, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    out.reserve(n);
    if w == 0 {
        out.extend(std::iter::repeat_n(mn, n));
        return Ok(());
    }
    if w > 56 {
        let mut r = BitReader::new(b);
        for _ in 0..n {
            out.push(mn.wrapping_add(r.read(w)? as i64));
        }
        return Ok(());
    }
    let wu = w as usize;
    let start = out.len();
    out.resize(start + n, 0);
    let dst = &mut out[start..];
    let mut i = 0;
    let mut bit = 0usize;
    // Fast path: an unaligned 8-byte big-endian load holds the whole value
    // (shift <= 7, w <= 56).
    for slot in dst.iter_mut() {
        let byte = bit >> 3;
        let Some(s) = b.get(byte..byte + 8) else {
            break;
        };
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        let x = (u64::from_be_bytes(a) << (bit & 7)) >> (64 - w);
        *slot = mn.wrapping_add(x as i64);
        bit += wu;
        i += 1;
    }
    if i < n {
        let mut r = BitReader::new(&b[(i * wu) >> 3..]);
        r.read(((i * wu) & 7) as u32)?;
        for slot in &mut dst[i..] {
            *slot = mn.wrapping_add(r.read(w)? as i64);
        }
    }
    Ok(())
}

/// Decodes `n` integers from the front of `d`, appending them to `out`.
pub fn decode(d: &mut Decbuf<'_>, n: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    if n == 0 {
        return Ok(());
    }
    let mode = d.u8()?;
    match mode {
        CONST => {
            let v = d.varint()?;
            out.extend(std::iter::repeat_n(v, n));
        }
        RLE => {
            let runs = d.len_at_most(n)?;
            let mut total = 0usize;
            for _ in 0..runs {
                if total >= n {
                    return Err(DecodeError("RLE runs exceed the count"));
                }
                let v = d.varint()?;
                let c = d.len_at_most(n - total - 1)? + 1;
                total += c;
                out.extend(std::iter::repeat_n(v, c));
            }
            if total != n {
                return Err(DecodeError("RLE runs do not add up to the count"));
            }
        }
        FOR => {
            let mn = d.varint()?;
            let w = u32::from(d.u8()?);
            if w > 64 {
                return Err(DecodeError("bit width over 64"));
            }
            let nbytes = (n * w as usize).div_ceil(8);
            unpack_for(d.bytes(nbytes)?, n, w, mn, out)?;
        }
        SPARSE => {
            let base = d.varint()?;
            let nexc = d.len_at_most(n)?;
            let k = u32::from(d.u8()?);
            let emn = d.varint()?;
            let ew = u32::from(d.u8()?);
            if k > 63 || ew > 64 {
                return Err(DecodeError("bad sparse parameters"));
            }
            let start = out.len();
            out.extend(std::iter::repeat_n(base, n));
            let mut r = BitReader::new(d.rest());
            let mut positions: Vec<usize> = Vec::with_capacity(nexc);
            let mut prev = 0usize;
            for _ in 0..nexc {
                let q = r.unary(n as u64)?;
                let gap = ((q << k) | r.read(k)?) as usize;
                let pos = prev
                    .checked_add(gap)
                    .filter(|&p| p < n)
                    .ok_or(DecodeError("sparse position out of range"))?;
                positions.push(pos);
                prev = pos + 1;
            }
            for &pos in &positions {
                out[start + pos] = emn.wrapping_add(r.read(ew)? as i64);
            }
            let used = r.bytes_consumed();
            d.bytes(used)?;
        }
        _ => return Err(DecodeError("unknown integer encoding")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(xs: &[i64]) -> usize {
        let mut b = Vec::new();
        encode(xs, &mut b);
        assert_eq!(b.len(), encoded_size(xs), "{xs:?}");
        b.extend_from_slice(&[0xAA, 0xBB]);
        let mut d = Decbuf::new(&b);
        let mut out = Vec::new();
        decode(&mut d, xs.len(), &mut out).unwrap();
        assert_eq!(out, xs);
        assert_eq!(d.rest(), &[0xAA, 0xBB]);
        b.len() - 2
    }

    #[test]
    fn modes_round_trip() {
        assert_eq!(rt(&[15000; 1000]), 4);
        let mut ts = vec![15000i64; 500];
        ts[100] = 30000;
        ts[300] = 14999;
        assert!(rt(&ts) < 24, "{}", rt(&ts));
        let v: Vec<i64> = (0..1000).map(|i| (i * 7919) % 1000 - 500).collect();
        assert!(rt(&v) <= 1000 * 10 / 8 + 6);
        let mut sp = vec![0i64; 1000];
        for i in (0..1000).step_by(37) {
            sp[i] = (i as i64) * 13 - 4000;
        }
        rt(&sp);
        rt(&[i64::MIN, i64::MAX, 0, -1, 1]);
        rt(&[i64::MAX, i64::MIN]);
        rt(&[5]);
        rt(&[]);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut out = Vec::new();
        for round in 0..20_000u64 {
            let len = (round % 40) as usize;
            let b: Vec<u8> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if i == 0 {
                        (x % 5) as u8
                    } else {
                        x as u8
                    }
                })
                .collect();
            out.clear();
            let _ = decode(&mut Decbuf::new(&b), 1 + (round % 70) as usize, &mut out);
        }
    }

    #[test]
    fn garbage_fails_cleanly() {
        let mut out = Vec::new();
        for b0 in 0..5u8 {
            for len in 0..12 {
                let b: Vec<u8> = std::iter::once(b0)
                    .chain((0..len).map(|i| (i * 97 + 13) as u8))
                    .collect();
                let _ = decode(&mut Decbuf::new(&b), 50, &mut out);
                out.clear();
            }
        }
    }
}
