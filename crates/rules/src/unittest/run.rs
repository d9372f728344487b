//! One test group: load its input series, evaluate the rules step by step,
//! compare alerts and PromQL results, as promtool does.

use super::report::{self, AlertView};
use super::rules::RulesUnderTest;
use super::schema::{PromqlTestCase, TestGroup};
use super::store::TestStorage;
use super::Options;
use koban_model::Labels;
use koban_promql::{Engine, EngineOpts, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

/// What every test group of one file shares.
#[derive(Debug, Clone)]
pub struct FileContext {
    /// Rule files after glob expansion, in order.
    pub rule_files: Vec<PathBuf>,
    pub eval_interval_ms: i64,
    /// Position of each group named in `group_eval_order`.
    pub group_order: HashMap<String, usize>,
    pub fuzzy_compare: bool,
    pub opts: Options,
}

/// One input series, expanded.
struct Input {
    labels: Labels,
    /// (timestamp, value), in time order.
    samples: Vec<(i64, f64)>,
    /// How many samples are already in storage.
    loaded: usize,
}

/// Expands `input_series` at `interval_ms` spacing.
fn parse_inputs(tg: &TestGroup, interval_ms: i64) -> Result<Vec<Input>, String> {
    let mut out = Vec::new();
    for s in &tg.input_series {
        let line = format!("{} {}", s.series, s.values);
        let (labels, vals) = koban_promql::promqltest::parse_series_values(&line)
            .map_err(|e| format!("input_series {:?}: {e}", s.series))?;
        let samples = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as i64 * interval_ms, v)))
            .collect();
        out.push(Input {
            labels,
            samples,
            loaded: 0,
        });
    }
    Ok(out)
}

/// Puts every input sample at or before `ts` into storage (promtool's
/// `WithSamplesTill`). A refused sample (a second value at a timestamp
/// the series already has) is left out, as promtool's storage does.
fn load_till(store: &TestStorage, inputs: &mut [Input], ts: i64) {
    for inp in inputs {
        while inp.loaded < inp.samples.len() && inp.samples[inp.loaded].0 <= ts {
            let (t, v) = inp.samples[inp.loaded];
            let _ = store.add(&inp.labels, t, v);
            inp.loaded += 1;
        }
    }
}

fn pairs(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect()
}

/// Float equality as promtool's: `==` (so NaN never matches), or within one
/// ULP with `fuzzy_compare`.
fn float_eq(a: f64, b: f64, fuzzy: bool) -> bool {
    if a == b {
        return true;
    }
    if !fuzzy || a.is_nan() || b.is_nan() {
        return false;
    }
    let next_up = |x: f64| {
        if x.is_infinite() && x > 0.0 {
            x
        } else if x == 0.0 {
            f64::from_bits(1)
        } else if x > 0.0 {
            f64::from_bits(x.to_bits() + 1)
        } else {
            f64::from_bits(x.to_bits() - 1)
        }
    };
    let next_down = |x: f64| -next_up(-x);
    next_up(a) == b || next_down(a) == b
}

/// Runs one test group; returns its failures (empty: passed).
pub fn test_group(
    ctx: &FileContext,
    name: &str,
    tg: &TestGroup,
    out: &mut dyn Write,
) -> Vec<String> {
    let started = std::time::Instant::now();
    if ctx.opts.debug {
        let _ = writeln!(out, "DEBUG: Starting test {name}");
    }
    let errs = test_group_inner(ctx, tg, out);
    if ctx.opts.debug {
        let _ = writeln!(
            out,
            "DEBUG: Test {name} finished, took {:?}",
            started.elapsed()
        );
    }
    errs
}

