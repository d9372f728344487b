//! promtool's rule unit tests (`koban test rules FILE...`), taking
//! promtool's test files unchanged.
//!
//! A test file names rule files and test groups. Each test group gets a
//! fresh in-memory storage ([`store::TestStorage`]) holding its
//! `input_series`; the rules are loaded ([`crate::load`]) and evaluated
//! ([`crate::group::Group`]) every `evaluation_interval` from time 0 to the
//! group's largest `eval_time`, every group at every step, in
//! `group_eval_order` and then file order. After the evaluation at the step
//! `ts` with `ts <= eval_time < ts + evaluation_interval`, the firing
//! alerts are compared with `alert_rule_test`; `promql_expr_test`
//! expressions are evaluated once all steps are done.
//!
//! Phases: [`schema`] (the file), [`run`] (one test group), [`report`]
//! (promtool's notation, `--diff`, JUnit XML). The output and exit code are
//! promtool's: `Unit Testing:  FILE`, then `  SUCCESS` or `  FAILED:` with
//! one block per failure; 0 when every file passes, 1 otherwise.

pub mod report;
mod rules;
pub mod run;
pub mod schema;
pub mod store;

use std::io::Write;
use std::path::{Path, PathBuf};

/// `koban test rules` flags (later promtool's; 2.42 has none of them).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--run`: only test groups whose `name` matches one of these regular
    /// expressions (unanchored, as Go's `MatchString`).
    pub run: Vec<String>,
    /// `--diff`: show alert mismatches as a diff of expected and got.
    pub diff: bool,
    /// `--debug`: say when each test group starts and ends, and dump all
    /// series (input and recorded) at the end of each.
    pub debug: bool,
    /// `--ignore-unknown-fields`: unknown keys in rule files are ignored
    /// instead of refused (the test file itself is still read strictly).
    pub ignore_unknown_fields: bool,
    /// `--junit`: where to write JUnit XML results.
    pub junit: Option<PathBuf>,
    /// Colours in `--diff` output.
    pub color: bool,
}

/// Runs the test files in order, printing as promtool does to `out`
/// (progress, `SUCCESS`) and `err` (failures, warnings). Returns the exit
/// code: 0 when every file passed, 1 otherwise (including unreadable files,
/// a bad `--run` expression or an unwritable `--junit` file).
pub fn run_cli(files: &[PathBuf], opts: &Options, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let run = if opts.run.is_empty() {
        None
    } else {
        match regex::Regex::new(&opts.run.join("|")) {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = writeln!(err, "invalid --run expression: {e}");
                return 1;
            }
        }
    };
    let mut failed = false;
    let mut junit = report::Junit::default();
    for f in files {
        let _ = writeln!(out, "Unit Testing:  {}", f.display());
        let mut suite = report::Suite {
            name: f.display().to_string(),
            ..Default::default()
        };
        let errs = run_file(f, opts, run.as_ref(), &mut suite, out, err);
        if errs.is_empty() {
            let _ = writeln!(out, "  SUCCESS");
        } else {
            failed = true;
            let _ = writeln!(err, "  FAILED:");
            for e in &errs {
                let _ = writeln!(err, "{e}");
                let _ = writeln!(out);
            }
        }
        let _ = writeln!(out);
        junit.suites.push(suite);
    }
    if let Some(p) = &opts.junit {
        if let Err(e) = std::fs::write(p, junit.to_xml()) {
            let _ = writeln!(err, "failed to write JUnit XML to {}: {e}", p.display());
            failed = true;
        }
    }
    i32::from(failed)
}

/// Runs one test file; returns its failures (empty when it passed), each
/// a block of text as promtool prints it.
fn run_file(
    path: &Path,
    opts: &Options,
    run: Option<&regex::Regex>,
    suite: &mut report::Suite,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Vec<String> {
    let abort = |suite: &mut report::Suite, e: String| {
        suite.error = Some(e.clone());
        vec![e]
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return abort(suite, format!("{}: {e}", path.display())),
    };
    let file = match schema::parse(&text) {
        Ok(f) => f,
        Err(e) => return abort(suite, format!("{}: {e}", path.display())),
    };
    suite.timestamp = now_rfc3339ish();
    let base = path.parent().unwrap_or(Path::new(""));
    let mut rule_files = Vec::new();
    for rf in &file.rule_files {
        let p = if rf.is_empty() || Path::new(rf).is_absolute() {
            PathBuf::from(rf)
        } else {
            base.join(rf)
        };
        let pat = p.to_string_lossy().to_string();
        let matched = match glob::glob(&pat) {
            Ok(m) => {
                let mut v: Vec<PathBuf> = m.filter_map(|r| r.ok()).collect();
                v.sort();
                v
            }
            Err(e) => return abort(suite, format!("rule_files: bad pattern {pat:?}: {e}")),
        };
        if matched.is_empty() {
            let _ = writeln!(err, "  WARNING: no file match pattern {pat}");
        }
        rule_files.extend(matched);
    }
    let eval_interval = file
        .evaluation_interval
        .filter(|d| !d.is_zero())
        .map_or(60_000, |d| d.as_millis() as i64);
    let mut order = std::collections::HashMap::new();
    for (i, g) in file.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return abort(
                suite,
                format!("group name repeated in evaluation order: {g}"),
            );
        }
    }
    let ctx = run::FileContext {
        rule_files,
        eval_interval_ms: eval_interval,
        group_order: order,
        fuzzy_compare: file.fuzzy_compare,
        opts: opts.clone(),
    };
    let mut errs = Vec::new();
    for (i, tg) in file.tests.iter().enumerate() {
        if let Some(r) = run {
            if !r.is_match(&tg.name) {
                continue;
            }
        }
        let name = if tg.name.is_empty() {
            format!("unnamed#{i}")
        } else {
            tg.name.clone()
        };
        let e = run::test_group(&ctx, &name, tg, out);
        suite.cases.push(report::Case {
            name,
            failures: e.clone(),
        });
        errs.extend(e);
    }
    errs
}

/// The current time as `2006-01-02T15:04:05` in UTC (JUnit's timestamp).
fn now_rfc3339ish() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}
