//! Go's fmt as templates use it: `print`, `println`, `printf` and the text
//! an action prints.
//!
//! Contract: `%v` of a float is Go's shortest `%g` (exponent form below
//! 1e-4 and from 1e+06 on); lists print as `[a b]`, maps as `map[k:v]` in
//! key order; a verb that does not fit its operand prints Go's
//! `%!d(string=x)`, a missing operand `%!d(MISSING)`, extra operands
//! `%!(EXTRA type=value)`.

use std::fmt::Write;

use crate::value::Value;

/// `%v` of one value; `nil` prints as `<nil>`.
pub(crate) fn display(v: &Value) -> String {
    let mut s = String::new();
    write_v(&mut s, v);
    s
}

fn write_v(out: &mut String, v: &Value) {
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&fmt_g(*f, None, false)),
        Value::String(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, e);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, e);
            }
            out.push(']');
        }
        Value::StrMap(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                out.push_str(e);
            }
            out.push(']');
        }
        Value::Func(_) => out.push_str("<func>"),
        Value::Host(h) => match h.as_value() {
            Some(v) => write_v(out, &v),
            None => out.push_str(&h.display()),
        },
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        write_v(&mut out, a);
    }
    out
}

/// Go's `fmt.Sprintln`: spaces between all operands, a final newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(&mut out, a);
    }
    out.push('\n');
    out
}

/// Go's `%g`: `prec` significant digits, or the shortest exact form.
pub(crate) fn fmt_g(f: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let s = match prec {
        None => format!("{f:e}"),
        Some(p) => format!("{:.*e}", p.max(1) - 1, f),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let mut digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let eprec: i32 = match prec {
        None => 6,
        Some(p) => {
            let mut e = p.max(1) as i32;
            if e > digits.len() as i32 && digits.len() as i32 > exp {
                e = digits.len() as i32;
            }
            e
        }
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&exp_suffix(exp, upper));
    } else if exp >= 0 {
        let e = exp as usize + 1;
        if digits.len() <= e {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', e - digits.len()));
        } else {
            out.push_str(&digits[..e]);
            out.push('.');
            out.push_str(&digits[e..]);
        }
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
        out.push_str(&digits);
    }
    out
}

fn exp_suffix(exp: i32, upper: bool) -> String {
    format!(
        "{}{}{:02}",
        if upper { 'E' } else { 'e' },
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    )
}

fn special(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".into())
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// Go's `%e` with `prec` digits after the point.
fn fmt_e(f: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let s = format!("{f:.prec$e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    format!("{mant}{}", exp_suffix(exp.parse().unwrap_or(0), upper))
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %f %F %e %E %g
/// %G %q %x %X %t %c %o %b %%`, with flags `- + space 0 #`, width and
/// precision (`*` is not supported).
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut argi = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let num = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(
                    n.unwrap_or(0)
                        .saturating_mul(10)
                        .saturating_add(d as usize)
                        .min(1 << 16),
                );
                chars.next();
            }
            n
        };
        spec.width = num(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(num(&mut chars).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        argi += 1;
        let body = format_one(verb, spec, arg);
        pad(&mut out, &body, spec, arg);
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", a.type_name(), display(a));
        }
        out.push(')');
    }
    out
}

fn pad(out: &mut String, body: &str, spec: Spec, arg: &Value) {
    let w = spec.width.unwrap_or(0);
    let n = body.chars().count();
    if n >= w {
        out.push_str(body);
    } else if spec.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', w - n));
    } else if spec.zero && matches!(arg, Value::Int(_) | Value::Float(_)) {
        let (sign, digits) = match body.strip_prefix(['-', '+']) {
            Some(rest) => (&body[..1], rest),
            None => ("", body),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', w - n));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', w - n));
        out.push_str(body);
    }
}

fn sign(spec: Spec, s: String) -> String {
    if s.starts_with('-') || s.starts_with('+') {
        s
    } else if spec.plus {
        format!("+{s}")
    } else if spec.space {
        format!(" {s}")
    } else {
        s
    }
}

fn bad(verb: char, v: &Value) -> String {
    match v {
        Value::Nil => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", v.type_name(), display(v)),
    }
}

