//! Hand-written recursive-descent / precedence-climbing PromQL parser with
//! Prometheus's type checks.

use crate::ast::*;
use crate::lexer::{lex, Tok, Token};
use crate::ParseError;
use koban_model::{MatchType, Matcher, METRIC_NAME};
use ValueType::{Matrix as M, Scalar as S, String as Str, Vector as V};

/// Maximum nesting depth of an expression (guards the recursion).
pub const MAX_DEPTH: usize = 128;

macro_rules! f {
    ($name:expr, [$($t:expr),*], $var:expr, $ret:expr) => {
        Function { name: $name, arg_types: &[$($t),*], variadic: $var, ret: $ret }
    };
}

/// Every PromQL function (float semantics).
pub static FUNCTIONS: &[Function] = &[
    f!("abs", [V], 0, V),
    f!("absent", [V], 0, V),
    f!("absent_over_time", [M], 0, V),
    f!("acos", [V], 0, V),
    f!("acosh", [V], 0, V),
    f!("asin", [V], 0, V),
    f!("asinh", [V], 0, V),
    f!("atan", [V], 0, V),
    f!("atanh", [V], 0, V),
    f!("avg_over_time", [M], 0, V),
    f!("ceil", [V], 0, V),
    f!("changes", [M], 0, V),
    f!("clamp", [V, S, S], 0, V),
    f!("clamp_max", [V, S], 0, V),
    f!("clamp_min", [V, S], 0, V),
    f!("cos", [V], 0, V),
    f!("cosh", [V], 0, V),
    f!("count_over_time", [M], 0, V),
    f!("days_in_month", [V], 1, V),
    f!("day_of_month", [V], 1, V),
    f!("day_of_week", [V], 1, V),
    f!("day_of_year", [V], 1, V),
    f!("deg", [V], 0, V),
    f!("delta", [M], 0, V),
    f!("deriv", [M], 0, V),
    f!("exp", [V], 0, V),
    f!("floor", [V], 0, V),
    f!("first_over_time", [M], 0, V),
    f!("histogram_avg", [V], 0, V),
    f!("histogram_count", [V], 0, V),
    f!("histogram_sum", [V], 0, V),
    f!("histogram_stddev", [V], 0, V),
    f!("histogram_stdvar", [V], 0, V),
    f!("histogram_fraction", [S, S, V], 0, V),
    f!("histogram_quantile", [S, V], 0, V),
    f!("double_exponential_smoothing", [M, S, S], 0, V),
    f!("holt_winters", [M, S, S], 0, V),
    f!("hour", [V], 1, V),
    f!("idelta", [M], 0, V),
    f!("increase", [M], 0, V),
    f!("info", [V, V], 1, V),
    f!("irate", [M], 0, V),
    f!("label_replace", [V, Str, Str, Str, Str], 0, V),
    f!("label_join", [V, Str, Str, Str], -1, V),
    f!("last_over_time", [M], 0, V),
    f!("ln", [V], 0, V),
    f!("log10", [V], 0, V),
    f!("log2", [V], 0, V),
    f!("mad_over_time", [M], 0, V),
    f!("max_over_time", [M], 0, V),
    f!("min_over_time", [M], 0, V),
    f!("minute", [V], 1, V),
    f!("month", [V], 1, V),
    f!("pi", [], 0, S),
    f!("predict_linear", [M, S], 0, V),
    f!("present_over_time", [M], 0, V),
    f!("quantile_over_time", [S, M], 0, V),
    f!("rad", [V], 0, V),
    f!("rate", [M], 0, V),
    f!("resets", [M], 0, V),
    f!("round", [V, S], 1, V),
    f!("scalar", [V], 0, S),
    f!("sgn", [V], 0, V),
    f!("sin", [V], 0, V),
    f!("sinh", [V], 0, V),
    f!("sort", [V], 0, V),
    f!("sort_desc", [V], 0, V),
    f!("sort_by_label", [V, Str], -1, V),
    f!("sort_by_label_desc", [V, Str], -1, V),
    f!("sqrt", [V], 0, V),
    f!("stddev_over_time", [M], 0, V),
    f!("stdvar_over_time", [M], 0, V),
    f!("sum_over_time", [M], 0, V),
    f!("tan", [V], 0, V),
    f!("tanh", [V], 0, V),
    f!("time", [], 0, S),
    f!("timestamp", [V], 0, V),
    f!("ts_of_first_over_time", [M], 0, V),
    f!("ts_of_last_over_time", [M], 0, V),
    f!("ts_of_max_over_time", [M], 0, V),
    f!("ts_of_min_over_time", [M], 0, V),
    f!("vector", [S], 0, V),
    f!("year", [V], 1, V),
    f!("step", [], 0, S),
    f!("range", [], 0, S),
    f!("start", [], 0, S),
    f!("end", [], 0, S),
    f!("min_of", [S, S], 0, S),
    f!("max_of", [S, S], 0, S),
];

/// Looks up a function by name.
pub fn get_function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Parses a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parse_inner(input).map_err(|mut e| {
        e.query = Some(input.to_string());
        e
    })
}

