//! Crash safety: a child process (this test binary in "writer mode")
//! appends and commits in a loop, printing each acknowledged timestamp;
//! the parent SIGKILLs it mid-way, reopens the database and checks that
//! every acknowledged sample is there, bit for bit.
//!
//! Sound because a commit is acknowledged after its WAL records were
//! handed to the kernel with write(2): killing the process does not lose
//! page-cache data (see docs/format/wal.md).

use koban_model::{Labels, MatchType, Matcher};
use koban_storage::{Appendable, Queryable};
use koban_tsdb::{Db, DbOptions};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const WRITER_ENV: &str = "KOBAN_TSDB_CRASH_WRITER_DIR";
/// First timestamp the writer commits (default 0).
const START_ENV: &str = "KOBAN_TSDB_CRASH_WRITER_START";
const SERIES: usize = 20;

fn labels(i: usize) -> Labels {
    Labels::from_pairs([("__name__", "crash_test".to_string()), ("i", i.to_string())])
}

fn value(i: usize, t: i64) -> f64 {
    if t % 11 == 0 {
        f64::from_bits(0x7ff0_0000_0000_0002)
    } else {
        t as f64 * 1.25 + i as f64
    }
}

/// Writer mode (only when spawned by `sigkill_loses_no_acknowledged_sample`).
#[test]
fn crash_writer() {
    let Some(dir) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let db = Db::open(
        std::path::Path::new(&dir),
        DbOptions {
            wal_segment_size: 64 << 10,
            ..Default::default()
        },
    )
    .expect("open");
    let mut refs = [0u64; SERIES];
    let out = std::io::stdout();
    let start: i64 = std::env::var(START_ENV).map_or(0, |s| s.parse().expect("start"));
    for t in start..10_000_000i64 {
        let mut app = db.appender();
        for (i, r) in refs.iter_mut().enumerate() {
            *r = app.append(*r, &labels(i), t, value(i, t)).expect("append");
        }
        app.commit().expect("commit");
        let mut o = out.lock();
        writeln!(o, "ack {t}").expect("stdout");
        o.flush().expect("flush");
    }
}

#[test]
fn sigkill_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let last_ack = write_until_killed(dir.path(), 0);
    verify(dir.path(), last_ack);
}

/// A clean close writes a head snapshot; the next process loads it,
/// appends and is SIGKILLed: the snapshot plus the WAL after it hold every
/// acknowledged sample, before and after the restart.
#[test]
fn sigkill_after_a_snapshot_restart_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), DbOptions::default()).unwrap();
        let mut refs = [0u64; SERIES];
        for t in 0..1000i64 {
            let mut app = db.appender();
            for (i, r) in refs.iter_mut().enumerate() {
                *r = app.append(*r, &labels(i), t, value(i, t)).unwrap();
            }
            app.commit().unwrap();
        }
        db.close().unwrap();
    }
    assert!(dir
        .path()
        .join(koban_tsdb::head::head_snapshot::SNAPSHOT_FILE)
        .exists());
    let last_ack = write_until_killed(dir.path(), 1000);
    assert!(last_ack >= 1000);
    let db = verify(dir.path(), last_ack);
    assert!(
        db.open_report().snapshot.is_some(),
        "{:?}",
        db.open_report()
    );
}

/// Runs the writer from timestamp `start` in a child process, SIGKILLs it
/// after a few thousand commits; returns the last acknowledged timestamp.
fn write_until_killed(dir: &std::path::Path, start: i64) -> i64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITER_ENV, dir)
        .env(START_ENV, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last_ack: Option<i64> = None;
    // Kill after a few thousand commits (several WAL segments).
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.strip_prefix("ack ") {
            last_ack = Some(t.parse().unwrap());
            if last_ack >= Some(start + 3000) {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on unix
                           // Acks already in the pipe were acknowledged before the kill too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(t) = line.strip_prefix("ack ") {
            last_ack = Some(t.parse().unwrap());
        }
    }
    child.wait().unwrap();
    last_ack.expect("writer acknowledged nothing")
}

/// Reopens `dir` and checks every series holds exactly the samples
/// 0..=last_ack (and perhaps unacknowledged later ones), bit for bit.
fn verify(dir: &std::path::Path, last_ack: i64) -> Db {
    let db = Db::open(dir, DbOptions::default()).unwrap();
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let set: Vec<_> = q
        .select(
            true,
            None,
            &[Matcher::new(MatchType::Equal, "__name__", "crash_test").unwrap()],
        )
        .unwrap()
        .collect();
    assert_eq!(set.len(), SERIES);
    for s in set {
        let s = s.unwrap();
        let i: usize = s.labels().get("i").parse().unwrap();
        let mut it = s.iter();
        let mut t = 0i64;
        while let Some((st, v)) = it.next() {
            assert_eq!(st, t, "series {i}: gap or disorder");
            assert_eq!(v.to_bits(), value(i, t).to_bits(), "series {i} t={t}");
            t += 1;
        }
        // At most the commits after the last printed ack may be missing;
        // every acknowledged one is present.
        assert!(
            t > last_ack,
            "series {i}: have up to {}, acknowledged {last_ack}",
            t - 1
        );
    }
    // The database accepts appends after recovery.
    let mut app = db.appender();
    app.append(0, &labels(0), last_ack + 1_000_000, 1.0)
        .unwrap();
    app.commit().unwrap();
    db
}
