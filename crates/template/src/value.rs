//! The value model templates execute over.
//!
//! Contract: values are cheap to clone (lists and maps are shared behind
//! `Arc`); maps iterate in sorted key order, as Go's `range` over a map does;
//! truthiness follows Go's `if`: false, 0, 0.0, "", nil and empty lists and
//! maps are false, everything else is true.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::funcs::{Func, FuncError};

/// A value the host application exposes with its own fields, for data that
/// is not worth converting into maps up front. Fields may be computed: they
/// stand in for Go's argument-less methods (Alertmanager's `.Alerts.Firing`,
/// `.Labels.SortedPairs`).
pub trait HostValue: fmt::Debug + Send + Sync {
    /// The type name errors use ("can't evaluate field X in type NAME").
    fn type_name(&self) -> &str;
    /// The value of field `name`, or `None` when the type has no such field.
    fn field(&self, name: &str) -> Option<Value>;
    /// The text printed for the value (`{{.}}`, `%v`, `%s`).
    fn display(&self) -> String;
    /// Truthiness for `if`, `with`, `and`, `or` and `not`; by default that
    /// of the plain form, or true without one.
    fn truthy(&self) -> bool {
        self.as_value().is_none_or(|v| v.truthy())
    }
    /// The plain value this one stands for (a list of alerts, a map of
    /// labels), if any: `range`, the builtins and printing then see it, as
    /// Go sees a slice type that has methods. `None` (the default) keeps the
    /// value opaque.
    fn as_value(&self) -> Option<Value> {
        None
    }
    /// Calls method `name` with arguments (`.Labels.Remove $names`;
    /// argument-less methods are fields), or `None` if there is none.
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let _ = (name, args);
        None
    }
    /// The concrete value, for host functions that downcast
    /// (`Some(self)` in implementations that want it).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// A template value.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's nil, and the result of a missing map key.
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Arc<Vec<Value>>),
    Map(Arc<BTreeMap<String, Value>>),
    /// Go's `map[string]string` (Prometheus's `$labels`, Alertmanager's
    /// `.Labels`): a missing key yields `""`, not nil.
    StrMap(Arc<BTreeMap<String, String>>),
    /// A function value, for the `call` builtin.
    Func(Func),
    Host(Arc<dyn HostValue>),
}

impl Value {
    /// Go's truthiness (see the module doc).
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
            Value::Func(_) => true,
            Value::Host(h) => h.truthy(),
        }
    }

    /// The value itself, or for a [`HostValue`] with a plain form
    /// ([`HostValue::as_value`]), that form.
    pub fn plain(&self) -> Value {
        match self {
            Value::Host(h) => h.as_value().unwrap_or_else(|| self.clone()),
            v => v.clone(),
        }
    }

    /// The Go type name used in error messages.
    pub fn type_name(&self) -> &str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::StrMap(_) => "map[string]string",
            Value::Func(_) => "func",
            Value::Host(h) => h.type_name(),
        }
    }

    /// Builds a map value from pairs.
    pub fn map<K: Into<String>, V: Into<Value>>(pairs: impl IntoIterator<Item = (K, V)>) -> Value {
        Value::Map(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// Builds a `map[string]string` value from pairs.
    pub fn str_map<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::StrMap(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// Builds a list value.
    pub fn list<V: Into<Value>>(items: impl IntoIterator<Item = V>) -> Value {
        Value::List(Arc::new(items.into_iter().map(Into::into).collect()))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::StrMap(a), Value::StrMap(b)) => a == b,
            (Value::Func(a), Value::Func(b)) => Arc::ptr_eq(a, b),
            (Value::Host(a), Value::Host(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Float(x) => write!(f, "Float({x})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::List(l) => f.debug_list().entries(l.iter()).finish(),
            Value::Map(m) => f.debug_map().entries(m.iter()).finish(),
            Value::StrMap(m) => f.debug_map().entries(m.iter()).finish(),
            Value::Func(_) => f.write_str("Func"),
            Value::Host(h) => write!(f, "Host({h:?})"),
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(Arc::new(v))
    }
}
impl From<BTreeMap<String, Value>> for Value {
    fn from(v: BTreeMap<String, Value>) -> Self {
        Value::Map(Arc::new(v))
    }
}

/// JSON numbers that fit an `i64` become `Int`, others `Float`; objects
/// become maps, arrays lists, null `Nil`.
impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::list(a),
            serde_json::Value::Object(o) => Value::map(o),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truthiness() {
        for v in [
            Value::Nil,
            false.into(),
            0.into(),
            0.0.into(),
            "".into(),
            Value::list(Vec::<Value>::new()),
        ] {
            assert!(!v.truthy(), "{v:?}");
        }
        for v in [
            true.into(),
            1.into(),
            0.5.into(),
            "x".into(),
            Value::list([1]),
        ] {
            assert!(v.truthy(), "{v:?}");
        }
    }

    #[test]
    fn from_json() {
        let v = Value::from(serde_json::json!({"a": [1, 2.5, null, "s"], "b": true}));
        assert_eq!(
            v,
            Value::map([
                (
                    "a",
                    Value::list([1.into(), 2.5.into(), Value::Nil, "s".into()])
                ),
                ("b", true.into())
            ])
        );
    }
}