fn parse_inner(input: &str) -> Result<Expr, ParseError> {
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    if p.peek() == &Tok::Eof {
        return Err(ParseError::new(
            0,
            0,
            "no expression found in input".to_string(),
        ));
    }
    let e = p.expr(0).map_err(|e| at_eof(e, &p.toks, input.len()))?;
    if p.peek() != &Tok::Eof {
        let t = p.cur().clone();
        return Err(ParseError::new(
            t.start,
            t.end,
            format!("unexpected {}", t.describe()),
        ));
    }
    check_ast(&e)?;
    Ok(e)
}

/// Prometheus's wording for a query that ends too early: its lexer
/// reports an open brace or parenthesis at the end of input before the
/// parser sees the end (`unexpected end of input inside braces`,
/// `unclosed left parenthesis`); otherwise the parser's `unexpected end of
/// input ...`.
fn at_eof(mut e: ParseError, toks: &[Token], len: usize) -> ParseError {
    if e.pos_start != len || !e.msg.starts_with("unexpected end of input") {
        return e;
    }
    let (mut parens, mut braces) = (0i32, false);
    for t in toks {
        match t.tok {
            Tok::LParen => parens += 1,
            Tok::RParen => parens -= 1,
            Tok::LBrace => braces = true,
            Tok::RBrace => braces = false,
            _ => {}
        }
    }
    if braces {
        e.msg = "unexpected end of input inside braces".to_string();
    } else if parens > 0 {
        e.msg = "unclosed left parenthesis".to_string();
    }
    e
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

fn binop_of(t: &Tok) -> Option<BinOp> {
    Some(match t {
        Tok::Add => BinOp::Add,
        Tok::Sub => BinOp::Sub,
        Tok::Mul => BinOp::Mul,
        Tok::Div => BinOp::Div,
        Tok::Mod => BinOp::Mod,
        Tok::Pow => BinOp::Pow,
        Tok::Eql => BinOp::Eql,
        Tok::Neq => BinOp::Neq,
        Tok::Gtr => BinOp::Gtr,
        Tok::Lss => BinOp::Lss,
        Tok::Gte => BinOp::Gte,
        Tok::Lte => BinOp::Lte,
        Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
            "and" => BinOp::And,
            "or" => BinOp::Or,
            "unless" => BinOp::Unless,
            "atan2" => BinOp::Atan2,
            _ => return None,
        },
        _ => return None,
    })
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].tok
    }
    fn peek_at(&self, n: usize) -> &Tok {
        &self.toks[(self.i + n).min(self.toks.len() - 1)].tok
    }
    fn cur(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }
    fn next(&mut self) -> Token {
        let t = self.cur().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn prev_end(&self) -> usize {
        if self.i == 0 {
            0
        } else {
            self.toks[self.i - 1].end
        }
    }
    fn unexpected<T>(&self, ctx: &str) -> Result<T, ParseError> {
        let t = self.cur();
        let mut msg = format!("unexpected {}", t.describe());
        if !ctx.is_empty() {
            msg.push_str(" in ");
            msg.push_str(ctx);
        }
        Err(ParseError::new(t.start, t.end, msg))
    }
    fn expect(&mut self, t: Tok, ctx: &str) -> Result<Token, ParseError> {
        if *self.peek() == t {
            Ok(self.next())
        } else {
            let c = self.cur();
            Err(ParseError::new(
                c.start,
                c.end,
                format!(
                    "unexpected {} in {}, expected {}",
                    c.describe(),
                    ctx,
                    t.describe()
                ),
            ))
        }
    }

    fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let c = self.cur();
            return Err(ParseError::new(
                c.start,
                c.end,
                "expression nesting too deep".to_string(),
            ));
        }
        let mut lhs = self.unary()?;
        // Each operator in a left-associative chain deepens the tree by one.
        let mut chain = 0;
        loop {
            let op = match binop_of(self.peek()) {
                Some(op) => op,
                None => break,
            };
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let optok = self.next();
            chain += 1;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(ParseError::new(
                    optok.start,
                    optok.end,
                    "expression nesting too deep".to_string(),
                ));
            }
            // Modifiers.
            let mut return_bool = false;
            if is_kw(self.peek(), "bool") {
                self.next();
                return_bool = true;
            }
            let mut matching: Option<VectorMatching> = None;
            if is_kw(self.peek(), "on") || is_kw(self.peek(), "ignoring") {
                let on = is_kw(self.peek(), "on");
                self.next();
                let labels = self.label_list("grouping opts")?;
                matching = Some(VectorMatching {
                    card: Card::OneToOne,
                    on,
                    labels,
                    include: vec![],
                });
            }
            if is_kw(self.peek(), "group_left") || is_kw(self.peek(), "group_right") {
                let left = is_kw(self.peek(), "group_left");
                let t = self.next();
                if op.is_set() {
                    return Err(ParseError::new(
                        t.start,
                        t.end,
                        format!("no grouping allowed for \"{}\" operation", op.as_str()),
                    ));
                }
                let include = if *self.peek() == Tok::LParen {
                    self.label_list("grouping opts")?
                } else {
                    vec![]
                };
                let m = matching.get_or_insert(VectorMatching {
                    card: Card::OneToOne,
                    on: false,
                    labels: vec![],
                    include: vec![],
                });
                m.card = if left {
                    Card::ManyToOne
                } else {
                    Card::OneToMany
                };
                m.include = include;
            }
            let next_min = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            let pos = PosRange {
                start: lhs.pos().start,
                end: rhs.pos().end,
            };
            lhs = make_binary(op, lhs, rhs, return_bool, matching, pos)?;
        }
        self.depth -= 1 + chain;
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if matches!(self.peek(), Tok::Sub | Tok::Add) {
            let t = self.next();
            let neg = t.tok == Tok::Sub;
            // Unary binds like multiplication: only `^` binds tighter.
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(ParseError::new(
                    t.start,
                    t.end,
                    "expression nesting too deep".to_string(),
                ));
            }
            let e = self.expr(BinOp::Pow.precedence())?;
            self.depth -= 1;
            let pos = PosRange {
                start: t.start,
                end: e.pos().end,
            };
            match e {
                Expr::Number { val, .. } => {
                    return Ok(Expr::Number {
                        val: if neg { -val } else { val },
                        pos,
                    })
                }
                _ => {}
            }
            let vt = e.value_type();
            if vt != ValueType::Scalar && vt != ValueType::Vector {
                return Err(ParseError::new(
                    pos.start,
                    pos.end,
                    format!("unary expression only allowed on expressions of type scalar or instant vector, got \"{}\"", vt_name(vt)),
                ));
            }
            return Ok(Expr::Unary {
                neg,
                expr: Box::new(e),
                pos,
            });
        }
        let e = self.primary()?;
        self.postfix(e)
    }

    fn postfix(&mut self, mut e: Expr) -> Result<Expr, ParseError> {
        loop {
            match self.peek() {
                Tok::LBracket => {
                    e = self.range_or_subquery(e)?;
                }
                Tok::Ident(s) if s.eq_ignore_ascii_case("offset") => {
                    let t = self.next();
                    let neg = if *self.peek() == Tok::Sub {
                        self.next();
                        true
                    } else {
                        if *self.peek() == Tok::Add {
                            self.next();
                        }
                        false
                    };
                    let d = self.duration_value("offset")?;
                    let d = if neg { -d } else { d };
                    e = set_offset(e, d, t.start)?;
                }
                Tok::At => {
                    let t = self.next();
                    let at = self.at_value()?;
                    e = set_at(e, at, t.start)?;
                }
                _ => return Ok(e),
            }
        }
    }

    fn at_value(&mut self) -> Result<AtModifier, ParseError> {
        let c = self.cur().clone();
        match &c.tok {
            Tok::Ident(s) if (s == "start" || s == "end") && *self.peek_at(1) == Tok::LParen => {
                self.next();
                self.next();
                self.expect(Tok::RParen, "@ modifier")?;
                Ok(if s == "start" {
                    AtModifier::Start
                } else {
                    AtModifier::End
                })
            }
            _ => {
                let neg = if *self.peek() == Tok::Sub {
                    self.next();
                    true
                } else {
                    if *self.peek() == Tok::Add {
                        self.next();
                    }
                    false
                };
                let c = self.cur().clone();
                let v = match c.tok {
                    Tok::Number(v) => v,
                    Tok::Duration(d) => d as f64 / 1000.0,
                    _ => return self.unexpected("@"),
                };
                self.next();
                let v = if neg { -v } else { v };
                if !v.is_finite() || v.abs() * 1000.0 > i64::MAX as f64 {
                    return Err(ParseError::new(
                        c.start,
                        c.end,
                        "timestamp out of bounds for @ modifier".to_string(),
                    ));
                }
                Ok(AtModifier::Timestamp((v * 1000.0).round() as i64))
            }
        }
    }

    /// A duration: a duration literal or a number of seconds.
    fn duration_value(&mut self, ctx: &str) -> Result<i64, ParseError> {
        let c = self.cur().clone();
        match c.tok {
            Tok::Duration(d) => {
                self.next();
                Ok(d)
            }
            Tok::Number(v) => {
                self.next();
                if !v.is_finite() || v.abs() * 1000.0 > i64::MAX as f64 {
                    return Err(ParseError::new(
                        c.start,
                        c.end,
                        format!("invalid duration: {}", format_number(v)),
                    ));
                }
                Ok((v * 1000.0).round() as i64)
            }
            Tok::LParen => {
                // Parenthesised duration arithmetic: evaluate as constant.
                self.next();
                let e = self.expr(0)?;
                self.expect(Tok::RParen, ctx)?;
                match const_eval(&e) {
                    Some(v) if v.is_finite() => Ok((v * 1000.0).round() as i64),
                    _ => Err(ParseError::new(
                        c.start,
                        self.prev_end(),
                        format!("invalid duration expression in {ctx}"),
                    )),
                }
            }
            _ => self.unexpected(ctx),
        }
    }

    /// Duration arithmetic inside brackets: `5m + 30s`, `2 * 1h`, in ms.
    fn dur_expr(&mut self, ctx: &str) -> Result<i64, ParseError> {
        let start = self.cur().start;
        let v = self.dur_sum(ctx)?;
        if !v.is_finite() || v.abs() > i64::MAX as f64 {
            return Err(ParseError::new(
                start,
                self.prev_end(),
                format!("invalid duration expression in {ctx}"),
            ));
        }
        Ok(v.round() as i64)
    }

    fn dur_sum(&mut self, ctx: &str) -> Result<f64, ParseError> {
        let mut v = self.dur_prod(ctx)?;
        while matches!(self.peek(), Tok::Add | Tok::Sub) {
            let add = *self.peek() == Tok::Add;
            self.next();
            let r = self.dur_prod(ctx)?;
            v = if add { v + r } else { v - r };
        }
        Ok(v)
    }

    fn dur_prod(&mut self, ctx: &str) -> Result<f64, ParseError> {
        let mut v = self.dur_atom(ctx)?;
        while matches!(self.peek(), Tok::Mul | Tok::Div | Tok::Mod) {
            let op = self.next().tok;
            let r = self.dur_atom(ctx)?;
            // Products and quotients of two durations are in ms*ms; keep
            // one side as a plain factor (seconds for numbers).
            v = match op {
                Tok::Mul => v * r / 1000.0,
                Tok::Div => v / r * 1000.0,
                _ => v % r,
            };
        }
        Ok(v)
    }

    fn dur_atom(&mut self, ctx: &str) -> Result<f64, ParseError> {
        if *self.peek() == Tok::Sub {
            self.next();
            return Ok(-self.dur_atom(ctx)?);
        }
        if *self.peek() == Tok::LParen {
            self.next();
            let v = self.dur_sum(ctx)?;
            self.expect(Tok::RParen, ctx)?;
            return Ok(v);
        }
        Ok(self.duration_value(ctx)? as f64)
    }

    fn range_or_subquery(&mut self, e: Expr) -> Result<Expr, ParseError> {
        let lb = self.next();
        let range = self.dur_expr("duration")?;
        if *self.peek() == Tok::Colon {
            self.next();
            let step = if *self.peek() == Tok::RBracket {
                0
            } else {
                self.dur_expr("subquery")?
            };
            let rb = self.expect(Tok::RBracket, "subquery selector")?;
            let vt = e.value_type();
            if vt != ValueType::Vector {
                return Err(ParseError::new(
                    e.pos().start,
                    rb.end,
                    format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        vt_name(vt)
                    ),
                ));
            }
            if range <= 0 {
                return Err(ParseError::new(
                    lb.start,
                    rb.end,
                    "duration must be greater than 0".to_string(),
                ));
            }
            if step < 0 {
                return Err(ParseError::new(
                    lb.start,
                    rb.end,
                    "step must be greater than 0".to_string(),
                ));
            }
            let pos = PosRange {
                start: e.pos().start,
                end: rb.end,
            };
            return Ok(Expr::Subquery {
                expr: Box::new(e),
                range,
                step,
                offset: 0,
                at: None,
                pos,
            });
        }
        let rb = self.expect(Tok::RBracket, "matrix selector")?;
        match e {
            Expr::VectorSelector(vs) if vs.offset == 0 && vs.at.is_none() => {
                if range <= 0 {
                    return Err(ParseError::new(
                        lb.start,
                        rb.end,
                        "duration must be greater than 0".to_string(),
                    ));
                }
                let pos = PosRange {
                    start: vs.pos.start,
                    end: rb.end,
                };
                Ok(Expr::MatrixSelector { vs, range, pos })
            }
            Expr::VectorSelector(vs) => Err(ParseError::new(
                vs.pos.start,
                rb.end,
                "no offset or @ modifiers allowed before range".to_string(),
            )),
            other => Err(ParseError::new(
                other.pos().start,
                rb.end,
                "ranges only allowed for vector selectors".to_string(),
            )),
        }
    }

    fn label_list(&mut self, ctx: &str) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen, ctx)?;
        let mut out = Vec::new();
        loop {
            let c = self.cur().clone();
            match c.tok {
                Tok::RParen => {
                    self.next();
                    return Ok(out);
                }
                Tok::Ident(s) => {
                    self.next();
                    out.push(s);
                }
                Tok::Str(s) => {
                    self.next();
                    out.push(s);
                }
                Tok::Number(_) | Tok::Duration(_) => {
                    return Err(ParseError::new(
                        c.start,
                        c.end,
                        format!("unexpected {} in {}, expected label", c.describe(), ctx),
                    ));
                }
                _ => {
                    return Err(ParseError::new(
                        c.start,
                        c.end,
                        format!("unexpected {} in {}, expected label", c.describe(), ctx),
                    ))
                }
            }
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                Tok::RParen => {}
                _ => {
                    let c = self.cur();
                    return Err(ParseError::new(
                        c.start,
                        c.end,
                        format!(
                            "unexpected {} in {}, expected \",\" or \")\"",
                            c.describe(),
                            ctx
                        ),
                    ));
                }
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let c = self.cur().clone();
        let pos = PosRange {
            start: c.start,
            end: c.end,
        };
        match c.tok {
            Tok::Number(v) => {
                self.next();
                Ok(Expr::Number { val: v, pos })
            }
            Tok::Duration(d) => {
                self.next();
                Ok(Expr::Number {
                    val: d as f64 / 1000.0,
                    pos,
                })
            }
            Tok::Str(s) => {
                self.next();
                Ok(Expr::String { val: s, pos })
            }
            Tok::LParen => {
                self.next();
                let e = self.expr(0)?;
                let r = self.expect(Tok::RParen, "paren expression")?;
                Ok(Expr::Paren {
                    expr: Box::new(e),
                    pos: PosRange {
                        start: c.start,
                        end: r.end,
                    },
                })
            }
            Tok::LBrace => self.selector(None, c.start),
            Tok::Ident(name) => {
                let next = self.peek_at(1).clone();
                if let Some(op) = AggOp::from_name(&name) {
                    if next == Tok::LParen || is_kw(&next, "by") || is_kw(&next, "without") {
                        self.next();
                        return self.aggregate(op, c.start);
                    }
                }
                if next == Tok::LParen {
                    self.next();
                    return self.call(&name, c.start, c.end);
                }
                let lname = name.to_ascii_lowercase();
                if matches!(
                    lname.as_str(),
                    "by" | "without"
                        | "on"
                        | "ignoring"
                        | "group_left"
                        | "group_right"
                        | "bool"
                        | "offset"
                        | "and"
                        | "or"
                        | "unless"
                        | "atan2"
                ) && next != Tok::LBrace
                {
                    return self.unexpected("");
                }
                self.next();
                self.selector(Some(name), c.start)
            }
            Tok::Eof => Err(ParseError::new(
                c.start,
                c.end,
                "unexpected end of input".to_string(),
            )),
            Tok::RParen => Err(ParseError::new(
                c.start,
                c.end,
                "unexpected right parenthesis ')'".to_string(),
            )),
            _ => self.unexpected(""),
        }
    }

    fn call(&mut self, name: &str, start: usize, name_end: usize) -> Result<Expr, ParseError> {
        let func = get_function(name).ok_or_else(|| {
            ParseError::new(
                start,
                name_end,
                format!("unknown function with name \"{name}\""),
            )
        })?;
        self.expect(Tok::LParen, "function call")?;
        let mut args = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                args.push(self.expr(0)?);
                match self.peek() {
                    Tok::Comma => {
                        self.next();
                        // Trailing comma is allowed.
                        if *self.peek() == Tok::RParen {
                            break;
                        }
                    }
                    Tok::RParen => break,
                    _ => return self.unexpected("function call"),
                }
            }
        }
        let r = self.expect(Tok::RParen, "function call")?;
        let pos = PosRange { start, end: r.end };
        check_call(func, &args, pos)?;
        Ok(Expr::Call { func, args, pos })
    }

    fn aggregate(&mut self, op: AggOp, start: usize) -> Result<Expr, ParseError> {
        let mut grouping = Vec::new();
        let mut without = false;
        let mut has_grouping = false;
        if is_kw(self.peek(), "by") || is_kw(self.peek(), "without") {
            without = is_kw(self.peek(), "without");
            self.next();
            grouping = self.label_list("grouping opts")?;
            has_grouping = true;
        }
        self.expect(Tok::LParen, "aggregation")?;
        let mut args = Vec::new();
        if *self.peek() != Tok::RParen {
            loop {
                args.push(self.expr(0)?);
                match self.peek() {
                    Tok::Comma => {
                        self.next();
                        if *self.peek() == Tok::RParen {
                            break;
                        }
                    }
                    Tok::RParen => break,
                    _ => return self.unexpected("aggregation"),
                }
            }
        }
        let mut end = self.expect(Tok::RParen, "aggregation")?.end;
        if is_kw(self.peek(), "by") || is_kw(self.peek(), "without") {
            if has_grouping {
                return self.unexpected("aggregation");
            }
            without = is_kw(self.peek(), "without");
            self.next();
            grouping = self.label_list("grouping opts")?;
            has_grouping = true;
            end = self.prev_end();
        }
        let pos = PosRange { start, end };
        let want = if op.param_type().is_some() { 2 } else { 1 };
        if args.len() != want {
            return Err(ParseError::new(
                start,
                end,
                if args.is_empty() {
                    "no arguments for aggregate expression provided".to_string()
                } else {
                    format!("wrong number of arguments for aggregate expression provided, expected {want}, got {}", args.len())
                },
            ));
        }
        let expr = args
            .pop()
            .unwrap_or_else(|| unreachable!("BUG: checked length"));
        let param = args.pop();
        if expr.value_type() != ValueType::Vector {
            return Err(ParseError::new(
                expr.pos().start,
                expr.pos().end,
                format!(
                    "expected type instant vector in aggregation expression, got {}",
                    vt_name(expr.value_type())
                ),
            ));
        }
        if let (Some(p), Some(t)) = (&param, op.param_type()) {
            if p.value_type() != t {
                return Err(ParseError::new(
                    p.pos().start,
                    p.pos().end,
                    format!(
                        "expected type {} in aggregation parameter, got {}",
                        vt_name(t),
                        vt_name(p.value_type())
                    ),
                ));
            }
        }
        if op == AggOp::CountValues {
            if let Some(Expr::String { val, .. }) = param.as_ref().map(unwrap_paren) {
                if val.is_empty() || val.contains('\0') {
                    return Err(ParseError::new(
                        start,
                        end,
                        format!("invalid label name {}", quote(val)),
                    ));
                }
            }
        }
        Ok(Expr::Aggregate {
            op,
            expr: Box::new(expr),
            param: param.map(Box::new),
            grouping,
            without,
            has_grouping,
            pos,
        })
    }

    fn selector(&mut self, name: Option<String>, start: usize) -> Result<Expr, ParseError> {
        let mut matchers: Vec<Matcher> = Vec::new();
        let mut name = name;
        let mut end = self.prev_end();
        if *self.peek() == Tok::LBrace {
            self.next();
            loop {
                let c = self.cur().clone();
                match c.tok {
                    Tok::RBrace => {
                        end = self.next().end;
                        break;
                    }
                    Tok::Ident(_) | Tok::Str(_) => {
                        let lname = match &c.tok {
                            Tok::Ident(s) | Tok::Str(s) => s.clone(),
                            _ => unreachable!("BUG: matched above"),
                        };
                        self.next();
                        let op = match self.peek() {
                            Tok::Assign => Some(MatchType::Equal),
                            Tok::Neq => Some(MatchType::NotEqual),
                            Tok::EqlRegex => Some(MatchType::Regex),
                            Tok::NeqRegex => Some(MatchType::NotRegex),
                            _ => None,
                        };
                        match op {
                            None if matches!(c.tok, Tok::Str(_)) => {
                                if name.is_some() {
                                    return Err(ParseError::new(
                                        c.start,
                                        c.end,
                                        "metric name must not be set twice".to_string(),
                                    ));
                                }
                                name = Some(lname);
                            }
                            None => {
                                let t = self.cur();
                                return Err(ParseError::new(
                                    t.start,
                                    t.end,
                                    format!("unexpected {} in label matching, expected label matching operator", t.describe()),
                                ));
                            }
                            Some(kind) => {
                                self.next();
                                let v = self.cur().clone();
                                let val = match v.tok {
                                    Tok::Str(s) => s,
                                    _ => {
                                        return Err(ParseError::new(
                                            v.start,
                                            v.end,
                                            format!(
                                                "unexpected {} in label matching, expected string",
                                                v.describe()
                                            ),
                                        ))
                                    }
                                };
                                self.next();
                                let m = Matcher::new(kind, lname, val)
                                    .map_err(|e| ParseError::new(c.start, v.end, e.to_string()))?;
                                matchers.push(m);
                            }
                        }
                    }
                    _ => {
                        return Err(ParseError::new(
                            c.start,
                            c.end,
                            format!(
                                "unexpected {} in label matching, expected identifier or \"}}\"",
                                c.describe()
                            ),
                        ))
                    }
                }
                match self.peek() {
                    Tok::Comma => {
                        self.next();
                    }
                    Tok::RBrace => {}
                    _ => {
                        let t = self.cur();
                        return Err(ParseError::new(
                            t.start,
                            t.end,
                            format!(
                                "unexpected {} in label matching, expected \",\" or \"}}\"",
                                t.describe()
                            ),
                        ));
                    }
                }
            }
        }
        let pos = PosRange { start, end };
        if let Some(n) = &name {
            if matchers.iter().any(|m| m.name == METRIC_NAME) {
                return Err(ParseError::new(
                    start,
                    end,
                    format!("metric name must not be set twice: {}", quote(n)),
                ));
            }
            matchers.insert(0, Matcher::equal(METRIC_NAME, n.clone()));
        }
        if matchers.iter().all(|m| m.matches_empty()) {
            return Err(ParseError::new(
                start,
                end,
                "vector selector must contain at least one non-empty matcher".to_string(),
            ));
        }
        Ok(Expr::VectorSelector(VectorSelector {
            name,
            matchers,
            offset: 0,
            at: None,
            pos,
        }))
    }
}

