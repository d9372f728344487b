//! The block chunk encoding: lossless, re-chosen per chunk at write time.
//! Format (see docs/format/chunks.md):
//!
//! ```text
//! uvarint(n)            samples, >= 1
//! u8 header             low nibble: timestamp mode (0), high nibble: value mode
//! timestamps            n-1 deltas from the chunk's mint (held by the index)
//!                       through the integer codec (block::ints)
//! values                by value mode:
//!   0 CONST     u64 LE bit pattern shared by every sample
//!   1 DECIMAL   u8 e, u8 transform; values are n_i / 10^e with integer n_i;
//!               transform 0: codec(n_0..n_{n-1})
//!               transform 1: varint(n_0) codec(deltas)
//!               transform 2: varint(n_0) [varint(d_0)] codec(delta-of-deltas)
//!   2 XOR       Gorilla XOR bit stream of the raw bit patterns
//!   3 DECIMAL+  uvarint k, k x (uvarint gap, u64 LE bits) exceptions
//!               (NaN, inf, -0.0), then a DECIMAL payload in which each
//!               exception holds its neighbour's value
//!   4 RAW       n x u64 LE bit patterns (high-entropy values, where XOR
//!               would take as many bytes or more)
//! ```
//!
//! DECIMAL is used only when every value, decoded as `(n as f64) / 10^e`,
//! gives back the original bit pattern; anything else (NaN payloads, -0.0,
//! infinities, values with many digits) falls back to XOR or CONST.

use super::bits::BitWriter;
use super::ints;
use crate::encoding::{put_uvarint, put_varint, Decbuf, DecodeError};

const V_CONST: u8 = 0;
const V_DECIMAL: u8 = 1;
const V_XOR: u8 = 2;
const V_DECIMAL_EXC: u8 = 3;
const V_RAW: u8 = 4;

/// Values a decimal cannot represent but that are common in otherwise
/// decimal series: NaNs (the staleness marker), infinities and -0.0.
#[inline]
fn is_special(v: f64) -> bool {
    !v.is_finite() || v.to_bits() == 0x8000_0000_0000_0000
}

/// Largest decimal exponent tried.
const MAX_EXP: u32 = 15;
/// Largest |n| accepted for a decimal (exact in an f64).
const MAX_DEC: f64 = (1u64 << 53) as f64;

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The smallest exponent `e` such that every value is exactly `n / 10^e`,
/// with the scaled integers written into `ns`.
fn find_decimal(vals: &[f64], ns: &mut Vec<i64>) -> Option<u32> {
    'exp: for e in 0..=MAX_EXP {
        let scale = POW10[e as usize];
        ns.clear();
        for &v in vals {
            let x = (v * scale).round();
            // NaN, infinities and values too large for an exact integer at
            // this scale (larger scales only grow them) rule decimals out.
            if x.is_nan() || x.abs() > MAX_DEC {
                return None;
            }
            let n = x as i64;
            if decimal_value(n, e, scale).to_bits() != v.to_bits() {
                continue 'exp;
            }
            ns.push(n);
        }
        return Some(e);
    }
    None
}

#[inline]
fn decimal_value(n: i64, e: u32, scale: f64) -> f64 {
    if e == 0 {
        n as f64
    } else {
        n as f64 / scale
    }
}

fn encode_decimal(ns: &[i64], e: u32, out: &mut Vec<u8>) {
    out.push(e as u8);
    let n = ns.len();
    // Candidate transforms; pick the smallest.
    let raw = ints::encoded_size(ns);
    let deltas: Vec<i64> = ns.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let dsize =
        ints::encoded_size(&deltas) + crate::encoding::uvarint_len(crate::encoding::zigzag(ns[0]));
    let dods: Vec<i64> = deltas.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let ddsize = if n > 2 {
        ints::encoded_size(&dods)
            + crate::encoding::uvarint_len(crate::encoding::zigzag(ns[0]))
            + crate::encoding::uvarint_len(crate::encoding::zigzag(deltas[0]))
    } else {
        usize::MAX
    };
    if raw <= dsize && raw <= ddsize {
        out.push(0);
        ints::encode(ns, out);
    } else if dsize <= ddsize {
        out.push(1);
        put_varint(out, ns[0]);
        ints::encode(&deltas, out);
    } else {
        out.push(2);
        put_varint(out, ns[0]);
        put_varint(out, deltas[0]);
        ints::encode(&dods, out);
    }
}

