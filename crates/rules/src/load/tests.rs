use super::*;
use std::io::Write;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

const GOOD: &str = "groups:
  - name: a
    interval: 30s
    query_offset: 10s
    limit: 3
    labels:
      team: x
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels:
          l: v
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 1m
        annotations:
          summary: '{{ $labels.instance }} is down ({{ $value }})'
";

#[test]
fn loads_specs() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "good.yml", GOOD);
    let g = load_file(&p).unwrap();
    assert_eq!(g.len(), 1);
    let g = &g[0];
    assert_eq!(g.file, p.to_string_lossy());
    assert_eq!(g.name, "a");
    assert_eq!(g.interval, Some(Duration::from_secs(30)));
    assert_eq!(g.query_offset, Some(Duration::from_secs(10)));
    assert_eq!(g.limit, 3);
    assert_eq!(g.labels["team"], "x");
    assert_eq!(g.rules.len(), 2);
    assert_eq!(g.rules[0].name(), "job:up:sum");
    assert_eq!(g.rules[0].line, 9);
    assert_eq!(g.rules[0].labels["l"], "v");
    match &g.rules[1].kind {
        RuleKind::Alerting {
            alert,
            for_,
            keep_firing_for,
            annotations,
        } => {
            assert_eq!(alert, "Down");
            assert_eq!(*for_, Duration::from_secs(300));
            assert_eq!(*keep_firing_for, Duration::from_secs(60));
            assert!(annotations["summary"].contains("$labels.instance"));
        }
        k => panic!("not alerting: {k:?}"),
    }
}

#[test]
fn collects_every_error_with_position_and_promtool_wording() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "bad.yml",
        r#"groups:
  - name: a
    rules:
      - record: job:up:sum
        alert: X
        expr: sum(up)
      - expr: up
      - record: "bad name"
        expr: up +
        for: 1m
        annotations:
          a: b
        labels:
          "x-y": z
      - alert: Y
        expr: ""
        annotations:
          s: "{{ .Foo "
  - name: a
    rules: []
  - name: ""
    rules: []
"#,
    );
    let e = load_file(&p).unwrap_err().to_string();
    let f = p.display();
    let want = [
        format!("{f}:4:17: group \"a\", rule 1, \"X\": only one of 'record' and 'alert' must be set"),
        format!("{f}:7:9: group \"a\", rule 2, \"\": one of 'record' or 'alert' must be set"),
        format!("{f}:9:15: group \"a\", rule 3, \"bad name\": could not parse expression: 1:5: parse error:"),
        format!("{f}:8:17: group \"a\", rule 3, \"bad name\": invalid field 'annotations' in recording rule"),
        format!("{f}:8:17: group \"a\", rule 3, \"bad name\": invalid field 'for' in recording rule"),
        format!("{f}:8:17: group \"a\", rule 3, \"bad name\": invalid recording rule name: bad name"),
        format!("{f}:14:11: group \"a\", rule 3, \"bad name\": invalid label name: x-y"),
        format!("{f}:16:15: group \"a\", rule 4, \"Y\": field 'expr' must be set in rule"),
        format!("{f}:18:11: group \"a\", rule 4, \"Y\": annotation \"s\": template: __alert_Y:1:"),
        format!("{f}:19:5: groupname: \"a\" is repeated in the same file"),
        format!("{f}:21:5: Groupname must not be empty"),
    ];
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), want.len(), "{e}");
    for (l, w) in lines.iter().zip(&want) {
        assert!(l.starts_with(w.as_str()), "got  {l}\nwant {w}...");
    }
}

#[test]
fn decode_errors_keep_their_position() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "unk.yml",
        "groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        foo: 1\n",
    );
    let e = load_file(&p).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert_eq!((e.errors[0].line, e.errors[0].column), (6, 9));
    assert!(e.to_string().contains("unknown field \"foo\""), "{e}");
    let e = load_file(&d.path().join("missing.yml")).unwrap_err();
    assert!(e.to_string().contains("cannot read rule file"), "{e}");
}

#[test]
fn globs_sorted_missing_literal_is_no_error_and_files_load_once() {
    let d = tempfile::tempdir().unwrap();
    let rule = |n: &str| {
        format!("groups:\n  - name: {n}\n    rules:\n      - record: r\n        expr: up\n")
    };
    write(d.path(), "b.yml", &rule("b"));
    write(d.path(), "a.yml", &rule("a"));
    let dir = d.path().display();
    let g = load_files(&[
        format!("{dir}/*.yml"),
        format!("{dir}/a.yml"),
        format!("{dir}/none/*.yml"),
        format!("{dir}/missing.yml"),
    ])
    .unwrap();
    let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    // Errors of every file are collected.
    write(d.path(), "c.yml", "groups:\n  - name: ''\n");
    write(d.path(), "d.yml", "groups: [[\n");
    let e = load_files(&[format!("{dir}/*.yml")]).unwrap_err();
    assert_eq!(e.errors.len(), 2, "{e}");
}