fn unwrap_paren(e: &Expr) -> &Expr {
    match e {
        Expr::Paren { expr, .. } => unwrap_paren(expr),
        e => e,
    }
}

fn vt_name(t: ValueType) -> String {
    t.to_string()
}

/// Evaluates a constant scalar expression (for duration arithmetic).
fn const_eval(e: &Expr) -> Option<f64> {
    match e {
        Expr::Number { val, .. } => Some(*val),
        Expr::Paren { expr, .. } => const_eval(expr),
        Expr::Unary { neg, expr, .. } => const_eval(expr).map(|v| if *neg { -v } else { v }),
        Expr::Binary { op, lhs, rhs, .. } => {
            let (a, b) = (const_eval(lhs)?, const_eval(rhs)?);
            Some(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                BinOp::Mod => a % b,
                BinOp::Pow => a.powf(b),
                _ => return None,
            })
        }
        _ => None,
    }
}

fn set_offset(e: Expr, d: i64, kw_start: usize) -> Result<Expr, ParseError> {
    let err = |p: PosRange, m: &str| Err(ParseError::new(p.start, p.end, m.to_string()));
    match e {
        Expr::VectorSelector(mut vs) => {
            if vs.offset != 0 {
                return err(vs.pos, "offset may not be set multiple times");
            }
            vs.offset = d;
            Ok(Expr::VectorSelector(vs))
        }
        Expr::MatrixSelector { mut vs, range, pos } => {
            if vs.offset != 0 {
                return err(pos, "offset may not be set multiple times");
            }
            vs.offset = d;
            Ok(Expr::MatrixSelector { vs, range, pos })
        }
        Expr::Subquery { expr, range, step, offset, at, pos } => {
            if offset != 0 {
                return err(pos, "offset may not be set multiple times");
            }
            Ok(Expr::Subquery { expr, range, step, offset: d, at, pos })
        }
        other => Err(ParseError::new(
            other.pos().start,
            kw_start,
            "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery".to_string(),
        )),
    }
}

