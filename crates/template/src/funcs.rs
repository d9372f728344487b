//! Functions: the registry hosts add to, and Go's builtins.
//!
//! Contract: a function receives its evaluated arguments and returns a
//! value or an error; the executor reports the error as
//! `error calling NAME: ...` at the call's position and keeps it as the
//! error's source. Functions registered in [`Funcs`] take precedence over
//! builtins of the same name, as in Go. `and` and `or` are evaluated by the
//! executor itself (they short-circuit) and are not in this table.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::fmt::{display, sprint, sprintf, sprintln};
use crate::value::Value;

/// The error a function returns.
pub type FuncError = Box<dyn std::error::Error + Send + Sync>;

/// A template function.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// Named functions a template may call, beyond the builtins.
#[derive(Clone, Default)]
pub struct Funcs {
    map: HashMap<String, Func>,
}

impl fmt::Debug for Funcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.map.keys().collect();
        names.sort();
        f.debug_struct("Funcs").field("names", &names).finish()
    }
}

impl Funcs {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) function `name`.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        f: impl Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.map.insert(name.into(), Arc::new(f));
        self
    }

    /// The function registered as `name`.
    pub fn get(&self, name: &str) -> Option<&Func> {
        self.map.get(name)
    }

    /// Adds every function of `other`, replacing same-named ones.
    pub fn extend(&mut self, other: &Funcs) {
        self.map
            .extend(other.map.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Names of Go's builtin functions.
pub(crate) const BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt",
    "le", "gt", "ge", "html", "js", "urlquery", "call",
];

/// A builtin's failure; the executor wraps it as `error calling NAME: ...`
/// (or reports it bare for argument-count errors, as Go does).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BuiltinError(pub String);

fn e<T>(msg: impl Into<String>) -> Result<T, FuncError> {
    Err(Box::new(BuiltinError(msg.into())))
}

/// Calls builtin `name` (not `and`/`or`); `None` if there is no such builtin.
pub(crate) fn call_builtin(name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
    let plain: Vec<Value>;
    let args = if name != "call" && args.iter().any(|a| matches!(a, Value::Host(_))) {
        plain = args.iter().map(Value::plain).collect();
        &plain[..]
    } else {
        args
    };
    Some(match name {
        "not" => want(name, args, 1).map(|_| Value::Bool(!args[0].truthy())),
        "len" => want(name, args, 1).and_then(|_| len(&args[0])),
        "index" => at_least(name, args, 1).and_then(|_| index(&args[0], &args[1..])),
        "slice" => at_least(name, args, 1).and_then(|_| slice(&args[0], &args[1..])),
        "print" => Ok(Value::String(sprint(args))),
        "println" => Ok(Value::String(sprintln(args))),
        "printf" => at_least(name, args, 1).and_then(|_| match &args[0] {
            Value::String(f) => Ok(Value::String(sprintf(f, &args[1..]))),
            v => e(format!(
                "wrong type for value; expected string; got {}",
                v.type_name()
            )),
        }),
        "eq" => at_least(name, args, 1).and_then(|_| eq(args)),
        "ne" => want(name, args, 2).and_then(|_| eq(args).map(|v| Value::Bool(!v.truthy()))),
        "lt" => want(name, args, 2).and_then(|_| less(&args[0], &args[1]).map(Value::Bool)),
        "le" => want(name, args, 2)
            .and_then(|_| Ok(Value::Bool(less(&args[0], &args[1])? || eq(args)?.truthy()))),
        "gt" => want(name, args, 2).and_then(|_| {
            Ok(Value::Bool(
                !less(&args[0], &args[1])? && !eq(args)?.truthy(),
            ))
        }),
        "ge" => want(name, args, 2).and_then(|_| less(&args[0], &args[1]).map(|l| Value::Bool(!l))),
        "html" => Ok(Value::String(html_escape(&eval_args(args)))),
        "js" => Ok(Value::String(js_escape(&eval_args(args)))),
        "urlquery" => Ok(Value::String(query_escape(&eval_args(args)))),
        "call" => at_least(name, args, 1).and_then(|_| match &args[0] {
            Value::Func(f) => f(&args[1..]),
            v => e(format!("non-function of type {}", v.type_name())),
        }),
        _ => return None,
    })
}

/// Go's argument-count errors are not wrapped in "error calling".
#[derive(Debug, thiserror::Error)]
#[error("wrong number of args for {name}: want {want} got {got}")]
pub(crate) struct ArgCount {
    pub name: String,
    pub want: String,
    pub got: usize,
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return Err(Box::new(ArgCount {
            name: name.into(),
            want: n.to_string(),
            got: args.len(),
        }));
    }
    Ok(())
}

