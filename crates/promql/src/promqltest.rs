//! Runner for Prometheus's PromQL test-script format (`load`, `clear`,
//! `eval instant|range`, `expect ...`). Cases needing native histograms are
//! counted as skipped.

use crate::engine::{Engine, EngineOpts, QueryError, Value};
use crate::functions::almost_equal;
use crate::lexer::parse_duration;
use crate::memstore::MemStore;
use koban_model::{Labels, STALE_NAN};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Outcome of one test file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReport {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// `file:line: reason` per failed case.
    pub failures: Vec<String>,
}

/// Runs several files, prints failures and a summary line; returns the exit code.
pub fn run_files_cli(paths: &[PathBuf]) -> i32 {
    let (mut p, mut f, mut s) = (0, 0, 0);
    for path in paths {
        let r = run_file(path);
        for x in &r.failures {
            println!("{x}");
        }
        println!(
            "{}: {} passed, {} failed, {} skipped",
            path.display(),
            r.passed,
            r.failed,
            r.skipped
        );
        p += r.passed;
        f += r.failed;
        s += r.skipped;
    }
    println!("{p} passed, {f} failed, {s} skipped");
    if f > 0 {
        1
    } else {
        0
    }
}

/// Runs one test file.
pub fn run_file(path: &Path) -> FileReport {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(s) => run_script(&name, &s),
        Err(e) => FileReport {
            failed: 1,
            failures: vec![format!("{name}:0: cannot read file: {e}")],
            ..Default::default()
        },
    }
}

/// Point value in a series spec: None for `_`.
type Pt = Option<f64>;

struct SeriesSpec {
    labels: Labels,
    vals: Vec<Pt>,
    histogram: bool,
}

fn parse_time(s: &str) -> Option<i64> {
    if let Some(d) = parse_duration(s) {
        return Some(d);
    }
    if let Some(rest) = s.strip_prefix('-') {
        return parse_time(rest).map(|v| -v);
    }
    s.parse::<f64>().ok().map(|v| (v * 1000.0).round() as i64)
}

fn parse_num(s: &str) -> Option<f64> {
    let l = s.to_ascii_lowercase();
    match l.as_str() {
        "inf" | "+inf" => return Some(f64::INFINITY),
        "-inf" => return Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        _ => {}
    }
    s.parse::<f64>().ok()
}

/// Expands one value token (`1`, `_`, `stale`, `1+2x3`, `_x3`, `1x3`).
fn expand(tok: &str, out: &mut Vec<Pt>) -> Result<(), String> {
    if tok == "_" {
        out.push(None);
        return Ok(());
    }
    if tok == "stale" {
        out.push(Some(STALE_NAN));
        return Ok(());
    }
    if let Some(n) = tok.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("bad value {tok:?}"))?;
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    if let Some(v) = parse_num(tok) {
        out.push(Some(v));
        return Ok(());
    }
    // a(+|-)bxN or axN
    let xi = tok.rfind('x').ok_or_else(|| format!("bad value {tok:?}"))?;
    let n: usize = tok[xi + 1..]
        .parse()
        .map_err(|_| format!("bad value {tok:?}"))?;
    let head = &tok[..xi];
    let b = head.as_bytes();
    let mut op = None;
    for i in 1..b.len() {
        if (b[i] == b'+' || b[i] == b'-') && !(b[i - 1] == b'e' || b[i - 1] == b'E') {
            op = Some(i);
        }
    }
    let (a, d) = match op {
        Some(i) => {
            let a = parse_num(&head[..i]).ok_or_else(|| format!("bad value {tok:?}"))?;
            let d = parse_num(&head[i + 1..]).ok_or_else(|| format!("bad value {tok:?}"))?;
            (a, if b[i] == b'-' { -d } else { d })
        }
        None => (
            parse_num(head).ok_or_else(|| format!("bad value {tok:?}"))?,
            0.0,
        ),
    };
    // Prometheus accumulates by repeated addition.
    let mut v = a;
    out.push(Some(v));
    for _ in 0..n {
        v += d;
        out.push(Some(v));
    }
    Ok(())
}

