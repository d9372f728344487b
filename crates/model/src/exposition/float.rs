//! Float parsing and formatting as Prometheus does it (Go's `strconv`).

use std::fmt::Write as _;

/// The NaN bit pattern Prometheus stores for a NaN written by a target, so a
/// scraped NaN can never be mistaken for the staleness marker.
pub const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Parses a sample value as Go's `strconv.ParseFloat` restricted as
/// Prometheus does (no hex floats, no `_` digit separators): decimal numbers
/// with optional sign and exponent, `NaN`, `Inf`, `Infinity` (any case, the
/// infinities optionally signed). Out-of-range values are rejected as Go
/// rejects them. NaN is normalised to [`NORMAL_NAN_BITS`].
#[inline]
pub fn parse_float(tok: &[u8]) -> Option<f64> {
    // Fast path: short integers are exact in f64 (< 2^53).
    let (neg, digits) = match tok.first() {
        Some(b'-') => (true, &tok[1..]),
        _ => (false, tok),
    };
    if !digits.is_empty() && digits.len() <= 15 {
        let mut n: u64 = 0;
        let mut all = true;
        for &d in digits {
            let x = d.wrapping_sub(b'0');
            if x > 9 {
                all = false;
                break;
            }
            n = n * 10 + u64::from(x);
        }
        if all {
            let v = n as f64;
            return Some(if neg { -v } else { v });
        }
    }
    if let Some(v) = parse_decimal_fast(tok) {
        return Some(v);
    }
    parse_float_slow(tok)
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Clinger's fast path: a decimal `[-+]digits[.digits][e[+-]digits]` whose
/// significand fits in 53 bits and whose power of ten is within ±22 is the
/// correctly rounded result of one multiplication or division of two exact
/// doubles. Anything else returns None for the general parser.
#[inline]
fn parse_decimal_fast(tok: &[u8]) -> Option<f64> {
    match parse_decimal_prefix(tok) {
        Some((v, n)) if n == tok.len() => Some(v),
        _ => None,
    }
}

/// [`parse_decimal_fast`] on the longest decimal prefix of `tok`: the value
/// and the number of bytes it used. The caller must check what follows.
#[inline]
pub(super) fn parse_decimal_prefix(tok: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let neg = match tok.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let (mut m, mut nd) = digit_run(tok, i, 0);
    i += nd;
    let mut frac = 0i32;
    if tok.get(i) == Some(&b'.') {
        let (m2, k) = digit_run(tok, i + 1, m);
        m = m2;
        nd += k;
        frac = k as i32;
        i += 1 + k;
    }
    if nd == 0 || nd > 19 {
        return None;
    }
    let mut e: i32 = 0;
    if i < tok.len() && (tok[i] == b'e' || tok[i] == b'E') {
        i += 1;
        let eneg = match tok.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let s = i;
        while i < tok.len() && tok[i].is_ascii_digit() && i - s < 4 {
            e = e * 10 + i32::from(tok[i] - b'0');
            i += 1;
        }
        if i == s {
            return None;
        }
        if eneg {
            e = -e;
        }
    }
    if m > (1u64 << 53) {
        return None;
    }
    let e = e - frac;
    let v = m as f64;
    let v = if (0..=22).contains(&e) {
        v * POW10[e as usize]
    } else if (-22..0).contains(&e) {
        v / POW10[(-e) as usize]
    } else {
        return None;
    };
    Some((if neg { -v } else { v }, i))
}

const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Reads the run of ASCII digits at `tok[i..]`, continuing the decimal
/// accumulator `m` (wrapping on overflow: callers reject runs that long).
/// Returns the new accumulator and the number of digits. Eight bytes at a
/// time (SWAR) where eight bytes are readable.
#[inline(always)]
fn digit_run(tok: &[u8], mut i: usize, mut m: u64) -> (u64, usize) {
    let start = i;
    while let Some(c) = tok.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        // Byte j (little-endian) holds tok[i + j] - '0'. A byte outside
        // '0'..='9' gets its high bit set in `bad`; borrows and carries only
        // move towards later bytes, so bytes before the first bad one (and
        // that one's flag) are exact.
        let d = u64::from_le_bytes(a).wrapping_sub(0x3030_3030_3030_3030);
        let bad = (d | d.wrapping_add(0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080;
        let k = (bad.trailing_zeros() / 8) as usize;
        if k > 0 {
            // Keep the k digits, moved to the top (leading zero digits below).
            let x = d << (8 * (8 - k));
            let x = x.wrapping_mul(10).wrapping_add(x >> 8);
            let x = ((x & 0x0000_00ff_0000_00ff)
                .wrapping_mul(100 + (1_000_000 << 32))
                .wrapping_add(
                    ((x >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(1 + (10_000 << 32)),
                ))
                >> 32;
            m = m.wrapping_mul(POW10_U64[k]).wrapping_add(x);
        }
        i += k;
        if k < 8 {
            return (m, i - start);
        }
    }
    while let Some(&c) = tok.get(i) {
        let x = c.wrapping_sub(b'0');
        if x > 9 {
            break;
        }
        m = m.wrapping_mul(10).wrapping_add(u64::from(x));
        i += 1;
    }
    (m, i - start)
}

#[cold]
fn parse_float_slow(tok: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(tok).ok()?;
    let v: f64 = s.parse().ok()?;
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if v.is_nan() {
        // Go accepts only an unsigned "NaN".
        if unsigned.len() != s.len() {
            return None;
        }
        return Some(f64::from_bits(NORMAL_NAN_BITS));
    }
    if v.is_infinite()
        && !unsigned.eq_ignore_ascii_case("inf")
        && !unsigned.eq_ignore_ascii_case("infinity")
    {
        // A finite literal that overflowed: Go reports a range error.
        return None;
    }
    Some(v)
}

/// A fixed stack buffer for `{:e}` output (at most 24 bytes for any f64).
struct StackBuf {
    b: [u8; 48],
    n: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// Appends `v` formatted as the Prometheus text format writes values:
/// `NaN`, `+Inf`, `-Inf`, `0` for both zeros, otherwise Go's
/// `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that
/// round-trip, in exponent form when the decimal exponent is < -4 or >= 6
/// (e.g. `123456`, `1e+06`, `1.5e-05`, `0.0001`). Does not allocate.
pub fn format_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    // Integers below 1e6 print as plain integers in %g shortest form.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        // Exact: |v| < 1e6 fits i64.
        let _ = write!(out, "{}", v as i64);
        return;
    }
    let mut sb = StackBuf { b: [0; 48], n: 0 };
    if write!(sb, "{v:e}").is_err() {
        // BUG guard: `{:e}` of an f64 never exceeds 48 bytes; fall back to Display.
        let _ = write!(out, "{v}");
        return;
    }
    let s = &sb.b[..sb.n];
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let epos = s.iter().position(|&c| c == b'e').unwrap_or(s.len());
    let (mant, exp_part) = (&s[..epos], s.get(epos + 1..).unwrap_or(&[]));
    let mut digits = [0u8; 32];
    let mut nd = 0;
    for &c in mant {
        if c != b'.' && nd < digits.len() {
            digits[nd] = c;
            nd += 1;
        }
    }
    let exp: i32 = std::str::from_utf8(exp_part)
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let digits = &digits[..nd];
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        // d.ddde±XX
        out.push(digits[0] as char);
        if nd > 1 {
            out.push('.');
            for &d in &digits[1..] {
                out.push(d as char);
            }
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        let _ = write!(out, "{a}");
    } else {
        let dp = exp + 1; // digits before the decimal point
        if dp > 0 {
            for k in 0..dp as usize {
                out.push(digits.get(k).map_or('0', |&d| d as char));
            }
        } else {
            out.push('0');
        }
        let frac = nd as i32 - dp;
        if frac > 0 {
            out.push('.');
            for k in 0..frac {
                let idx = dp + k;
                out.push(if idx < 0 {
                    '0'
                } else {
                    digits[idx as usize] as char
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(v: f64) -> String {
        let mut s = String::new();
        format_float(&mut s, v);
        s
    }

    #[test]
    fn formats_like_go_g_shortest() {
        for (v, want) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (856000.0, "856000"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1445449.0, "1.445449e+06"),
            (1.23456789e8, "1.23456789e+08"),
            (0.25, "0.25"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.001234, "0.001234"),
            (-1.5e-7, "-1.5e-07"),
            (123.45, "123.45"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1234567.5, "1.2345675e+06"),
            (100.5, "100.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(fmt(v), want, "{v:e}");
        }
    }

    #[test]
    fn parses_like_prometheus() {
        for (s, want) in [
            ("0", Some(0.0)),
            ("-12", Some(-12.0)),
            ("1.5", Some(1.5)),
            ("1e3", Some(1000.0)),
            ("1.445449e+06", Some(1445449.0)),
            ("+Inf", Some(f64::INFINITY)),
            ("-Inf", Some(f64::NEG_INFINITY)),
            ("inf", Some(f64::INFINITY)),
            ("+infinity", Some(f64::INFINITY)),
            (".5", Some(0.5)),
            ("1.", Some(1.0)),
            ("1e400", None),
            ("1_000", None),
            ("0x1p3", None),
            ("1z", None),
            ("", None),
            ("-", None),
            ("+NaN", None),
            ("true", None),
            ("9999999999999999999999", Some(1e22)),
        ] {
            let got = parse_float(s.as_bytes());
            assert_eq!(got, want, "{s}");
        }
        let n = parse_float(b"NaN").unwrap();
        assert_eq!(n.to_bits(), NORMAL_NAN_BITS);
        let n = parse_float(b"nan").unwrap();
        assert_eq!(n.to_bits(), NORMAL_NAN_BITS);
    }

    #[test]
    fn fast_path_agrees_with_std() {
        for s in [
            "1.445449e+06",
            "0.25",
            "-3.5E-3",
            "+7",
            "1e22",
            "1e-22",
            "123456789012345678",
            "9007199254740993",
            "0.1",
            "3.14159",
            "1.",
            ".5",
            "1e",
            "1e+",
            "1.2.3",
            "e5",
            "12345.678e-10",
            "4.9e-324",
            "1e23",
            "00012",
            "-0.0",
        ] {
            let want = s.parse::<f64>().ok().filter(|v| v.is_finite());
            assert_eq!(
                parse_float(s.as_bytes()).map(f64::to_bits),
                want.map(f64::to_bits),
                "{s}"
            );
        }
    }

    #[test]
    fn generated_decimals_agree_with_std() {
        // Digit runs of every length around the 8-byte SWAR step and the
        // 19-digit limit, with and without fraction, exponent and sign,
        // followed by the bytes the parser sees after a value.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut s = String::new();
        for round in 0..40_000u32 {
            s.clear();
            match next() % 4 {
                0 => s.push('-'),
                1 => s.push('+'),
                _ => {}
            }
            let int_len = (round % 26) as usize;
            for _ in 0..int_len {
                s.push(char::from(b'0' + (next() % 10) as u8));
            }
            if next() % 2 == 0 {
                s.push('.');
                for _ in 0..(next() % 24) {
                    s.push(char::from(b'0' + (next() % 10) as u8));
                }
            }
            if next() % 3 == 0 {
                s.push(['e', 'E'][(next() % 2) as usize]);
                match next() % 3 {
                    0 => s.push('-'),
                    1 => s.push('+'),
                    _ => {}
                }
                for _ in 0..(next() % 4) {
                    s.push(char::from(b'0' + (next() % 10) as u8));
                }
            }
            let want = s.parse::<f64>().ok().filter(|v| v.is_finite());
            assert_eq!(
                parse_float(s.as_bytes()).map(f64::to_bits),
                want.map(f64::to_bits),
                "{s}"
            );
            // The prefix parser must stop exactly at the token's end and
            // agree on the value whatever follows.
            for tail in [" ", "\n", " 123\n", "{", "x"] {
                let mut b = s.clone().into_bytes();
                b.extend_from_slice(tail.as_bytes());
                b.extend_from_slice(b"999999999");
                if let Some((v, n)) = parse_decimal_prefix(&b) {
                    if n == s.len() {
                        assert_eq!(Some(v.to_bits()), want.map(f64::to_bits), "{s:?}+{tail:?}");
                    } else {
                        assert!(n < s.len(), "{s:?}+{tail:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn format_round_trips() {
        for v in [
            1.0 / 3.0,
            2.0f64.powi(60),
            1e-300,
            123456789012345680.0,
            0.1,
            7e22,
        ] {
            let s = fmt(v);
            assert_eq!(parse_float(s.as_bytes()), Some(v), "{s}");
        }
    }
}
