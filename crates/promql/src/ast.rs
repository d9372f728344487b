//! PromQL syntax tree and its canonical printing (as `/api/v1/format_query`).

use koban_model::{MatchType, Matcher};
use std::fmt;

/// Byte range of a node in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PosRange {
    pub start: usize,
    pub end: usize,
}

/// The four PromQL value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        })
    }
}

/// `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AtModifier {
    /// Fixed timestamp in ms.
    Timestamp(i64),
    Start,
    End,
}

/// An instant vector selector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSelector {
    /// Metric name if given outside the braces or as a bare quoted string inside.
    pub name: Option<String>,
    /// All matchers, including the `__name__` one for `name`.
    pub matchers: Vec<Matcher>,
    /// Offset in ms (positive looks back).
    pub offset: i64,
    pub at: Option<AtModifier>,
    pub pos: PosRange,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte
        )
    }
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
    /// Precedence, higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eql | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Atan2 => 5,
            BinOp::Pow => 6,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eql => "==",
            BinOp::Neq => "!=",
            BinOp::Gtr => ">",
            BinOp::Lss => "<",
            BinOp::Gte => ">=",
            BinOp::Lte => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }
}

/// Vector matching cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// `on`/`ignoring` and `group_x` modifiers of a binary expression.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    pub card: Card,
    /// True for `on(...)`, false for `ignoring(...)` (or nothing).
    pub on: bool,
    pub labels: Vec<String>,
    /// Extra labels of `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
    Limitk,
    LimitRatio,
}

impl AggOp {
    pub fn from_name(s: &str) -> Option<AggOp> {
        Some(match s.to_ascii_lowercase().as_str() {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "count" => AggOp::Count,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "group" => AggOp::Group,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            "quantile" => AggOp::Quantile,
            "count_values" => AggOp::CountValues,
            "limitk" => AggOp::Limitk,
            "limit_ratio" => AggOp::LimitRatio,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::Quantile => "quantile",
            AggOp::CountValues => "count_values",
            AggOp::Limitk => "limitk",
            AggOp::LimitRatio => "limit_ratio",
        }
    }
    /// The parameter type, for parameterised aggregations.
    pub fn param_type(self) -> Option<ValueType> {
        match self {
            AggOp::Topk | AggOp::Bottomk | AggOp::Quantile | AggOp::Limitk | AggOp::LimitRatio => {
                Some(ValueType::Scalar)
            }
            AggOp::CountValues => Some(ValueType::String),
            _ => None,
        }
    }
}

/// Definition of a built-in function.
#[derive(Debug, PartialEq)]
pub struct Function {
    pub name: &'static str,
    pub arg_types: &'static [ValueType],
    /// 0: fixed arity; n > 0: up to n optional trailing args; -1: unlimited.
    pub variadic: i32,
    pub ret: ValueType,
}

/// A PromQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number {
        val: f64,
        pos: PosRange,
    },
    String {
        val: String,
        pos: PosRange,
    },
    VectorSelector(VectorSelector),
    MatrixSelector {
        vs: VectorSelector,
        range: i64,
        pos: PosRange,
    },
    Subquery {
        expr: Box<Expr>,
        range: i64,
        step: i64,
        offset: i64,
        at: Option<AtModifier>,
        pos: PosRange,
    },
    Paren {
        expr: Box<Expr>,
        pos: PosRange,
    },
    Unary {
        neg: bool,
        expr: Box<Expr>,
        pos: PosRange,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        return_bool: bool,
        matching: Option<VectorMatching>,
        pos: PosRange,
    },
    Call {
        func: &'static Function,
        args: Vec<Expr>,
        pos: PosRange,
    },
    Aggregate {
        op: AggOp,
        expr: Box<Expr>,
        param: Option<Box<Expr>>,
        grouping: Vec<String>,
        without: bool,
        /// `by`/`without` was written (even with an empty list).
        has_grouping: bool,
        pos: PosRange,
    },
}

impl Expr {
    pub fn pos(&self) -> PosRange {
        match self {
            Expr::Number { pos, .. }
            | Expr::String { pos, .. }
            | Expr::MatrixSelector { pos, .. }
            | Expr::Subquery { pos, .. }
            | Expr::Paren { pos, .. }
            | Expr::Unary { pos, .. }
            | Expr::Binary { pos, .. }
            | Expr::Call { pos, .. }
            | Expr::Aggregate { pos, .. } => *pos,
            Expr::VectorSelector(vs) => vs.pos,
        }
    }

    /// The type this expression evaluates to.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number { .. } => ValueType::Scalar,
            Expr::String { .. } => ValueType::String,
            Expr::VectorSelector(_) => ValueType::Vector,
            Expr::MatrixSelector { .. } | Expr::Subquery { .. } => ValueType::Matrix,
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => expr.value_type(),
            Expr::Binary { lhs, rhs, .. } => {
                if lhs.value_type() == ValueType::Scalar && rhs.value_type() == ValueType::Scalar {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Call { func, .. } => func.ret,
            Expr::Aggregate { .. } => ValueType::Vector,
        }
    }
}