fn format_one(verb: char, spec: Spec, v: &Value) -> String {
    if let Value::List(l) = v {
        if verb != 'v' && verb != 's' || l.iter().any(|e| !matches!(e, Value::String(_))) {
            let inner: Vec<String> = l.iter().map(|e| format_one(verb, spec, e)).collect();
            return format!("[{}]", inner.join(" "));
        }
    }
    match (verb, v) {
        ('v', Value::Int(_) | Value::Float(_)) if spec.plus => sign(spec, display(v)),
        ('v', Value::String(s)) if spec.sharp => quote(s),
        ('v', _) => display(v),
        (
            's',
            Value::String(_) | Value::List(_) | Value::Map(_) | Value::StrMap(_) | Value::Host(_),
        ) => {
            let s = display(v);
            match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            }
        }
        ('s', Value::Bool(_)) => bad(verb, v),
        ('d', Value::Int(i)) => sign(spec, i.to_string()),
        ('b', Value::Int(i)) => sign(
            spec,
            if *i < 0 {
                format!("-{:b}", i.unsigned_abs())
            } else {
                format!("{i:b}")
            },
        ),
        ('o', Value::Int(i)) => sign(
            spec,
            if *i < 0 {
                format!("-{:o}", i.unsigned_abs())
            } else {
                format!("{i:o}")
            },
        ),
        ('x' | 'X', Value::Int(i)) => {
            let mut s = String::new();
            if *i < 0 {
                s.push('-');
            }
            if spec.sharp {
                s.push_str("0x");
            }
            let _ = write!(s, "{:x}", i.unsigned_abs());
            sign(spec, if verb == 'X' { s.to_uppercase() } else { s })
        }
        ('x' | 'X', Value::String(s)) => {
            let mut o = String::new();
            for b in s.bytes() {
                if verb == 'x' {
                    let _ = write!(o, "{b:02x}");
                } else {
                    let _ = write!(o, "{b:02X}");
                }
            }
            o
        }
        ('c', Value::Int(i)) => u32::try_from(*i)
            .ok()
            .and_then(char::from_u32)
            .unwrap_or('\u{FFFD}')
            .to_string(),
        ('q', Value::String(s)) => quote(s),
        ('q', Value::Int(i)) => {
            let c = u32::try_from(*i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let q = quote(&c.to_string());
            let inner = &q[1..q.len() - 1];
            format!(
                "'{}'",
                if inner == "\\\"" {
                    "\""
                } else if c == '\'' {
                    "\\'"
                } else {
                    inner
                }
            )
        }
        ('t', Value::Bool(b)) => b.to_string(),
        ('f' | 'F', Value::Float(f)) => sign(
            spec,
            special(*f).unwrap_or_else(|| format!("{:.*}", spec.prec.unwrap_or(6), f)),
        ),
        ('e' | 'E', Value::Float(f)) => sign(spec, fmt_e(*f, spec.prec.unwrap_or(6), verb == 'E')),
        ('g' | 'G', Value::Float(f)) => sign(spec, fmt_g(*f, spec.prec, verb == 'G')),
        _ => bad(verb, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(f: &str, args: &[Value]) -> String {
        sprintf(f, args)
    }

    #[test]
    fn floats() {
        assert_eq!(display(&1e6.into()), "1e+06");
        assert_eq!(display(&123456.0.into()), "123456");
        assert_eq!(display(&1234567.0.into()), "1.234567e+06");
        assert_eq!(display(&0.0001.into()), "0.0001");
        assert_eq!(display(&0.00001.into()), "1e-05");
        assert_eq!(display(&3.5.into()), "3.5");
        assert_eq!(display(&1.0.into()), "1");
        assert_eq!(display(&(-2.25).into()), "-2.25");
        assert_eq!(display(&f64::INFINITY.into()), "+Inf");
        assert_eq!(
            pf(
                "%.2f|%f|%e|%g|%.3g|%G",
                &[
                    3.25159.into(),
                    1.5.into(),
                    1234.5678.into(),
                    1e21.into(),
                    1234.5.into(),
                    1e-7.into()
                ]
            ),
            "3.25|1.500000|1.234568e+03|1e+21|1.23e+03|1E-07"
        );
    }

    #[test]
    fn verbs() {
        assert_eq!(
            pf(
                "%s|%5s|%-5s|%d|%05d|%+d|%x|%X|%q|%v|%t|%c|%%",
                &[
                    "a".into(),
                    "b".into(),
                    "c".into(),
                    42.into(),
                    42.into(),
                    3.into(),
                    255.into(),
                    "hi".into(),
                    "q\"".into(),
                    Value::list([1, 2]),
                    true.into(),
                    65.into()
                ]
            ),
            "a|    b|c    |42|00042|+3|ff|6869|\"q\\\"\"|[1 2]|true|A|%"
        );
        assert_eq!(pf("%d %s", &["x".into()]), "%!d(string=x) %!s(MISSING)");
        assert_eq!(pf("%d", &[1.into(), "y".into()]), "1%!(EXTRA string=y)");
        assert_eq!(
            pf("%#x %.1s %5.1f", &[255.into(), "abc".into(), 2.25.into()]),
            "0xff a   2.2"
        );
    }

    #[test]
    fn print_spacing() {
        assert_eq!(sprint(&[1.into(), 2.into(), "a".into(), 3.into()]), "1 2a3");
        assert_eq!(sprintln(&[1.into(), "a".into()]), "1 a\n");
        assert_eq!(display(&Value::map([("b", 1), ("a", 2)])), "map[a:2 b:1]");
    }
}