fn test_group_inner(ctx: &FileContext, tg: &TestGroup, out: &mut dyn Write) -> Vec<String> {
    let interval_ms = tg
        .interval
        .filter(|d| !d.is_zero())
        .map_or(ctx.eval_interval_ms, |d| d.as_millis() as i64);
    let mut inputs = match parse_inputs(tg, interval_ms) {
        Ok(i) => i,
        Err(e) => return vec![e],
    };
    let store = TestStorage::new();
    let engine = Engine::new(EngineOpts::default());
    let mut rules = match RulesUnderTest::load(
        &ctx.rule_files,
        ctx.opts.ignore_unknown_fields,
        &ctx.group_order,
        interval_ms,
        &tg.external_labels,
        &tg.external_url,
        &store,
        &engine,
    ) {
        Ok(r) => r,
        Err(e) => return e,
    };

    // Alert tests by eval time.
    let mut alert_tests: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, a) in tg.alert_rule_test.iter().enumerate() {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                a.eval_time
            )];
        }
        alert_tests
            .entry(a.eval_time.as_millis() as i64)
            .or_default()
            .push(i);
    }
    let maxt = tg
        .alert_rule_test
        .iter()
        .map(|a| a.eval_time.as_millis())
        .chain(tg.promql_expr_test.iter().map(|p| p.eval_time.as_millis()))
        .max()
        .unwrap_or(0) as i64;

    let mut errs = Vec::new();
    let mut pending = alert_tests.iter().peekable();
    let mut ts = 0i64;
    while ts <= maxt {
        load_till(&store, &mut inputs, ts);
        let eval_errs = rules.eval(ts);
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return errs;
        }
        while let Some((&t, cases)) = pending.peek() {
            if !(ts <= t && t < ts + ctx.eval_interval_ms) {
                break;
            }
            for &i in cases.iter() {
                let case = &tg.alert_rule_test[i];
                let mut got = rules.firing(&case.alertname);
                let mut exp: Vec<AlertView> = case
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = a.exp_labels.clone();
                        l.insert("alertname".into(), case.alertname.clone());
                        AlertView {
                            labels: l.into_iter().collect(),
                            annotations: a
                                .exp_annotations
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        }
                    })
                    .collect();
                got.sort();
                exp.sort();
                if exp != got {
                    errs.push(alert_failure(
                        ctx,
                        tg,
                        &case.alertname,
                        case.eval_time,
                        &exp,
                        &got,
                    ));
                }
            }
            pending.next();
        }
        ts += ctx.eval_interval_ms;
    }

    for case in &tg.promql_expr_test {
        if let Some(e) = promql_case(ctx, &engine, &store, case) {
            errs.push(e);
        }
    }
    if ctx.opts.debug {
        debug_dump(&store, maxt, out);
    }
    errs
}

fn alert_failure(
    ctx: &FileContext,
    tg: &TestGroup,
    alertname: &str,
    eval_time: koban_config::Duration,
    exp: &[AlertView],
    got: &[AlertView],
) -> String {
    let name = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    let indent = "            ";
    if ctx.opts.diff {
        format!(
            "{name}    alertname: {alertname}, time: {eval_time}, \n        diff: {}",
            report::indent_lines(&report::alerts_diff(exp, got, ctx.opts.color), indent)
        )
    } else {
        format!(
            "{name}    alertname: {alertname}, time: {eval_time}, \n        exp:{}, \n        got:{}",
            report::indent_lines(&report::alerts_string(exp), indent),
            report::indent_lines(&report::alerts_string(got), indent)
        )
    }
}

/// A series descriptor of `exp_samples` (`up{job="a"}`, `{}`) as label
/// pairs; only `=` matchers are allowed.
fn parse_metric(s: &str) -> Result<Vec<(String, String)>, String> {
    if s.trim() == "{}" {
        return Ok(Vec::new());
    }
    match koban_promql::parse(s).map_err(|e| e.to_string())? {
        koban_promql::Expr::VectorSelector(vs) => {
            let mut v = Vec::new();
            for m in vs.matchers {
                if m.kind != koban_model::MatchType::Equal {
                    return Err(format!("unexpected matcher in metric: {s}"));
                }
                v.push((m.name, m.value));
            }
            v.sort();
            Ok(v)
        }
        _ => Err(format!("not a series descriptor: {s}")),
    }
}