/// Splits `series values...` into the descriptor and the rest.
fn split_series(line: &str) -> (&str, &str) {
    let b = line.as_bytes();
    let mut i = 0;
    let mut in_q: Option<u8> = None;
    let mut depth = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = in_q {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                in_q = None;
            }
        } else if c == b'"' || c == b'\'' || c == b'`' {
            in_q = Some(c);
        } else if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth -= 1;
            if depth == 0 {
                return (&line[..=i], line[i + 1..].trim());
            }
        } else if c.is_ascii_whitespace() && depth == 0 {
            return (&line[..i], line[i..].trim());
        }
        i += 1;
    }
    (line, "")
}

fn parse_labels(desc: &str) -> Result<Labels, String> {
    let e = crate::parse(desc).map_err(|e| format!("bad series {desc:?}: {e}"))?;
    match e {
        crate::ast::Expr::VectorSelector(vs) => {
            let mut pairs = Vec::new();
            for m in vs.matchers {
                pairs.push((m.name, m.value));
            }
            Ok(Labels::from_pairs(pairs))
        }
        _ => Err(format!("bad series {desc:?}")),
    }
}

fn parse_series(line: &str) -> Result<SeriesSpec, String> {
    let (desc, rest) = split_series(line);
    let labels = if desc == "{}" {
        Labels::empty()
    } else {
        parse_labels(desc)?
    };
    let mut vals = Vec::new();
    let mut histogram = false;
    let mut rest = rest;
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            // Native histogram values are not supported: the series is
            // marked and the histogram points are left out (floats load).
            histogram = true;
            // One token: `{{...}}`, `{{...}}xN` or `{{...}}+{{...}}xN`.
            let mut end = rest.find("}}").map(|i| i + 2).unwrap_or(rest.len());
            if rest[end..].starts_with("+{{") || rest[end..].starts_with("-{{") {
                end = rest[end..]
                    .find("}}")
                    .map(|i| end + i + 2)
                    .unwrap_or(rest.len());
            }
            let after = &rest[end..];
            let tok_end = after.find(char::is_whitespace).unwrap_or(after.len());
            let n = after[..tok_end]
                .strip_prefix('x')
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0);
            for _ in 0..=n {
                vals.push(None);
            }
            rest = after[tok_end..].trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        expand(&rest[..end], &mut vals)?;
        rest = rest[end..].trim_start();
    }
    Ok(SeriesSpec {
        labels,
        vals,
        histogram,
    })
}

/// Parses one series line in Prometheus's `load` notation, `metric{l="v"}
/// 1+2x3 _ stale`, into its labels and one value per step (`None` for `_`,
/// [`STALE_NAN`] for `stale`). The expanding notation: `a+bxn` and `a-bxn`
/// give `a` then `n` more values stepping by `b`; `axn` gives `a` `n+1`
/// times; `_xn` gives `n` gaps.
///
/// Shared with promtool's rule unit tests (`input_series`), which take the
/// same notation. Native histogram values (`{{...}}`) are refused: Koban
/// stores float samples only.
pub fn parse_series_values(line: &str) -> Result<(Labels, Vec<Option<f64>>), String> {
    let s = parse_series(line.trim())?;
    if s.histogram {
        return Err(format!(
            "native histogram values are not supported by Koban yet: {line:?}"
        ));
    }
    Ok((s.labels, s.vals))
}

#[derive(Default)]
struct Expect {
    fail: Option<(Option<String>, bool)>, // (pattern, is_regex)
    fail_any: bool,
    warn: Vec<Option<(String, bool)>>,
    info: Vec<Option<(String, bool)>>,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
}

fn matches_pat(p: &Option<(String, bool)>, s: &str) -> bool {
    match p {
        None => true,
        Some((m, false)) => m == s,
        Some((m, true)) => regex::Regex::new(&format!("^(?:{m})$"))
            .map(|r| r.is_match(s))
            .unwrap_or(false),
    }
}

