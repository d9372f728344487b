//! The group's cycle over an in-memory storage: recording, stale markers,
//! alert states, errors, reload and restart.

use super::*;
use crate::spec::{GroupSpec, RuleKind, RuleSpec};
use crate::testing::MemStorage;
use koban_model::{is_stale_nan, Alert};
use std::collections::BTreeMap;

fn env(st: &MemStorage) -> EvalEnv {
    EvalEnv::new(
        Arc::new(Engine::new(Default::default())),
        Arc::new(st.clone()),
        Arc::new(st.clone()),
    )
}

fn rec(record: &str, expr: &str) -> RuleSpec {
    RuleSpec {
        expr: expr.into(),
        labels: BTreeMap::new(),
        kind: RuleKind::Recording {
            record: record.into(),
        },
        line: 0,
    }
}

fn alert(name: &str, expr: &str, for_s: u64, keep_s: u64) -> RuleSpec {
    RuleSpec {
        expr: expr.into(),
        labels: BTreeMap::from([("severity".to_string(), "page".to_string())]),
        kind: RuleKind::Alerting {
            alert: name.into(),
            for_: Duration::from_secs(for_s),
            keep_firing_for: Duration::from_secs(keep_s),
            annotations: BTreeMap::from([("summary".to_string(), "it broke".to_string())]),
        },
        line: 0,
    }
}

fn group(rules: Vec<RuleSpec>) -> GroupSpec {
    GroupSpec {
        file: "r.yml".into(),
        name: "g".into(),
        interval: Some(Duration::from_secs(10)),
        limit: 0,
        query_offset: None,
        labels: BTreeMap::new(),
        rules,
    }
}

fn up(st: &MemStorage, inst: &str, samples: &[(i64, f64)]) {
    st.store.add(
        Labels::from_pairs([("__name__", "up"), ("job", "j"), ("instance", inst)]),
        samples,
    );
}

fn written(st: &MemStorage, name: &str) -> Vec<(String, i64, f64)> {
    st.log()
        .into_iter()
        .filter(|(l, _, _)| l.metric_name() == name)
        .map(|(l, t, v)| (l.to_string(), t, v))
        .collect()
}

#[test]
fn recording_renames_relabels_and_later_rules_see_earlier_results() {
    let st = MemStorage::new();
    up(&st, "a", &[(0, 1.0)]);
    up(&st, "b", &[(0, 0.0)]);
    let e = env(&st);
    let mut r1 = rec("job:up:sum", "sum by (job) (up)");
    r1.labels.insert("team".into(), "x".into());
    let r2 = rec("job:up:sum2", "job:up:sum * 2");
    let mut g = Group::new(group(vec![r1, r2]), &e).unwrap();
    g.eval(&e, 10_000);
    assert_eq!(
        written(&st, "job:up:sum"),
        [(
            r#"{__name__="job:up:sum", job="j", team="x"}"#.to_string(),
            10_000,
            1.0
        )]
    );
    assert_eq!(
        written(&st, "job:up:sum2"),
        [(
            r#"{job="j", team="x", __name__="job:up:sum2"}"#.to_string(),
            10_000,
            2.0
        )]
        .map(|(_, t, v)| (
            r#"{__name__="job:up:sum2", job="j", team="x"}"#.to_string(),
            t,
            v
        ))
    );
    let s = g.status();
    assert!(s.rules.iter().all(|r| r.health == Health::Ok), "{s:?}");
}

#[test]
fn series_leaving_the_result_get_stale_markers() {
    let st = MemStorage::new();
    up(&st, "a", &[(0, 1.0)]);
    up(&st, "b", &[(0, 1.0), (15_000, koban_model::STALE_NAN)]);
    let e = env(&st);
    let mut g = Group::new(group(vec![rec("x", "up")]), &e).unwrap();
    g.eval(&e, 10_000);
    g.eval(&e, 20_000);
    let w = written(&st, "x");
    assert_eq!(w.len(), 4, "{w:?}");
    let last: Vec<_> = w.iter().filter(|x| x.1 == 20_000).collect();
    assert_eq!(last.len(), 2);
    let b = last.iter().find(|x| x.0.contains("\"b\"")).unwrap();
    assert!(is_stale_nan(b.2));
}

