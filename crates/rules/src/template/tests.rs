//! Rendered texts as promtool 2.42 prints them (checked with
//! `promtool test rules` on the same templates; `toDuration` and
//! `pathPrefix` without an external URL are not in 2.42).

use super::numbers::*;
use super::*;
use crate::testing::MemStorage;
use koban_promql::Engine;

fn env() -> EvalEnv {
    let st = MemStorage::new();
    st.store.add(
        Labels::from_pairs([("__name__", "up"), ("instance", "i:1"), ("job", "n")]),
        &[(0, 1.0), (60_000, 1.0)],
    );
    let mut e = EvalEnv::new(
        Arc::new(Engine::new(Default::default())),
        Arc::new(st.clone()),
        Arc::new(st),
    );
    e.external_url = "http://h:9090/prom/".into();
    e.external_labels = Labels::from_pairs([("dc", "eu")]);
    e
}

fn run(text: &str) -> Result<String, String> {
    let l = Labels::from_pairs([("__name__", "up"), ("instance", "i:1"), ("job", "n")]);
    Expander::new("A", text).expand(&env(), &l, 1.0, 60_000)
}

#[test]
fn humanize_like_prometheus() {
    assert_eq!(humanize(1234567.0), "1.235M");
    assert_eq!(humanize(0.0), "0");
    assert_eq!(humanize(0.00123), "1.23m");
    assert_eq!(humanize(f64::NAN), "NaN");
    assert_eq!(humanize(f64::INFINITY), "+Inf");
    assert_eq!(humanize1024(1048576.0), "1Mi");
    assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
    assert_eq!(humanize_duration(1.5), "1.5s");
    assert_eq!(humanize_duration(0.01), "10ms");
    assert_eq!(humanize_percentage(0.1234), "12.34%");
    assert_eq!(go_time(1234567890000), "2009-02-13 23:31:30 +0000 UTC");
    assert_eq!(go_duration(3_661_000_000_000), "1h1m1s");
    assert_eq!(go_duration(1_500_000_000), "1.5s");
    assert_eq!(go_duration(100_000_000), "100ms");
}

#[test]
fn functions_render_as_promtool() {
    assert_eq!(
        run(r#"{{ $value | humanize }} {{ 1234567.0 | humanize }} {{ "0.00123" | humanize }} {{ 1048576.0 | humanize1024 }} {{ 90061 | humanizeDuration }} {{ 0.01 | humanizeDuration }} {{ 0.1234 | humanizePercentage }} {{ 1234567890.5 | humanizeTimestamp }}"#).unwrap(),
        "1 1.235M 1.23m 1Mi 1d 1h 1m 1s 10ms 12.34% 2009-02-13 23:31:30.5 +0000 UTC"
    );
    assert_eq!(
        run(r#"{{ 1234567890 | toTime }} {{ parseDuration "1h30m" }} {{ stripPort "a.b:90" }} {{ stripDomain "a.b.c:90" }} {{ title "foo bar" }} {{ graphLink "up{a=\"b\"}" }} {{ reReplaceAll "(a)b" "x$1" "abab" }} {{ match "a.*" "abc" }} {{ args 1 "x" }}"#).unwrap(),
        "2009-02-13 23:31:30 +0000 UTC 5400 a.b a:90 Foo Bar /graph?g0.expr=up%7Ba%3D%22b%22%7D&g0.tab=0 xaxa true map[arg0:1 arg1:x]"
    );
    assert_eq!(
        run(r#"{{ range query "up" }}{{ .Labels.job }}={{ .Value }};{{ end }} {{ query "up" | first | label "job" }} {{ query "up" | first | value }} {{ with query "nothing" }}{{ . | first }}{{ end }}|{{ $labels }}"#).unwrap(),
        "n=1; n 1 |map[__name__:up instance:i:1 job:n]"
    );
    assert_eq!(
        run("{{ $externalLabels.dc }} {{ $externalURL }} {{ pathPrefix }} {{ toUpper $labels.job }} {{ 3661 | toDuration }}").unwrap(),
        "eu http://h:9090/prom/ /prom/ N 1h1m1s"
    );
    assert_eq!(run("no braces").unwrap(), "no braces");
}

#[test]
fn errors_as_promtool() {
    assert_eq!(
        run(r#"{{ query "nothing" | first | value }}"#).unwrap_err(),
        r#"error executing template __alert_A: template: __alert_A:1:133: executing "__alert_A" at <first>: error calling first: first() called on vector with no elements"#
    );
    assert_eq!(
        run(r#"{{ humanize "abc" }}"#).unwrap_err(),
        r#"error executing template __alert_A: template: __alert_A:1:115: executing "__alert_A" at <humanize "abc">: error calling humanize: strconv.ParseFloat: parsing "abc": invalid syntax"#
    );
}

#[test]
fn hostile_templates_end_in_errors() {
    let e = run(r#"{{ define "x" }}{{ template "x" }}{{ end }}{{ template "x" }}"#).unwrap_err();
    assert!(e.starts_with("error executing template __alert_A: "), "{e}");
    let e = run("{{ range 100000000 }}xxxxxxxxxxxxxxxx{{ end }}").unwrap_err();
    assert!(e.contains("limit"), "{e}");
}

#[test]
fn check_knows_variables_and_functions_and_positions_errors() {
    check("a", r#"{{ $labels.job }} {{ $value | humanize }} {{ query "up" | first | value }} {{ $externalLabels.x }} {{ $externalURL }}"#).unwrap();
    let e = check("__alert_X", "{{ $foo }}").unwrap_err();
    assert!(e.starts_with("template: __alert_X:1:"), "{e}");
    assert!(e.contains("$foo"), "{e}");
    assert!(check("__alert_X", "{{ nofunc }}")
        .unwrap_err()
        .contains("nofunc"));
    assert!(check("__alert_X", "{{ .Foo ").is_err());
}
