//! Discovery manager tests with real providers: static and file SD.
//! Every wait is on the watch channel (or the error status) under a generous
//! overall timeout; no sleep is used as an assertion.

use koban_config::{load_str, Config};
use koban_discovery::{DiscoveryManager, TargetGroup, Targets};
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

const TIMEOUT: Duration = Duration::from_secs(30);

fn manager() -> DiscoveryManager {
    DiscoveryManager::new(Duration::from_millis(20))
}

fn config(text: &str) -> Config {
    load_str(text, Path::new("test.yml")).unwrap()
}

/// Waits until `pred` holds for the published targets.
async fn wait_for(
    rx: &mut watch::Receiver<Targets>,
    what: &str,
    pred: impl Fn(&Targets) -> bool,
) -> Targets {
    let r = tokio::time::timeout(TIMEOUT, async {
        loop {
            {
                let cur = rx.borrow_and_update();
                if pred(&cur) {
                    return cur.clone();
                }
            }
            rx.changed().await.expect("manager stopped");
        }
    })
    .await;
    match r {
        Ok(t) => t,
        Err(_) => panic!("timed out waiting for {what}; last: {:#?}", rx.borrow()),
    }
}

/// All `__address__` values of a job, sorted.
fn addresses(t: &Targets, job: &str) -> Vec<String> {
    let mut v: Vec<String> = t
        .get(job)
        .into_iter()
        .flatten()
        .flat_map(|g| g.targets.iter().map(|l| l.get("__address__").to_string()))
        .collect();
    v.sort();
    v
}

/// Writes via rename so the provider never reads a half-written file (an
/// empty YAML file is a valid file with no targets).
fn write_atomic(path: impl AsRef<Path>, content: &str) -> std::io::Result<()> {
    let path = path.as_ref();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

fn group_with<'a>(t: &'a Targets, job: &str, addr: &str) -> &'a TargetGroup {
    t[job]
        .iter()
        .find(|g| g.targets.iter().any(|l| l.get("__address__") == addr))
        .expect("group present")
}

#[tokio::test]
async fn static_targets_are_published() {
    let m = manager();
    let mut rx = m.subscribe();
    m.apply_config(&config(
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['h1:9100', 'h2:9100']\n        labels: {env: prod}\n      - targets: ['h3:9100']\n  - job_name: empty\n",
    ));
    let t = wait_for(&mut rx, "job a", |t| addresses(t, "a").len() == 3).await;
    assert_eq!(addresses(&t, "a"), ["h1:9100", "h2:9100", "h3:9100"]);
    assert_eq!(group_with(&t, "a", "h1:9100").labels.get("env"), "prod");
    assert_eq!(group_with(&t, "a", "h3:9100").labels.get("env"), "");
    assert!(t["empty"].is_empty(), "a job without SD is published empty");

    // Changing the config replaces the job's targets; removing a job drops it.
    m.apply_config(&config(
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['h9:1']\n",
    ));
    let t = wait_for(&mut rx, "new static targets", |t| {
        addresses(t, "a") == ["h9:1"] && !t.contains_key("empty")
    })
    .await;
    assert_eq!(t.len(), 1);
}

fn file_sd_config(dir: &Path, patterns: &[&str]) -> Config {
    let files: Vec<String> = patterns
        .iter()
        .map(|p| format!("'{}'", dir.join(p).display()))
        .collect();
    config(&format!(
        "scrape_configs:\n  - job_name: f\n    file_sd_configs:\n      - files: [{}]\n        refresh_interval: 1s\n",
        files.join(", ")
    ))
}

