//! PromQL lexer: turns a query string into tokens with byte positions.

use crate::ParseError;

/// Token kinds. Word-like tokens (keywords, function and metric names) are
/// all `Ident`; the parser decides what they mean from context.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Number(f64),
    /// A duration literal like `5m` or `1h30m`, in milliseconds.
    Duration(i64),
    Str(String),
    Ident(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    Assign,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    EqlRegex,
    NeqRegex,
    Eof,
}

impl Tok {
    /// Human readable description for error messages (as Prometheus).
    pub fn describe(&self) -> String {
        match self {
            Tok::Number(_) => "number".into(),
            Tok::Duration(_) => "duration".into(),
            Tok::Str(_) => "string".into(),
            Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right" | "bool"
                | "offset" => s.to_ascii_lowercase(),
                "and" | "or" | "unless" => s.to_ascii_lowercase(),
                _ => "identifier".into(),
            },
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::LBrace => "\"{\"".into(),
            Tok::RBrace => "\"}\"".into(),
            Tok::LBracket => "\"[\"".into(),
            Tok::RBracket => "\"]\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Colon => "\":\"".into(),
            Tok::At => "\"@\"".into(),
            Tok::Assign => "\"=\"".into(),
            Tok::Eof => "<EOF>".into(),
            Tok::Add => "\"+\"".into(),
            Tok::Sub => "\"-\"".into(),
            Tok::Mul => "\"*\"".into(),
            Tok::Div => "\"/\"".into(),
            Tok::Mod => "\"%\"".into(),
            Tok::Pow => "\"^\"".into(),
            Tok::Eql => "\"==\"".into(),
            Tok::Neq => "\"!=\"".into(),
            Tok::Gtr => "\">\"".into(),
            Tok::Lss => "\"<\"".into(),
            Tok::Gte => "\">=\"".into(),
            Tok::Lte => "\"<=\"".into(),
            Tok::EqlRegex => "\"=~\"".into(),
            Tok::NeqRegex => "\"!~\"".into(),
        }
    }
}

/// A token with its byte range in the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
    /// The source text of the token.
    pub text: String,
}

impl Token {
    /// Description in Prometheus's style: `<op:*>`, `<by>`, `identifier "foo"`,
    /// `number "5"`, `end of input`.
    pub fn describe(&self) -> String {
        let q = |s: &str| {
            if s.chars().count() > 10 {
                format!(
                    "{}...",
                    &crate::ast::quote(&s.chars().take(10).collect::<String>())
                )
            } else {
                crate::ast::quote(s)
            }
        };
        match &self.tok {
            Tok::Eof => "end of input".into(),
            Tok::Number(_) => format!("number {}", q(&self.text)),
            Tok::Duration(_) => format!("duration {}", q(&self.text)),
            Tok::Str(_) => format!("string {}", q(&self.text)),
            Tok::Ident(s) => {
                let l = s.to_ascii_lowercase();
                match l.as_str() {
                    "and" | "or" | "unless" | "atan2" => format!("<op:{s}>"),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                    | "bool" | "offset" | "start" | "end" => format!("<{s}>"),
                    _ if crate::ast::AggOp::from_name(&l).is_some() => format!("<aggr:{s}>"),
                    _ => format!("identifier {}", q(s)),
                }
            }
            Tok::Add
            | Tok::Sub
            | Tok::Mul
            | Tok::Div
            | Tok::Mod
            | Tok::Pow
            | Tok::Eql
            | Tok::Neq
            | Tok::Gtr
            | Tok::Lss
            | Tok::Gte
            | Tok::Lte
            | Tok::EqlRegex
            | Tok::NeqRegex
            | Tok::At
            | Tok::Assign => {
                format!("<op:{}>", self.text)
            }
            t => t.describe(),
        }
    }
}

