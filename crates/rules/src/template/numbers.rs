//! Prometheus's number formatting: `humanize*`, and Go's `time.Time` and
//! `time.Duration` printing for `toTime`/`toDuration`.

use koban_template::{sprintf, Value};

/// Go's `%.4g` (NaN, +Inf, -Inf as Go prints them).
pub(crate) fn g4(v: f64) -> String {
    sprintf("%.4g", &[Value::Float(v)])
}

/// `humanize`: SI prefixes, 4 significant digits.
pub(crate) fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

/// `humanize1024`: binary prefixes (`ki`, `Mi`, ...).
pub(crate) fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

/// `humanizeDuration`: seconds as `1d 1h 1m 1s`, or `1.5s`, `10ms`.
pub(crate) fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", g4(v))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// `humanizePercentage`: a ratio as `12.34%`.
pub(crate) fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// Seconds since the epoch as milliseconds, as Prometheus's
/// `model.TimeFromUnixNano` truncates; an error for NaN/Inf (`None`) or
/// overflow.
pub(crate) fn float_to_ms(v: f64) -> Result<Option<i64>, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(None);
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            koban_template::display(&Value::Float(v))
        ));
    }
    Ok(Some((ns as i64) / 1_000_000))
}

/// Go's `time.Time.String()` of a UTC time `ms` after the epoch.
pub(crate) fn go_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let nanos = (ms.rem_euclid(1000) * 1_000_000) as u32;
    let Some(t) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return format!("{ms}ms");
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if nanos != 0 {
        let f = format!("{nanos:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Go's `time.Duration.String()` of `ns` nanoseconds.
pub(crate) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, div) = if u < 1_000 {
            ("ns", 1u64)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(u, div));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let s = u % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h{m}m"));
        } else if m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(s, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `u / div` with the fraction's trailing zeros trimmed.
fn frac(u: u64, div: u64) -> String {
    let whole = u / div;
    let rest = u % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let f = format!("{rest:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}