#[test]
fn duplicate_labelsets_and_limit_are_errors_and_write_nothing() {
    let st = MemStorage::new();
    up(&st, "a", &[(0, 1.0)]);
    st.store.add(
        Labels::from_pairs([("__name__", "down"), ("job", "j"), ("instance", "a")]),
        &[(0, 1.0)],
    );
    let e = env(&st);
    let mut spec = group(vec![
        rec("dup", r#"{job="j"}"#),
        rec("ok", "up"),
        rec(
            "two",
            r#"label_replace({job="j"}, "n", "$1", "__name__", "(.*)")"#,
        ),
    ]);
    spec.limit = 1;
    let mut g = Group::new(spec, &e).unwrap();
    g.eval(&e, 10_000);
    let s = g.status();
    assert_eq!(s.rules[0].health, Health::Err);
    assert_eq!(
        s.rules[0].last_error.as_deref(),
        Some("vector contains metrics with the same labelset after applying rule labels")
    );
    assert_eq!(s.rules[1].health, Health::Ok);
    assert_eq!(s.rules[2].health, Health::Err);
    assert_eq!(
        s.rules[2].last_error.as_deref(),
        Some("exceeded limit of 1 with 3 series")
    );
    assert!(written(&st, "dup").is_empty());
    assert!(written(&st, "two").is_empty());
    assert_eq!(written(&st, "ok").len(), 1);
}

#[test]
fn a_failing_rule_does_not_stop_the_others() {
    let st = MemStorage::new();
    up(&st, "a", &[(0, 1.0)]);
    let mut e = env(&st);
    e.engine = Arc::new(Engine::new(koban_promql::EngineOpts {
        max_samples: 1,
        ..Default::default()
    }));
    st.store.add(
        Labels::from_pairs([("__name__", "big"), ("i", "1")]),
        &[(0, 1.0), (1000, 2.0), (2000, 3.0)],
    );
    let mut g = Group::new(
        group(vec![rec("r1", "sum_over_time(big[1m])"), rec("r2", "up")]),
        &e,
    )
    .unwrap();
    g.eval(&e, 10_000);
    let s = g.status();
    assert_eq!(s.rules[0].health, Health::Err);
    assert!(s.rules[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("too many samples"));
    assert_eq!(s.rules[1].health, Health::Ok);
    assert_eq!(written(&st, "r2").len(), 1);
}

#[derive(Default)]
struct Sink(parking_lot::Mutex<Vec<Alert>>);
impl AlertSink for Sink {
    fn send(&self, alerts: Vec<Alert>) {
        self.0.lock().extend(alerts);
    }
}

fn states(g: &Group) -> Vec<&'static str> {
    g.status().rules[0]
        .alerts
        .iter()
        .map(|a| a.state.as_str())
        .collect()
}

#[test]
fn pending_fires_after_for_then_resolves_and_is_resent() {
    let st = MemStorage::new();
    let mut e = env(&st);
    let sink = Arc::new(Sink::default());
    e.sink = Some(sink.clone());
    up(&st, "a", &[(0, 0.0), (50_000, 1.0)]);
    let mut g = Group::new(group(vec![alert("Down", "up == 0", 20, 0)]), &e).unwrap();
    g.eval(&e, 10_000);
    assert_eq!(states(&g), ["pending"]);
    assert!(sink.0.lock().is_empty(), "pending alerts are not sent");
    g.eval(&e, 20_000);
    assert_eq!(states(&g), ["pending"]);
    g.eval(&e, 30_000);
    assert_eq!(states(&g), ["firing"]);
    {
        let s = sink.0.lock();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].labels.to_string(),
            r#"{alertname="Down", instance="a", job="j", severity="page"}"#
        );
        assert_eq!(s[0].starts_at, 30_000);
        assert_eq!(s[0].ends_at, 30_000 + 4 * 60_000);
        assert_eq!(s[0].annotations.get("summary"), "it broke");
    }
    // ALERTS: pending at 10s and 20s, then a stale marker for it and firing.
    let w = written(&st, "ALERTS");
    let pend = r#"{__name__="ALERTS", alertname="Down", alertstate="pending", instance="a", job="j", severity="page"}"#;
    let fire = pend.replace("pending", "firing");
    assert_eq!(w[0], (pend.to_string(), 10_000, 1.0));
    assert!(w
        .iter()
        .any(|x| x.0 == pend && x.1 == 30_000 && is_stale_nan(x.2)));
    assert!(w.iter().any(|x| x.0 == fire && x.1 == 30_000 && x.2 == 1.0));
    let f = written(&st, "ALERTS_FOR_STATE");
    assert_eq!(f.last().unwrap().2, 10.0, "active_at in seconds");
    // Resolved at 60s: sent resolved, kept, no longer listed.
    g.eval(&e, 60_000);
    assert!(states(&g).is_empty());
    let last = sink.0.lock().last().cloned().unwrap();
    assert_eq!(last.ends_at, 60_000);
    let w = written(&st, "ALERTS");
    assert!(w
        .iter()
        .any(|x| x.0 == fire && x.1 == 60_000 && is_stale_nan(x.2)));
    // Re-sent as resolved after the resend delay, dropped after 15m.
    let n = sink.0.lock().len();
    g.eval(&e, 60_000 + 61_000);
    assert_eq!(sink.0.lock().len(), n + 1);
    g.eval(&e, 60_000 + 15 * 60_000 + 1);
    match &g.rules[0].kind {
        RuleKindState::Alerting(a) => assert_eq!(a.entries().count(), 0),
        _ => unreachable!(),
    }
}

