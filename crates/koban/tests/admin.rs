//! The admin TSDB API and the TSDB status page, end to end through HTTP
//! against the `koban` binary: it scrapes itself every second (head data)
//! and serves a block written beforehand (`old_metric{i="1"|"2"}`, 10 h
//! old). Deletions reach head and blocks and survive restarts (kill and
//! clean stop), clean_tombstones rewrites the blocks, and a snapshot opens
//! as a data directory of its own.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{client, free_port, now_ms, spawn_koban, Proc};

#[path = "support/koban.rs"]
mod support;

const H: i64 = 3_600_000;

/// A test server: its directory, data directory, port and process.
struct Server {
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    proc: Option<Proc>,
}

impl Server {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts koban on `data`; with `scrape_self` it scrapes itself every
    /// second (job "self").
    fn start(dir: &Path, data: &Path, scrape_self: bool) -> Server {
        let port = free_port();
        let cfg = dir.join(format!("koban-{port}.yml"));
        let scrape = if scrape_self {
            format!(
                "scrape_configs:\n- job_name: self\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\n"
            )
        } else {
            "scrape_configs: []\n".into()
        };
        std::fs::write(
            &cfg,
            format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n{scrape}"),
        )
        .unwrap();
        let proc = spawn_koban(
            &cfg,
            data,
            port,
            &dir.join(format!("koban-{port}.log")),
            &["--web.enable-admin-api"],
        );
        Server {
            dir: dir.to_path_buf(),
            data: data.to_path_buf(),
            port,
            proc: Some(proc),
        }
    }

