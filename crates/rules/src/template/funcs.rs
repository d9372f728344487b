//! Prometheus's template functions and the values they pass around.

use std::collections::BTreeMap;
use std::sync::Arc;

use koban_template::{query_escape, FuncError, Funcs, HostValue, Value};

use super::numbers::{self, float_to_ms, go_duration, go_time};
use super::QUERY;

fn err<T>(msg: impl Into<String>) -> Result<T, FuncError> {
    Err(msg.into().into())
}

/// The data a rule template executes over (Prometheus's `tmplData`).
#[derive(Debug)]
pub(crate) struct Data {
    pub labels: Value,
    pub external_labels: Value,
    pub external_url: String,
    pub value: f64,
}

impl HostValue for Data {
    fn type_name(&self) -> &str {
        "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }"
    }
    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Labels" => self.labels.clone(),
            "ExternalLabels" => self.external_labels.clone(),
            "ExternalURL" => Value::String(self.external_url.clone()),
            "Value" => Value::Float(self.value),
            _ => return None,
        })
    }
    fn display(&self) -> String {
        format!(
            "{{{} {} {} {}}}",
            koban_template::display(&self.labels),
            koban_template::display(&self.external_labels),
            self.external_url,
            koban_template::display(&Value::Float(self.value))
        )
    }
}

/// One element of a `query` result (Prometheus's `*sample`).
#[derive(Debug)]
pub(crate) struct Sample {
    /// A `map[string]string`.
    pub labels: Value,
    pub value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> String {
        match &self.labels {
            Value::StrMap(m) => m.get(name).cloned().unwrap_or_default(),
            _ => String::new(),
        }
    }
}

impl HostValue for Sample {
    fn type_name(&self) -> &str {
        "*template.sample"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Labels" => Some(self.labels.clone()),
            "Value" => Some(Value::Float(self.value)),
            _ => None,
        }
    }
    fn display(&self) -> String {
        format!(
            "&{{{} {}}}",
            koban_template::display(&self.labels),
            koban_template::display(&Value::Float(self.value))
        )
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// A Go `*time.Time` (UTC), from `toTime`.
#[derive(Debug)]
struct Time(i64);

impl HostValue for Time {
    fn type_name(&self) -> &str {
        "*time.Time"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Unix" => Some(Value::Int(self.0.div_euclid(1000))),
            "UnixMilli" => Some(Value::Int(self.0)),
            "String" => Some(Value::String(go_time(self.0))),
            _ => None,
        }
    }
    fn display(&self) -> String {
        go_time(self.0)
    }
}

/// A Go `*time.Duration`, from `toDuration`.
#[derive(Debug)]
struct Duration(i64);

impl HostValue for Duration {
    fn type_name(&self) -> &str {
        "*time.Duration"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Seconds" => Some(Value::Float(self.0 as f64 / 1e9)),
            "Milliseconds" => Some(Value::Int(self.0 / 1_000_000)),
            "String" => Some(Value::String(go_duration(self.0))),
            _ => None,
        }
    }
    fn display(&self) -> String {
        go_duration(self.0)
    }
}

/// Prometheus's `convertToFloat`: numbers, and strings as Go's
/// `strconv.ParseFloat` reads them.
fn to_float(v: &Value) -> Result<f64, FuncError> {
    match v.plain() {
        Value::Float(f) => Ok(f),
        Value::Int(i) => Ok(i as f64),
        Value::String(s) => parse_float(&s),
        v => err(format!("can't convert {} to float", v.type_name())),
    }
}

