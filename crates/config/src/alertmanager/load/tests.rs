use super::*;
use crate::Duration;

fn load(text: &str) -> Result<Config, String> {
    load_str(text, Path::new("/etc/am/alertmanager.yml")).map_err(|e| e.to_string())
}

const MIN: &str = "route:\n  receiver: a\nreceivers:\n  - name: a\n";

#[test]
fn minimal_config_gets_defaults() {
    let c = load(MIN).unwrap();
    let r = c.route.unwrap();
    assert_eq!(r.receiver.as_deref(), Some("a"));
    assert_eq!(r.group_wait, Some(Duration::from_secs(30)));
    assert_eq!(r.group_interval, Some(Duration::from_secs(300)));
    assert_eq!(r.repeat_interval, Some(Duration::from_secs(14400)));
    assert_eq!(c.global.resolve_timeout, Duration::from_secs(300));
}

#[test]
fn children_inherit_from_parents() {
    let c = load(
        "route:
  receiver: a
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: ['team=\"x\"', '{env=~\"prod|dev\"}']
      receiver: b
      repeat_interval: 1h
      routes:
        - match: {sev: page}
          group_by: ['...']
receivers: [{name: a}, {name: b}]
",
    )
    .unwrap();
    let root = c.route.unwrap();
    let child = &root.routes[0];
    assert_eq!(child.group_wait, Some(Duration::from_secs(10)));
    assert_eq!(
        child.group_by.as_deref(),
        Some(&["alertname".to_string()][..])
    );
    let m: Vec<String> = child
        .matchers
        .0
        .iter()
        .map(|m| m.to_alertmanager_string())
        .collect();
    assert_eq!(m, [r#"team="x""#, r#"env=~"prod|dev""#]);
    let grand = &child.routes[0];
    assert_eq!(grand.receiver.as_deref(), Some("b"));
    assert_eq!(grand.repeat_interval, Some(Duration::from_secs(3600)));
    assert!(grand.group_by_all());
    assert_eq!(
        grand.all_matchers()[0].to_alertmanager_string(),
        r#"sev="page""#
    );
}

#[test]
fn root_route_rules() {
    assert_eq!(
        load("receivers: [{name: a}]\n").unwrap_err(),
        "/etc/am/alertmanager.yml: no routes provided"
    );
    assert_eq!(
        load("route:\n  group_by: [a]\nreceivers: [{name: a}]\n").unwrap_err(),
        "/etc/am/alertmanager.yml:2:3: root route must specify a default receiver"
    );
    assert_eq!(
        load("route:\n  receiver: a\n  matchers: [x=y]\nreceivers: [{name: a}]\n").unwrap_err(),
        "/etc/am/alertmanager.yml:3:3: root route must not have any matchers"
    );
    assert_eq!(
        load("route:\n  receiver: z\nreceivers: [{name: a}]\n").unwrap_err(),
        "/etc/am/alertmanager.yml:2:13: undefined receiver \"z\" used in route"
    );
}

#[test]
fn receivers_and_intervals_must_be_unique_and_defined() {
    assert_eq!(
        load("route: {receiver: a}\nreceivers:\n  - name: a\n  - name: a\n").unwrap_err(),
        "/etc/am/alertmanager.yml:4:11: notification config name \"a\" is not unique"
    );
    let e = load(
        "route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [night]\nreceivers: [{name: a}]\n",
    )
    .unwrap_err();
    assert_eq!(
        e,
        "/etc/am/alertmanager.yml:4:29: undefined time interval \"night\" used in route"
    );
    let e = load(&format!(
        "{MIN}time_intervals:\n  - name: n\n    time_intervals: []\nmute_time_intervals:\n  - name: n\n"
    ))
    .unwrap_err();
    assert!(e.ends_with("time interval \"n\" is not unique"), "{e}");
}

#[test]
fn group_by_checks() {
    let e =
        load("route:\n  receiver: a\n  group_by: [a, a]\nreceivers: [{name: a}]\n").unwrap_err();
    assert_eq!(
        e,
        "/etc/am/alertmanager.yml:3:17: duplicated label \"a\" in group_by"
    );
    let e = load("route:\n  receiver: a\n  group_by: [a-b]\nreceivers: [{name: a}]\n").unwrap_err();
    assert!(
        e.ends_with("invalid label name \"a-b\" in group_by list"),
        "{e}"
    );
    let e = load("route:\n  receiver: a\n  group_by: ['...', a]\nreceivers: [{name: a}]\n")
        .unwrap_err();
    assert!(e.contains("wildcard group_by"), "{e}");
    let e =
        load("route:\n  receiver: a\n  repeat_interval: 0s\nreceivers: [{name: a}]\n").unwrap_err();
    assert!(e.ends_with("repeat_interval cannot be zero"), "{e}");
}

#[test]
fn bad_matchers_and_regexes() {
    let e = load(
        "route:\n  receiver: a\n  routes:\n    - matchers: ['a=\"b']\nreceivers: [{name: a}]\n",
    )
    .unwrap_err();
    assert!(
        e.contains("matcher value contains unescaped double quote"),
        "{e}"
    );
    assert!(e.starts_with("/etc/am/alertmanager.yml:4:"), "{e}");
    let e = load(
        "route:\n  receiver: a\n  routes:\n    - match_re: {a: '('}\nreceivers: [{name: a}]\n",
    )
    .unwrap_err();
    assert!(e.contains("error parsing regexp"), "{e}");
}

#[test]
fn inhibit_rules() {
    let c = load(&format!(
        "{MIN}inhibit_rules:\n  - source_matchers: [sev=critical]\n    target_match: {{sev: warning}}\n    equal: [alertname]\n"
    ))
    .unwrap();
    let r = &c.inhibit_rules[0];
    assert_eq!(r.all_source_matchers().len(), 1);
    assert_eq!(r.all_target_matchers()[0].value, "warning");
    let e = load(&format!("{MIN}inhibit_rules:\n  - equal: [a-b]\n")).unwrap_err();
    assert!(e.ends_with("\"a-b\" is not a valid label name"), "{e}");
}

#[test]
fn time_intervals() {
    let c = load(&format!(
        "{MIN}time_intervals:
  - name: office
    time_intervals:
      - times: [{{start_time: '09:00', end_time: '17:00'}}]
        weekdays: ['monday:friday', saturday]
        days_of_month: ['1:5', -1]
        months: ['january:march', 12]
        years: ['2020:2022']
        location: Europe/Berlin
"
    ))
    .unwrap();
    let ti = &c.time_interval("office").unwrap().time_intervals[0];
    assert_eq!(ti.times[0].start_minute, 540);
    assert_eq!((ti.weekdays[0].begin, ti.weekdays[0].end), (1, 5));
    assert_eq!(ti.days_of_month[1].begin, -1);
    assert_eq!(ti.months[1].begin, 12);
    let e = load(&format!(
        "{MIN}time_intervals:\n  - name: x\n    time_intervals:\n      - weekdays: [funday]\n"
    ))
    .unwrap_err();
    assert!(e.contains("funday is not a valid weekday"), "{e}");
    assert!(
        e.starts_with("/etc/am/alertmanager.yml:8:20: funday"),
        "{e}"
    );
    let e = load(&format!(
        "{MIN}time_intervals:\n  - name: x\n    time_intervals:\n      - location: Mars/Base\n"
    ))
    .unwrap_err();
    assert!(e.contains("unknown time zone Mars/Base"), "{e}");
}

#[test]
fn templates_are_relative_to_the_file() {
    let c = load(&format!("{MIN}templates: ['t/*.tmpl', '/abs/x.tmpl']\n")).unwrap();
    assert_eq!(c.templates, ["/etc/am/t/*.tmpl", "/abs/x.tmpl"]);
}

#[test]
fn unknown_fields_are_refused() {
    let e = load(&format!("{MIN}bogus: 1\n")).unwrap_err();
    assert!(
        e.starts_with("/etc/am/alertmanager.yml:5:1: unknown field \"bogus\""),
        "{e}"
    );
}
