//! Runs Prometheus's PromQL test files from `../../../shared/promql-tests/`
//! and checks failures against `tests/known_failures.txt` exactly.

use std::collections::BTreeSet;
use std::path::PathBuf;

#[test]
fn prometheus_test_files() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("../../../shared/promql-tests");
    assert!(
        dir.is_dir(),
        "promql test folder {} is missing",
        dir.display()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read test dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let known: BTreeSet<String> =
        std::fs::read_to_string(manifest.join("tests/known_failures.txt"))
            .expect("known_failures.txt")
            .lines()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut details = Vec::new();
    for f in &files {
        let r = koban_promql::promqltest::run_file(f);
        let base = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        println!(
            "{base}: {} passed, {} failed, {} skipped",
            r.passed, r.failed, r.skipped
        );
        for x in r.failures {
            // "path:line: reason" -> "file:line"
            let rest = x.strip_prefix(&f.display().to_string()).unwrap_or(&x);
            let line = rest.trim_start_matches(':').split(':').next().unwrap_or("");
            let key = format!("{base}:{line}");
            details.push(format!(
                "{key}: {}",
                rest.trim_start_matches(':')
                    .split_once(':')
                    .map(|x| x.1)
                    .unwrap_or("")
                    .trim()
            ));
            failed.insert(key);
        }
    }
    let new: Vec<_> = failed.difference(&known).collect();
    let fixed: Vec<_> = known.difference(&failed).collect();
    for d in &details {
        if new.iter().any(|k| d.starts_with(&format!("{k}:"))) {
            println!("NEW FAILURE {d}");
        }
    }
    for k in &fixed {
        println!("NOW PASSING (remove from known_failures.txt): {k}");
    }
    assert!(
        new.is_empty() && fixed.is_empty(),
        "{} new failures, {} known failures now pass",
        new.len(),
        fixed.len()
    );
}

/// Runs the files listed in `PROMQLTEST_FILES` (space separated); for ad-hoc debugging.
#[test]
#[ignore]
fn adhoc_files() {
    let files: Vec<PathBuf> = std::env::var("PROMQLTEST_FILES")
        .unwrap_or_default()
        .split_whitespace()
        .map(PathBuf::from)
        .collect();
    let code = koban_promql::promqltest::run_files_cli(&files);
    assert_eq!(code, 0);
}
