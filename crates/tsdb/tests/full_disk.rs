//! A full disk: appends fail with a clear error, nothing stored is lost or
//! corrupted, and appends (and head cuts into blocks) resume once space is
//! freed.
//!
//! The disk is a small tmpfs mounted in a private mount namespace: the
//! parent test re-runs this binary in "child mode" under
//! `unshare --user --map-root-user --mount` (or `unshare --mount` as root),
//! and the child mounts the tmpfs on a temporary directory, fills it with a
//! ballast file and drives the database. Nothing is mounted outside the
//! child's namespace. Where `unshare` is missing the test fails in CI (`CI`
//! set); where the kernel refuses namespaces it is reported as skipped.

use koban_model::{Labels, MatchType, Matcher};
use koban_storage::{Appendable, Queryable};
use koban_tsdb::{Db, DbOptions};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const CHILD_ENV: &str = "KOBAN_FULL_DISK_CHILD_DIR";
const H: i64 = 3600 * 1000;
const STEP: i64 = 15_000;
const SERIES: usize = 50;

fn series(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "full_disk".to_string()), ("i", i.to_string())])
}

fn value(i: usize, t: i64) -> f64 {
    (t / STEP) as f64 * 0.25 + i as f64
}

/// Commits one sample per series at `t`; Err carries the error text.
fn commit_at(db: &Db, refs: &mut [u64], t: i64) -> Result<(), String> {
    let mut app = db.appender();
    for (i, r) in refs.iter_mut().enumerate() {
        *r = app
            .append(*r, &series(i), t, value(i, t))
            .map_err(|e| e.to_string())?;
    }
    app.commit().map(|_| ()).map_err(|e| e.to_string())
}

/// Every stored (series index, timestamp, value bits), sorted.
fn dump(db: &Db) -> Vec<(String, i64, u64)> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = Vec::new();
    for s in q
        .select(
            true,
            None,
            &[Matcher::new(MatchType::Equal, "__name__", "full_disk").unwrap()],
        )
        .unwrap()
    {
        let s = s.unwrap();
        let name = s.labels().to_string();
        let mut it = s.iter();
        while let Some((t, v)) = it.next() {
            out.push((name.clone(), t, v.to_bits()));
        }
    }
    out.sort();
    out
}

fn expected(acked: &[i64]) -> Vec<(String, i64, u64)> {
    let mut out = Vec::new();
    for i in 0..SERIES {
        for &t in acked {
            out.push((series(i).to_string(), t, value(i, t).to_bits()));
        }
    }
    out.sort();
    out
}

/// Fills the file system holding `path` completely.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let buf = vec![0x5au8; 64 * 1024];
    loop {
        match f.write(&buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "expected ENOSPC, got {e}");
                break;
            }
        }
    }
    // Fill the last partial page too.
    while f.write(&[0x5a]).is_ok_and(|n| n == 1) {}
}

fn open(dir: &Path) -> (Arc<Db>, Arc<Db>) {
    let opts = DbOptions {
        wal_fsync_interval: None,
        wal_segment_size: 256 * 1024,
        ..Default::default()
    };
    let db = Arc::new(Db::open(dir, opts).unwrap());
    let store = db.clone();
    (db, store)
}

/// The child: runs inside the private mount namespace.
fn child(mnt: &Path) {
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mnt)
        .status()
        .expect("run mount");
    assert!(st.success(), "mount tmpfs failed: {st}");
    let data = mnt.join("data");
    let ballast = mnt.join("ballast");
    let mut acked = Vec::new();
    let mut refs = vec![0u64; SERIES];
    {
        let (db, store) = open(&data);
        // Some history first: 4h, enough for one 2h block to be cut.
        let mut t = 0;
        while t < 4 * H {
            commit_at(&db, &mut refs, t).expect("append with free space");
            acked.push(t);
            t += STEP;
        }
        fill(&ballast);

        // Appends now fail, with the reason and the file in the error, and
        // keep failing cleanly; what is stored stays readable.
        let mut errors = Vec::new();
        for _ in 0..50 {
            match commit_at(&db, &mut refs, t) {
                Ok(()) => acked.push(t),
                Err(e) => errors.push(e),
            }
            t += STEP;
        }
        // The first commits may still fit into the last, partly written
        // page of the segment (~200 bytes each in compact WAL records).
        assert!(
            errors.len() >= 25,
            "only {} of 50 commits failed on a full disk",
            errors.len()
        );
        assert!(
            errors[0].contains("No space left on device") && errors[0].contains("wal"),
            "unclear error: {}",
            errors[0]
        );
        println!("append error on a full disk: {}", errors[0]);
        assert_eq!(dump(&db), expected(&acked));

        // Cutting the head into a block fails too, leaving nothing behind
        // that a later open would trip over.
        let r = store.maintain();
        match &r {
            Err(e) => println!("head cut error on a full disk: {e}"),
            Ok(r) => panic!("block write on a full disk succeeded: {r:?}"),
        }
        assert_eq!(store.stats().blocks.blocks, 0);
        let leftovers: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "partial block left behind: {leftovers:?}"
        );
        assert_eq!(dump(&db), expected(&acked));

        // Space comes back: appends and the head cut resume.
        std::fs::remove_file(&ballast).unwrap();
        for _ in 0..20 {
            commit_at(&db, &mut refs, t).expect("append after space was freed");
            acked.push(t);
            t += STEP;
        }
        let r = store.maintain().expect("head cut after space was freed");
        assert_eq!(r.cut.len(), 1, "{r:?}");
        assert_eq!(dump(&db), expected(&acked));
        db.close().unwrap();
    }
    // Everything acknowledged is there after a restart, nothing else.
    let (db, store) = open(&data);
    assert_eq!(store.stats().blocks.blocks, 1);
    assert_eq!(dump(&db), expected(&acked));
    println!("full-disk child ok: {} commits acknowledged", acked.len());
}

#[test]
fn full_disk_child() {
    // Only does something when started by the parent test below.
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
}

#[test]
fn full_disk_refuses_appends_and_resumes_when_space_frees() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let args = [
        "full_disk_child",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ];
    // As root, a mount namespace is enough; otherwise map ourselves to root
    // in a user namespace.
    let mut attempts = vec![vec!["--user", "--map-root-user", "--mount"]];
    if is_root() {
        attempts.insert(0, vec!["--mount"]);
    }
    let mut why = Vec::new();
    for flags in attempts {
        let out = Command::new("unshare")
            .args(&flags)
            .arg("--")
            .arg(&exe)
            .args(args)
            .env(CHILD_ENV, dir.path())
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                why.push(format!("unshare {flags:?}: {e}"));
                continue;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout.contains("full-disk child ok") {
            println!("{stdout}");
            return;
        }
        if stderr.contains("unshare failed") || stderr.contains("Operation not permitted") {
            why.push(format!("unshare {flags:?}: {stderr}"));
            continue;
        }
        panic!("full-disk child failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    }
    // A missing `unshare` (util-linux) is a missing peer: fail in CI. A
    // kernel that refuses namespaces is the machine's policy: say so loudly.
    let msg = format!("cannot make a private tmpfs for the full-disk test: {why:?}");
    let missing_tool = why.iter().any(|w| w.contains("No such file"));
    if missing_tool && std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
}

/// Whether this process runs as root (read from /proc, no libc needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
