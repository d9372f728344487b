use super::*;

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn cfg(
    action: Action,
    src: &[&str],
    regex: Option<&str>,
    target: &str,
    repl: Option<&str>,
) -> RelabelConfig {
    let mut c = RelabelConfig::new(action);
    c.source_labels = src.iter().map(|s| s.to_string()).collect();
    if let Some(r) = regex {
        c.regex = RelabelRegex::new(r).unwrap();
    }
    c.target_label = target.to_string();
    if let Some(r) = repl {
        c.replacement = r.to_string();
    }
    c
}

#[test]
fn actions_table() {
    use Action::*;
    let base = ls(&[("a", "foo"), ("b", "bar"), ("c", "baz")]);
    let mut hm = cfg(HashMod, &["c"], None, "d", None);
    hm.modulus = 1000;
    let mut hm_nl = cfg(HashMod, &["a"], None, "b", None);
    hm_nl.modulus = 1000;
    let cases: Vec<(Labels, Vec<RelabelConfig>, Option<Labels>)> = vec![
        // replace with capture groups, braced references
        (
            base.clone(),
            vec![cfg(
                Replace,
                &["a"],
                Some("f(.*)"),
                "d",
                Some("ch${1}-ch${1}"),
            )],
            Some(ls(&[
                ("a", "foo"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "choo-choo"),
            ])),
        ),
        // multiple sources joined with the separator
        (
            base.clone(),
            vec![cfg(
                Replace,
                &["a", "b"],
                Some("f(.*);(.*)r"),
                "a",
                Some("b${1}${2}m"),
            )],
            Some(ls(&[("a", "boobam"), ("b", "bar"), ("c", "baz")])),
        ),
        // no match: unchanged
        (
            base.clone(),
            vec![cfg(Replace, &["a"], Some("x(.*)"), "d", Some("$1"))],
            Some(base.clone()),
        ),
        // regex must match fully (anchored)
        (
            base.clone(),
            vec![cfg(Replace, &["a"], Some("o+"), "d", Some("y"))],
            Some(base.clone()),
        ),
        // no source labels: set a constant
        (
            base.clone(),
            vec![cfg(Replace, &[], None, "d", Some("const"))],
            Some(ls(&[
                ("a", "foo"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "const"),
            ])),
        ),
        // absent source with the default regex and $1: empty result deletes the target
        (
            base.clone(),
            vec![cfg(Replace, &["zz"], None, "a", None)],
            Some(ls(&[("b", "bar"), ("c", "baz")])),
        ),
        // computed target label invalid: unchanged
        (
            ls(&[("a", "1abc")]),
            vec![cfg(Replace, &["a"], Some("(.*)"), "${1}", Some("v"))],
            Some(ls(&[("a", "1abc")])),
        ),
        // templated target label
        (
            base.clone(),
            vec![cfg(Replace, &["a"], Some("f(.*)"), "t_${1}", Some("v"))],
            Some(ls(&[
                ("a", "foo"),
                ("b", "bar"),
                ("c", "baz"),
                ("t_oo", "v"),
            ])),
        ),
        // $1x is the (missing) group named "1x": empty, deletes the target
        (
            base.clone(),
            vec![cfg(Replace, &["a"], Some("(f)oo"), "b", Some("$1x"))],
            Some(ls(&[("a", "foo"), ("c", "baz")])),
        ),
        // named groups
        (
            base.clone(),
            vec![cfg(
                Replace,
                &["a"],
                Some("(?P<first>f)(?P<rest>.*)"),
                "d",
                Some("${rest}-$first"),
            )],
            Some(ls(&[
                ("a", "foo"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "oo-f"),
            ])),
        ),
        // keep / drop
        (
            base.clone(),
            vec![cfg(Drop, &["a"], Some(".*o.*"), "", None)],
            None,
        ),
        (
            base.clone(),
            vec![cfg(Drop, &["a"], Some("f"), "", None)],
            Some(base.clone()),
        ),
        (
            base.clone(),
            vec![cfg(Keep, &["a"], Some("f"), "", None)],
            None,
        ),
        (
            base.clone(),
            vec![cfg(Keep, &["a"], Some("f.*"), "", None)],
            Some(base.clone()),
        ),
        // keep on an absent label matches the empty string
        (
            base.clone(),
            vec![cfg(Keep, &["zz"], Some(""), "", None)],
            Some(base.clone()),
        ),
        // a later step is not reached after a drop
        (
            base.clone(),
            vec![
                cfg(Drop, &["a"], Some("foo"), "", None),
                cfg(Replace, &[], None, "x", Some("y")),
            ],
            None,
        ),
        // hashmod, values checked against Prometheus's own test expectations
        (
            base.clone(),
            vec![hm],
            Some(ls(&[
                ("a", "foo"),
                ("b", "bar"),
                ("c", "baz"),
                ("d", "976"),
            ])),
        ),
        (
            ls(&[("a", "foo\nbar")]),
            vec![hm_nl],
            Some(ls(&[("a", "foo\nbar"), ("b", "734")])),
        ),
        // labelmap
        (
            ls(&[("a", "foo"), ("b1", "bar"), ("b2", "baz")]),
            vec![cfg(LabelMap, &[], Some("(b.*)"), "", Some("bar_${1}"))],
            Some(ls(&[
                ("a", "foo"),
                ("b1", "bar"),
                ("b2", "baz"),
                ("bar_b1", "bar"),
                ("bar_b2", "baz"),
            ])),
        ),
        (
            ls(&[("__meta_kubernetes_pod_label_app", "web"), ("x", "1")]),
            vec![cfg(
                LabelMap,
                &[],
                Some("__meta_kubernetes_pod_label_(.+)"),
                "",
                None,
            )],
            Some(ls(&[
                ("__meta_kubernetes_pod_label_app", "web"),
                ("app", "web"),
                ("x", "1"),
            ])),
        ),
        // labeldrop / labelkeep
        (
            ls(&[("a", "foo"), ("b1", "bar"), ("b2", "baz")]),
            vec![cfg(LabelDrop, &[], Some("b.*"), "", None)],
            Some(ls(&[("a", "foo")])),
        ),
        (
            ls(&[("a", "foo"), ("b1", "bar"), ("b2", "baz")]),
            vec![cfg(LabelKeep, &[], Some("b.*"), "", None)],
            Some(ls(&[("b1", "bar"), ("b2", "baz")])),
        ),
        // lowercase / uppercase
        (
            ls(&[("foo", "BAR"), ("x", "Ünï")]),
            vec![
                cfg(Lowercase, &["foo", "x"], None, "lower", None),
                cfg(Uppercase, &["x"], None, "upper", None),
            ],
            Some(ls(&[
                ("foo", "BAR"),
                ("lower", "bar;ünï"),
                ("upper", "ÜNÏ"),
                ("x", "Ünï"),
            ])),
        ),
        // keepequal / dropequal
        (
            ls(&[("a", "1"), ("b", "1")]),
            vec![cfg(KeepEqual, &["a"], None, "b", None)],
            Some(ls(&[("a", "1"), ("b", "1")])),
        ),
        (
            ls(&[("a", "1"), ("b", "2")]),
            vec![cfg(KeepEqual, &["a"], None, "b", None)],
            None,
        ),
        (
            ls(&[("a", "1"), ("b", "1")]),
            vec![cfg(DropEqual, &["a"], None, "b", None)],
            None,
        ),
        (
            ls(&[("a", "1"), ("b", "2")]),
            vec![cfg(DropEqual, &["a"], None, "b", None)],
            Some(ls(&[("a", "1"), ("b", "2")])),
        ),
        // absent target compares as ""
        (
            ls(&[("a", "")]),
            vec![cfg(KeepEqual, &["zz"], None, "b", None)],
            Some(Labels::empty()),
        ),
        // no configs: unchanged
        (base.clone(), vec![], Some(base.clone())),
    ];
    for (i, (input, cfgs, want)) in cases.iter().enumerate() {
        for c in cfgs {
            c.validate()
                .unwrap_or_else(|e| panic!("case {i}: config invalid: {e}"));
        }
        assert_eq!(&process(input, cfgs), want, "case {i}");
        let mut lb = input.builder();
        assert_eq!(
            process_builder(&mut lb, cfgs),
            want.is_some(),
            "case {i} (builder)"
        );
    }
}