/// DECIMAL with a few special values (see [`is_special`]) stored raw:
/// `uvarint count`, per exception `uvarint gap, u64 LE bits`, then the
/// DECIMAL payload over all values with each exception replaced by its
/// neighbour (so it costs nothing in the integer stream).
fn encode_decimal_with_exceptions(vals: &[f64], ns: &mut Vec<i64>) -> Option<Vec<u8>> {
    let nspecial = vals.iter().filter(|v| is_special(**v)).count();
    if nspecial == 0 || nspecial == vals.len() || nspecial * 8 > vals.len() {
        return None;
    }
    let first_ok = vals.iter().copied().find(|v| !is_special(*v))?;
    let mut prev = first_ok;
    let filled: Vec<f64> = vals
        .iter()
        .map(|&v| {
            if is_special(v) {
                prev
            } else {
                prev = v;
                v
            }
        })
        .collect();
    let e = find_decimal(&filled, ns)?;
    let mut out = Vec::new();
    put_uvarint(&mut out, nspecial as u64);
    let mut next = 0usize;
    for (i, v) in vals.iter().enumerate() {
        if is_special(*v) {
            put_uvarint(&mut out, (i - next) as u64);
            out.extend_from_slice(&v.to_bits().to_le_bytes());
            next = i + 1;
        }
    }
    encode_decimal(ns, e, &mut out);
    Some(out)
}

fn encode_xor(vals: &[f64], out: &mut Vec<u8>) {
    let mut w = BitWriter::new();
    let mut prev = vals[0].to_bits();
    w.write(prev, 64);
    let mut lead = u32::MAX;
    let mut trail = 0u32;
    for &v in &vals[1..] {
        let b = v.to_bits();
        let x = b ^ prev;
        prev = b;
        if x == 0 {
            w.bit(false);
            continue;
        }
        w.bit(true);
        let l = x.leading_zeros().min(31);
        let t = x.trailing_zeros();
        if lead != u32::MAX && l >= lead && t >= trail {
            w.bit(false);
            w.write(x >> trail, 64 - lead - trail);
        } else {
            lead = l;
            trail = t;
            let sig = 64 - l - t;
            w.bit(true);
            w.write(u64::from(l), 5);
            // 64 significant bits is stored as 0.
            w.write(u64::from(sig & 63), 6);
            w.write(x >> t, sig);
        }
    }
    out.extend_from_slice(&w.finish());
}