/// Formats a duration in ms as Prometheus does (`1h30m`, `5m`, `0s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut s = String::new();
    let mut rest = ms;
    if rest < 0 {
        s.push('-');
        rest = -rest;
    }
    for (unit, len) in [
        ("y", 365 * 86_400_000i64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if rest >= len {
            s.push_str(&(rest / len).to_string());
            s.push_str(unit);
            rest %= len;
        }
    }
    s
}

/// Go `strconv.Quote`-like quoting for strings.
pub fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Formats a float the way Go's `strconv.FormatFloat(v, 'f', -1, 64)` does,
/// with Prometheus's `+Inf`/`-Inf`/`NaN`.
pub fn format_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn fmt_label_name(n: &str) -> String {
    if koban_model::labels::is_valid_label_name(n) {
        n.to_string()
    } else {
        quote(n)
    }
}

fn fmt_label_list(l: &[String]) -> String {
    l.iter()
        .map(|s| fmt_label_name(s))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_at_offset(f: &mut fmt::Formatter<'_>, at: &Option<AtModifier>, offset: i64) -> fmt::Result {
    match at {
        Some(AtModifier::Timestamp(t)) => write!(f, " @ {:.3}", *t as f64 / 1000.0)?,
        Some(AtModifier::Start) => f.write_str(" @ start()")?,
        Some(AtModifier::End) => f.write_str(" @ end()")?,
        None => {}
    }
    if offset > 0 {
        write!(f, " offset {}", format_duration(offset))?;
    } else if offset < 0 {
        write!(f, " offset -{}", format_duration(-offset))?;
    }
    Ok(())
}

impl VectorSelector {
    fn fmt_base(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms: Vec<String> = Vec::new();
        let mut name_written = false;
        let mut out = String::new();
        if let Some(n) = &self.name {
            if koban_model::labels::is_valid_metric_name(n) {
                out.push_str(n);
                name_written = true;
            } else {
                ms.push(quote(n));
                name_written = true;
            }
        }
        for m in &self.matchers {
            if name_written
                && m.name == koban_model::METRIC_NAME
                && m.kind == MatchType::Equal
                && Some(&m.value) == self.name.as_ref()
            {
                continue;
            }
            ms.push(format!(
                "{}{}{}",
                fmt_label_name(&m.name),
                m.kind,
                quote(&m.value)
            ));
        }
        f.write_str(&out)?;
        if !ms.is_empty() || out.is_empty() {
            write!(f, "{{{}}}", ms.join(","))?;
        }
        Ok(())
    }
}

impl fmt::Display for VectorSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_base(f)?;
        fmt_at_offset(f, &self.at, self.offset)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number { val, .. } => f.write_str(&format_number(*val)),
            Expr::String { val, .. } => f.write_str(&quote(val)),
            Expr::VectorSelector(vs) => write!(f, "{vs}"),
            Expr::MatrixSelector { vs, range, .. } => {
                vs.fmt_base(f)?;
                write!(f, "[{}]", format_duration(*range))?;
                fmt_at_offset(f, &vs.at, vs.offset)
            }
            Expr::Subquery {
                expr,
                range,
                step,
                offset,
                at,
                ..
            } => {
                write!(f, "{expr}[{}:", format_duration(*range))?;
                if *step != 0 {
                    f.write_str(&format_duration(*step))?;
                }
                f.write_str("]")?;
                fmt_at_offset(f, at, *offset)
            }
            Expr::Paren { expr, .. } => write!(f, "({expr})"),
            Expr::Unary { neg, expr, .. } => write!(f, "{}{expr}", if *neg { "-" } else { "+" }),
            Expr::Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
                ..
            } => {
                write!(f, "{lhs} {}", op.as_str())?;
                if *return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(vm) = matching {
                    if !vm.labels.is_empty() || vm.on {
                        write!(
                            f,
                            " {} ({})",
                            if vm.on { "on" } else { "ignoring" },
                            fmt_label_list(&vm.labels)
                        )?;
                        match vm.card {
                            Card::ManyToOne => {
                                write!(f, " group_left ({})", fmt_label_list(&vm.include))?
                            }
                            Card::OneToMany => {
                                write!(f, " group_right ({})", fmt_label_list(&vm.include))?
                            }
                            _ => {}
                        }
                    }
                }
                write!(f, " {rhs}")
            }
            Expr::Call { func, args, .. } => {
                write!(f, "{}(", func.name)?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Expr::Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
                has_grouping: _,
                ..
            } => {
                f.write_str(op.as_str())?;
                if *without {
                    write!(f, " without ({}) ", fmt_label_list(grouping))?;
                } else if !grouping.is_empty() {
                    write!(f, " by ({}) ", fmt_label_list(grouping))?;
                }
                f.write_str("(")?;
                if let Some(p) = param {
                    write!(f, "{p}, ")?;
                }
                write!(f, "{expr})")
            }
        }
    }
}