fn set_at(e: Expr, a: AtModifier, kw_start: usize) -> Result<Expr, ParseError> {
    let err = |p: PosRange| {
        Err(ParseError::new(
            p.start,
            p.end,
            "@ <timestamp> may not be set multiple times".to_string(),
        ))
    };
    match e {
        Expr::VectorSelector(mut vs) => {
            if vs.at.is_some() {
                return err(vs.pos);
            }
            vs.at = Some(a);
            Ok(Expr::VectorSelector(vs))
        }
        Expr::MatrixSelector { mut vs, range, pos } => {
            if vs.at.is_some() {
                return err(pos);
            }
            vs.at = Some(a);
            Ok(Expr::MatrixSelector { vs, range, pos })
        }
        Expr::Subquery { expr, range, step, offset, at, pos } => {
            if at.is_some() {
                return err(pos);
            }
            Ok(Expr::Subquery { expr, range, step, offset, at: Some(a), pos })
        }
        other => Err(ParseError::new(
            other.pos().start,
            kw_start,
            "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery".to_string(),
        )),
    }
}

fn make_binary(
    op: BinOp,
    lhs: Expr,
    rhs: Expr,
    return_bool: bool,
    matching: Option<VectorMatching>,
    pos: PosRange,
) -> Result<Expr, ParseError> {
    let err = |m: String| Err(ParseError::new(pos.start, pos.end, m));
    let lt = lhs.value_type();
    let rt = rhs.value_type();
    if return_bool && !op.is_comparison() {
        return err("bool modifier can only be used on comparisons".to_string());
    }
    if op.is_comparison() && !return_bool && lt == ValueType::Scalar && rt == ValueType::Scalar {
        return err("comparisons between scalars must use BOOL modifier".to_string());
    }
    for t in [lt, rt] {
        if t != ValueType::Scalar && t != ValueType::Vector {
            return err(
                "binary expression must contain only scalar and instant vector types".to_string(),
            );
        }
    }
    let both_vec = lt == ValueType::Vector && rt == ValueType::Vector;
    if matching
        .as_ref()
        .is_some_and(|m| m.on || !m.labels.is_empty() || m.card != Card::OneToOne)
        && !both_vec
    {
        return err("vector matching only allowed between instant vectors".to_string());
    }
    if op.is_set() && !both_vec {
        return err(format!(
            "set operator \"{}\" not allowed in binary scalar expression",
            op.as_str()
        ));
    }
    let mut matching = matching;
    if both_vec {
        let m = matching.get_or_insert(VectorMatching {
            card: Card::OneToOne,
            on: false,
            labels: vec![],
            include: vec![],
        });
        if op.is_set() {
            m.card = Card::ManyToMany;
        }
        if m.on {
            for l in &m.include {
                if m.labels.contains(l) {
                    return err(format!(
                        "label \"{l}\" must not occur in ON and GROUP clause at once"
                    ));
                }
            }
        }
    } else {
        matching = None;
    }
    Ok(Expr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool,
        matching,
        pos,
    })
}

