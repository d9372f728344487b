//! `koban check rules` against Debian's `promtool check rules` (2.42) on the
//! corpus in `tests/compat/rules-check/`:
//! - `good/`: both accept (exit 0);
//! - `bad/`: both refuse (non-zero), and Koban names the error as
//!   `FILE:LINE:COL`;
//! - `koban-only/`: keys of newer Prometheus that Koban accepts and promtool
//!   2.42 refuses.
//!
//! promtool comes from `KOBAN_PROMTOOL` or `promtool` on PATH. A missing
//! promtool fails the test in CI (CI=true) and skips it elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/rules-check");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("reading corpus dir {dir}: {e}"))
        .map(|e| e.expect("corpus dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus dir {dir} is empty");
    files
}

fn promtool() -> Option<PathBuf> {
    let name = std::env::var("KOBAN_PROMTOOL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "promtool".to_string());
    let ok = Command::new(&name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(PathBuf::from(name));
    }
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("promtool ({name}) is required in CI but missing");
    }
    eprintln!("skipping: promtool ({name}) is missing (scripts/test.sh installs it)");
    None
}

fn run(bin: &Path, file: &Path) -> Output {
    Command::new(bin)
        .args(["check", "rules"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// True when some line names `FILE:LINE:COL` with numeric LINE and COL.
fn names_location(out: &str, file: &Path) -> bool {
    let prefix = format!("{}:", file.display());
    out.lines().any(|l| {
        l.find(&prefix).is_some_and(|i| {
            let mut parts = l[i + prefix.len()..].splitn(3, ':');
            let num = |s: Option<&str>| {
                s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            };
            num(parts.next()) && num(parts.next())
        })
    })
}

#[test]
fn rules_check_matches_promtool() {
    let Some(promtool) = promtool() else { return };
    let koban = Path::new(env!("CARGO_BIN_EXE_koban"));
    let mut failures = Vec::new();

    for f in corpus("good") {
        let (p, k) = (run(&promtool, &f), run(koban, &f));
        if !p.status.success() {
            failures.push(format!("{}: promtool refused\n{}", f.display(), show(&p)));
        }
        if !k.status.success() {
            failures.push(format!("{}: koban refused\n{}", f.display(), show(&k)));
        }
    }
    for f in corpus("bad") {
        let (p, k) = (run(&promtool, &f), run(koban, &f));
        if p.status.success() {
            failures.push(format!("{}: promtool accepted\n{}", f.display(), show(&p)));
        }
        if k.status.success() {
            failures.push(format!("{}: koban accepted\n{}", f.display(), show(&k)));
        } else {
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&k.stdout),
                String::from_utf8_lossy(&k.stderr)
            );
            if !names_location(&all, &f) {
                failures.push(format!(
                    "{}: koban names no FILE:LINE:COL\n{}",
                    f.display(),
                    show(&k)
                ));
            }
        }
    }
    for f in corpus("koban-only") {
        let (p, k) = (run(&promtool, &f), run(koban, &f));
        if p.status.success() {
            failures.push(format!(
                "{}: promtool 2.42 accepted (move to good/)\n{}",
                f.display(),
                show(&p)
            ));
        }
        if !k.status.success() {
            failures.push(format!("{}: koban refused\n{}", f.display(), show(&k)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