#[tokio::test]
async fn file_sd_json_and_yaml_with_changes_glob_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("a.json");
    let yaml = dir.path().join("b.yml");
    write_atomic(
        &json,
        r#"[{"targets": ["j1:80", "j2:80"], "labels": {"team": "x"}}]"#,
    )
    .unwrap();
    write_atomic(
        &yaml,
        "- targets: ['y1:80']\n  labels:\n    team: y\n- targets: ['y2:80']\n",
    )
    .unwrap();
    write_atomic(dir.path().join("ignored.txt"), "not matched").unwrap();

    let m = manager();
    let mut rx = m.subscribe();
    m.apply_config(&file_sd_config(dir.path(), &["*.json", "*.yml"]));
    let t = wait_for(&mut rx, "initial file targets", |t| {
        addresses(t, "f").len() == 4
    })
    .await;
    assert_eq!(addresses(&t, "f"), ["j1:80", "j2:80", "y1:80", "y2:80"]);
    let g = group_with(&t, "f", "j1:80");
    assert_eq!(g.labels.get("team"), "x");
    assert_eq!(g.labels.get("__meta_filepath"), json.to_string_lossy());
    assert_eq!(g.source, format!("{}:0", json.display()));
    assert_eq!(
        group_with(&t, "f", "y1:80").labels.get("__meta_filepath"),
        yaml.to_string_lossy()
    );
    assert_eq!(group_with(&t, "f", "y2:80").labels.get("team"), "");

    // A change is picked up.
    write_atomic(&json, r#"[{"targets": ["j3:80"]}]"#).unwrap();
    wait_for(&mut rx, "changed json", |t| {
        addresses(t, "f") == ["j3:80", "y1:80", "y2:80"]
    })
    .await;

    // A new file matching the glob appears.
    write_atomic(dir.path().join("c.json"), r#"[{"targets": ["c1:80"]}]"#).unwrap();
    wait_for(&mut rx, "new file", |t| {
        addresses(t, "f").contains(&"c1:80".to_string())
    })
    .await;

    // A broken file keeps its last good targets and reports path and line.
    write_atomic(&yaml, "- targets: ['y1:80']\n- targets: [unclosed\n").unwrap();
    let status = m.file_sd_status();
    let err = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(e) = status.errors().into_iter().next() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("file SD error reported");
    assert_eq!(err.path, yaml.to_string_lossy());
    assert!(err.line >= 2, "{err}");
    assert!(status.read_errors_total() >= 1);
    assert_eq!(
        addresses(&rx.borrow(), "f"),
        ["c1:80", "j3:80", "y1:80", "y2:80"]
    );

    // Fixing it clears the error; removing a file drops its targets.
    write_atomic(&yaml, "- targets: ['y5:80']\n").unwrap();
    wait_for(&mut rx, "fixed yaml", |t| {
        addresses(t, "f") == ["c1:80", "j3:80", "y5:80"]
    })
    .await;
    assert!(status.errors().is_empty());
    std::fs::remove_file(&json).unwrap();
    wait_for(&mut rx, "removed json", |t| {
        addresses(t, "f") == ["c1:80", "y5:80"]
    })
    .await;
}

#[tokio::test]
async fn file_broken_from_the_start_publishes_nothing_but_error() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bad.json");
    write_atomic(
        &json,
        "[{\"targets\": [\"a:1\"],\n \"labels\": {\"bad-name\": \"x\"}}]",
    )
    .unwrap();
    let m = manager();
    let mut rx = m.subscribe();
    m.apply_config(&file_sd_config(dir.path(), &["*.json"]));
    let t = wait_for(&mut rx, "job published", |t| t.contains_key("f")).await;
    assert!(t["f"].is_empty());
    let errs = m.file_sd_status().errors();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.contains("bad-name"), "{}", errs[0]);
}

#[tokio::test]
async fn alertmanager_sets_are_named_like_prometheus() {
    let m = manager();
    let mut rx = m.subscribe();
    m.apply_alertmanagers(&config(
        "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['am1:9093']}]\n    - static_configs: [{targets: ['am2:9093']}]\n",
    ));
    let t = wait_for(&mut rx, "alertmanager sets", |t| {
        t.len() == 2 && addresses(t, "config-1") == ["am2:9093"]
    })
    .await;
    assert_eq!(addresses(&t, "config-0"), ["am1:9093"]);
}

#[tokio::test]
async fn reload_keeps_unchanged_file_provider_watching() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("a.json");
    write_atomic(&json, r#"[{"targets": ["a1:80"]}]"#).unwrap();
    let m = manager();
    let mut rx = m.subscribe();
    let base = file_sd_config(dir.path(), &["*.json"]);
    m.apply_config(&base);
    wait_for(&mut rx, "file targets", |t| addresses(t, "f") == ["a1:80"]).await;

    let mut more = base.clone();
    more.scrape_configs.push(
        config("scrape_configs:\n  - job_name: s\n    static_configs: [{targets: ['s:1']}]\n")
            .scrape_configs
            .remove(0),
    );
    m.apply_config(&more);
    let t = wait_for(&mut rx, "second job", |t| addresses(t, "s") == ["s:1"]).await;
    assert_eq!(addresses(&t, "f"), ["a1:80"]);

    write_atomic(&json, r#"[{"targets": ["a2:80"]}]"#).unwrap();
    wait_for(&mut rx, "file change after reload", |t| {
        addresses(t, "f") == ["a2:80"] && addresses(t, "s") == ["s:1"]
    })
    .await;
}

#[tokio::test]
async fn directory_created_after_start_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("later");
    let m = manager();
    let mut rx = m.subscribe();
    m.apply_config(&file_sd_config(&sub, &["*.json"]));
    wait_for(&mut rx, "empty job", |t| {
        t.get("f").is_some_and(|g| g.is_empty())
    })
    .await;
    std::fs::create_dir(&sub).unwrap();
    write_atomic(sub.join("a.json"), r#"[{"targets": ["late:1"]}]"#).unwrap();
    wait_for(&mut rx, "file in new directory", |t| {
        addresses(t, "f") == ["late:1"]
    })
    .await;
    // Once the directory exists it is watched: later changes arrive too.
    write_atomic(sub.join("a.json"), r#"[{"targets": ["later:1"]}]"#).unwrap();
    wait_for(&mut rx, "change in new directory", |t| {
        addresses(t, "f") == ["later:1"]
    })
    .await;
}
