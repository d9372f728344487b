//! Lexer: splits template source into text and action tokens.
//!
//! Contract: every token carries the byte offset where it starts; `{{-` and
//! `-}}` (a dash beside whitespace) trim the adjacent text's whitespace
//! (space, tab, CR, LF) as Go does; comments `{{/* */}}` produce no token.

/// A keyword inside an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    If,
    Else,
    End,
    Range,
    With,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

/// One lexical item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    Left,
    Right,
    Pipe,
    LParen,
    RParen,
    Comma,
    Declare,
    Assign,
    /// `.name`, without the dot.
    Field(String),
    Dot,
    /// `$name`, with the dollar.
    Var(String),
    Ident(String),
    /// An interpreted or raw string literal, already unquoted.
    Str(String),
    Char(char),
    Number(String),
    Bool(bool),
    Nil,
    Kw(Kw),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offset of the token in the source.
    pub pos: usize,
    /// Byte offset just past the token.
    pub end: usize,
    /// Whether whitespace separated this token from the previous one.
    pub space_before: bool,
}

#[derive(Debug)]
pub(crate) struct LexError {
    pub pos: usize,
    pub msg: String,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn trim_ws_start(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '\r', '\n'])
}

fn trim_ws_end(s: &str) -> &str {
    s.trim_end_matches([' ', '\t', '\r', '\n'])
}

/// Tokenises `src`; the last token is always `Tok::Eof`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, LexError> {
    let b = src.as_bytes();
    let len = b.len();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    loop {
        let idx = src[pos..].find("{{").map(|i| i + pos);
        let end = idx.unwrap_or(len);
        let left_trim = idx.is_some_and(|i| {
            b.get(i + 2) == Some(&b'-') && b.get(i + 3).is_some_and(|c| is_ws(*c))
        });
        let mut text = &src[pos..end];
        let mut tpos = pos;
        if trim_next {
            let t = trim_ws_start(text);
            tpos += text.len() - t.len();
            text = t;
        }
        if left_trim {
            text = trim_ws_end(text);
        }
        if !text.is_empty() {
            out.push(Token {
                tok: Tok::Text(text.to_string()),
                pos: tpos,
                end: tpos + text.len(),
                space_before: false,
            });
        }
        let Some(i) = idx else {
            out.push(Token {
                tok: Tok::Eof,
                pos: len,
                end: len,
                space_before: false,
            });
            return Ok(out);
        };
        pos = i + 2;
        if left_trim {
            pos += 1;
        }
        // A comment: `{{/*` or `{{- /*`.
        let mut p = pos;
        if left_trim {
            while p < len && is_ws(b[p]) {
                p += 1;
            }
        }
        if src[p..].starts_with("/*") {
            let close = src[p + 2..].find("*/").ok_or_else(|| LexError {
                pos: i,
                msg: "unclosed comment".into(),
            })? + p
                + 2;
            let q = close + 2;
            if src[q..].starts_with("}}") {
                trim_next = false;
                pos = q + 2;
            } else if b.get(q).is_some_and(|c| is_ws(*c)) && src[q + 1..].starts_with("-}}") {
                trim_next = true;
                pos = q + 4;
            } else {
                return Err(LexError {
                    pos: q,
                    msg: "comment ends before closing delimiter".into(),
                });
            }
            continue;
        }
        out.push(Token {
            tok: Tok::Left,
            pos: i,
            end: pos,
            space_before: false,
        });
        let mut space = false;
        loop {
            if pos >= len {
                return Err(LexError {
                    pos: i,
                    msg: "unclosed action".into(),
                });
            }
            let c = b[pos];
            if is_ws(c) {
                let mut q = pos;
                while q < len && is_ws(b[q]) {
                    q += 1;
                }
                if src[q..].starts_with("-}}") {
                    out.push(Token {
                        tok: Tok::Right,
                        pos: q,
                        end: q + 3,
                        space_before: true,
                    });
                    pos = q + 3;
                    trim_next = true;
                    break;
                }
                pos = q;
                space = true;
                continue;
            }
            if src[pos..].starts_with("}}") {
                out.push(Token {
                    tok: Tok::Right,
                    pos,
                    end: pos + 2,
                    space_before: space,
                });
                pos += 2;
                trim_next = false;
                break;
            }
            let start = pos;
            let tok = lex_item(src, &mut pos)?;
            out.push(Token {
                tok,
                pos: start,
                end: pos,
                space_before: space,
            });
            space = false;
        }
    }
}