/// Splits `input` into tokens (ending with `Eof`).
pub fn lex(input: &str) -> Result<Vec<Token>, ParseError> {
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut bracket_depth = 0i32;
    let mut brace_depth = 0i32;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let simple = |t: Tok, n: usize| Token {
            tok: t,
            start,
            end: start + n,
            text: String::new(),
        };
        let two = |i: usize| if i + 1 < b.len() { b[i + 1] } else { 0 };
        match c {
            b'(' => {
                out.push(simple(Tok::LParen, 1));
                i += 1;
            }
            b')' => {
                out.push(simple(Tok::RParen, 1));
                i += 1;
            }
            b'{' => {
                brace_depth += 1;
                out.push(simple(Tok::LBrace, 1));
                i += 1;
            }
            b'}' => {
                brace_depth -= 1;
                out.push(simple(Tok::RBrace, 1));
                i += 1;
            }
            b'[' => {
                bracket_depth += 1;
                out.push(simple(Tok::LBracket, 1));
                i += 1;
            }
            b']' => {
                bracket_depth -= 1;
                out.push(simple(Tok::RBracket, 1));
                i += 1;
            }
            b',' => {
                out.push(simple(Tok::Comma, 1));
                i += 1;
            }
            b'@' => {
                out.push(simple(Tok::At, 1));
                i += 1;
            }
            b':' if bracket_depth > 0 => {
                out.push(simple(Tok::Colon, 1));
                i += 1;
            }
            b'+' => {
                out.push(simple(Tok::Add, 1));
                i += 1;
            }
            b'-' => {
                out.push(simple(Tok::Sub, 1));
                i += 1;
            }
            b'*' => {
                out.push(simple(Tok::Mul, 1));
                i += 1;
            }
            b'/' => {
                out.push(simple(Tok::Div, 1));
                i += 1;
            }
            b'%' => {
                out.push(simple(Tok::Mod, 1));
                i += 1;
            }
            b'^' => {
                out.push(simple(Tok::Pow, 1));
                i += 1;
            }
            b'=' => {
                if two(i) == b'=' {
                    out.push(simple(Tok::Eql, 2));
                    i += 2;
                } else if two(i) == b'~' {
                    out.push(simple(Tok::EqlRegex, 2));
                    i += 2;
                } else {
                    out.push(simple(Tok::Assign, 1));
                    i += 1;
                }
            }
            b'!' => {
                if two(i) == b'=' {
                    out.push(simple(Tok::Neq, 2));
                    i += 2;
                } else if two(i) == b'~' {
                    out.push(simple(Tok::NeqRegex, 2));
                    i += 2;
                } else {
                    return Err(ParseError::new(
                        start,
                        start + 1,
                        "unexpected character after '!': ".to_string() + &char_at(input, i + 1),
                    ));
                }
            }
            b'>' => {
                if two(i) == b'=' {
                    out.push(simple(Tok::Gte, 2));
                    i += 2;
                } else {
                    out.push(simple(Tok::Gtr, 1));
                    i += 1;
                }
            }
            b'<' => {
                if two(i) == b'=' {
                    out.push(simple(Tok::Lte, 2));
                    i += 2;
                } else {
                    out.push(simple(Tok::Lss, 1));
                    i += 1;
                }
            }
            b'"' | b'\'' | b'`' => {
                let (s, n) = lex_string(input, i)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    start,
                    end: n,
                    text: String::new(),
                });
                i = n;
            }
            b'0'..=b'9' | b'.' => {
                let (t, n) = lex_number(input, i)?;
                out.push(Token {
                    tok: t,
                    start,
                    end: n,
                    text: String::new(),
                });
                i = n;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || (c == b':' && brace_depth == 0) => {
                let mut j = i + 1;
                while j < b.len()
                    && (b[j].is_ascii_alphanumeric()
                        || b[j] == b'_'
                        || (b[j] == b':' && bracket_depth == 0 && brace_depth == 0))
                {
                    j += 1;
                }
                let w = &input[i..j];
                let lw = w.to_ascii_lowercase();
                let t = if brace_depth == 0 && (lw == "inf" || lw == "nan") {
                    Tok::Number(if lw == "inf" { f64::INFINITY } else { f64::NAN })
                } else {
                    Tok::Ident(w.to_string())
                };
                out.push(Token {
                    tok: t,
                    start,
                    end: j,
                    text: String::new(),
                });
                i = j;
            }
            _ => {
                return Err(ParseError::new(
                    start,
                    start + 1,
                    format!("unexpected character: {}", char_at(input, i)),
                ));
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        start: b.len(),
        end: b.len(),
        text: String::new(),
    });
    for t in out.iter_mut() {
        t.text = input.get(t.start..t.end).unwrap_or("").to_string();
    }
    Ok(out)
}

fn char_at(input: &str, i: usize) -> String {
    match input.get(i..).and_then(|s| s.chars().next()) {
        Some(c) => format!("{c:?}"),
        None => "<EOF>".to_string(),
    }
}

fn unit_ms(u: &str) -> Option<i64> {
    Some(match u {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    })
}

