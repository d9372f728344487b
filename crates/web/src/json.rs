//! Hand-written JSON for query results: Prometheus formats sample values as
//! strings with Go's shortest float form and timestamps as seconds with
//! millisecond decimals; writing them directly into one buffer is faster
//! than building a `serde_json::Value` tree.

use koban_model::Labels;
use std::fmt::Write;

/// Appends a JSON string literal with escaping.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // The common case: nothing to escape.
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the decimal digits of `n`.
#[inline]
fn write_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Appends a millisecond timestamp as seconds, as Prometheus: `1435781451.781`,
/// `12`, `1.005` (no exponent, fraction only when non-zero, three digits).
pub fn write_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let t = t.unsigned_abs();
    write_u64(out, t / 1000);
    let frac = (t % 1000) as u16;
    if frac != 0 {
        out.push('.');
        // Three ASCII digits.
        let d = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        out.push_str(std::str::from_utf8(&d).unwrap_or_default());
    }
}

/// Formats a float as Prometheus does in the API (Go `strconv.FormatFloat(v, 'f', -1, 64)`),
/// with `NaN`, `+Inf` and `-Inf`.
pub fn format_value(v: f64) -> String {
    let mut s = String::new();
    write_value(&mut s, v);
    s
}

/// Appends the float (unquoted) as [`format_value`].
pub fn write_value(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push_str(if v.is_nan() {
            "NaN"
        } else if v > 0.0 {
            "+Inf"
        } else {
            "-Inf"
        });
        return;
    }
    // Shortest round-trip digits (as Go's -1 precision), laid out as Go's
    // 'f' format inside [1e-6, 1e21) and as its 'e' format outside.
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v);
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if neg {
        out.push('-');
    }
    let Some((mant, exp)) = s.split_once('e') else {
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
        return;
    };
    // ryu's exponent is a plain decimal integer.
    let exp: i32 = exp.parse().unwrap_or(0);
    let a = v.abs();
    if (1e-6..1e21).contains(&a) {
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        if exp >= 0 {
            let e = exp as usize;
            out.push_str(int);
            if frac.len() <= e {
                out.push_str(frac);
                for _ in frac.len()..e {
                    out.push('0');
                }
            } else {
                out.push_str(&frac[..e]);
                out.push('.');
                out.push_str(&frac[e..]);
            }
        } else {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(int);
            out.push_str(frac);
        }
        return;
    }
    out.push_str(mant);
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    write_u64(out, u64::from(e));
}

/// Appends `{"name":"value",...}`.
pub fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// Appends `[ts,"value"]`.
pub fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    write_value(out, v);
    out.push_str("\"]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_as_prometheus() {
        for (t, want) in [
            (1435781451781, "1435781451.781"),
            (12000, "12"),
            (1005, "1.005"),
            (1500, "1.500"),
            (-1500, "-1.500"),
        ] {
            let mut s = String::new();
            write_timestamp(&mut s, t);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn values_as_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1e+21");
        assert_eq!(format_value(1.5e-8), "1.5e-08");
        assert_eq!(format_value(-2.5e-300), "-2.5e-300");
        assert_eq!(format_value(1e-6), "0.000001");
        assert_eq!(format_value(123456789e12), "123456789000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(-2.5e-7), "-2.5e-07");
    }

    /// The reference layout: Rust's shortest `Display` / `{:e}` forms.
    fn reference_value(v: f64) -> String {
        if v.is_nan() {
            "NaN".into()
        } else if v == f64::INFINITY {
            "+Inf".into()
        } else if v == f64::NEG_INFINITY {
            "-Inf".into()
        } else if v != 0.0 && (v.abs() < 1e-6 || v.abs() >= 1e21) {
            let e = format!("{v:e}");
            let (mantissa, exp) = e.split_once('e').unwrap();
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        } else {
            format!("{v}")
        }
    }

    #[test]
    fn values_match_reference_layout() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut vals = vec![
            0.0,
            -0.0,
            1e-6,
            9.99e-7,
            1e-5,
            1.5e-5,
            1e15,
            1e16,
            1.5e16,
            123e18,
            9.99e20,
            1e21,
            1e22,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.1,
            100.0,
            1234.5678,
            -42.0,
        ];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vals.push(f64::from_bits(x));
            vals.push((x % 1_000_000_007) as f64 / 1000.0);
            vals.push((x >> 11) as f64 * 10f64.powi((x % 60) as i32 - 30));
        }
        for v in vals {
            let (got, want) = (format_value(v), reference_value(v));
            // Exact ties between two shortest forms round half to even (as
            // Go), where Rust's formatter rounds half up: only the last
            // digit may differ, and the result must read back exactly.
            let same_but_last = got.len() == want.len()
                && got
                    .bytes()
                    .zip(want.bytes())
                    .filter(|(a, b)| a != b)
                    .count()
                    <= 1;
            assert!(same_but_last, "{got} vs {want} (bits {:x})", v.to_bits());
            if v.is_finite() {
                assert_eq!(got.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{got}");
            }
        }
    }

    #[test]
    fn strings_escaped() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\\n\u{1}");
        assert_eq!(s, r#""a\"b\\\n\u0001""#);
    }
}