#[test]
fn keep_firing_for_holds_a_firing_alert() {
    let st = MemStorage::new();
    let e = env(&st);
    up(&st, "a", &[(0, 0.0), (15_000, 1.0)]);
    let mut g = Group::new(group(vec![alert("Down", "up == 0", 0, 30)]), &e).unwrap();
    g.eval(&e, 10_000);
    assert_eq!(states(&g), ["firing"]);
    g.eval(&e, 20_000);
    assert_eq!(states(&g), ["firing"]);
    assert_eq!(
        g.status().rules[0].alerts[0].keep_firing_since_ms,
        Some(20_000)
    );
    g.eval(&e, 40_000);
    assert_eq!(states(&g), ["firing"]);
    g.eval(&e, 50_000);
    assert!(states(&g).is_empty());
}

#[test]
fn reload_keeps_unchanged_rules_and_stales_removed_ones() {
    let st = MemStorage::new();
    let e = env(&st);
    up(&st, "a", &[(0, 0.0)]);
    let spec = group(vec![alert("Down", "up == 0", 0, 0), rec("gone", "up")]);
    let mut g = Group::new(spec.clone(), &e).unwrap();
    g.eval(&e, 10_000);
    assert_eq!(states(&g), ["firing"]);
    let mut spec2 = spec.clone();
    spec2.rules.truncate(1);
    spec2.rules[0].line = 7; // moved in the file: still the same rule
    let mut g2 = Group::new(spec2, &e).unwrap();
    g2.copy_state(&mut g);
    assert_eq!(states(&g2), ["firing"]);
    g2.eval(&e, 20_000);
    assert_eq!(states(&g2), ["firing"]);
    let w = written(&st, "gone");
    assert!(
        w.iter().any(|x| x.1 == 20_000 && is_stale_nan(x.2)),
        "{w:?}"
    );
    // A changed rule starts fresh.
    let mut spec3 = spec.clone();
    spec3.rules.truncate(1);
    spec3.rules[0].expr = "up == 0 or up == 5".into();
    let mut g3 = Group::new(spec3, &e).unwrap();
    g3.copy_state(&mut g2);
    assert!(states(&g3).is_empty());
}

#[test]
fn firing_alerts_are_firing_again_right_after_a_restart() {
    let st = MemStorage::new();
    let dir = tempfile::tempdir().unwrap();
    let mut e = env(&st);
    e.state_dir = Some(dir.path().to_path_buf());
    up(&st, "a", &[(0, 0.0)]);
    up(&st, "b", &[(0, 0.0)]);
    let spec = group(vec![
        alert("Down", r#"up{instance="a"} == 0"#, 20, 60),
        alert("Slow", r#"up{instance="b"} == 0"#, 3600, 0),
    ]);
    let mut g = Group::new(spec.clone(), &e).unwrap();
    for t in [10_000, 20_000, 30_000] {
        g.eval(&e, t);
    }
    assert_eq!(states(&g), ["firing"]);
    drop(g);
    // The restart, 2 minutes later.
    let now = 150_000;
    let mut g = Group::new(spec, &e).unwrap();
    assert_eq!(crate::state::restore(&mut g, &e, now), 2);
    let s = g.status();
    assert_eq!(s.rules[0].alerts[0].state, AlertState::Firing);
    assert_eq!(s.rules[0].alerts[0].active_at_ms, 10_000);
    // Pending: the outage does not count towards `for`.
    assert_eq!(s.rules[1].alerts[0].state, AlertState::Pending);
    assert_eq!(s.rules[1].alerts[0].active_at_ms, 10_000 + (now - 30_000));
    g.eval(&e, now);
    assert_eq!(states(&g), ["firing"]);
    // Too long an outage: nothing restored.
    let mut g = Group::new(
        group(vec![alert("Down", r#"up{instance="a"} == 0"#, 20, 60)]),
        &e,
    )
    .unwrap();
    let _ = &mut g;
    let mut g2 = Group::new(
        group(vec![
            alert("Down", r#"up{instance="a"} == 0"#, 20, 60),
            alert("Slow", r#"up{instance="b"} == 0"#, 3600, 0),
        ]),
        &e,
    )
    .unwrap();
    assert_eq!(
        crate::state::restore(&mut g2, &e, 30_000 + 2 * 3600 * 1000),
        0
    );
}