fn at_least(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() < n {
        return Err(Box::new(ArgCount {
            name: name.into(),
            want: format!("at least {n}"),
            got: args.len(),
        }));
    }
    Ok(())
}

/// One string argument as is; otherwise `fmt.Sprint` of all of them.
fn eval_args(args: &[Value]) -> String {
    match args {
        [Value::String(s)] => s.clone(),
        _ => sprint(args),
    }
}

fn len(v: &Value) -> Result<Value, FuncError> {
    match v {
        Value::String(s) => Ok(Value::Int(s.len() as i64)),
        Value::List(l) => Ok(Value::Int(l.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.len() as i64)),
        Value::StrMap(m) => Ok(Value::Int(m.len() as i64)),
        v => e(format!("len of type {}", v.type_name())),
    }
}

fn int_index(v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => e("cannot index slice/array with nil"),
        v => e(format!(
            "cannot index slice/array with type {}",
            v.type_name()
        )),
    }
}

fn index(item: &Value, idx: &[Value]) -> Result<Value, FuncError> {
    let mut cur = item.clone();
    for i in idx {
        cur = match &cur {
            Value::List(l) => {
                let n = int_index(i)?;
                match usize::try_from(n).ok().and_then(|n| l.get(n)) {
                    Some(v) => v.clone(),
                    None => return e(format!("index out of range: {n}")),
                }
            }
            Value::String(s) => {
                let n = int_index(i)?;
                match usize::try_from(n).ok().and_then(|n| s.as_bytes().get(n)) {
                    Some(b) => Value::Int(i64::from(*b)),
                    None => return e(format!("index out of range: {n}")),
                }
            }
            Value::StrMap(m) => match i {
                Value::String(k) => Value::String(m.get(k).cloned().unwrap_or_default()),
                v => {
                    return e(format!(
                        "value has type {}; should be string",
                        v.type_name()
                    ))
                }
            },
            Value::Map(m) => match i {
                Value::String(k) => m.get(k).cloned().unwrap_or_default(),
                v => {
                    return e(format!(
                        "value has type {}; should be string",
                        v.type_name()
                    ))
                }
            },
            Value::Nil => return e("index of untyped nil"),
            v => return e(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(cur)
}

fn slice(item: &Value, idx: &[Value]) -> Result<Value, FuncError> {
    if idx.len() > 3 {
        return e(format!("too many slice indexes: {}", idx.len()));
    }
    let len = match item {
        Value::String(s) => {
            if idx.len() == 3 {
                return e("cannot 3-index slice a string");
            }
            s.len()
        }
        Value::List(l) => l.len(),
        Value::Nil => return e("slice of untyped nil"),
        v => return e(format!("can't slice item of type {}", v.type_name())),
    };
    let mut bounds = [0, len, len];
    for (k, i) in idx.iter().enumerate() {
        let n = int_index(i)?;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= len)
            .ok_or_else(|| {
                Box::new(BuiltinError(format!("index out of range: {n}"))) as FuncError
            })?;
        bounds[k] = n;
    }
    if bounds[0] > bounds[1] {
        return e(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        ));
    }
    if idx.len() == 3 && bounds[1] > bounds[2] {
        return e(format!(
            "invalid slice index: {} > {}",
            bounds[1], bounds[2]
        ));
    }
    match item {
        Value::String(s) => match s.get(bounds[0]..bounds[1]) {
            Some(sub) => Ok(Value::String(sub.to_string())),
            None => e("slice splits a UTF-8 character"),
        },
        Value::List(l) => Ok(Value::list(l[bounds[0]..bounds[1]].iter().cloned())),
        _ => e("unreachable"),
    }
}

/// Go's basic kinds for comparison.
#[derive(PartialEq)]
enum Kind {
    Bool,
    Int,
    Float,
    Str,
    Nil,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::Str,
        Value::Nil => Kind::Nil,
        _ => Kind::Other,
    }
}