/// Evaluates one `promql_expr_test` case; its failure text, if any.
fn promql_case(
    ctx: &FileContext,
    engine: &Engine,
    store: &TestStorage,
    case: &PromqlTestCase,
) -> Option<String> {
    let head = format!(
        "    expr: {}, time: {}",
        report::go_quote(&case.expr),
        case.eval_time
    );
    let t = case.eval_time.as_millis() as i64;
    let got = match engine.instant(store, &case.expr, t) {
        Ok(r) => match r.value {
            Value::Vector(v) => v.into_iter().map(|s| (pairs(&s.labels), s.v)).collect(),
            Value::Scalar { v, .. } => vec![(Vec::new(), v)],
            _ => {
                return Some(format!(
                    "{head}, err: rule result is not a vector or scalar"
                ))
            }
        },
        Err(e) => return Some(format!("{head}, err: {e}")),
    };
    let mut got: Vec<(Vec<(String, String)>, f64)> = got;
    let mut exp = Vec::new();
    for s in &case.exp_samples {
        if !s.histogram.is_empty() {
            return Some(format!(
                "{head}, err: labels {}: native histograms are not supported by Koban yet",
                report::go_quote(&s.labels)
            ));
        }
        match parse_metric(&s.labels) {
            Ok(l) => exp.push((l, s.value)),
            Err(e) => {
                return Some(format!(
                    "{head}, err: labels {}: {e}",
                    report::go_quote(&s.labels)
                ))
            }
        }
    }
    exp.sort_by(|a, b| a.0.cmp(&b.0));
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let same = exp.len() == got.len()
        && exp
            .iter()
            .zip(&got)
            .all(|(e, g)| e.0 == g.0 && float_eq(e.1, g.1, ctx.fuzzy_compare));
    if same {
        return None;
    }
    let list = |v: &[(Vec<(String, String)>, f64)]| {
        if v.is_empty() {
            return "nil".to_string();
        }
        v.iter()
            .map(|(l, x)| format!("{} {}", report::labels_string(l), report::float_e(*x)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "{head},\n        exp: {}\n        got: {}",
        list(&exp),
        list(&got)
    ))
}

/// `--debug`: every series in storage (inputs and what the rules wrote)
/// with its samples up to the end of the test.
fn debug_dump(store: &TestStorage, maxt: i64, out: &mut dyn Write) {
    let end = (maxt / 1000 + 1) * 1000;
    let _ = writeln!(
        out,
        "DEBUG: Dump of all data (input_series and rules) at {}:",
        report::go_duration(end)
    );
    for (l, samples) in store.dump() {
        let pts: Vec<String> = samples
            .iter()
            .filter(|(t, _)| *t <= end)
            .map(|(t, v)| format!("{} @[{t}]", koban_promql::ast::format_number(*v)))
            .collect();
        let _ = writeln!(
            out,
            "{} =>\n{}",
            report::labels_string(&pairs(&l)),
            pts.join("\n")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_compare_allows_one_ulp() {
        assert!(float_eq(1.0, 1.0, false));
        assert!(!float_eq(f64::NAN, f64::NAN, false));
        let next = f64::from_bits(1.0f64.to_bits() + 1);
        assert!(!float_eq(1.0, next, false));
        assert!(float_eq(1.0, next, true));
        assert!(!float_eq(1.0, f64::from_bits(1.0f64.to_bits() + 2), true));
    }

    #[test]
    fn exp_labels_parse_as_promtool() {
        assert_eq!(
            parse_metric("up{job=\"a\"}").unwrap(),
            vec![("__name__".into(), "up".into()), ("job".into(), "a".into())]
        );
        assert!(parse_metric("{}").unwrap().is_empty());
        assert!(parse_metric("up{job=~\"a\"}").is_err());
        assert!(parse_metric("").is_err());
    }
}