#[test]
fn hashmod_values() {
    // Derived from the algorithm (MD5, last 8 bytes big-endian, modulo),
    // cross-checked with an independent MD5 implementation.
    assert_eq!(hashmod("baz", 1000), 976);
    assert_eq!(hashmod("foo\nbar", 1000), 734);
    assert_eq!(hashmod("foo", 10), 6);
    assert_eq!(hashmod("", 1000), 958);
    assert_eq!(hashmod("10.0.0.1:9100", 3), 2);
    assert_eq!(hashmod("a;b", u64::MAX), 2420134994223480074);
    assert_eq!(hashmod("x", 0), 0);
}

#[test]
fn expand_follows_go() {
    let re = compile_anchored("(?P<n>a)(b)?(c)").unwrap();
    let caps = re.captures("ac").unwrap();
    for (tpl, want) in [
        ("$1", "a"),
        ("${1}x", "ax"),
        ("$1x", ""),
        ("$2", ""),
        ("$3$1", "ca"),
        ("$n-${n}", "a-a"),
        ("$$1", "$1"),
        ("x$", "x$"),
        ("$-", "$-"),
        ("${1", "${1"),
        ("${}", "${}"),
        ("$01", ""),
        ("$0", "ac"),
        ("$99", ""),
        ("plain", "plain"),
        ("ü$1ü", "ü"),
        ("ü${1}ü", "üaü"),
    ] {
        let mut out = String::new();
        expand(tpl, &re, &caps, &mut out);
        assert_eq!(out, want, "{tpl}");
    }
}