fn check_call(func: &Function, args: &[Expr], pos: PosRange) -> Result<(), ParseError> {
    let n = func.arg_types.len();
    let err = |m: String| Err(ParseError::new(pos.start, pos.end, m));
    if func.variadic == 0 {
        if args.len() != n {
            return err(format!(
                "expected {n} argument(s) in call to \"{}\", got {}",
                func.name,
                args.len()
            ));
        }
    } else if func.variadic > 0 {
        let min = n - func.variadic as usize;
        if args.len() < min {
            return err(format!(
                "expected at least {min} argument(s) in call to \"{}\", got {}",
                func.name,
                args.len()
            ));
        }
        if args.len() > n {
            return err(format!(
                "expected at most {n} argument(s) in call to \"{}\", got {}",
                func.name,
                args.len()
            ));
        }
    } else if args.len() + 1 < n {
        return err(format!(
            "expected at least {} argument(s) in call to \"{}\", got {}",
            n - 1,
            func.name,
            args.len()
        ));
    }
    for (i, a) in args.iter().enumerate() {
        let want = if i < n {
            func.arg_types[i]
        } else {
            func.arg_types[n - 1]
        };
        let got = a.value_type();
        if got != want {
            return Err(ParseError::new(
                a.pos().start,
                a.pos().end,
                format!(
                    "expected type {} in call to function \"{}\", got {}",
                    vt_name(want),
                    func.name,
                    vt_name(got)
                ),
            ));
        }
    }
    if func.name == "label_replace" || func.name == "label_join" {
        // dst label validity is checked at evaluation time (as Prometheus).
    }
    Ok(())
}