/// Lexes one item inside an action starting at `*pos`, advancing `*pos`.
fn lex_item(src: &str, pos: &mut usize) -> Result<Tok, LexError> {
    let start = *pos;
    let rest = &src[start..];
    let Some(c) = rest.chars().next() else {
        return Err(LexError {
            pos: start,
            msg: "unclosed action".into(),
        });
    };
    let next = rest[c.len_utf8()..].chars().next();
    let err = |msg: &str| LexError {
        pos: start,
        msg: msg.into(),
    };
    let word_end = |from: usize| {
        from + rest[from..]
            .find(|ch: char| !is_alnum(ch))
            .unwrap_or(rest.len() - from)
    };
    let tok = match c {
        '|' => {
            *pos += 1;
            Tok::Pipe
        }
        '(' => {
            *pos += 1;
            Tok::LParen
        }
        ')' => {
            *pos += 1;
            Tok::RParen
        }
        ',' => {
            *pos += 1;
            Tok::Comma
        }
        '=' => {
            *pos += 1;
            Tok::Assign
        }
        ':' => {
            if next != Some('=') {
                return Err(err("expected :="));
            }
            *pos += 2;
            Tok::Declare
        }
        '"' => {
            let mut chars = rest.char_indices().skip(1);
            let mut escaped = false;
            loop {
                match chars.next() {
                    None | Some((_, '\n')) => return Err(err("unterminated quoted string")),
                    Some((_, '\\')) if !escaped => escaped = true,
                    Some((j, '"')) if !escaped => {
                        *pos += j + 1;
                        break;
                    }
                    Some(_) => escaped = false,
                }
            }
            Tok::Str(unquote(&rest[1..*pos - start - 1]).map_err(|m| err(&m))?)
        }
        '`' => {
            let close = rest[1..]
                .find('`')
                .ok_or_else(|| err("unterminated raw quoted string"))?;
            *pos += close + 2;
            Tok::Str(rest[1..close + 1].to_string())
        }
        '\'' => {
            let mut chars = rest.char_indices().skip(1);
            let mut escaped = false;
            loop {
                match chars.next() {
                    None | Some((_, '\n')) => return Err(err("unterminated character constant")),
                    Some((_, '\\')) if !escaped => escaped = true,
                    Some((j, '\'')) if !escaped => {
                        *pos += j + 1;
                        break;
                    }
                    Some(_) => escaped = false,
                }
            }
            let s = unquote(&rest[1..*pos - start - 1]).map_err(|m| err(&m))?;
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(ch), None) => Tok::Char(ch),
                _ => {
                    return Err(err(&format!(
                        "malformed character constant: {}",
                        &rest[..*pos - start]
                    )))
                }
            }
        }
        '$' => {
            let e = word_end(1);
            *pos += e;
            Tok::Var(rest[..e].to_string())
        }
        '.' if next.is_some_and(|n| n.is_ascii_digit()) => lex_number(rest, pos),
        '.' if next.is_some_and(is_alnum) => {
            let e = word_end(1);
            *pos += e;
            Tok::Field(rest[1..e].to_string())
        }
        '.' => {
            *pos += 1;
            Tok::Dot
        }
        '0'..='9' => lex_number(rest, pos),
        '+' | '-' if next.is_some_and(|n| n.is_ascii_digit() || n == '.') => lex_number(rest, pos),
        c if is_alnum(c) => {
            let e = word_end(0);
            *pos += e;
            match &rest[..e] {
                "if" => Tok::Kw(Kw::If),
                "else" => Tok::Kw(Kw::Else),
                "end" => Tok::Kw(Kw::End),
                "range" => Tok::Kw(Kw::Range),
                "with" => Tok::Kw(Kw::With),
                "define" => Tok::Kw(Kw::Define),
                "template" => Tok::Kw(Kw::Template),
                "block" => Tok::Kw(Kw::Block),
                "break" => Tok::Kw(Kw::Break),
                "continue" => Tok::Kw(Kw::Continue),
                "true" => Tok::Bool(true),
                "false" => Tok::Bool(false),
                "nil" => Tok::Nil,
                w => Tok::Ident(w.to_string()),
            }
        }
        c => return Err(err(&format!("unrecognized character in action: {c:?}"))),
    };
    Ok(tok)
}

