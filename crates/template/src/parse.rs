//! Parser: tokens to a tree of nodes, one tree per template name.
//!
//! Contract: every node keeps the byte span of its source so errors can
//! name line:col and quote the node; variables are resolved at parse time
//! (an undefined `$x` is a parse error, as in Go); function names are
//! checked against the builtins and the registered `Funcs`; nesting of
//! control structures and parentheses is bounded by `MAX_NESTING`, so a
//! hostile template cannot overflow the stack.

use crate::lex::{lex, Kw, Tok, Token};

/// Deepest nesting of `if`/`range`/`with`/`block`/parentheses accepted.
pub(crate) const MAX_NESTING: usize = 100;

/// One parsed template body.
#[derive(Debug)]
pub(crate) struct Tree {
    /// The template's own name (`define`d name, or the top-level one).
    pub name: String,
    /// The name of the template whose `parse` read this source; error
    /// locations use it, as Go's do.
    pub parse_name: String,
    pub src: std::sync::Arc<str>,
    pub root: Vec<Node>,
}

#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        end: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub end: usize,
    /// Declared or assigned variables (`$x := ...`, `$i, $v := ...`).
    pub decl: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug)]
pub(crate) struct Cmd {
    pub pos: usize,
    pub end: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub(crate) struct Arg {
    pub pos: usize,
    pub end: usize,
    pub kind: ArgKind,
}

#[derive(Debug)]
pub(crate) enum ArgKind {
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `.A.B.C`.
    Field(Vec<String>),
    /// `$x.A.B`.
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    Pipe(Box<Pipe>),
    /// `(pipe).A.B`.
    Chain(Box<Arg>, Vec<String>),
}

#[derive(Debug)]
pub(crate) struct ParseError {
    pub pos: usize,
    pub msg: String,
}

type PResult<T> = Result<T, ParseError>;

/// `define`d bodies by name, in source order.
pub(crate) type Defines = Vec<(String, Vec<Node>)>;

enum Term {
    End,
    Else(usize),
    Eof(usize),
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    known_func: &'a dyn Fn(&str) -> bool,
    vars: Vec<String>,
    range_depth: usize,
    nesting: usize,
    defines: Defines,
}

/// Parses `src`; returns the top-level body and the `define`d (and
/// `block`) bodies in source order.
pub(crate) fn parse(src: &str, known_func: &dyn Fn(&str) -> bool) -> PResult<(Vec<Node>, Defines)> {
    let toks = lex(src).map_err(|e| ParseError {
        pos: e.pos,
        msg: e.msg,
    })?;
    let mut p = Parser {
        toks,
        i: 0,
        known_func,
        vars: vec!["$".into()],
        range_depth: 0,
        nesting: 0,
        defines: Vec::new(),
    };
    let (root, term) = p.list(true)?;
    match term {
        Term::Eof(_) => Ok((root, p.defines)),
        Term::End => Err(p.err_at(p.toks[p.i - 2].pos, "unexpected {{end}}")),
        Term::Else(pos) => Err(p.err_at(pos, "unexpected {{else}}")),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::Left => "\"{{\"".into(),
        Tok::Right => "\"}}\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Dot => "<.>".into(),
        Tok::Var(v) => format!("{v:?}"),
        Tok::Ident(i) => format!("{i:?}"),
        Tok::Str(s) => format!("{s:?}"),
        Tok::Char(c) => format!("{c:?}"),
        Tok::Number(n) => format!("{n:?}"),
        Tok::Bool(b) => format!("\"{b}\""),
        Tok::Nil => "<nil>".into(),
        Tok::Kw(k) => format!("<{}>", format!("{k:?}").to_lowercase()),
        Tok::Eof => "EOF".into(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn err_at(&self, pos: usize, msg: &str) -> ParseError {
        ParseError {
            pos,
            msg: msg.to_string(),
        }
    }

    fn unexpected(&self, t: &Token, ctx: &str) -> ParseError {
        if t.tok == Tok::Eof {
            return self.err_at(t.pos, "unexpected EOF");
        }
        self.err_at(t.pos, &format!("unexpected {} in {ctx}", describe(&t.tok)))
    }

    fn expect_right(&mut self, ctx: &str) -> PResult<usize> {
        let t = self.next();
        match t.tok {
            Tok::Right => Ok(t.end),
            _ => Err(self.unexpected(&t, ctx)),
        }
    }

    fn nest(&mut self, pos: usize) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.err_at(pos, &format!("nesting deeper than {MAX_NESTING}")));
        }
        Ok(())
    }

