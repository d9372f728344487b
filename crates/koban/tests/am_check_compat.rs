//! `koban check alertmanager` against Debian's `amtool check-config` (0.25)
//! on the corpus in `tests/compat/am-check/`:
//! - `good/`: both accept (exit 0) and print the same `Found:` summary;
//! - `bad/`: both refuse (exit 1), and Koban names the error as
//!   `FILE:LINE:COL` (or `FILE:` when the error has no place, such as a
//!   missing `route`) with Alertmanager's wording after it.
//!
//! amtool comes from `KOBAN_AMTOOL` or `amtool` on PATH. A missing amtool
//! fails the test in CI (CI=true) and skips it elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/am-check");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("reading corpus dir {dir}: {e}"))
        .map(|e| e.expect("corpus dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus dir {dir} is empty");
    files
}

fn amtool() -> Option<PathBuf> {
    let name = std::env::var("KOBAN_AMTOOL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "amtool".to_string());
    let ok = Command::new(&name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(PathBuf::from(name));
    }
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("amtool ({name}) is required in CI but missing");
    }
    eprintln!("skipping: amtool ({name}) is missing (apt-get install amtool)");
    None
}

fn run_amtool(bin: &Path, file: &Path) -> Output {
    Command::new(bin)
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

fn run_koban(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_koban"))
        .args(["check", "alertmanager"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running koban: {e}"))
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// amtool's `FAILED: message` text of its first line.
fn failed_message(out: &str) -> Option<&str> {
    out.lines().next()?.split_once("FAILED: ").map(|(_, m)| m)
}

/// Compares both tools on `f`, pushing what differs to `failures`.
fn compare(amtool: &Path, f: &Path, want_ok: bool, failures: &mut Vec<String>) {
    let (a, k) = (run_amtool(amtool, f), run_koban(f));
    if a.status.success() != want_ok {
        failures.push(format!(
            "{}: amtool {}\n{}",
            f.display(),
            if want_ok { "refused" } else { "accepted" },
            show(&a)
        ));
        return;
    }
    if k.status.success() != want_ok {
        failures.push(format!(
            "{}: koban {}\n{}",
            f.display(),
            if want_ok { "refused" } else { "accepted" },
            show(&k)
        ));
        return;
    }
    if want_ok {
        if stdout(&a) != stdout(&k) {
            failures.push(format!(
                "{}: output differs\namtool:\n{}\nkoban:\n{}",
                f.display(),
                stdout(&a),
                stdout(&k)
            ));
        }
        return;
    }
    let (aout, kout) = (stdout(&a), stdout(&k));
    let Some(kmsg) = failed_message(&kout) else {
        failures.push(format!(
            "{}: koban prints no FAILED line\n{}",
            f.display(),
            show(&k)
        ));
        return;
    };
    let place = format!("{}:", f.display());
    let Some(rest) = kmsg.strip_prefix(&place) else {
        failures.push(format!(
            "{}: koban names no FILE:\n{}",
            f.display(),
            show(&k)
        ));
        return;
    };
    // `LINE:COL: message`, or ` message` when the error has no place.
    let parts: Vec<&str> = rest.splitn(3, ':').collect();
    let message = match parts.as_slice() {
        [l, c, m] if [l, c].iter().all(|s| s.bytes().all(|b| b.is_ascii_digit())) => m.trim(),
        _ => rest.trim(),
    };
    // amtool's YAML errors are yaml.v2's text; only schema errors are compared.
    let amsg = failed_message(&aout).unwrap_or("");
    // Regex errors: the reason is the regex engine's own; compare the start.
    let (amsg, message) = match amsg.split_once(": ") {
        Some(("error parsing regexp", _)) => (
            "error parsing regexp",
            message.split_once(": ").map_or(message, |m| m.0),
        ),
        _ => (amsg, message),
    };
    if !amsg.starts_with("yaml: ") && !amsg.starts_with("not a valid duration") && amsg != message {
        failures.push(format!(
            "{}: wording differs\namtool: {amsg}\nkoban:  {message}",
            f.display()
        ));
    }
}

#[test]
fn am_check_matches_amtool() {
    let Some(amtool) = amtool() else { return };
    let mut failures = Vec::new();
    for f in corpus("good") {
        compare(&amtool, &f, true, &mut failures);
    }
    for f in corpus("bad") {
        compare(&amtool, &f, false, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn missing_file_and_several_files() {
    let good = corpus("good").remove(0);
    let bad = corpus("bad").remove(0);
    let o = Command::new(env!("CARGO_BIN_EXE_koban"))
        .args(["check", "alertmanager"])
        .arg(&good)
        .arg("/nonexistent/alertmanager.yml")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("path '/nonexistent/alertmanager.yml' does not exist"),
        "{}",
        show(&o)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_koban"))
        .args(["check", "alertmanager"])
        .arg(&bad)
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = stdout(&o);
    assert!(out.contains("  FAILED: "), "{out}");
    assert!(out.contains("  SUCCESS\nFound:"), "{out}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("failed to validate 1 file(s)"),
        "{}",
        show(&o)
    );
}

/// `shared/examples/*alertmanager*.yml` beside the repository (CI sets
/// `KOBAN_SHARED_DIR`): both tools accept each.
#[test]
fn shared_examples_match_amtool() {
    let Some(amtool) = amtool() else { return };
    let dir = match std::env::var_os("KOBAN_SHARED_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("examples"),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/examples"),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: no {}", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("alertmanager") && n.ends_with(".yml"))
        })
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for f in &files {
        compare(&amtool, f, true, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