/// Parses a Prometheus duration string like `1h30m` or `500ms` to milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut i = 0;
    let mut total: i64 = 0;
    while i < b.len() {
        let ns = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ns {
            return None;
        }
        let n: i64 = s[ns..i].parse().ok()?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let u = &s[us..i];
        // "ms" vs "m" followed by "s": Prometheus's units are greedy on "ms".
        let ms = unit_ms(u)?;
        total = total.checked_add(n.checked_mul(ms)?)?;
    }
    Some(total)
}

fn lex_number(input: &str, i: usize) -> Result<(Tok, usize), ParseError> {
    let b = input.as_bytes();
    let start = i;
    let mut j = i;
    if b[j] == b'0' && j + 1 < b.len() && (b[j + 1] == b'x' || b[j + 1] == b'X') {
        j += 2;
        while j < b.len() && b[j].is_ascii_hexdigit() {
            j += 1;
        }
        let v = i64::from_str_radix(&input[start + 2..j], 16)
            .map(|v| v as f64)
            .or_else(|_| u128::from_str_radix(&input[start + 2..j], 16).map(|v| v as f64))
            .map_err(|_| {
                ParseError::new(
                    start,
                    j,
                    format!("bad number or duration syntax: \"{}\"", &input[start..j]),
                )
            })?;
        return Ok((Tok::Number(v), j));
    }
    // Duration: digits followed by unit letters, possibly repeated.
    let mut k = j;
    while k < b.len() && b[k].is_ascii_digit() {
        k += 1;
    }
    if k > j && k < b.len() && unit_ms(unit_prefix(&input[k..])).is_some() {
        let mut e = k;
        loop {
            let u = unit_prefix(&input[e..]);
            if unit_ms(u).is_none() {
                break;
            }
            e += u.len();
            let ds = e;
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
            if e == ds {
                break;
            }
            if unit_ms(unit_prefix(&input[e..])).is_none() {
                return Err(ParseError::new(
                    start,
                    e,
                    format!("bad number or duration syntax: \"{}\"", &input[start..e]),
                ));
            }
        }
        if e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_') {
            let mut f = e;
            while f < b.len() && (b[f].is_ascii_alphanumeric() || b[f] == b'_') {
                f += 1;
            }
            return Err(ParseError::new(
                start,
                f,
                format!("bad number or duration syntax: \"{}\"", &input[start..f]),
            ));
        }
        let d = parse_duration(&input[start..e]).ok_or_else(|| {
            ParseError::new(
                start,
                e,
                format!("bad number or duration syntax: \"{}\"", &input[start..e]),
            )
        })?;
        return Ok((Tok::Duration(d), e));
    }
    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
        j += 1;
    }
    if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
        let mut e = j + 1;
        if e < b.len() && (b[e] == b'+' || b[e] == b'-') {
            e += 1;
        }
        if e < b.len() && b[e].is_ascii_digit() {
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
            j = e;
        }
    }
    if j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
        let mut f = j;
        while f < b.len() && (b[f].is_ascii_alphanumeric() || b[f] == b'_' || b[f] == b'.') {
            f += 1;
        }
        return Err(ParseError::new(
            start,
            f,
            format!("bad number or duration syntax: \"{}\"", &input[start..f]),
        ));
    }
    let s = &input[start..j];
    let v: f64 = s.parse().map_err(|_| {
        ParseError::new(start, j, format!("bad number or duration syntax: \"{s}\""))
    })?;
    Ok((Tok::Number(v), j))
}

fn unit_prefix(s: &str) -> &str {
    if s.starts_with("ms") {
        return &s[..2];
    }
    match s.as_bytes().first() {
        Some(b's' | b'm' | b'h' | b'd' | b'w' | b'y') => &s[..1],
        _ => "",
    }
}