/// Appends the encoding of `samples` (non-empty, strictly increasing
/// timestamps) to `out`. The first timestamp is not stored: the reader
/// passes it back as `mint` to [`decode`].
pub fn encode(samples: &[(i64, f64)], out: &mut Vec<u8>) {
    debug_assert!(!samples.is_empty(), "BUG: empty chunk");
    let n = samples.len();
    put_uvarint(out, n as u64);
    let vals: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let first = vals[0].to_bits();
    let vmode = if vals.iter().all(|v| v.to_bits() == first) {
        V_CONST
    } else {
        V_DECIMAL
    };
    let header_pos = out.len();
    out.push(0);
    let deltas: Vec<i64> = samples
        .windows(2)
        .map(|w| w[1].0.wrapping_sub(w[0].0))
        .collect();
    ints::encode(&deltas, out);
    let mut ns = Vec::with_capacity(n);
    if vmode == V_CONST {
        // A short decimal constant is smaller as DECIMAL (e.g. 4 bytes for 1.0).
        if let Some(e) = find_decimal(&vals[..1], &mut ns) {
            let n0 = ns[0];
            ns.clear();
            ns.resize(n, n0);
            let mut dec = Vec::new();
            encode_decimal(&ns, e, &mut dec);
            if dec.len() < 8 {
                out[header_pos] = V_DECIMAL << 4;
                out.extend_from_slice(&dec);
                return;
            }
        }
        out[header_pos] = V_CONST << 4;
        out.extend_from_slice(&first.to_le_bytes());
        return;
    }
    let mut xor = Vec::new();
    encode_xor(&vals, &mut xor);
    // High-entropy values (random floats) take about as many bits per value
    // under XOR as raw, and decode far slower: store them raw then.
    let raw = n * 8 <= xor.len();
    let fallback_len = if raw { n * 8 } else { xor.len() };
    if let Some(e) = find_decimal(&vals, &mut ns) {
        let mut dec = Vec::new();
        encode_decimal(&ns, e, &mut dec);
        if dec.len() < fallback_len {
            out[header_pos] = V_DECIMAL << 4;
            out.extend_from_slice(&dec);
            return;
        }
    }
    if let Some(dec) = encode_decimal_with_exceptions(&vals, &mut ns) {
        if dec.len() < fallback_len {
            out[header_pos] = V_DECIMAL_EXC << 4;
            out.extend_from_slice(&dec);
            return;
        }
    }
    if raw {
        out[header_pos] = V_RAW << 4;
        for v in &vals {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        return;
    }
    out[header_pos] = V_XOR << 4;
    out.extend_from_slice(&xor);
}

/// Scratch space reused across decodes (no per-sample allocation).
#[derive(Debug, Default)]
pub struct DecodeScratch {
    ints: Vec<i64>,
    ts: Vec<i64>,
    exc: Vec<(usize, u64)>,
}

/// Decodes one chunk from the front of `d`, whose first timestamp is `mint`,
/// appending its samples to `out`. Returns the sample count.
pub fn decode(
    d: &mut Decbuf<'_>,
    mint: i64,
    out: &mut Vec<(i64, f64)>,
    scratch: &mut DecodeScratch,
) -> Result<usize, DecodeError> {
    // A chunk cannot hold more samples than bytes * 8 + a constant; bound the
    // count so corrupt input cannot make us allocate without limit.
    let n = d.len_at_most(1 << 24)?;
    if n == 0 {
        return Err(DecodeError("empty chunk"));
    }
    let header = d.u8()?;
    if header & 0x0f != 0 {
        return Err(DecodeError("unknown timestamp encoding"));
    }
    let DecodeScratch {
        ints: ints_buf,
        ts: ts_buf,
        exc,
    } = scratch;
    // Timestamps: a regular interval (the common case) needs no buffer;
    // otherwise the deltas are decoded into `ts_buf`, and samples are
    // written once, timestamp and value together, below.
    let mut const_dt = None;
    ts_buf.clear();
    if n > 1 && d.rest().first() == Some(&ints::CONST) {
        d.u8()?;
        const_dt = Some(d.varint()?);
    } else {
        ts_buf.push(mint);
        ints::decode(d, n - 1, ts_buf)?;
        if ts_buf.len() != n {
            return Err(DecodeError("timestamp count mismatch"));
        }
        let mut t = mint;
        for x in &mut ts_buf[1..] {
            t = t.wrapping_add(*x);
            *x = t;
        }
    }
    let start = out.len();
    match header >> 4 {
        V_CONST => {
            let v = f64::from_bits(d.u64_le()?);
            emit(out, mint, const_dt, ts_buf, std::iter::repeat_n(v, n));
        }
        V_DECIMAL | V_DECIMAL_EXC => {
            exc.clear();
            if header >> 4 == V_DECIMAL_EXC {
                let nexc = d.len_at_most(n)?;
                let mut next = 0usize;
                for _ in 0..nexc {
                    let gap = d.len_at_most(n)?;
                    let pos = next + gap;
                    if pos >= n {
                        return Err(DecodeError("exception position out of range"));
                    }
                    exc.push((pos, d.u64_le()?));
                    next = pos + 1;
                }
            }
            let e = u32::from(d.u8()?);
            if e > MAX_EXP {
                return Err(DecodeError("decimal exponent out of range"));
            }
            let scale = POW10[e as usize];
            let transform = d.u8()?;
            ints_buf.clear();
            match transform {
                0 => ints::decode(d, n, ints_buf)?,
                1 => {
                    let mut acc = d.varint()?;
                    ints_buf.push(acc);
                    let from = ints_buf.len();
                    ints::decode(d, n - 1, ints_buf)?;
                    for x in &mut ints_buf[from..] {
                        acc = acc.wrapping_add(*x);
                        *x = acc;
                    }
                }
                2 => {
                    let mut acc = d.varint()?;
                    ints_buf.push(acc);
                    if n > 1 {
                        let mut delta = d.varint()?;
                        acc = acc.wrapping_add(delta);
                        ints_buf.push(acc);
                        let from = ints_buf.len();
                        ints::decode(d, n - 2, ints_buf)?;
                        for x in &mut ints_buf[from..] {
                            delta = delta.wrapping_add(*x);
                            acc = acc.wrapping_add(delta);
                            *x = acc;
                        }
                    }
                }
                _ => return Err(DecodeError("unknown decimal transform")),
            }
            if ints_buf.len() != n {
                return Err(DecodeError("decimal value count mismatch"));
            }
            if e == 0 {
                emit(
                    out,
                    mint,
                    const_dt,
                    ts_buf,
                    ints_buf.iter().map(|&x| x as f64),
                );
            } else {
                let vals = ints_buf.iter().map(|&x| x as f64 / scale);
                emit(out, mint, const_dt, ts_buf, vals);
            }
            let samples = &mut out[start..];
            for &(pos, bits) in exc.iter() {
                samples[pos].1 = f64::from_bits(bits);
            }
        }
        V_XOR => {
            emit(out, mint, const_dt, ts_buf, std::iter::repeat_n(0.0, n));
            let used = decode_xor(d.rest(), &mut out[start..])?;
            d.bytes(used)?;
        }
        V_RAW => {
            // n <= 2^24 (checked above): no overflow.
            let (vals, _) = d.bytes(n * 8)?.as_chunks::<8>();
            let vals = vals.iter().map(|b| f64::from_bits(u64::from_le_bytes(*b)));
            emit(out, mint, const_dt, ts_buf, vals);
        }
        _ => return Err(DecodeError("unknown value encoding")),
    }
    Ok(n)
}

/// Appends one sample per value of `vals` (which yields exactly the chunk's
/// sample count): timestamps `mint + i * dt` for a regular interval, else
/// the absolute timestamps in `ts`. One pass; the zipped iterators have a
/// trusted length, so `extend` writes without per-element capacity checks.
#[inline(always)]
fn emit(
    out: &mut Vec<(i64, f64)>,
    mint: i64,
    const_dt: Option<i64>,
    ts: &[i64],
    vals: impl ExactSizeIterator<Item = f64>,
) {
    match const_dt {
        // Wrapping multiplication equals the repeated wrapping additions.
        Some(dt) => out.extend(
            (0..vals.len())
                .map(|i| mint.wrapping_add((i as i64).wrapping_mul(dt)))
                .zip(vals),
        ),
        None => out.extend(ts.iter().copied().zip(vals)),
    }
}

/// Decodes the XOR value stream at the front of `b` into the values of
/// `samples` (one per sample); returns the bytes it used.
fn decode_xor(b: &[u8], samples: &mut [(i64, f64)]) -> Result<usize, DecodeError> {
    let Some((first, rest)) = samples.split_first_mut() else {
        return Ok(0);
    };
    // At bit 0 all 64 peeked bits are exact.
    let mut prev = peek(b, 0);
    let mut pos = 64usize;
    first.1 = f64::from_bits(prev);
    let mut lead = 0u32;
    let mut sig = 0u32;
    for s in rest.iter_mut() {
        // `w` holds the bits at `pos`, left-aligned; the first 57 are exact.
        let w = peek(b, pos);
        if (w as i64) < 0 {
            let hdr: u32 = if w & (1 << 62) != 0 {
                lead = ((w >> 57) & 31) as u32;
                sig = match ((w >> 51) & 63) as u32 {
                    0 => 64,
                    s => s,
                };
                if lead + sig > 64 {
                    return Err(DecodeError("XOR window out of range"));
                }
                13
            } else {
                if sig == 0 {
                    return Err(DecodeError("XOR reuses a window before setting one"));
                }
                2
            };
            pos += hdr as usize;
            let x = if hdr + sig <= 57 {
                (w << hdr) >> (64 - sig)
            } else {
                // Up to 77 bits: the payload in two halves.
                let hi_n = sig.min(32);
                let lo_n = sig - hi_n;
                let hi = peek(b, pos) >> (64 - hi_n);
                let lo = if lo_n == 0 {
                    0
                } else {
                    peek(b, pos + hi_n as usize) >> (64 - lo_n)
                };
                (hi << lo_n) | lo
            };
            pos += sig as usize;
            prev ^= x << (64 - lead - sig);
        } else {
            pos += 1;
        }
        s.1 = f64::from_bits(prev);
    }
    if pos > b.len() * 8 {
        return Err(DecodeError("bit stream truncated"));
    }
    Ok(pos.div_ceil(8))
}

/// The 64 bits starting at bit `pos` of `b`, left-aligned; at least the
/// first 57 are exact, bits past the end of `b` read as zero.
#[inline(always)]
fn peek(b: &[u8], pos: usize) -> u64 {
    let i = pos >> 3;
    let w = match b.get(i..i + 8) {
        Some(s) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_be_bytes(a)
        }
        None => peek_tail(b, i),
    };
    w << (pos & 7)
}

