//! Build information for `/api/v1/status/buildinfo` and `koban_build_info`:
//! git revision and branch, build date, builder (user@host) and the rustc
//! version, as `KOBAN_BUILD_*` compile-time variables (read in
//! `src/build_info.rs`).
//!
//! Reruns only when the checked-out commit changes (HEAD, its ref, packed
//! refs) or `SOURCE_DATE_EPOCH` / `KOBAN_GIT_REVISION` change, so the date
//! is when this revision was first built here, and ordinary rebuilds do not
//! recompile the crate for a new timestamp. Outside a git checkout (a
//! source tarball) revision and branch come from `KOBAN_GIT_REVISION` /
//! `KOBAN_GIT_BRANCH`, else "unknown". With `SOURCE_DATE_EPOCH` set
//! (reproducible builds) the date is that instant.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Watches `path` if it exists (cargo reruns every build for a missing one).
fn watch(path: &str) {
    if std::path::Path::new(path).exists() {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn env(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

fn main() {
    // Watch what moves when the checked-out commit changes. Worktrees keep
    // HEAD in their own git dir and refs in the common one; --git-path
    // resolves both.
    for p in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", p]) {
            watch(&path);
        }
    }
    let head_ref = git(&["symbolic-ref", "-q", "HEAD"]);
    if let Some(r) = &head_ref {
        if let Some(path) = git(&["rev-parse", "--git-path", r]) {
            watch(&path);
        }
    }
    println!("cargo:rerun-if-changed=build.rs");

    let revision = env("KOBAN_GIT_REVISION")
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let branch = env("KOBAN_GIT_BRANCH")
        .or_else(|| head_ref.map(|r| r.trim_start_matches("refs/heads/").to_string()))
        .unwrap_or_else(|| "unknown".into());
    let when = match env("SOURCE_DATE_EPOCH").and_then(|s| s.parse::<i64>().ok()) {
        Some(secs) => chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default(),
        None => chrono::Utc::now(),
    };
    // Prometheus's layout: 20060102-15:04:05.
    let date = when.format("%Y%m%d-%H:%M:%S").to_string();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let out = Command::new("id").arg("-un").output().ok()?;
            let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && !s.is_empty()).then_some(s)
        })
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());

    println!("cargo:rustc-env=KOBAN_BUILD_REVISION={revision}");
    println!("cargo:rustc-env=KOBAN_BUILD_BRANCH={branch}");
    println!("cargo:rustc-env=KOBAN_BUILD_DATE={date}");
    println!("cargo:rustc-env=KOBAN_BUILD_USER={user}@{host}");
    println!("cargo:rustc-env=KOBAN_BUILD_RUSTC={rustc_version}");
}