    /// Kills the process (SIGKILL: the head comes back from the WAL) or
    /// stops it cleanly (head snapshot), then starts it again.
    fn restart(&mut self, kill: bool) {
        let p = self.proc.take().unwrap();
        if kill {
            drop(p);
        } else {
            p.stop();
        }
        *self = Server::start(&self.dir, &self.data, true);
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn get_json(url: &str) -> Value {
    let r = client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.json().await.unwrap()
}

async fn post(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let r = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The instant query's result vector at `t_ms`, as (labels, value) pairs
/// sorted by labels.
async fn query(s: &Server, q: &str, t_ms: i64) -> Vec<(String, f64)> {
    let v = get_json(&format!(
        "{}/api/v1/query?query={}&time={}",
        s.base(),
        enc(q),
        t_ms as f64 / 1000.0
    ))
    .await;
    assert_eq!(v["status"], "success", "{q}: {v}");
    let mut out: Vec<(String, f64)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].to_string(),
                r["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Polls (bounded) until `q` at the current time has a result.
async fn wait_for_result(s: &Server, q: &str) {
    for _ in 0..300 {
        if let Ok(r) = client()
            .get(format!("{}/api/v1/query?query={}", s.base(), enc(q)))
            .send()
            .await
        {
            if let Ok(v) = r.json::<Value>().await {
                if v["data"]["result"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
                {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for a result of {q}");
}

/// Writes a block with `old_metric{i="1"}` and `{i="2"}`: 60 samples one
/// minute apart starting at `start` (values 0..59).
fn write_block(data: &Path, start: i64) {
    std::fs::create_dir_all(data).unwrap();
    let mut w = koban_tsdb::block::BlockWriter::new(data).unwrap();
    for i in ["1", "2"] {
        let l = koban_model::Labels::from_pairs([("__name__", "old_metric"), ("i", i)]);
        let s: Vec<(i64, f64)> = (0..60).map(|k| (start + k * 60_000, k as f64)).collect();
        w.add_series(l, &s).unwrap();
    }
    w.finish().unwrap().unwrap();
}

/// Block directories (26-character ids) in `data`, sorted.
fn block_dirs(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir() && koban_tsdb::db::is_block_id(&p.file_name().unwrap().to_string_lossy())
        })
        .collect();
    v.sort();
    v
}

/// A server with the old block and a few seconds of self-scrapes.
async fn setup(dir: &Path) -> (Server, i64) {
    let data = dir.join("data");
    let old = now_ms() - 10 * H;
    write_block(&data, old);
    let s = Server::start(dir, &data, true);
    wait_for_result(&s, "up{job=\"self\"}").await;
    (s, old)
}

const OLD_1: &str = r#"{__name__="old_metric", i="1"}"#;

/// Series names of the old block with their sample counts at `t_ms`.
async fn old_counts(s: &Server, t_ms: i64) -> Vec<(String, f64)> {
    query(s, "count_over_time(old_metric[1d])", t_ms)
        .await
        .into_iter()
        .map(|(l, v)| (l.replace('"', "").replace(':', "="), v))
        .collect()
}

/// Head: nothing of `up` up to the deletion time; blocks: i="1" gone.
async fn check_deleted(s: &Server, t_del: i64) {
    assert!(query(s, "count_over_time(up{job=\"self\"}[1h])", t_del)
        .await
        .is_empty());
    assert_eq!(
        old_counts(s, t_del).await,
        vec![("{i=2}".to_string(), 60.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_series_covers_head_and_blocks_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = setup(dir.path()).await;
    // Let a few scrapes land.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let t_del = now_ms();
    let before = query(&s, "count_over_time(up{job=\"self\"}[1h])", t_del).await;
    assert_eq!(before.len(), 1);
    assert!(before[0].1 >= 2.0, "{before:?}");
    let (code, body) = post(
        &format!("{}/api/v1/admin/tsdb/delete_series", s.base()),
        &[
            ("match[]", "up{job=\"self\"}"),
            ("match[]", OLD_1),
            ("end", &format!("{}", t_del as f64 / 1000.0)),
        ],
    )
    .await;
    assert_eq!((code, body.as_str()), (204, ""));
    check_deleted(&s, t_del).await;
    // Scrapes after the deletion are stored as usual.
    wait_for_result(&s, "up{job=\"self\"}").await;
    // Killed: the head is rebuilt from the WAL, tombstones included.
    s.restart(true);
    wait_for_result(&s, "up{job=\"self\"}").await;
    check_deleted(&s, t_del).await;
    // Stopped cleanly: the head comes back from its snapshot.
    s.restart(false);
    wait_for_result(&s, "up{job=\"self\"}").await;
    check_deleted(&s, t_del).await;
    let later = query(&s, "count_over_time(up{job=\"self\"}[1h])", now_ms()).await;
    assert_eq!(later.len(), 1, "samples after the deletion are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_tombstones_rewrites_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = setup(dir.path()).await;
    let data = dir.path().join("data");
    let old_blocks = block_dirs(&data);
    assert_eq!(old_blocks.len(), 1);
    let (code, _) = post(
        &format!("{}/api/v1/admin/tsdb/delete_series", s.base()),
        &[("match[]", OLD_1)],
    )
    .await;
    assert_eq!(code, 204);
    assert!(old_blocks[0].join("tombstones").exists());
    let (code, body) = post(
        &format!("{}/api/v1/admin/tsdb/clean_tombstones", s.base()),
        &[],
    )
    .await;
    assert_eq!((code, body.as_str()), (204, ""));
    let new_blocks = block_dirs(&data);
    assert_eq!(new_blocks.len(), 1);
    assert_ne!(new_blocks, old_blocks, "the block was rewritten");
    assert!(!old_blocks[0].exists());
    assert!(!new_blocks[0].join("tombstones").exists());
    let meta: Value =
        serde_json::from_slice(&std::fs::read(new_blocks[0].join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["stats"]["numSeries"], 1, "{meta}");
    assert_eq!(
        old_counts(&s, now_ms()).await,
        vec![("{i=2}".to_string(), 60.0)]
    );
    // Nothing left to clean.
    let (code, _) = post(
        &format!("{}/api/v1/admin/tsdb/clean_tombstones", s.base()),
        &[],
    )
    .await;
    assert_eq!(code, 204);
    assert_eq!(block_dirs(&data), new_blocks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_opens_as_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = setup(dir.path()).await;
    let data = dir.path().join("data");
    let t_snap = now_ms();
    let (code, body) = post(&format!("{}/api/v1/admin/tsdb/snapshot", s.base()), &[]).await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    let name = v["data"]["name"].as_str().unwrap().to_string();
    let (time, rand) = name.split_once('-').unwrap();
    assert_eq!(time.len(), 16, "{name}");
    assert!(time.ends_with('Z') && time.as_bytes()[8] == b'T', "{name}");
    assert!(
        rand.len() == 16 && rand.bytes().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    let snap = data.join("snapshots").join(&name);
    // The block is hard-linked, and the head became one more block.
    let orig = block_dirs(&data);
    let copied = block_dirs(&snap);
    assert_eq!(copied.len(), 2, "{copied:?}");
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &Path| std::fs::metadata(p.join("index")).unwrap().ino();
    let linked = snap.join(orig[0].file_name().unwrap());
    assert_eq!(ino(&linked), ino(&orig[0]));
    // Skipping the head: only the persisted block.
    let (code, body) = post(
        &format!("{}/api/v1/admin/tsdb/snapshot?skip_head=true", s.base()),
        &[],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let bare = data
        .join("snapshots")
        .join(v["data"]["name"].as_str().unwrap());
    assert_eq!(block_dirs(&bare).len(), 1);
    let (code, body) = post(
        &format!("{}/api/v1/admin/tsdb/snapshot?skip_head=maybe", s.base()),
        &[],
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("bad_data") && body.contains("skip_head"),
        "{body}"
    );
    drop(s);
    // Another Koban on the snapshot (scraping nothing) serves its data.
    let s2 = Server::start(dir.path(), &snap, false);
    wait_for_result(&s2, "count_over_time(old_metric[1d])").await;
    assert_eq!(
        old_counts(&s2, t_snap).await,
        vec![("{i=1}".to_string(), 60.0), ("{i=2}".to_string(), 60.0)]
    );
    let up = query(&s2, "count_over_time(up{job=\"self\"}[1h])", t_snap).await;
    assert_eq!(up.len(), 1, "the head's samples are in the snapshot");
    assert!(up[0].1 >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsdb_status_counts_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = setup(dir.path()).await;
    let v = get_json(&format!("{}/api/v1/status/tsdb", s.base())).await;
    assert_eq!(v["status"], "success", "{v}");
    let d = &v["data"];
    let h = &d["headStats"];
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    assert!(num(&h["numSeries"]) >= 5, "{h}");
    // Every series has at least __name__, instance and job.
    assert!(num(&h["numLabelPairs"]) >= 3, "{h}");
    assert!(num(&h["chunkCount"]) >= num(&h["numSeries"]), "{h}");
    let (min, max) = (
        h["minTime"].as_i64().unwrap(),
        h["maxTime"].as_i64().unwrap(),
    );
    assert!(min > now_ms() - H && min <= max, "{h}");
    let list = |k: &str| -> Vec<(String, u64)> {
        d[k].as_array()
            .unwrap_or_else(|| panic!("{k}: {d}"))
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_string(), num(&e["value"])))
            .collect()
    };
    for k in [
        "seriesCountByMetricName",
        "labelValueCountByLabelName",
        "memoryInBytesByLabelName",
        "seriesCountByLabelValuePair",
    ] {
        let l = list(k);
        assert!(!l.is_empty() && l.len() <= 10, "{k}: {l:?}");
        assert!(l.windows(2).all(|w| w[0].1 >= w[1].1), "{k} sorted: {l:?}");
    }
    // One target: job and instance have one value each.
    let by_name = list("labelValueCountByLabelName");
    assert_eq!(by_name[0].0, "__name__", "{by_name:?}");
    let pairs = list("seriesCountByLabelValuePair");
    let job = pairs.iter().find(|p| p.0 == "job=self").expect("job=self");
    assert_eq!(job.1, num(&h["numSeries"]));
}