    /// Parses nodes up to `{{end}}`, `{{else` or EOF.
    fn list(&mut self, top: bool) -> PResult<(Vec<Node>, Term)> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::Eof => return Ok((nodes, Term::Eof(t.pos))),
                Tok::Left => {
                    let kw = self.peek().clone();
                    match kw.tok {
                        Tok::Kw(Kw::End) => {
                            self.next();
                            self.expect_right("end")?;
                            return Ok((nodes, Term::End));
                        }
                        Tok::Kw(Kw::Else) => {
                            self.next();
                            return Ok((nodes, Term::Else(kw.pos)));
                        }
                        Tok::Kw(k @ (Kw::If | Kw::Range | Kw::With)) => {
                            self.next();
                            nodes.push(self.control(k, kw.pos)?);
                        }
                        Tok::Kw(Kw::Define) => {
                            self.next();
                            if !top || self.nesting > 0 {
                                return Err(self.err_at(kw.pos, "unexpected <define> in command"));
                            }
                            self.define(kw.pos)?;
                        }
                        Tok::Kw(Kw::Template) => {
                            self.next();
                            nodes.push(self.template(kw.pos)?);
                        }
                        Tok::Kw(Kw::Block) => {
                            self.next();
                            nodes.push(self.block(kw.pos)?);
                        }
                        Tok::Kw(k @ (Kw::Break | Kw::Continue)) => {
                            self.next();
                            let name = if k == Kw::Break { "break" } else { "continue" };
                            if self.range_depth == 0 {
                                return Err(self.err_at(
                                    kw.pos,
                                    &format!("{{{{{name}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            self.expect_right(name)?;
                            nodes.push(if k == Kw::Break {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        _ => {
                            let pipe = self.pipe("command", 1)?;
                            nodes.push(Node::Action(pipe));
                        }
                    }
                }
                _ => return Err(self.unexpected(&t, "input")),
            }
        }
    }

    /// `if`/`range`/`with` after the keyword, through the matching `{{end}}`.
    fn control(&mut self, kw: Kw, pos: usize) -> PResult<Node> {
        self.nest(pos)?;
        let mark = self.vars.len();
        let (ctx, max_decl) = match kw {
            Kw::If => ("if", 1),
            Kw::Range => ("range", 2),
            _ => ("with", 1),
        };
        let pipe = self.pipe(ctx, max_decl)?;
        if kw == Kw::Range {
            self.range_depth += 1;
        }
        let listed = self.list(false);
        if kw == Kw::Range {
            self.range_depth -= 1;
        }
        let (list, term) = listed?;
        let else_list = match term {
            Term::End => None,
            Term::Eof(p) => return Err(self.err_at(p, "unexpected EOF")),
            Term::Else(_) => {
                let t = self.peek().clone();
                match t.tok {
                    Tok::Kw(k @ (Kw::If | Kw::With)) if k == kw => {
                        // `{{else if ...}}`: a nested control that shares our {{end}}.
                        self.next();
                        Some(vec![self.control(k, t.pos)?])
                    }
                    _ => {
                        self.expect_right("else")?;
                        let (l, term) = self.list(false)?;
                        match term {
                            Term::End => Some(l),
                            Term::Else(p) => {
                                return Err(self.err_at(
                                    p,
                                    &format!("expected end; found {{{{else}}}} in {ctx}"),
                                ))
                            }
                            Term::Eof(p) => return Err(self.err_at(p, "unexpected EOF")),
                        }
                    }
                }
            }
        };
        self.vars.truncate(mark);
        self.nesting -= 1;
        let b = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kw {
            Kw::If => Node::If(b),
            Kw::Range => Node::Range(b),
            _ => Node::With(b),
        })
    }

    fn template_name(&mut self, ctx: &str) -> PResult<String> {
        let t = self.next();
        match t.tok {
            Tok::Str(s) => Ok(s),
            _ => Err(self.unexpected(&t, ctx)),
        }
    }

    /// A body up to `{{end}}` with a fresh variable scope (only `$`).
    fn body(&mut self, pos: usize, ctx: &str) -> PResult<Vec<Node>> {
        self.nest(pos)?;
        let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let r = self.list(false);
        self.vars = saved;
        self.range_depth = saved_range;
        self.nesting -= 1;
        let (list, term) = r?;
        match term {
            Term::End => Ok(list),
            Term::Else(p) => Err(self.err_at(p, &format!("unexpected {{{{else}}}} in {ctx}"))),
            Term::Eof(p) => Err(self.err_at(p, "unexpected EOF")),
        }
    }

    fn define(&mut self, pos: usize) -> PResult<()> {
        let name = self.template_name("define clause")?;
        self.expect_right("define clause")?;
        let list = self.body(pos, "define")?;
        self.defines.push((name, list));
        Ok(())
    }

    fn template(&mut self, pos: usize) -> PResult<Node> {
        let name = self.template_name("template clause")?;
        if self.peek().tok == Tok::Right {
            let end = self.next().pos;
            return Ok(Node::Template {
                pos,
                end,
                name,
                pipe: None,
            });
        }
        let pipe = self.pipe("template clause", 0)?;
        Ok(Node::Template {
            pos,
            end: pipe.end,
            name,
            pipe: Some(pipe),
        })
    }

    fn block(&mut self, pos: usize) -> PResult<Node> {
        let name = self.template_name("block clause")?;
        let pipe = self.pipe("block clause", 0)?;
        let list = self.body(pos, "block")?;
        self.defines.push((name.clone(), list));
        Ok(Node::Template {
            pos,
            end: pipe.end,
            name,
            pipe: Some(pipe),
        })
    }

    /// A pipeline, with optional declarations, up to and including `}}`.
    fn pipe(&mut self, ctx: &str, max_decl: usize) -> PResult<Pipe> {
        let start = self.peek().pos;
        let mut decl = Vec::new();
        let mut assign = false;
        // Declarations: `$x :=`, `$x =`, `$i, $v :=`.
        if let Tok::Var(_) = self.peek().tok {
            let save = self.i;
            let mut names = Vec::new();
            while let Tok::Var(v) = self.peek().tok.clone() {
                let vpos = self.peek().pos;
                self.next();
                names.push((v, vpos));
                match self.peek().tok {
                    Tok::Comma if max_decl >= 2 && names.len() < 2 => {
                        self.next();
                    }
                    Tok::Comma => {
                        return Err(self.err_at(vpos, &format!("too many declarations in {ctx}")))
                    }
                    Tok::Declare | Tok::Assign => {
                        assign = self.next().tok == Tok::Assign;
                        decl = names;
                        break;
                    }
                    _ => break,
                }
            }
            if decl.is_empty() {
                self.i = save;
            } else if decl.len() > max_decl.max(1) || (max_decl == 0) {
                return Err(self.err_at(decl[0].1, &format!("too many declarations in {ctx}")));
            } else if assign {
                for (v, p) in &decl {
                    if !self.vars.contains(v) {
                        return Err(self.err_at(*p, &format!("undefined variable {v:?}")));
                    }
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Right => {
                    self.next();
                    if cmds.is_empty() {
                        return Err(self.err_at(t.pos, &format!("missing value for {ctx}")));
                    }
                    break;
                }
                Tok::Pipe if !cmds.is_empty() => {
                    self.next();
                }
                _ => {
                    let c = self.command(ctx)?;
                    if !cmds.is_empty() {
                        if let Some(a) = c.args.first() {
                            if !matches!(
                                a.kind,
                                ArgKind::Ident(_)
                                    | ArgKind::Field(_)
                                    | ArgKind::Var(..)
                                    | ArgKind::Pipe(_)
                                    | ArgKind::Chain(..)
                            ) {
                                return Err(self.err_at(
                                    c.pos,
                                    &format!(
                                        "non executable command in pipeline stage {}",
                                        cmds.len() + 1
                                    ),
                                ));
                            }
                        }
                    }
                    cmds.push(c);
                }
            }
        }
        let end = self.toks[self.i - 1].pos;
        for (v, _) in &decl {
            if !assign {
                self.vars.push(v.clone());
            }
        }
        Ok(Pipe {
            pos: start,
            end,
            decl: decl.into_iter().map(|d| d.0).collect(),
            assign,
            cmds,
        })
    }

    /// Operands up to `|`, `}}` or `)` (not consumed).
    fn command(&mut self, ctx: &str) -> PResult<Cmd> {
        let pos = self.peek().pos;
        let mut args = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::Right | Tok::Pipe | Tok::RParen => break,
                _ => args.push(self.operand(ctx)?),
            }
        }
        if args.is_empty() {
            let t = self.peek().clone();
            return Err(self.err_at(t.pos, &format!("missing value for {ctx}")));
        }
        let end = args.last().map_or(pos, |a| a.end);
        Ok(Cmd { pos, end, args })
    }

    /// A term and any field chain directly after it.
    fn operand(&mut self, ctx: &str) -> PResult<Arg> {
        let t = self.next();
        let (pos, mut end) = (t.pos, t.end);
        let mut kind = match t.tok {
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Nil,
            Tok::Bool(b) => ArgKind::Bool(b),
            Tok::Str(s) => ArgKind::Str(s),
            Tok::Char(c) => ArgKind::Int(c as i64),
            Tok::Number(n) => {
                number(&n).ok_or_else(|| self.err_at(pos, &format!("bad number syntax: {n:?}")))?
            }
            Tok::Field(f) => ArgKind::Field(vec![f]),
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err_at(pos, &format!("undefined variable {v:?}")));
                }
                ArgKind::Var(v, Vec::new())
            }
            Tok::Ident(name) => {
                if !(self.known_func)(&name) {
                    return Err(self.err_at(pos, &format!("function {name:?} not defined")));
                }
                ArgKind::Ident(name)
            }
            Tok::LParen => {
                self.nest(pos)?;
                let p = self.paren_pipe(ctx)?;
                self.nesting -= 1;
                end = self.toks[self.i - 1].end;
                ArgKind::Pipe(Box::new(p))
            }
            _ => return Err(self.unexpected(&t, "operand")),
        };
        while let Tok::Field(f) = &self.peek().tok {
            if self.peek().space_before {
                break;
            }
            let f = f.clone();
            end = self.next().end;
            kind = match kind {
                ArgKind::Field(mut v) => {
                    v.push(f);
                    ArgKind::Field(v)
                }
                ArgKind::Var(n, mut v) => {
                    v.push(f);
                    ArgKind::Var(n, v)
                }
                ArgKind::Chain(b, mut v) => {
                    v.push(f);
                    ArgKind::Chain(b, v)
                }
                k @ (ArgKind::Pipe(_) | ArgKind::Dot | ArgKind::Ident(_)) => {
                    ArgKind::Chain(Box::new(Arg { pos, end, kind: k }), vec![f])
                }
                _ => return Err(self.err_at(pos, "unexpected . after term")),
            };
        }
        Ok(Arg { pos, end, kind })
    }

    /// Inside `( ... )`, after the `(`, through the `)`.
    fn paren_pipe(&mut self, ctx: &str) -> PResult<Pipe> {
        let start = self.peek().pos;
        let mut cmds = Vec::new();
        loop {
            let t = self.peek().clone();
            match t.tok {
                Tok::RParen => {
                    self.next();
                    if cmds.is_empty() {
                        return Err(self.err_at(t.pos, &format!("missing value for {ctx}")));
                    }
                    break;
                }
                Tok::Right | Tok::Eof => return Err(self.err_at(t.pos, "unclosed left paren")),
                Tok::Pipe if !cmds.is_empty() => {
                    self.next();
                }
                _ => cmds.push(self.command(ctx)?),
            }
        }
        Ok(Pipe {
            pos: start,
            end: self.toks[self.i - 1].pos,
            decl: Vec::new(),
            assign: false,
            cmds,
        })
    }
}