#[cold]
#[inline(never)]
fn peek_tail(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(i..) {
        let k = s.len().min(8);
        a[..k].copy_from_slice(&s[..k]);
    }
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(samples: &[(i64, f64)]) -> usize {
        let mut b = Vec::new();
        encode(samples, &mut b);
        let len = b.len();
        b.push(0x5A);
        let mut d = Decbuf::new(&b);
        let mut out = Vec::new();
        let n = decode(
            &mut d,
            samples[0].0,
            &mut out,
            &mut DecodeScratch::default(),
        )
        .unwrap();
        assert_eq!(n, samples.len());
        assert_eq!(d.rest(), &[0x5A], "decoder consumed the wrong length");
        for (a, b) in samples.iter().zip(&out) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{} vs {}", a.1, b.1);
        }
        len
    }

    /// A small deterministic PRNG (xorshift64*), so tests need no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    const EDGE: [u64; 14] = [
        0x7ff0_0000_0000_0002, // stale marker
        0x7ff8_0000_0000_0000, // quiet NaN
        0xfff8_0000_0000_0001, // negative NaN with payload
        0x7ff0_0000_0000_0001, // signalling NaN
        0x8000_0000_0000_0000, // -0.0
        0,                     // +0.0
        0x7ff0_0000_0000_0000, // +inf
        0xfff0_0000_0000_0000, // -inf
        1,                     // smallest subnormal
        0x000f_ffff_ffff_ffff, // largest subnormal
        0x7fef_ffff_ffff_ffff, // f64::MAX
        0x0010_0000_0000_0000, // smallest normal
        0x3fb9_9999_9999_999a, // 0.1
        0x4330_0000_0000_0001, // 2^52 + 1
    ];

    #[test]
    fn regular_series_cost_almost_nothing() {
        let s: Vec<(i64, f64)> = (0..1920)
            .map(|i| (1_700_000_000_000 + i * 15_000, 42.0))
            .collect();
        assert!(rt(&s) <= 12, "{}", rt(&s));
        let c: Vec<(i64, f64)> = (0..1920).map(|i| (i * 15_000, (i * 100) as f64)).collect();
        assert!(rt(&c) <= 20, "{}", rt(&c));
        let d: Vec<(i64, f64)> = (0..1920)
            .map(|i| (i * 15_000, i as f64 * 0.25 + 0.01))
            .collect();
        assert!(rt(&d) <= 24, "{}", rt(&d));
    }

    #[test]
    fn edge_values_round_trip_bit_exact() {
        let mut s: Vec<(i64, f64)> = EDGE
            .iter()
            .enumerate()
            .map(|(i, &b)| (i as i64 * 1000, f64::from_bits(b)))
            .collect();
        rt(&s);
        for &b in &EDGE {
            // Alone, repeated, and mixed into decimal-looking data.
            rt(&[(5, f64::from_bits(b))]);
            rt(&[(5, f64::from_bits(b)), (6, f64::from_bits(b))]);
            let mixed: Vec<(i64, f64)> = (0..50)
                .map(|i| {
                    (
                        i * 10,
                        if i == 25 {
                            f64::from_bits(b)
                        } else {
                            i as f64 * 0.5
                        },
                    )
                })
                .collect();
            rt(&mixed);
        }
        s.reverse();
        for (i, x) in s.iter_mut().enumerate() {
            x.0 = -(1 << 40) + i as i64 * 7;
        }
        rt(&s);
    }

    #[test]
    fn stale_markers_keep_decimal_encoding_cheap() {
        let mut s: Vec<(i64, f64)> = (0..1000)
            .map(|i| (i * 15_000, 1000.0 + (i * 3) as f64 * 0.25))
            .collect();
        let plain = rt(&s);
        s[500].1 = f64::from_bits(0x7ff0_0000_0000_0002);
        s[0].1 = -0.0;
        s[999].1 = f64::NEG_INFINITY;
        let with = rt(&s);
        assert!(with <= plain + 60, "{with} vs {plain}");
    }

    #[test]
    fn random_values_round_trip_bit_exact() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for round in 0..300 {
            let n = 1 + (rng.next() % 300) as usize;
            let mut t = (rng.next() as i64) >> 20;
            let kind = round % 6;
            let mut acc = 0i64;
            let s: Vec<(i64, f64)> = (0..n)
                .map(|i| {
                    t += match rng.next() % 4 {
                        0 => 1 + (rng.next() % 100_000) as i64,
                        _ => 15_000,
                    };
                    acc += (rng.next() % 1000) as i64;
                    let v = match kind {
                        0 => f64::from_bits(rng.next()),
                        1 => acc as f64 / 100.0,
                        2 => f64::from_bits(EDGE[(rng.next() % EDGE.len() as u64) as usize]),
                        3 => (rng.next() % 7) as f64 * 1e-3,
                        4 => {
                            if i % 10 == 0 {
                                f64::from_bits(rng.next())
                            } else {
                                acc as f64
                            }
                        }
                        _ => (rng.next() as i64 >> (rng.next() % 64)) as f64,
                    };
                    (t, v)
                })
                .collect();
            rt(&s);
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x0dd_f00d);
        let mut scratch = DecodeScratch::default();
        let mut out = Vec::new();
        for round in 0..20_000u64 {
            let len = (round % 60) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len > 2 {
                // Plausible count and header so decoding gets further.
                b[0] = (rng.next() % 100) as u8;
                b[1] = ((rng.next() % 3) as u8) << 4;
            }
            out.clear();
            let _ = decode(&mut Decbuf::new(&b), 0, &mut out, &mut scratch);
        }
    }

    /// Random bit patterns are stored raw: 8 bytes a value (XOR would take
    /// more), read back bit for bit; a truncated raw chunk is an error.
    #[test]
    fn random_values_are_stored_raw() {
        let mut rng = Rng(0x0dd_ba11);
        let s: Vec<(i64, f64)> = (0..500)
            .map(|i| (i * 15_000, f64::from_bits(rng.next())))
            .collect();
        let mut b = Vec::new();
        encode(&s, &mut b);
        // uvarint(500) is 2 bytes, then the header byte.
        assert_eq!(b[2] >> 4, V_RAW);
        // Count, header, a constant timestamp interval (a few bytes), values.
        assert!(b.len() <= 2 + 1 + 6 + 500 * 8, "{}", b.len());
        assert_eq!(rt(&s), b.len());
        let mut out = Vec::new();
        let cut = &b[..b.len() - 1];
        let r = decode(
            &mut Decbuf::new(cut),
            0,
            &mut out,
            &mut DecodeScratch::default(),
        );
        assert!(r.is_err());
        // A gauge with a few random spikes still takes XOR or DECIMAL+.
        let g: Vec<(i64, f64)> = (0..500)
            .map(|i| {
                (
                    i * 15_000,
                    if i % 50 == 0 {
                        f64::from_bits(rng.next())
                    } else {
                        1.5
                    },
                )
            })
            .collect();
        b.clear();
        encode(&g, &mut b);
        assert_ne!(b[2] >> 4, V_RAW);
        rt(&g);
    }

    #[test]
    fn corrupt_chunks_fail_cleanly() {
        let s: Vec<(i64, f64)> = (0..200)
            .map(|i| (i * 15_000, (i * i) as f64 * 0.01))
            .collect();
        let mut b = Vec::new();
        encode(&s, &mut b);
        let mut scratch = DecodeScratch::default();
        let mut out = Vec::new();
        for cut in 0..b.len() {
            let _ = decode(&mut Decbuf::new(&b[..cut]), 0, &mut out, &mut scratch);
            out.clear();
        }
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x5c;
            let _ = decode(&mut Decbuf::new(&c), 0, &mut out, &mut scratch);
            out.clear();
        }
    }
}