/// Whole-tree checks after parsing.
fn check_ast(e: &Expr) -> Result<(), ParseError> {
    let _ = e;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).to_string()
    }

    #[test]
    fn precedence_and_printing() {
        assert_eq!(rt("1 + 2 * 3"), "1 + 2 * 3");
        assert_eq!(rt("-2 ^ 2"), "-2 ^ 2");
        assert!(
            matches!(parse("2 ^ 3 ^ 2").unwrap(), Expr::Binary { op: BinOp::Pow, ref rhs, .. } if matches!(**rhs, Expr::Binary{..}))
        );
        assert!(
            matches!(parse("1 - 2 - 3").unwrap(), Expr::Binary { op: BinOp::Sub, ref lhs, .. } if matches!(**lhs, Expr::Binary{..}))
        );
        assert_eq!(
            rt("sum by (a) (rate(x{b=\"c\"}[5m]))"),
            "sum by (a) (rate(x{b=\"c\"}[5m]))"
        );
        assert_eq!(rt("sum(x) without (a)"), "sum without (a) (x)");
        assert_eq!(rt("topk(3, x)"), "topk(3, x)");
        assert_eq!(
            rt("a + on(b) group_left(c) d"),
            "a + on (b) group_left (c) d"
        );
        assert_eq!(rt("a > bool 1"), "a > bool 1");
        assert_eq!(rt("x offset -5m @ 100"), "x @ 100.000 offset -5m");
        assert_eq!(rt("rate(x[5m:1m])"), "rate(x[5m:1m])");
        assert_eq!(rt("x[1h30m:]"), "x[1h30m:]");
        assert_eq!(
            rt("{\"metric.name\", \"label.x\"=\"v\"}"),
            "{\"metric.name\",\"label.x\"=\"v\"}"
        );
        assert_eq!(rt("x @ start()"), "x @ start()");
        assert_eq!(rt("rate(x[5m + 30s])"), "rate(x[5m30s])");
        assert_eq!(rt("x[2 * 1h:(10m)]"), "x[2h:10m]");
        assert_eq!(rt("offset{step=\"1s\"}[5m]"), "offset{step=\"1s\"}[5m]");
    }

    #[test]
    fn prometheus_printer_cases() {
        for (i, o) in [
            (
                "sum by() (task:errors:rate10s{job=\"s\"})",
                "sum(task:errors:rate10s{job=\"s\"})",
            ),
            (
                "sum by(code) (task:errors:rate10s{job=\"s\"})",
                "sum by (code) (task:errors:rate10s{job=\"s\"})",
            ),
            (
                "sum without() (task:errors:rate10s{job=\"s\"})",
                "sum without () (task:errors:rate10s{job=\"s\"})",
            ),
            ("topk(5, task:errors:rate10s{job=\"s\"})", ""),
            (
                "count_values(\"value\", task:errors:rate10s{job=\"s\"})",
                "",
            ),
            ("a - on() c", "a - on () c"),
            (
                "a - on(b) group_left(x, y) c",
                "a - on (b) group_left (x, y) c",
            ),
            ("a - on(b) group_left c", "a - on (b) group_left () c"),
            ("a - on(b) group_left() (c)", "a - on (b) group_left () (c)"),
            ("a - ignoring(b) c", "a - ignoring (b) c"),
            ("a - ignoring() c", "a - c"),
            ("up > bool 0", ""),
            ("a offset -7m", ""),
            ("a{c=\"d\"}[5m] offset 1m", ""),
            ("a[1h:5m] offset 1m", ""),
            ("{__name__=\"a\"}", ""),
            ("a{b!~\"c\"}[1m]", ""),
            ("a @ 10", "a @ 10.000"),
            ("a[1m] @ 10", "a[1m] @ 10.000"),
            ("a[1m] @ end()", ""),
            ("a{x=\"1\",y=\"2\"}", ""),
            ("a @ -1.5", "a @ -1.500"),
        ] {
            let want = if o.is_empty() { i } else { o };
            assert_eq!(rt(i), want, "{i}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse("sum(").unwrap_err().to_string(),
            "1:5: parse error: unclosed left parenthesis"
        );
        assert_eq!(
            parse("sum(rate(foo[5m])").unwrap_err().to_string(),
            "1:18: parse error: unclosed left parenthesis"
        );
        let e = parse("sum(x").unwrap_err();
        assert_eq!(e.to_string(), "1:6: parse error: unclosed left parenthesis");
        for (q, want) in [
            (
                "up{",
                "1:4: parse error: unexpected end of input inside braces",
            ),
            (
                "up{a=",
                "1:6: parse error: unexpected end of input inside braces",
            ),
            ("1 +", "1:4: parse error: unexpected end of input"),
            ("x and", "1:6: parse error: unexpected end of input"),
            ("rate(x[5m]", "1:11: parse error: unclosed left parenthesis"),
            ("sum by (a", "1:10: parse error: unclosed left parenthesis"),
        ] {
            assert_eq!(parse(q).unwrap_err().to_string(), want, "{q}");
        }
        assert!(parse("1 > 2").is_err());
        assert!(parse("rate(x)").is_err());
        assert!(parse("{}").is_err());
        assert!(parse("foo(x)").is_err());
        assert!(parse("x[5m] offset 1m offset 2m").is_err());
        let deep = "(".repeat(10000) + "1" + &")".repeat(10000);
        assert!(parse(&deep).is_err());
        let chain = vec!["x"; 100_000].join(" + ");
        assert!(parse(&chain).is_err());
        let neg = "-".repeat(100_000) + "x";
        assert!(parse(&neg).is_err());
        assert!(parse(&vec!["x"; 50].join(" + ")).is_ok());
    }
}