fn parse_float(s: &str) -> Result<f64, FuncError> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-'));
    match s.parse::<f64>() {
        Ok(f) if ok => Ok(f),
        _ => err(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")),
    }
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() != n {
        return err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn string(v: &Value) -> Result<String, FuncError> {
    match v.plain() {
        Value::String(s) => Ok(s),
        v => err(format!(
            "wrong type for value; expected string; got {}",
            v.type_name()
        )),
    }
}

fn sample(v: &Value) -> Result<&Sample, FuncError> {
    match v {
        Value::Host(h) => match h.as_any().and_then(|a| a.downcast_ref::<Sample>()) {
            Some(s) => Ok(s),
            None => err(format!(
                "wrong type for value; expected *template.sample; got {}",
                h.type_name()
            )),
        },
        v => err(format!(
            "wrong type for value; expected *template.sample; got {}",
            v.type_name()
        )),
    }
}

fn samples(v: &Value) -> Result<Arc<Vec<Value>>, FuncError> {
    match v.plain() {
        Value::List(l) => Ok(l),
        Value::Nil => Ok(Arc::new(Vec::new())),
        v => err(format!(
            "wrong type for value; expected template.queryResult; got {}",
            v.type_name()
        )),
    }
}

fn num_fn(
    f: &mut Funcs,
    name: &'static str,
    g: impl Fn(f64) -> Result<String, FuncError> + Send + Sync + 'static,
) {
    f.insert(name, move |a: &[Value]| {
        want(name, a, 1)?;
        Ok(Value::String(g(to_float(&a[0])?)?))
    });
}

fn str_fn(f: &mut Funcs, name: &'static str, g: impl Fn(&str) -> String + Send + Sync + 'static) {
    f.insert(name, move |a: &[Value]| {
        want(name, a, 1)?;
        Ok(Value::String(g(&string(&a[0])?)))
    });
}

/// Go's `strings.Title`: the first letter of each word upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// Go's `net.SplitHostPort`, enough for Prometheus's `stripPort`.
fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((&rest[..end], port));
    }
    let i = hp.rfind(':')?;
    let host = &hp[..i];
    if host.contains(':') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

fn external_url() -> String {
    QUERY.with(|c| {
        c.borrow()
            .as_ref()
            .map(|c| c.external_url.clone())
            .unwrap_or_default()
    })
}

/// The path of a URL (`http://h:9090/prom/` -> `/prom/`).
fn url_path(u: &str) -> &str {
    let rest = match u.find("://") {
        Some(i) => &u[i + 3..],
        None => return u,
    };
    let rest = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "",
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

fn run_query(q: &str) -> Result<Value, FuncError> {
    let ctx = QUERY.with(|c| {
        c.borrow()
            .as_ref()
            .map(|c| (c.engine.clone(), c.queryable.clone(), c.ts_ms))
    });
    let Some((engine, queryable, ts)) = ctx else {
        return err("query is not available here");
    };
    let r = engine
        .instant(&*queryable, q, ts)
        .map_err(|e| e.to_string())?;
    let v: Vec<Value> = match r.value {
        koban_promql::Value::Vector(v) => v
            .into_iter()
            .map(|s| {
                let m: BTreeMap<String, String> = s
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                Value::Host(Arc::new(Sample {
                    labels: Value::StrMap(Arc::new(m)),
                    value: s.v,
                }))
            })
            .collect(),
        koban_promql::Value::Scalar { v, .. } => vec![Value::Host(Arc::new(Sample {
            labels: Value::StrMap(Arc::new(BTreeMap::new())),
            value: v,
        }))],
        _ => return err("rule result is not a vector or scalar"),
    };
    Ok(Value::List(Arc::new(v)))
}

/// Prometheus's function table.
pub(crate) fn prometheus() -> Funcs {
    let mut f = Funcs::new();
    num_fn(&mut f, "humanize", |v| Ok(numbers::humanize(v)));
    num_fn(&mut f, "humanize1024", |v| Ok(numbers::humanize1024(v)));
    num_fn(&mut f, "humanizeDuration", |v| {
        Ok(numbers::humanize_duration(v))
    });
    num_fn(&mut f, "humanizePercentage", |v| {
        Ok(numbers::humanize_percentage(v))
    });
    num_fn(&mut f, "humanizeTimestamp", |v| match float_to_ms(v)? {
        None => Ok(numbers::g4(v)),
        Some(ms) => Ok(go_time(ms)),
    });
    str_fn(&mut f, "toUpper", str::to_uppercase);
    str_fn(&mut f, "toLower", str::to_lowercase);
    str_fn(&mut f, "title", title);
    str_fn(&mut f, "safeHtml", str::to_string);
    str_fn(&mut f, "graphLink", |e| {
        format!("/graph?g0.expr={}&g0.tab=0", query_escape(e))
    });
    str_fn(&mut f, "tableLink", |e| {
        format!("/graph?g0.expr={}&g0.tab=1", query_escape(e))
    });
    str_fn(&mut f, "stripPort", |hp| match split_host_port(hp) {
        Some((h, _)) => h.to_string(),
        None => hp.to_string(),
    });
    str_fn(&mut f, "stripDomain", |hp| {
        if hp.is_empty() {
            return String::new();
        }
        let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
        if host.parse::<std::net::IpAddr>().is_ok() {
            return hp.to_string();
        }
        let host = host.split('.').next().unwrap_or("");
        if port.is_empty() {
            host.to_string()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    });
    f.insert("reReplaceAll", |a: &[Value]| {
        want("reReplaceAll", a, 3)?;
        let (p, r, t) = (string(&a[0])?, string(&a[1])?, string(&a[2])?);
        let re = regex::Regex::new(&p).map_err(|e| e.to_string())?;
        Ok(Value::String(re.replace_all(&t, r.as_str()).into_owned()))
    });
    f.insert("match", |a: &[Value]| {
        want("match", a, 2)?;
        let (p, s) = (string(&a[0])?, string(&a[1])?);
        let re = regex::Regex::new(&p).map_err(|e| e.to_string())?;
        Ok(Value::Bool(re.is_match(&s)))
    });
    f.insert("args", |a: &[Value]| {
        Ok(Value::map(
            a.iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v.clone())),
        ))
    });
    f.insert("parseDuration", |a: &[Value]| {
        want("parseDuration", a, 1)?;
        let s = string(&a[0])?;
        let d = koban_config::parse_duration(&s).map_err(|e| e.to_string())?;
        Ok(Value::Float(std::time::Duration::from(d).as_secs_f64()))
    });
    f.insert("toTime", |a: &[Value]| {
        want("toTime", a, 1)?;
        let v = to_float(&a[0])?;
        match float_to_ms(v)? {
            None => err("value is NaN or Inf"),
            Some(ms) => Ok(Value::Host(Arc::new(Time(ms)))),
        }
    });
    f.insert("toDuration", |a: &[Value]| {
        want("toDuration", a, 1)?;
        let v = to_float(&a[0])?;
        if v.is_nan() || v.is_infinite() {
            return err("value is NaN or Inf");
        }
        Ok(Value::Host(Arc::new(Duration((v * 1e9) as i64))))
    });
    f.insert("externalURL", |a: &[Value]| {
        want("externalURL", a, 0)?;
        Ok(Value::String(external_url()))
    });
    f.insert("pathPrefix", |a: &[Value]| {
        want("pathPrefix", a, 0)?;
        Ok(Value::String(url_path(&external_url()).to_string()))
    });
    f.insert("query", |a: &[Value]| {
        want("query", a, 1)?;
        run_query(&string(&a[0])?)
    });
    f.insert("first", |a: &[Value]| {
        want("first", a, 1)?;
        let l = samples(&a[0])?;
        match l.first() {
            Some(v) => Ok(v.clone()),
            None => err("first() called on vector with no elements"),
        }
    });
    f.insert("label", |a: &[Value]| {
        want("label", a, 2)?;
        let name = string(&a[0])?;
        Ok(Value::String(sample(&a[1])?.label(&name)))
    });
    f.insert("value", |a: &[Value]| {
        want("value", a, 1)?;
        Ok(Value::Float(sample(&a[0])?.value))
    });
    f.insert("strvalue", |a: &[Value]| {
        want("strvalue", a, 1)?;
        Ok(Value::String(sample(&a[0])?.label("__value__")))
    });
    f.insert("sortByLabel", |a: &[Value]| {
        want("sortByLabel", a, 2)?;
        let name = string(&a[0])?;
        let mut l: Vec<Value> = samples(&a[1])?.to_vec();
        let mut keyed = Vec::with_capacity(l.len());
        for v in l.drain(..) {
            let k = sample(&v)?.label(&name);
            keyed.push((k, v));
        }
        keyed.sort_by(|x, y| x.0.cmp(&y.0));
        Ok(Value::List(Arc::new(
            keyed.into_iter().map(|(_, v)| v).collect(),
        )))
    });
    f
}