#[test]
fn validation_rules() {
    use Action::*;
    let ok = |c: RelabelConfig| c.validate();
    let mut hm = cfg(HashMod, &["a"], None, "t", None);
    assert!(ok(hm.clone())
        .unwrap_err()
        .contains("requires non-zero modulus"));
    hm.modulus = 8;
    assert!(ok(hm.clone()).is_ok());
    hm.target_label = "1x".into();
    assert!(ok(hm)
        .unwrap_err()
        .contains("invalid 'target_label' for hashmod"));

    for (c, err) in [
        (cfg(Replace, &["a"], None, "", None), Some("relabel configuration for replace action requires 'target_label' value")),
        (cfg(Replace, &["a"], None, "1abc", None), Some("\"1abc\" is invalid 'target_label' for replace action")),
        (cfg(Replace, &["a"], None, "a-b", None), Some("is invalid 'target_label'")),
        (cfg(Replace, &["a"], None, "${1}", None), None),
        (cfg(Replace, &["a"], None, "foo_$1_bar", None), None),
        (cfg(Replace, &["a"], None, "foo${bar}", None), None),
        (cfg(Replace, &["a"], None, "$1-x", None), Some("is invalid 'target_label'")),
        (cfg(Replace, &["a-b"], None, "x", None), Some("\"a-b\" is not a valid label name")),
        (cfg(Lowercase, &["a"], None, "", None), Some("requires 'target_label' value")),
        (cfg(Lowercase, &["a"], None, "x", Some("y")), Some("'replacement' can not be set for lowercase action")),
        (cfg(Uppercase, &["a"], None, "$1", None), Some("\"$1\" is invalid 'target_label' for uppercase action")),
        (cfg(KeepEqual, &["a"], None, "", None), Some("requires 'target_label' value")),
        (cfg(KeepEqual, &["a"], Some("x"), "b", None), Some("keepequal action requires only 'source_labels' and `target_label`, and no other fields")),
        (cfg(DropEqual, &["a"], None, "b", None), None),
        (cfg(LabelMap, &[], Some("(.*)"), "", Some("x-$1")), Some("\"x-$1\" is invalid 'replacement' for labelmap action")),
        (cfg(LabelMap, &[], Some("(.*)"), "", Some("x_$1")), None),
        (cfg(LabelDrop, &["a"], Some("x"), "", None), Some("labeldrop action requires only 'regex', and no other fields")),
        (cfg(LabelKeep, &[], Some("x"), "t", None), Some("labelkeep action requires only 'regex', and no other fields")),
        (cfg(LabelKeep, &[], Some("x"), "", Some("y")), Some("requires only 'regex'")),
        (cfg(LabelDrop, &[], Some("x"), "", None), None),
        (cfg(Keep, &["a"], Some("x"), "", None), None),
        (cfg(Drop, &[], None, "", None), None),
    ] {
        match (ok(c.clone()), err) {
            (Ok(()), None) => {}
            (Err(e), Some(want)) => assert!(e.contains(want), "{c:?}: got {e}, want {want}"),
            (got, want) => panic!("{c:?}: got {got:?}, want {want:?}"),
        }
    }

    // The UTF-8 scheme accepts any non-empty name.
    let mut c = cfg(Replace, &["a.b"], None, "x.y", None);
    assert!(c.validate().is_err());
    c.set_name_validation(NameValidation::Utf8);
    assert!(c.validate().is_ok());
    assert_eq!(
        process(&ls(&[("a.b", "v")]), &[c]),
        Some(ls(&[("a.b", "v"), ("x.y", "v")]))
    );
}

#[test]
fn deserializes_with_prometheus_defaults() {
    let c: RelabelConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, RelabelConfig::default());
    assert_eq!(c.separator, ";");
    assert_eq!(c.regex.as_str(), "(.*)");
    assert_eq!(c.replacement, "$1");
    assert_eq!(c.action, Action::Replace);

    let c: RelabelConfig = serde_json::from_str(
        r#"{"source_labels":["__address__"],"modulus":4,"target_label":"__tmp_hash","action":"HashMod","separator":"","replacement":""}"#,
    )
    .unwrap();
    assert_eq!(c.action, Action::HashMod);
    assert_eq!(c.modulus, 4);
    assert_eq!(c.separator, "");
    assert_eq!(c.replacement, "");
    assert!(c.validate().is_ok());

    let e = serde_json::from_str::<RelabelConfig>(r#"{"sourcelabels":["a"]}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field"), "{e}");
    let e = serde_json::from_str::<RelabelConfig>(r#"{"action":"explode"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown relabel action \"explode\""), "{e}");
    let e = serde_json::from_str::<RelabelConfig>(r#"{"regex":"("}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid regular expression"), "{e}");

    // Round trip through serialisation.
    let s = serde_json::to_string(&c).unwrap();
    let back: RelabelConfig = serde_json::from_str(&s).unwrap();
    assert_eq!(back, c);
}

#[test]
fn regex_is_anchored_and_dotall() {
    let c = cfg(Action::Keep, &["a"], Some("a.b"), "", None);
    assert!(process(&ls(&[("a", "a\nb")]), std::slice::from_ref(&c)).is_some());
    assert!(process(&ls(&[("a", "xa\nb")]), &[c]).is_none());
}