fn parse_expect(line: &str, ex: &mut Expect) -> Result<(), String> {
    let rest = line.trim_start_matches("expect").trim();
    let (kind, tail) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let pat = |tail: &str| -> Result<Option<(String, bool)>, String> {
        if tail.is_empty() {
            return Ok(None);
        }
        if let Some(m) = tail.strip_prefix("msg:") {
            return Ok(Some((unquote(m.trim()), false)));
        }
        if let Some(m) = tail.strip_prefix("regex:") {
            return Ok(Some((unquote(m.trim()), true)));
        }
        Err(format!("bad expect line {line:?}"))
    };
    match kind {
        "fail" => {
            ex.fail = Some(match pat(tail)? {
                Some((m, r)) => (Some(m), r),
                None => (None, false),
            });
            ex.fail_any = true;
        }
        "warn" => ex.warn.push(pat(tail)?),
        "info" => ex.info.push(pat(tail)?),
        "no_warn" => ex.no_warn = true,
        "no_info" => ex.no_info = true,
        "ordered" => ex.ordered = true,
        "string" => ex.string = Some(unquote(tail)),
        "range" => {
            // range vector from X to Y step Z
            let p: Vec<&str> = tail.split_whitespace().collect();
            if p.len() == 7 && p[0] == "vector" && p[1] == "from" && p[3] == "to" && p[5] == "step"
            {
                let f = parse_time(p[2]).ok_or("bad time")?;
                let t = parse_time(p[4]).ok_or("bad time")?;
                let s = parse_time(p[6]).ok_or("bad time")?;
                ex.range_vector = Some((f, t, s));
            } else {
                return Err(format!("bad expect line {line:?}"));
            }
        }
        _ => return Err(format!("bad expect line {line:?}")),
    }
    Ok(())
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('`') && s.ends_with('`')))
    {
        if s.starts_with('`') {
            return s[1..s.len() - 1].to_string();
        }
        if let Ok(crate::ast::Expr::String { val, .. }) = crate::parse(s) {
            return val;
        }
        return s[1..s.len() - 1].to_string();
    }
    s.to_string()
}

/// Runs a script given as text; `name` is used in failure messages.
pub fn run_script(name: &str, text: &str) -> FileReport {
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let store = MemStore::new();
    let engine = Engine::new(EngineOpts::default());
    let mut rep = FileReport::default();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        let lineno = i + 1;
        if line.is_empty() {
            i += 1;
            continue;
        }
        let mut block = Vec::new();
        let mut j = i + 1;
        while j < lines.len() && !lines[j].is_empty() {
            block.push(lines[j].clone());
            j += 1;
        }
        let fail = |rep: &mut FileReport, msg: String| {
            rep.failed += 1;
            rep.failures.push(format!("{name}:{lineno}: {msg}"));
        };
        if line == "clear" {
            store.clear();
            i += 1;
            continue;
        }
        if let Some(rest) = line.strip_prefix("load") {
            let (nhcb, rest) = match rest.strip_prefix("_with_nhcb") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let Some(interval) = parse_time(rest.trim()) else {
                fail(&mut rep, format!("bad load interval {rest:?}"));
                i = j;
                continue;
            };
            for (k, l) in block.iter().enumerate() {
                match parse_series(l) {
                    Ok(s) => {
                        if s.histogram {
                            store.mark_histogram(s.labels.clone());
                        }
                        let pts: Vec<(i64, f64)> = s
                            .vals
                            .iter()
                            .enumerate()
                            .filter_map(|(n, v)| v.map(|v| (n as i64 * interval, v)))
                            .collect();
                        store.add(s.labels.clone(), &pts);
                        if nhcb && s.labels.metric_name().ends_with("_bucket") {
                            let mut b = s.labels.builder();
                            b.del("le");
                            let base = s
                                .labels
                                .metric_name()
                                .trim_end_matches("_bucket")
                                .to_string();
                            b.set(koban_model::METRIC_NAME, &base);
                            store.mark_histogram(b.into_labels());
                        }
                    }
                    Err(e) => {
                        rep.failed += 1;
                        rep.failures.push(format!("{name}:{}: {e}", i + 2 + k));
                    }
                }
            }
            i = j;
            continue;
        }
        if line.starts_with("eval") {
            match run_eval(&engine, &store, line, &block) {
                Ok(Outcome::Pass) => rep.passed += 1,
                Ok(Outcome::Skip) => {
                    rep.skipped += 1;
                    if std::env::var_os("PROMQLTEST_SHOW_SKIPS").is_some() {
                        eprintln!("{name}:{lineno}: skipped");
                    }
                }
                Err(e) => fail(&mut rep, e),
            }
            i = j;
            continue;
        }
        fail(&mut rep, format!("unknown command {line:?}"));
        i = j;
    }
    rep
}

enum Outcome {
    Pass,
    Skip,
}

fn fmt_v(v: f64) -> String {
    crate::ast::format_number(v)
}