fn lex_string(input: &str, i: usize) -> Result<(String, usize), ParseError> {
    let b = input.as_bytes();
    let q = b[i];
    let mut j = i + 1;
    let mut out = String::new();
    if q == b'`' {
        while j < b.len() && b[j] != b'`' {
            j += 1;
        }
        if j >= b.len() {
            return Err(ParseError::new(
                i,
                b.len(),
                "unterminated raw string".to_string(),
            ));
        }
        return Ok((input[i + 1..j].to_string(), j + 1));
    }
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        if j >= b.len() || b[j] == b'\n' {
            return Err(ParseError::new(
                i,
                j,
                "unterminated quoted string".to_string(),
            ));
        }
        let c = b[j];
        if c == q {
            j += 1;
            break;
        }
        if c == b'\\' {
            j += 1;
            if j >= b.len() {
                return Err(ParseError::new(
                    i,
                    j,
                    "unterminated quoted string".to_string(),
                ));
            }
            let e = b[j];
            j += 1;
            match e {
                b'a' => bytes.push(7),
                b'b' => bytes.push(8),
                b'f' => bytes.push(12),
                b'n' => bytes.push(b'\n'),
                b'r' => bytes.push(b'\r'),
                b't' => bytes.push(b'\t'),
                b'v' => bytes.push(11),
                b'\\' => bytes.push(b'\\'),
                b'"' | b'\'' if e == q => bytes.push(e),
                b'x' | b'u' | b'U' => {
                    let n = match e {
                        b'x' => 2,
                        b'u' => 4,
                        _ => 8,
                    };
                    if j + n > b.len() {
                        return Err(ParseError::new(
                            i,
                            j,
                            "unterminated quoted string".to_string(),
                        ));
                    }
                    let h = input.get(j..j + n).unwrap_or("");
                    let v = u32::from_str_radix(h, 16)
                        .map_err(|_| ParseError::new(j, j + n, "invalid syntax".to_string()))?;
                    j += n;
                    if e == b'x' {
                        bytes.push(v as u8);
                    } else {
                        let ch = char::from_u32(v).ok_or_else(|| {
                            ParseError::new(j - n, j, "invalid syntax".to_string())
                        })?;
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                }
                b'0'..=b'7' => {
                    if j + 2 > b.len() {
                        return Err(ParseError::new(
                            i,
                            j,
                            "unterminated quoted string".to_string(),
                        ));
                    }
                    let h = input.get(j - 1..j + 2).unwrap_or("");
                    let v = u32::from_str_radix(h, 8)
                        .map_err(|_| ParseError::new(j - 1, j + 2, "invalid syntax".to_string()))?;
                    if v > 255 {
                        return Err(ParseError::new(j - 1, j + 2, "invalid syntax".to_string()));
                    }
                    j += 2;
                    bytes.push(v as u8);
                }
                _ => {
                    return Err(ParseError::new(
                        j - 2,
                        j,
                        "unknown escape sequence".to_string(),
                    ));
                }
            }
            continue;
        }
        bytes.push(c);
        j += 1;
    }
    // Invalid UTF-8 from escapes is replaced (labels are strings).
    out.push_str(&String::from_utf8_lossy(&bytes));
    Ok((out, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(
            toks("1.5e3 0x1F 5m 1h30m Inf")[..5],
            [
                Tok::Number(1500.0),
                Tok::Number(31.0),
                Tok::Duration(300_000),
                Tok::Duration(5_400_000),
                Tok::Number(f64::INFINITY)
            ]
        );
        assert_eq!(toks("500ms")[0], Tok::Duration(500));
    }

    #[test]
    fn strings() {
        assert_eq!(
            toks(r#""a\"b\n" 'c' `d\n`"#)[..3],
            [
                Tok::Str("a\"b\n".into()),
                Tok::Str("c".into()),
                Tok::Str("d\\n".into())
            ]
        );
    }

    #[test]
    fn colon_in_brackets() {
        assert_eq!(
            toks("a:b[5m:1m]"),
            vec![
                Tok::Ident("a:b".into()),
                Tok::LBracket,
                Tok::Duration(300000),
                Tok::Colon,
                Tok::Duration(60000),
                Tok::RBracket,
                Tok::Eof
            ]
        );
    }
}

#[cfg(test)]
mod fuzz_tests {

    /// Arbitrary byte soup must never panic the lexer or parser.
    #[test]
    fn no_panics_on_garbage() {
        let pieces = [
            "\"\\xé\"",
            "'\\1é'",
            "\"\\u12\"",
            "`",
            "{",
            "}",
            "[",
            "]",
            "(",
            ")",
            "5m",
            "0x",
            "1e",
            "é",
            ":",
            "@",
            "offset",
            "-",
            "sum",
            "by",
            "rate",
            "x",
            ",",
            "\"a\"",
            "=~",
            "!",
            "1.5.3",
            "Inf",
            "\\",
            "#",
            "\n",
            "[5m:]",
            "bool",
            "on()",
        ];
        let mut seed = 12345u64;
        for _ in 0..20000 {
            let mut q = String::new();
            for _ in 0..(seed % 9 + 1) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                q.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
                if seed & 1 == 0 {
                    q.push(' ');
                }
            }
            let _ = crate::parse(&q);
        }
    }
}