/// `eq arg1 arg2 ...`: whether arg1 equals any of the others. Operands
/// must be of one basic kind (bool, int, float, string); comparing with
/// nil (a missing key, say) is false rather than an error.
fn eq(args: &[Value]) -> Result<Value, FuncError> {
    let a = &args[0];
    if args.len() < 2 {
        return Err(Box::new(ArgCount {
            name: "eq".into(),
            want: "at least 2".into(),
            got: args.len(),
        }));
    }
    if kind(a) == Kind::Other {
        return e("invalid type for comparison");
    }
    for b in &args[1..] {
        let (ka, kb) = (kind(a), kind(b));
        if kb == Kind::Other {
            return e("invalid type for comparison");
        }
        if ka == Kind::Nil || kb == Kind::Nil {
            if ka == kb {
                return Ok(Value::Bool(true));
            }
            continue;
        }
        if ka != kb {
            return e("incompatible types for comparison");
        }
        if a == b {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn less(a: &Value, b: &Value) -> Result<bool, FuncError> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::String(x), Value::String(y)) => Ok(x < y),
        _ if kind(a) == Kind::Other
            || kind(b) == Kind::Other
            || kind(a) == Kind::Bool
            || kind(a) == Kind::Nil
            || kind(b) == Kind::Nil =>
        {
            e("invalid type for comparison")
        }
        _ => e("incompatible types for comparison"),
    }
}

/// Go's `HTMLEscapeString`: `< > & ' "` and NUL.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `JSEscapeString`.
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || c.is_control() => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Exposed for the executor's action output.
pub(crate) fn print_value(v: &Value) -> String {
    match v {
        Value::Nil => "<no value>".into(),
        v => display(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<Value, String> {
        call_builtin(name, args).unwrap().map_err(|e| e.to_string())
    }

    #[test]
    fn builtins() {
        assert_eq!(call("len", &["héllo".into()]), Ok(Value::Int(6)));
        assert_eq!(
            call("index", &[Value::list([1, 2]), 1.into()]),
            Ok(Value::Int(2))
        );
        assert_eq!(
            call("index", &[Value::list([1, 2]), 5.into()]),
            Err("index out of range: 5".into())
        );
        assert_eq!(
            call("index", &[Value::map([("a", 1)]), "b".into()]),
            Ok(Value::Nil)
        );
        assert_eq!(
            call("slice", &["abcd".into(), 1.into(), 3.into()]),
            Ok("bc".into())
        );
        assert_eq!(
            call("slice", &[Value::list([1, 2, 3]), 2.into()]),
            Ok(Value::list([3]))
        );
        assert_eq!(
            call("slice", &["abcd".into(), 3.into(), 1.into()]),
            Err("invalid slice index: 3 > 1".into())
        );
        assert_eq!(call("eq", &[1.into(), 2.into(), 1.into()]), Ok(true.into()));
        assert_eq!(
            call("eq", &[1.into(), 1.0.into()]),
            Err("incompatible types for comparison".into())
        );
        assert_eq!(call("eq", &[Value::Nil, "x".into()]), Ok(false.into()));
        assert_eq!(call("ne", &["a".into(), "b".into()]), Ok(true.into()));
        assert_eq!(call("lt", &[1.into(), 2.into()]), Ok(true.into()));
        assert_eq!(call("le", &[2.into(), 2.into()]), Ok(true.into()));
        assert_eq!(call("gt", &["b".into(), "a".into()]), Ok(true.into()));
        assert_eq!(call("ge", &[1.5.into(), 2.5.into()]), Ok(false.into()));
        assert_eq!(
            call("lt", &[true.into(), false.into()]),
            Err("invalid type for comparison".into())
        );
        assert_eq!(call("not", &[0.into()]), Ok(true.into()));
        assert_eq!(
            call("len", &[1.into(), 2.into()]),
            Err("wrong number of args for len: want 1 got 2".into())
        );
        assert_eq!(
            call("html", &["<a href=\"x\">&'</a>".into()]),
            Ok("&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;".into())
        );
        assert_eq!(
            call("js", &["a'b\"<\n".into()]),
            Ok("a\\'b\\\"\\u003C\\u000A".into())
        );
        assert_eq!(
            call("urlquery", &["a b&c=d/é".into()]),
            Ok("a+b%26c%3Dd%2F%C3%A9".into())
        );
        assert_eq!(call("print", &[1.into(), 2.into()]), Ok("1 2".into()));
        assert_eq!(
            call("call", &[1.into()]),
            Err("non-function of type int".into())
        );
    }
}
