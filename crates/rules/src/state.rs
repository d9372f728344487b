//! Alert state kept across restarts: one small JSON file per rule group,
//! written (temp file + rename) after every evaluation that changed an
//! alert's state, and read when the server starts. The format is
//! documented in crates/rules/docs/format/rules-state.md.
//!
//! Prometheus restores only `for` (from `ALERTS_FOR_STATE`), so an alert
//! firing before a restart is pending after it, and `keep_firing_for` is
//! lost (prometheus/prometheus #15175, #13957). Koban restores every alert
//! as it was: firing alerts are firing at once, with their `keep_firing_for`
//! clock; pending alerts get Prometheus's `for` treatment (the outage does
//! not count towards `for`, and an alert about to fire waits at least
//! `--rules.alert.for-grace-period`); resolved alerts are still re-sent
//! during their 15 minutes. Nothing is restored after an outage longer
//! than `--rules.alert.for-outage-tolerance`.

use crate::alerting::AlertEntry;
use crate::group::{AlertState, EvalEnv, Group, RuleKindState};
use crate::spec::{RuleKind, RuleSpec};
use koban_model::Labels;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The `format` value of a state file.
pub const FORMAT: &str = "koban-rules-state";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// A state file: one rule group's alerting rules and their alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub format: String,
    pub version: u32,
    pub file: String,
    pub group: String,
    /// The scheduled time of the evaluation that wrote the file, Unix ms.
    pub written_at_ms: i64,
    pub rules: Vec<RuleState>,
}

/// One alerting rule's alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleState {
    pub alert: String,
    /// [`rule_fingerprint`] of the rule's spec, in hex: a changed rule
    /// starts fresh.
    pub fingerprint: String,
    pub alerts: Vec<AlertState1>,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertState1 {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// "pending", "firing" or "inactive" (resolved, kept 15 minutes).
    pub state: String,
    pub value: f64,
    pub active_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_since_ms: Option<i64>,
}

/// A stable digest of what makes a rule evaluate the way it does: the
/// spec with the group's labels merged in (the rule's position in the file
/// excluded).
pub fn rule_fingerprint(group_labels: &BTreeMap<String, String>, r: &RuleSpec) -> u64 {
    let mut s = String::new();
    s.push_str(&r.expr);
    s.push('\u{0}');
    let kv = |s: &mut String, m: &BTreeMap<String, String>| {
        for (k, v) in m {
            s.push_str(k);
            s.push('\u{1}');
            s.push_str(v);
            s.push('\u{2}');
        }
        s.push('\u{0}');
    };
    let mut labels = group_labels.clone();
    labels.extend(r.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    kv(&mut s, &labels);
    match &r.kind {
        RuleKind::Recording { record } => {
            s.push_str("record\u{0}");
            s.push_str(record);
        }
        RuleKind::Alerting {
            alert,
            for_,
            keep_firing_for,
            annotations,
        } => {
            s.push_str("alert\u{0}");
            s.push_str(alert);
            s.push_str(&format!(
                "\u{0}{}\u{0}{}\u{0}",
                for_.as_millis(),
                keep_firing_for.as_millis()
            ));
            kv(&mut s, annotations);
        }
    }
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// The state file of the group `file`/`name` in `dir`.
pub fn path_for(dir: &Path, file: &str, name: &str) -> PathBuf {
    let mut k = Vec::with_capacity(file.len() + name.len() + 1);
    k.extend_from_slice(file.as_bytes());
    k.push(0xff);
    k.extend_from_slice(name.as_bytes());
    dir.join(format!("{:016x}.json", xxhash_rust::xxh3::xxh3_64(&k)))
}

fn map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn state_of(s: &str) -> Option<AlertState> {
    match s {
        "pending" => Some(AlertState::Pending),
        "firing" => Some(AlertState::Firing),
        "inactive" => Some(AlertState::Inactive),
        _ => None,
    }
}

/// The state file's content for `g`.
pub fn snapshot(g: &Group, ts_ms: i64) -> StateFile {
    let mut rules = Vec::new();
    for r in &g.rules {
        let RuleKindState::Alerting(a) = &r.kind else {
            continue;
        };
        let mut alerts: Vec<AlertState1> = a
            .entries()
            .map(|e| AlertState1 {
                labels: map(&e.labels),
                annotations: map(&e.annotations),
                state: e.state.as_str().to_string(),
                value: if e.value.is_finite() { e.value } else { 0.0 },
                active_at_ms: e.active_at,
                fired_at_ms: e.fired_at,
                resolved_at_ms: e.resolved_at,
                keep_firing_since_ms: e.keep_firing_since,
            })
            .collect();
        alerts.sort_by(|x, y| x.labels.cmp(&y.labels));
        rules.push(RuleState {
            alert: a.name().to_string(),
            fingerprint: format!("{:016x}", r.fingerprint),
            alerts,
        });
    }
    StateFile {
        format: FORMAT.into(),
        version: VERSION,
        file: g.spec.file.clone(),
        group: g.spec.name.clone(),
        written_at_ms: ts_ms,
        rules,
    }
}

/// Writes `g`'s state file in `dir` atomically (temp file, rename).
pub fn write(dir: &Path, g: &Group, ts_ms: i64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = path_for(dir, &g.spec.file, &g.spec.name);
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec(&snapshot(g, ts_ms)).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
    }
    std::fs::rename(&tmp, &path)
}

/// Removes `file`/`name`'s state file (the group is gone).
pub fn remove(dir: &Path, file: &str, name: &str) {
    let p = path_for(dir, file, name);
    match std::fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %p.display(), error = %e, "removing rule state file"),
    }
}