fn run_eval(
    engine: &Engine,
    store: &MemStore,
    line: &str,
    block: &[String],
) -> Result<Outcome, String> {
    let (cmd, rest) = line
        .split_once(char::is_whitespace)
        .ok_or("bad eval line")?;
    let mut ex = Expect::default();
    match cmd {
        "eval" => {}
        "eval_fail" => ex.fail_any = true,
        "eval_warn" => ex.warn.push(None),
        "eval_info" => ex.info.push(None),
        "eval_ordered" => ex.ordered = true,
        _ => return Err(format!("unknown command {cmd:?}")),
    }
    if cmd == "eval_fail" {
        ex.fail = Some((None, false));
    }
    let rest = rest.trim();
    let (instant, t0, t1, step, query) = if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, q) = r
            .trim()
            .split_once(char::is_whitespace)
            .ok_or("bad eval line")?;
        let t = parse_time(t).ok_or("bad time")?;
        (true, t, t, 0, q.trim())
    } else if let Some(r) = rest.strip_prefix("range from ") {
        let p: Vec<&str> = r.splitn(6, char::is_whitespace).collect();
        if p.len() < 6 || p[1] != "to" || p[3] != "step" {
            return Err("bad range eval line".into());
        }
        let (a, b, s) = (
            parse_time(p[0]).ok_or("bad time")?,
            parse_time(p[2]).ok_or("bad time")?,
            parse_time(p[4]).ok_or("bad time")?,
        );
        (false, a, b, s, p[5].trim())
    } else {
        return Err("bad eval line".into());
    };
    let mut expected: Vec<SeriesSpec> = Vec::new();
    let mut scalar_expected: Option<f64> = None;
    let mut skip = query.contains("{{");
    for l in block {
        if l.starts_with("expect ") || l == "expect" {
            parse_expect(l, &mut ex)?;
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_message") {
            ex.fail = Some((Some(m.trim().to_string()), false));
            ex.fail_any = true;
            continue;
        }
        if let Some(m) = l.strip_prefix("expected_fail_regexp") {
            ex.fail = Some((Some(m.trim().to_string()), true));
            ex.fail_any = true;
            continue;
        }
        if l.contains("{{") {
            skip = true;
            continue;
        }
        if let Some(v) = parse_num(l) {
            scalar_expected = Some(v);
            continue;
        }
        expected.push(parse_series(l)?);
    }
    if skip {
        return Ok(Outcome::Skip);
    }
    store.histogram_touched.store(false, Ordering::Relaxed);
    let res = if instant {
        engine.instant(store, query, t0)
    } else {
        engine.range(store, query, t0, t1, step)
    };
    let touched = store.histogram_touched.load(Ordering::Relaxed);
    // Native histograms are not stored: a case whose selectors touched a
    // histogram series passes only if the float-only result still matches;
    // otherwise it is skipped (not failed).
    let instant_ok_value =
        matches!(&res, Ok(r) if matches!(r.value, Value::Vector(_) | Value::Scalar { .. }));
    let r =
        check_result(res, &ex, &expected, scalar_expected, instant, t0, t1, step).and_then(|()| {
            // As Prometheus: an instant query must give the same result when run
            // as a range query, at the middle step of [t-1m, t+1m].
            let query_bound = ["step()", "range()", "start()", "end()"]
                .iter()
                .any(|f| query.contains(f));
            if instant && instant_ok_value && !ex.ordered && !query_bound {
                check_range_mode(engine, store, query, t0, &expected, scalar_expected)?;
                check_at_modifier(engine, store, query, t0, &ex, &expected, scalar_expected)
            } else {
                Ok(())
            }
        });
    match r {
        Ok(()) => Ok(Outcome::Pass),
        Err(_) if touched || store.histogram_touched.load(Ordering::Relaxed) => Ok(Outcome::Skip),
        Err(e) => Err(e),
    }
}