/// Go number syntax: decimal, `0x`/`0o`/`0b`/leading-0 octal integers,
/// underscores, floats with exponents (hex floats are not supported).
fn number(s: &str) -> Option<ArgKind> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let radix = if lower.starts_with("0x") {
        Some((16, &clean[2..]))
    } else if lower.starts_with("0o") {
        Some((8, &clean[2..]))
    } else if lower.starts_with("0b") {
        Some((2, &clean[2..]))
    } else if clean.len() > 1 && clean.starts_with('0') && clean.bytes().all(|b| b.is_ascii_digit())
    {
        Some((8, &clean[1..]))
    } else {
        None
    };
    if let Some((r, digits)) = radix {
        let v = i64::from_str_radix(digits, r).ok()?;
        return Some(ArgKind::Int(if neg { -v } else { v }));
    }
    if clean.bytes().all(|b| b.is_ascii_digit()) && !clean.is_empty() {
        let v: i64 = format!("{}{clean}", if neg { "-" } else { "" })
            .parse()
            .ok()?;
        return Some(ArgKind::Int(v));
    }
    if clean
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        let v: f64 = clean.parse().ok()?;
        return Some(ArgKind::Float(if neg { -v } else { v }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse(src, &|n| n == "f").unwrap_err().msg
    }

    #[test]
    fn numbers() {
        assert!(matches!(number("0x1F"), Some(ArgKind::Int(31))));
        assert!(matches!(number("-1_000"), Some(ArgKind::Int(-1000))));
        assert!(matches!(number("017"), Some(ArgKind::Int(15))));
        assert!(matches!(number("1.5e3"), Some(ArgKind::Float(f)) if f == 1500.0));
        assert!(number("1x").is_none());
    }

    #[test]
    fn errors() {
        assert_eq!(err("{{end}}"), "unexpected {{end}}");
        assert_eq!(err("{{if .X}}"), "unexpected EOF");
        assert_eq!(err("{{g 1}}"), "function \"g\" not defined");
        assert_eq!(err("{{$x}}"), "undefined variable \"$x\"");
        assert_eq!(err("{{break}}"), "{{break}} outside {{range}}");
        assert_eq!(err("{{if}}{{end}}"), "missing value for if");
        assert_eq!(err("{{(1}}"), "unclosed left paren");
        assert_eq!(
            err("{{1 | 2}}"),
            "non executable command in pipeline stage 2"
        );
        assert_eq!(
            err("{{if 1}}{{define \"a\"}}{{end}}{{end}}"),
            "unexpected <define> in command"
        );
        assert_eq!(err(&"{{if 1}}".repeat(200)), "nesting deeper than 100");
        assert_eq!(
            err(&format!("{{{{{}1{}}}}}", "(".repeat(200), ")".repeat(200))),
            "nesting deeper than 100"
        );
    }

    #[test]
    fn scopes() {
        assert!(parse("{{if $x := 1}}{{$x}}{{else}}{{$x}}{{end}}", &|_| false).is_ok());
        assert_eq!(
            err("{{if $x := 1}}{{end}}{{$x}}"),
            "undefined variable \"$x\""
        );
        assert_eq!(
            err("{{$x := 1}}{{define \"a\"}}{{$x}}{{end}}"),
            "undefined variable \"$x\""
        );
        assert!(
            parse("{{range $i, $v := .}}{{$i}}{{$v}}{{break}}{{end}}", &|_| {
                false
            })
            .is_ok()
        );
        assert_eq!(err("{{$i, $v := 1}}"), "too many declarations in command");
    }
}