/// A number: sign, digits, letters (radix prefixes, exponents), `_`, `.`,
/// and a sign right after an exponent letter; validated by the parser.
fn lex_number(rest: &str, pos: &mut usize) -> Tok {
    let b = rest.as_bytes();
    let mut i = 0;
    if matches!(b[0], b'+' | b'-') {
        i = 1;
    }
    let hex = rest[i..].starts_with("0x") || rest[i..].starts_with("0X");
    while i < b.len() {
        let c = b[i];
        let exp = if hex {
            matches!(c, b'p' | b'P')
        } else {
            matches!(c, b'e' | b'E')
        };
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
            i += 1;
            if exp && i < b.len() && matches!(b[i], b'+' | b'-') {
                i += 1;
            }
        } else {
            break;
        }
    }
    *pos += i;
    Tok::Number(rest[..i].to_string())
}

/// Interprets Go escape sequences in the body of a quoted literal.
pub(crate) fn unquote(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next().ok_or("invalid escape at end of string")?;
        let hex = |it: &mut std::str::Chars, n: usize| -> Result<char, String> {
            let h: String = it.by_ref().take(n).collect();
            if h.len() != n {
                return Err(format!("invalid escape \\{e}{h}"));
            }
            u32::from_str_radix(&h, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("invalid escape \\{e}{h}"))
        };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' | '"' | '\'' => out.push(e),
            'x' => out.push(hex(&mut it, 2)?),
            'u' => out.push(hex(&mut it, 4)?),
            'U' => out.push(hex(&mut it, 8)?),
            '0'..='7' => {
                let o: String = std::iter::once(e).chain(it.by_ref().take(2)).collect();
                let v = u32::from_str_radix(&o, 8).map_err(|_| format!("invalid escape \\{o}"))?;
                out.push(char::from_u32(v).ok_or_else(|| format!("invalid escape \\{o}"))?);
            }
            _ => return Err(format!("unknown escape sequence: \\{e}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_and_actions() {
        assert_eq!(
            toks("a{{.X.y | f 1 \"s\"}}b"),
            vec![
                Tok::Text("a".into()),
                Tok::Left,
                Tok::Field("X".into()),
                Tok::Field("y".into()),
                Tok::Pipe,
                Tok::Ident("f".into()),
                Tok::Number("1".into()),
                Tok::Str("s".into()),
                Tok::Right,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn trimming_and_comments() {
        assert_eq!(
            toks("a \n{{- 1 -}}\n b"),
            vec![
                Tok::Text("a".into()),
                Tok::Left,
                Tok::Number("1".into()),
                Tok::Right,
                Tok::Text("b".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("a {{- /* c */ -}} b"),
            vec![Tok::Text("a".into()), Tok::Text("b".into()), Tok::Eof]
        );
        assert_eq!(
            toks("{{-3}}"),
            vec![Tok::Left, Tok::Number("-3".into()), Tok::Right, Tok::Eof]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(lex("{{ .X").unwrap_err().msg, "unclosed action");
        assert_eq!(lex("{{/* x").unwrap_err().msg, "unclosed comment");
        assert_eq!(
            lex("{{ \"abc }}").unwrap_err().msg,
            "unterminated quoted string"
        );
        assert_eq!(
            lex("{{ # }}").unwrap_err().msg,
            "unrecognized character in action: '#'"
        );
    }
}