/// Sets `@ ts` on every selector and subquery not already under an `@`;
/// returns true if the expression uses an `@`-unsafe function.
fn set_at_everywhere(e: &mut crate::ast::Expr, ts: i64, under_at: bool) -> bool {
    use crate::ast::{AtModifier, Expr};
    match e {
        Expr::VectorSelector(vs) | Expr::MatrixSelector { vs, .. } => {
            if !under_at && vs.at.is_none() {
                vs.at = Some(AtModifier::Timestamp(ts));
            }
            false
        }
        Expr::Subquery { expr, at, .. } => {
            let under = under_at || at.is_some();
            if !under {
                *at = Some(AtModifier::Timestamp(ts));
            }
            set_at_everywhere(expr, ts, true)
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => {
            set_at_everywhere(expr, ts, under_at)
        }
        Expr::Binary { lhs, rhs, .. } => {
            let a = set_at_everywhere(lhs, ts, under_at);
            set_at_everywhere(rhs, ts, under_at) || a
        }
        Expr::Call { func, args, .. } => {
            let mut unsafe_fn = crate::engine::TIME_DEPENDENT.contains(&func.name);
            for a in args {
                unsafe_fn |= set_at_everywhere(a, ts, under_at);
            }
            unsafe_fn
        }
        Expr::Aggregate { expr, param, .. } => {
            let mut u = set_at_everywhere(expr, ts, under_at);
            if let Some(p) = param {
                u |= set_at_everywhere(p, ts, under_at);
            }
            u
        }
        Expr::Number { .. } | Expr::String { .. } => false,
    }
}

/// As Prometheus: re-runs an instant query with `@ t` on every selector
/// (printed and re-parsed) at other evaluation times; results must not change.
fn check_at_modifier(
    engine: &Engine,
    store: &MemStore,
    query: &str,
    t: i64,
    ex: &Expect,
    expected: &[SeriesSpec],
    scalar_expected: Option<f64>,
) -> Result<(), String> {
    let Ok(mut e) = crate::parse(query) else {
        return Ok(());
    };
    if set_at_everywhere(&mut e, t, false) {
        return Ok(());
    }
    let q2 = e.to_string();
    let times: Vec<i64> = if t == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * t, 0, t / 5, t, 10 * t]
    };
    for et in times {
        let r = engine
            .instant(store, &q2, et)
            .map_err(|e| format!("with @ modifier ({q2}) at {et}: {e}"))?;
        compare(&r.value, ex, expected, scalar_expected, true, et, et, 0)
            .map_err(|e| format!("with @ modifier ({q2}) at {et}: {e}"))?;
    }
    Ok(())
}

fn check_range_mode(
    engine: &Engine,
    store: &MemStore,
    query: &str,
    t: i64,
    expected: &[SeriesSpec],
    scalar_expected: Option<f64>,
) -> Result<(), String> {
    let r = engine
        .range(store, query, t - 60_000, t + 60_000, 60_000)
        .map_err(|e| format!("error running instant query in range mode: {e}"))?;
    let Value::Matrix(m) = r.value else {
        return Err("range mode did not return a matrix".into());
    };
    let mut vec = Vec::new();
    for s in m {
        if let Some(p) = s.points.iter().find(|p| p.0 == t) {
            vec.push(crate::engine::Sample {
                labels: s.labels,
                t,
                v: p.1,
            });
        }
    }
    let ex = Expect::default();
    let v = match scalar_expected {
        Some(_) if !vec.is_empty() => Value::Scalar { t, v: vec[0].v },
        _ => Value::Vector(vec),
    };
    compare(&v, &ex, expected, scalar_expected, true, t, t, 0)
        .map_err(|e| format!("in range mode: {e}"))
}

#[allow(clippy::too_many_arguments)]
fn check_result(
    res: Result<crate::engine::QueryResult, QueryError>,
    ex: &Expect,
    expected: &[SeriesSpec],
    scalar_expected: Option<f64>,
    instant: bool,
    t0: i64,
    t1: i64,
    step: i64,
) -> Result<(), String> {
    let res = match res {
        Err(e) => {
            if ex.fail_any {
                let msg = match &e {
                    QueryError::Parse(p) => p.to_string(),
                    other => other.to_string(),
                };
                if let Some((Some(p), re)) = &ex.fail {
                    if !matches_pat(&Some((p.clone(), *re)), &msg) {
                        return Err(format!("expected error matching {p:?}, got {msg:?}"));
                    }
                }
                return Ok(());
            }
            return Err(format!("unexpected error: {e}"));
        }
        Ok(r) => r,
    };
    if ex.fail_any {
        return Err("expected query to fail, it succeeded".into());
    }
    // Annotations.
    for (kind, exp, got, no) in [
        ("warn", &ex.warn, &res.warnings, ex.no_warn),
        ("info", &ex.info, &res.infos, ex.no_info),
    ] {
        if no && !got.is_empty() {
            return Err(format!("expected no {kind} annotations, got {got:?}"));
        }
        if !exp.is_empty() {
            for p in exp.iter() {
                if !got.iter().any(|g| matches_pat(p, g)) {
                    return Err(format!("expected {kind} annotation {p:?}, got {got:?}"));
                }
            }
            for g in got.iter() {
                if !exp.iter().any(|p| matches_pat(p, g)) {
                    return Err(format!("unexpected {kind} annotation {g:?}"));
                }
            }
        }
    }
    compare(
        &res.value,
        ex,
        expected,
        scalar_expected,
        instant,
        t0,
        t1,
        step,
    )
}