/// Reads a state file; `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<StateFile>, String> {
    let b = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let f: StateFile =
        serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", path.display()))?;
    if f.format != FORMAT || f.version != VERSION {
        return Err(format!(
            "{}: format {:?} version {} is not {FORMAT:?} version {VERSION}",
            path.display(),
            f.format,
            f.version
        ));
    }
    Ok(Some(f))
}

/// Restores `g`'s alerts from its state file in `env.state_dir`, at
/// `now_ms`. Returns how many alerts were restored.
pub fn restore(g: &mut Group, env: &EvalEnv, now_ms: i64) -> usize {
    let Some(dir) = &env.state_dir else {
        return 0;
    };
    let path = path_for(dir, &g.spec.file, &g.spec.name);
    let f = match read(&path) {
        Ok(Some(f)) => f,
        Ok(None) => return 0,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring rule state file");
            return 0;
        }
    };
    restore_from(g, env, &f, now_ms)
}

/// As [`restore`], from a state file already read.
pub fn restore_from(g: &mut Group, env: &EvalEnv, f: &StateFile, now_ms: i64) -> usize {
    let down_at = f.written_at_ms;
    if now_ms - down_at > env.outage_tolerance.as_millis() as i64 {
        tracing::info!(group = %g.spec.name, "rule state older than the outage tolerance; not restored");
        return 0;
    }
    let grace = env.grace_period.as_millis() as i64;
    let mut used = vec![false; f.rules.len()];
    let mut n = 0;
    for r in &mut g.rules {
        let fp = format!("{:016x}", r.fingerprint);
        let RuleKindState::Alerting(a) = &mut r.kind else {
            continue;
        };
        let Some(j) = f
            .rules
            .iter()
            .enumerate()
            .position(|(j, s)| !used[j] && s.alert == a.name() && s.fingerprint == fp)
        else {
            continue;
        };
        used[j] = true;
        let for_ms = a.for_ms();
        for s in &f.rules[j].alerts {
            let Some(state) = state_of(&s.state) else {
                continue;
            };
            let mut active_at = s.active_at_ms;
            if state == AlertState::Pending {
                // Prometheus's `for` restoration.
                if for_ms < grace {
                    continue;
                }
                let remaining = for_ms - (down_at - active_at);
                if remaining <= 0 {
                } else if remaining < grace {
                    active_at = now_ms + grace - for_ms;
                } else {
                    active_at += now_ms - down_at;
                }
            }
            let mut e = AlertEntry::restored(
                Labels::from_pairs(s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                // A BTreeMap: sorted and unique; empty annotations are kept.
                Labels::from_sorted_unchecked(
                    s.annotations
                        .iter()
                        .map(|(k, v)| koban_model::Label::new(k.clone(), v.clone()))
                        .collect(),
                ),
                state,
                s.value,
                active_at,
            );
            e.fired_at = s.fired_at_ms;
            e.resolved_at = s.resolved_at_ms;
            e.keep_firing_since = s.keep_firing_since_ms;
            a.restore(e);
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 file as documented: it must keep loading.
    const V1: &str = r#"{"format":"koban-rules-state","version":1,"file":"rules.yml","group":"g",
 "written_at_ms":1700000030000,
 "rules":[{"alert":"Down","fingerprint":"0123456789abcdef","alerts":[
   {"labels":{"alertname":"Down","instance":"a"},"annotations":{"summary":"a is down"},
    "state":"firing","value":0.0,"active_at_ms":1700000010000,"fired_at_ms":1700000030000}]}]}"#;

    #[test]
    fn version_1_files_keep_loading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, V1).unwrap();
        let f = read(&p).unwrap().unwrap();
        assert_eq!(f.group, "g");
        let a = &f.rules[0].alerts[0];
        assert_eq!(a.state, "firing");
        assert_eq!(a.fired_at_ms, Some(1_700_000_030_000));
        assert_eq!(a.keep_firing_since_ms, None);
        assert_eq!(a.labels["instance"], "a");
        // Round trip.
        let back: StateFile = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn other_formats_and_versions_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(&p, V1.replace("\"version\":1", "\"version\":2")).unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.contains("version 2"), "{e}");
        std::fs::write(&p, "{").unwrap();
        assert!(read(&p).unwrap_err().contains("x.json"));
        assert_eq!(read(&dir.path().join("none.json")), Ok(None));
    }

    #[test]
    fn the_file_name_is_the_documented_hash() {
        let p = path_for(Path::new("/d"), "rules.yml", "g");
        let mut k = b"rules.yml".to_vec();
        k.push(0xff);
        k.push(b'g');
        assert_eq!(
            p,
            Path::new("/d").join(format!("{:016x}.json", xxhash_rust::xxh3::xxh3_64(&k)))
        );
    }
}
