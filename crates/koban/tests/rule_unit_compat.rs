//! `koban test rules` against Debian's promtool 2.42 on the same files:
//! every `*.test.yml` under `tests/compat/rules-unit/` must give the same
//! exit code from both, and the outcome its name promises (`pass-*` exits
//! 0, `fail-*` exits 1). promtool comes from `KOBAN_PROMTOOL` or PATH; a
//! missing promtool fails the test in CI (CI=true) and skips it elsewhere.
//!
//! `known-differences.txt` lists files where Koban is known to differ
//! (one name a line, `#` comments, with the reason): they are run and
//! reported but not asserted, and the test fails once one agrees again so
//! the list stays honest.

use std::path::{Path, PathBuf};
use std::process::Command;

fn promtool() -> Option<PathBuf> {
    let from_env = std::env::var("KOBAN_PROMTOOL")
        .ok()
        .filter(|s| !s.is_empty());
    if let Some(p) = from_env {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.exists())
    })
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/rules-unit")
}

/// Runs `bin test rules FILE` in the files' directory; (exit code, output).
fn run(bin: &Path, file: &str) -> (i32, String) {
    let out = Command::new(bin)
        .args(["test", "rules", file])
        .current_dir(dir())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn same_results_as_promtool_on_every_file() {
    let Some(promtool) = promtool() else {
        if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
            panic!("promtool (Debian package prometheus) is required in CI but missing");
        }
        eprintln!("skipping: promtool is missing (scripts/test.sh installs it)");
        return;
    };
    let koban = PathBuf::from(env!("CARGO_BIN_EXE_koban"));
    let known: Vec<String> = std::fs::read_to_string(dir().join("known-differences.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .expect("the rules-unit directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".test.yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} test files", files.len());
    let mut problems = Vec::new();
    for f in &files {
        let (pc, pout) = run(&promtool, f);
        let (kc, kout) = run(&koban, f);
        let want = if f.starts_with("pass-") { 0 } else { 1 };
        let agree = pc == kc && kc == want;
        if known.contains(f) {
            if agree {
                problems.push(format!(
                    "{f}: listed in known-differences.txt but now agrees"
                ));
            } else {
                eprintln!("known difference {f}: promtool {pc}, koban {kc}");
            }
            continue;
        }
        if pc != want {
            problems.push(format!(
                "{f}: promtool exited {pc}, the name says {want}:\n{pout}"
            ));
        }
        if kc != pc {
            problems.push(format!(
                "{f}: koban exited {kc}, promtool {pc}\n--- koban:\n{kout}\n--- promtool:\n{pout}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn failure_report_reads_as_promtools() {
    let koban = PathBuf::from(env!("CARGO_BIN_EXE_koban"));
    let (code, out) = run(&koban, "fail-basic-alert-too-early.test.yml");
    assert_eq!(code, 1);
    assert!(
        out.contains("Unit Testing:  fail-basic-alert-too-early.test.yml"),
        "{out}"
    );
    assert!(out.contains("  FAILED:\n    name: too early,\n    alertname: InstanceDown, time: 1m, \n        exp:[\n            0:\n              Labels:{alertname=\"InstanceDown\", instance=\"a:80\", job=\"api\", severity=\"page\"}\n              Annotations:{summary=\"Instance down\"}\n            ], \n        got:[]"), "{out}");
    let (code, out) = run(&koban, "fail-recording-value.test.yml");
    assert_eq!(code, 1);
    assert!(out.contains("    expr: \"job:up:sum\", time: 1m,\n        exp: {__name__=\"job:up:sum\", job=\"api\"} 3E+00\n        got: {__name__=\"job:up:sum\", job=\"api\"} 2E+00"), "{out}");
}

#[test]
fn later_promtool_flags_run_junit_diff() {
    let koban = PathBuf::from(env!("CARGO_BIN_EXE_koban"));
    let tmp = tempfile::tempdir().unwrap();
    let junit = tmp.path().join("out.xml");
    // --run selects by test group name: the failing group is skipped.
    let out = Command::new(&koban)
        .args(["test", "rules", "--run", "^selected$", "--junit"])
        .arg(&junit)
        .arg("flags-run-filter.yml")
        .current_dir(dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testcase name=\"selected\"></testcase>"),
        "{xml}"
    );
    assert!(!xml.contains("not selected"), "{xml}");
    // Without --run the other group fails.
    let out = Command::new(&koban)
        .args(["test", "rules", "--diff", "flags-run-filter.yml"])
        .current_dir(dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("diff:"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.trim_start().starts_with('-') && l.contains("\"severity\": \"none\"")),
        "{err}"
    );
}