fn eq(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    almost_equal(a, b, 1e-6)
}

#[allow(clippy::too_many_arguments)]
fn compare(
    v: &Value,
    ex: &Expect,
    expected: &[SeriesSpec],
    scalar: Option<f64>,
    instant: bool,
    t0: i64,
    t1: i64,
    step: i64,
) -> Result<(), String> {
    match v {
        Value::String { v, .. } => match &ex.string {
            Some(s) if s == v => Ok(()),
            Some(s) => Err(format!("expected string {s:?}, got {v:?}")),
            None => Err(format!("unexpected string result {v:?}")),
        },
        Value::Scalar { v, .. } => match scalar {
            Some(e) if eq(e, *v) => Ok(()),
            Some(e) => Err(format!("expected scalar {}, got {}", fmt_v(e), fmt_v(*v))),
            None => {
                if expected.len() == 1 && expected[0].labels.is_empty() && !instant {
                    Ok(())
                } else {
                    Err(format!("unexpected scalar result {}", fmt_v(*v)))
                }
            }
        },
        Value::Vector(got) => {
            if scalar.is_some() {
                return Err("expected scalar, got vector".into());
            }
            if got.len() != expected.len() {
                return Err(format!(
                    "expected {} samples, got {}: {}",
                    expected.len(),
                    got.len(),
                    got.iter()
                        .map(|s| format!("{} {}", s.labels, fmt_v(s.v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for (k, e) in expected.iter().enumerate() {
                let Some(pos) = got.iter().position(|s| s.labels == e.labels) else {
                    return Err(format!("expected series {} not found in result", e.labels));
                };
                if ex.ordered && pos != k {
                    return Err(format!(
                        "series {} at position {pos}, expected {k}",
                        e.labels
                    ));
                }
                let want = e.vals.first().copied().flatten().unwrap_or(f64::NAN);
                if e.vals.len() != 1 || !eq(want, got[pos].v) {
                    return Err(format!(
                        "series {}: expected {}, got {}",
                        e.labels,
                        fmt_v(want),
                        fmt_v(got[pos].v)
                    ));
                }
            }
            Ok(())
        }
        Value::Matrix(got) => {
            let (s0, s1, st) = if instant {
                match ex.range_vector {
                    Some(r) => r,
                    None => (t0, t1, 1),
                }
            } else {
                (t0, t1, step)
            };
            if got.len() != expected.len() {
                return Err(format!(
                    "expected {} series, got {}: {}",
                    expected.len(),
                    got.len(),
                    got.iter()
                        .map(|s| s.labels.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for e in expected {
                let Some(g) = got.iter().find(|s| s.labels == e.labels) else {
                    return Err(format!("expected series {} not found in result", e.labels));
                };
                let mut want: Vec<(i64, f64)> = Vec::new();
                for (n, v) in e.vals.iter().enumerate() {
                    if let Some(v) = v {
                        want.push((s0 + n as i64 * st, *v));
                    }
                }
                let _ = s1;
                let ok = want.len() == g.points.len()
                    && want
                        .iter()
                        .zip(&g.points)
                        .all(|(a, b)| a.0 == b.0 && eq(a.1, b.1));
                if !ok {
                    return Err(format!(
                        "series {}: expected {:?}, got {:?}",
                        e.labels,
                        want.iter().map(|p| (p.0, fmt_v(p.1))).collect::<Vec<_>>(),
                        g.points
                            .iter()
                            .map(|p| (p.0, fmt_v(p.1)))
                            .collect::<Vec<_>>()
                    ));
                }
            }
            Ok(())
        }
    }
}
