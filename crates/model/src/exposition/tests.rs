use super::*;

/// Renders every entry of a page as one string line, or the error.
fn render(page: &str, f: Format) -> Result<Vec<String>, ParseError> {
    let mut p = Parser::new(page.as_bytes(), f);
    let mut out = Vec::new();
    while let Some(e) = p.next()? {
        out.push(match e {
            Entry::Sample(s) => {
                let mut line = format!("{} {}", s.labels(), s.value);
                if let Some(t) = s.timestamp {
                    line += &format!(" @{t}");
                }
                if let Some(ex) = &s.exemplar() {
                    line += &format!(" # {} {}", ex.labels(), ex.value);
                    if let Some(t) = ex.timestamp {
                        line += &format!(" @{t}");
                    }
                }
                line
            }
            Entry::Help { name, help } => format!("HELP {name} {help:?}"),
            Entry::Type { name, metric_type } => format!("TYPE {name} {}", metric_type.as_str()),
            Entry::Unit { name, unit } => format!("UNIT {name} {unit}"),
        });
    }
    // Fused after the end.
    assert_eq!(p.next(), Ok(None));
    Ok(out)
}

#[test]
fn valid_text_pages() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("\n\n", &[]),
        ("a 1", &[r#"{__name__="a"} 1"#]),
        ("a 1\n", &[r#"{__name__="a"} 1"#]),
        (
            "# HELP go_gc A summary\\nof \\\\ \\\"x\n# TYPE go_gc summary\ngo_gc{quantile=\"0.5\"} 0.25\ngo_gc_sum 3 1700000000000\n",
            &[
                "HELP go_gc \"A summary\\nof \\\\ \\\\\\\"x\"",
                "TYPE go_gc summary",
                r#"{__name__="go_gc", quantile="0.5"} 0.25"#,
                r#"{__name__="go_gc_sum"} 3 @1700000000000"#,
            ],
        ),
        ("# just a comment\n#no space\n# HELPx a\n#\n", &[]),
        ("# TYPE u untyped\n# HELP h\n", &["TYPE u unknown", "HELP h \"\""]),
        ("  a{b=\"c\",} -Inf\n", &[r#"{__name__="a", b="c"} -inf"#]),
        ("a\t{ b = \"c\" , d=\"e\" }\t+Inf \t 5 \n", &[r#"{__name__="a", b="c", d="e"} inf @5"#]),
        ("a{}1\n", &[r#"{__name__="a"} 1"#]),
        ("a-1\n", &[r#"{__name__="a"} -1"#]),
        ("a{b=\"x\\\"y\\\\z\\nw\\t\"} 1\n", &[r#"{__name__="a", b="x\"y\\z\nw\\t"} 1"#]),
        ("a:b_c{le=\"+Inf\"} 1.5e3\n", &[r#"{__name__="a:b_c", le="+Inf"} 1500"#]),
        ("{\"my.metric\", \"my.label\"=\"v\"} 2\n", &[r#"{__name__="my.metric", my.label="v"} 2"#]),
        ("{a=\"b\",\"my.metric\"} 2\n", &[r#"{__name__="my.metric", a="b"} 2"#]),
        ("# HELP \"my.metric\" hi\n# TYPE \"my.metric\" gauge\n", &["HELP my.metric \"hi\"", "TYPE my.metric gauge"]),
        ("a{b=\"ü\"} 1\n", &[r#"{__name__="a", b="ü"} 1"#]),
        ("a{b=\"\"} 1\n", &[r#"{__name__="a"} 1"#]),
        ("# EOF\n", &[]),
    ];
    for (page, want) in cases {
        let got = render(page, Format::Text).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert_eq!(&got, want, "{page:?}");
    }
}

#[test]
fn valid_openmetrics_pages() {
    let cases: &[(&str, &[&str])] = &[
        ("# EOF", &[]),
        ("# EOF\n", &[]),
        (
            "# TYPE foo_seconds counter\n# UNIT foo_seconds seconds\n# HELP foo_seconds Some \\\"text\\\" \\n\nfoo_seconds_total{a=\"b\"} 1 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879602.1\nfoo_seconds_created 1.5e9\n# EOF\n",
            &[
                "TYPE foo_seconds counter",
                "UNIT foo_seconds seconds",
                "HELP foo_seconds \"Some \\\"text\\\" \\n\"",
                r#"{__name__="foo_seconds_total", a="b"} 1 @1520879607789 # {trace_id="KOO5S4vxi0o"} 0.67 @1520879602100"#,
                r#"{__name__="foo_seconds_created"} 1500000000"#,
            ],
        ),
        (
            "# TYPE hh histogram\nhh_bucket{le=\"+Inf\"} 1 # {} 4\nhh_count 1 # {a=\"b\"} 2 3\n# EOF\n",
            &[
                "TYPE hh histogram",
                r#"{__name__="hh_bucket", le="+Inf"} 1 # {} 4"#,
                r#"{__name__="hh_count"} 1 # {a="b"} 2 @3000"#,
            ],
        ),
        ("# TYPE s stateset\n# TYPE i info\n# TYPE g gaugehistogram\n# TYPE u unknown\n# UNIT x \n# EOF\n", &[
            "TYPE s stateset",
            "TYPE i info",
            "TYPE g gaugehistogram",
            "TYPE u unknown",
            "UNIT x ",
        ]),
        ("{\"a.b\",c=\"d\"} 1 -1.5\n# EOF\n", &[r#"{__name__="a.b", c="d"} 1 @-1500"#]),
    ];
    for (page, want) in cases {
        let got = render(page, Format::OpenMetrics).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert_eq!(&got, want, "{page:?}");
    }
}

#[test]
fn malformed_text_pages() {
    let cases: &[(&str, usize, &str)] = &[
        ("a 1\nb{c} 1\n", 2, r#"expected equal, got "}""#),
        ("a{b x}", 1, r#"expected equal, got "x""#),
        (
            "\n\na{b=\"c\" d=\"e\"} 1\n",
            3,
            r#"expected comma or brace close, got "d""#,
        ),
        ("a{b=\"c} 1\n", 1, "unterminated quoted string"),
        ("a{b=\"c\nd\"} 1\n", 1, "unterminated quoted string"),
        ("a 1z\n", 1, r#"invalid value "1z": not a valid float"#),
        ("a 0x1p3\n", 1, "not a valid float"),
        (
            "a\n",
            1,
            r#"expected value after metric, got "\n" (end of line)"#,
        ),
        ("a", 1, "expected value after metric, got end of input"),
        ("a 1 x\n", 1, r#"expected timestamp or new record, got "x""#),
        ("a 1 -5\n", 1, "expected timestamp or new record"),
        (
            "a 1 5x\n",
            1,
            r#"expected next entry after timestamp, got "x""#,
        ),
        ("a 1 99999999999999999999\n", 1, "invalid timestamp"),
        ("a{b=\"1\",b=\"2\"} 1\n", 1, r#"duplicate label name "b""#),
        // The inline duplicate check: a repeat later in the block, after
        // names of the same length, and against a quoted earlier name.
        (
            "a 1\nx{ab=\"1\",cd=\"2\",ef=\"3\",cd=\"4\"} 1\n",
            2,
            r#"duplicate label name "cd""#,
        ),
        (
            "a{\"b\"=\"1\",c=\"2\",b=\"3\"} 1\n",
            1,
            r#"duplicate label name "b""#,
        ),
        (
            "a{b=\"1\",__name__=\"x\"} 1\n",
            1,
            "duplicate label name \"__name__\"",
        ),
        (
            "a{b=\"1\",\"b\"=\"2\"} 1\n",
            1,
            r#"duplicate label name "b""#,
        ),
        (
            "a{__name__=\"x\"} 1\n",
            1,
            "duplicate label name \"__name__\"",
        ),
        ("{a=\"b\"} 1\n", 1, "metric name not set"),
        ("{\"x\",\"y\"} 1\n", 1, "metric name already set"),
        ("a{\"x\"} 1\n", 1, "metric name already set"),
        ("a{,} 1\n", 1, r#"expected label name, got ",""#),
        ("a{b=\"c\",,} 1\n", 1, r#"expected label name, got ",""#),
        ("a{b=c} 1\n", 1, r#"expected label value, got "c""#),
        ("a{1=\"c\"} 1\n", 1, r#"expected label name, got "1""#),
        ("1a 1\n", 1, r#"expected a valid start token, got "1a""#),
        ("# TYPE a countr\n", 1, r#"invalid metric type "countr""#),
        (
            "# TYPE a  counter\n",
            1,
            r#"invalid metric type " counter""#,
        ),
        ("# TYPE a gaugehistogram\n", 1, "invalid metric type"),
        (
            "# HELP 1 x\n",
            1,
            r#"expected metric name after HELP, got "1""#,
        ),
        (
            "x 1\n# HELP a.b x\n",
            2,
            "expected text after metric name in HELP",
        ),
        (
            "a{b=\"\u{0}\"} 1\na{b=\"\\\n\"} 1\n",
            2,
            "unterminated quoted string",
        ),
        ("a 1\r\n", 1, "not a valid float"),
        ("a 1e999\n", 1, "not a valid float"),
    ];
    for (page, line, msg) in cases {
        let err = render(page, Format::Text).expect_err(page);
        assert_eq!(err.line, *line, "{page:?}: {err}");
        assert!(err.msg.contains(msg), "{page:?}: got {err}, want {msg}");
    }
    let bad = [b'a', b'{', b'b', b'=', b'"', 0xff, b'"', b'}', b' ', b'1'];
    let err = Parser::new(&bad, Format::Text).next().unwrap_err();
    assert!(err.msg.contains("UTF-8"), "{err}");
}

#[test]
fn malformed_openmetrics_pages() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 1, "data does not end with # EOF"),
        ("a 1\n", 2, "data does not end with # EOF"),
        ("a 1", 1, "data does not end with # EOF"),
        ("# EOF\na 1\n", 1, "unexpected data after # EOF"),
        ("# EOF\n\n", 1, "unexpected data after # EOF"),
        ("# EOFa 1", 1, "unexpected data after # EOF"),
        ("\n# EOF\n", 1, "expected a valid start token"),
        (" a 1\n# EOF\n", 1, "expected a valid start token"),
        ("a  1\n# EOF\n", 1, "expected value after metric"),
        ("a\t1\n# EOF\n", 1, "expected value after metric"),
        ("a 1 2 \n# EOF\n", 1, "expected next entry after timestamp"),
        ("a 1 NaN\n# EOF\n", 1, "invalid timestamp"),
        ("a 1 +Inf\n# EOF\n", 1, "invalid timestamp"),
        (
            "x 1\na 1 # {b=\"c\"} 1 Inf\n# EOF\n",
            2,
            "invalid exemplar timestamp",
        ),
        (
            "a 1 # {b=\"c\"}\n# EOF\n",
            1,
            "expected value after exemplar labels",
        ),
        (
            "a 1 # {b=\"c\",,d=\"e\"} 1\n# EOF\n",
            1,
            "expected label name",
        ),
        ("a 1 # {b=\"c\"} 1_2\n# EOF\n", 1, "not a valid float"),
        ("# comment\n# EOF\n", 1, "expected HELP, TYPE, UNIT or EOF"),
        ("#EOF\n", 1, "expected a valid start token"),
        (
            "# TYPE a untyped\n# EOF\n",
            1,
            "invalid metric type \"untyped\"",
        ),
        ("# UNIT a_seconds bytes\n# EOF\n", 1, "not a suffix"),
        ("a{b=\"c\", d=\"e\"} 1\n# EOF\n", 1, "expected label name"),
        ("a{b=\"c\",b=\"d\"} 1\n# EOF\n", 1, "duplicate label name"),
        (
            "a 1 # {a=\"b\"} 1 2 3\n# EOF\n",
            1,
            "expected next entry after exemplar",
        ),
    ];
    for (page, line, msg) in cases {
        let err = render(page, Format::OpenMetrics).expect_err(page);
        assert_eq!(err.line, *line, "{page:?}: {err}");
        assert!(err.msg.contains(msg), "{page:?}: got {err}, want {msg}");
    }
}

#[test]
fn error_display() {
    let err = render("a 1\nb{c x}\n", Format::Text).unwrap_err();
    assert_eq!(err.to_string(), r#"line 2: expected equal, got "x""#);
}

#[test]
fn series_is_raw_and_name_is_borrowed() {
    let page = b"a_b{x=\"1\",y=\"2\"} 3\n{\"q.r\",z=\"\\\"\"} 4\nplain 5\n";
    let mut p = Parser::new(page, Format::Text);
    let Some(Entry::Sample(s)) = p.next().unwrap() else {
        panic!()
    };
    assert_eq!(s.series, b"a_b{x=\"1\",y=\"2\"}");
    assert!(matches!(s.metric_name(), Cow::Borrowed("a_b")));
    let Some(Entry::Sample(s)) = p.next().unwrap() else {
        panic!()
    };
    assert_eq!(s.series, b"{\"q.r\",z=\"\\\"\"}");
    assert_eq!(s.metric_name(), "q.r");
    assert_eq!(s.labels().get("z"), "\"");
    let Some(Entry::Sample(s)) = p.next().unwrap() else {
        panic!()
    };
    assert_eq!(s.series, b"plain");
    let mut v = vec![Label::new("junk", "x")];
    s.labels_into(&mut v);
    assert_eq!(v, vec![Label::new("__name__", "plain")]);
    assert_eq!(s.labels_builder().labels(), s.labels());
    assert_eq!(p.next(), Ok(None));
}

#[test]
fn nan_is_normalised() {
    let mut p = Parser::new(b"a NaN\n", Format::Text);
    let Some(Entry::Sample(s)) = p.next().unwrap() else {
        panic!()
    };
    assert_eq!(s.value.to_bits(), NORMAL_NAN_BITS);
}

#[test]
fn content_type_and_accept() {
    assert_eq!(
        format_from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Format::OpenMetrics
    );
    assert_eq!(
        format_from_content_type("Application/OpenMetrics-Text"),
        Format::OpenMetrics
    );
    assert_eq!(
        format_from_content_type("text/plain; version=0.0.4"),
        Format::Text
    );
    assert_eq!(format_from_content_type(""), Format::Text);
    assert!(ACCEPT_HEADER.starts_with("application/openmetrics-text;version=1.0.0,"));
    assert!(ACCEPT_HEADER.ends_with("*/*;q=0.1"));
}

#[test]
fn writer_round_trips_through_parser() {
    let cases = [
        (
            Labels::from_pairs([
                ("__name__", "up"),
                ("job", "a\"b\\c\nd"),
                ("instance", "x:1"),
            ]),
            1.0,
            Some(1234),
        ),
        (
            Labels::from_pairs([("__name__", "my.metric"), ("a.b", "v")]),
            1e-7,
            None,
        ),
        (
            Labels::from_pairs([("__name__", "plain")]),
            f64::NEG_INFINITY,
            None,
        ),
        (
            Labels::from_pairs([("__name__", "big")]),
            1234567.0,
            Some(-5),
        ),
    ];
    let mut out = String::new();
    write_text(&mut out, &cases[0].0, cases[0].1, cases[0].2);
    assert_eq!(out, "up{instance=\"x:1\",job=\"a\\\"b\\\\c\\nd\"} 1 1234\n");
    out.clear();
    write_text(&mut out, &cases[1].0, 1e-7, None);
    assert_eq!(out, "{\"my.metric\",\"a.b\"=\"v\"} 1e-07\n");
    for (l, v, t) in &cases[..3] {
        out.clear();
        write_text(&mut out, l, *v, *t);
        let mut p = Parser::new(out.as_bytes(), Format::Text);
        let Some(Entry::Sample(s)) = p.next().unwrap() else {
            panic!("{out}")
        };
        assert_eq!(&s.labels(), l);
        assert_eq!(s.value, *v);
        assert_eq!(s.timestamp, *t);
    }
}

#[test]
fn bench_file_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/bench/node_template.prom"
    );
    let Ok(page) = std::fs::read(path) else {
        return;
    };
    let mut p = Parser::new(&page, Format::Text);
    let mut n = 0;
    while let Some(e) = p.next().unwrap() {
        if let Entry::Sample(s) = e {
            assert!(!s.labels().metric_name().is_empty());
            n += 1;
        }
    }
    assert!(n > 400, "{n}");
}

/// The fast paths keyed on the last HELP/TYPE name (TYPE and sample names
/// compared with it instead of re-scanned) and on `# HELP ` / `# TYPE `
/// words must give exactly what a full scan gives.
#[test]
fn family_name_fast_paths() {
    let long = "a_very_long_metric_name_of_more_than_32_bytes";
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            // HELP with escapes, then TYPE and samples of the same family.
            "# HELP go_gc A \\\\ summary\\nx\n# TYPE go_gc summary\ngo_gc{quantile=\"0.5\"} 1\ngo_gc_sum 2\ngo_gc 3\n".into(),
            vec![
                "HELP go_gc \"A \\\\ summary\\nx\"".into(),
                "TYPE go_gc summary".into(),
                r#"{__name__="go_gc", quantile="0.5"} 1"#.into(),
                r#"{__name__="go_gc_sum"} 2"#.into(),
                r#"{__name__="go_gc"} 3"#.into(),
            ],
        ),
        (
            // A TYPE naming another metric than the HELP before it: longer,
            // shorter, and different.
            "# HELP foo x\n# TYPE foo_bar gauge\n# HELP foo_bar y\n# TYPE foo counter\n# TYPE zzz untyped\n".into(),
            vec![
                "HELP foo \"x\"".into(),
                "TYPE foo_bar gauge".into(),
                "HELP foo_bar \"y\"".into(),
                "TYPE foo counter".into(),
                "TYPE zzz unknown".into(),
            ],
        ),
        (
            // Samples sharing only a prefix with the family name.
            "# TYPE foo_total counter\nfoo_tot 1\nfoo_total_x 2\nfoo_total{a=\"b\"} 3\nfoo_totalz 4\nfoo_to:al 5\nfoo_total\t6\nfoo_total.5 7\n".into(),
            vec![
                "TYPE foo_total counter".into(),
                r#"{__name__="foo_tot"} 1"#.into(),
                r#"{__name__="foo_total_x"} 2"#.into(),
                r#"{__name__="foo_total", a="b"} 3"#.into(),
                r#"{__name__="foo_totalz"} 4"#.into(),
                r#"{__name__="foo_to:al"} 5"#.into(),
                r#"{__name__="foo_total"} 6"#.into(),
                r#"{__name__="foo_total"} 0.5 @7"#.into(),
            ],
        ),
        (
            // Long names, the last one ending at the end of the input.
            format!("# HELP {long} h\n# TYPE {long} gauge\n{long} 1\n{long}_seconds 2\n{long}"),
            vec![],
        ),
        (
            // Quoted names never seed the fast path.
            "# HELP \"a.b\" x\n# TYPE a gauge\na 1\n{\"a.b\"} 2\n".into(),
            vec![
                "HELP a.b \"x\"".into(),
                "TYPE a gauge".into(),
                r#"{__name__="a"} 1"#.into(),
                r#"{__name__="a.b"} 2"#.into(),
            ],
        ),
        (
            // Other spellings of the HELP/TYPE words.
            "#  HELP a x\n#\tTYPE a gauge\n# HELP\tb y\n# HELPc z\n# TYPE  c counter\n#HELP d\n".into(),
            vec![
                "HELP a \"x\"".into(),
                "TYPE a gauge".into(),
                "HELP b \"y\"".into(),
                "TYPE c counter".into(),
            ],
        ),
    ];
    for (page, want) in &cases[..3] {
        let got = render(page, Format::Text).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert_eq!(&got, want, "{page:?}");
    }
    // The page ending in a bare name is an error on its last line.
    let (page, _) = &cases[3];
    let err = render(page, Format::Text).unwrap_err();
    assert_eq!(err.line, 5, "{err}");
    let ok = page.rsplit_once('\n').unwrap().0;
    let got = render(ok, Format::Text).unwrap();
    assert_eq!(
        got,
        vec![
            format!("HELP {long} \"h\""),
            format!("TYPE {long} gauge"),
            format!("{{__name__=\"{long}\"}} 1"),
            format!("{{__name__=\"{long}_seconds\"}} 2"),
        ]
    );
    for (page, want) in &cases[4..] {
        let got = render(page, Format::Text).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert_eq!(&got, want, "{page:?}");
    }
    // Type words: prefixes, extensions and the other format's words fail.
    for (page, f) in [
        ("# TYPE a gaug\n", Format::Text),
        ("# TYPE a gaugex\n", Format::Text),
        ("# TYPE a counters\n", Format::Text),
        ("# TYPE a unknown\n", Format::Text),
        ("# TYPE a untyped\n# EOF\n", Format::OpenMetrics),
    ] {
        let err = render(page, f).unwrap_err();
        assert!(
            err.msg.starts_with("invalid metric type"),
            "{page:?}: {err}"
        );
    }
    let got = render(
        "# TYPE a unknown\n# TYPE b gauge\n# TYPE c counter\n# EOF\n",
        Format::OpenMetrics,
    )
    .unwrap();
    assert_eq!(
        got,
        vec!["TYPE a unknown", "TYPE b gauge", "TYPE c counter"]
    );
    // A TYPE at the very end of the input (no 8 bytes left to read).
    let got = render("# TYPE a gauge", Format::Text).unwrap();
    assert_eq!(got, vec!["TYPE a gauge"]);
}

/// The plain label-block fast path gives what the general path gives: a
/// leading space inside the braces (allowed by the text format) sends the
/// same block through the general path.
#[test]
fn plain_label_block_matches_general_path() {
    let long = "v".repeat(40);
    let many: String = (0..12).map(|k| format!("l{k}=\"{k}\",")).collect();
    let eight: String = (0..8).map(|k| format!("l{k}=\"{k}\",")).collect();
    let eight_dup = format!("{{{eight}l3=\"x\"}}");
    let blocks = [
        r#"{a="b"}"#.to_string(),
        r#"{a="b",cd="e"}"#.into(),
        format!(r#"{{a="{long}",b="x"}}"#),
        format!("{{{}}}", many.trim_end_matches(',')),
        format!("{{{many}}}"),
        format!("{{{}}}", eight.trim_end_matches(',')),
        eight_dup,
        r#"{a="b",}"#.into(),
        r#"{a="b\"c",d="e"}"#.into(),
        r#"{a="ü",d="e"}"#.into(),
        r#"{a="b",a="c"}"#.into(),
        r#"{ab="b",cd="c",ab="d"}"#.into(),
        r#"{a="b",__name__="c"}"#.into(),
        r#"{a="b","c.d"="e"}"#.into(),
        r#"{a="b","x.y"}"#.into(),
        r#"{a="b" ,c="d"}"#.into(),
        r#"{a="b"c="d"}"#.into(),
        r#"{a="b",c}"#.into(),
        r#"{a=b}"#.into(),
        r#"{1a="b"}"#.into(),
        r#"{}"#.into(),
    ];
    for block in &blocks {
        for tail in [" 1\n", " 2.5 17\n", "\t3\n"] {
            let fast = format!("# TYPE m gauge\nm{block}{tail}");
            let general = format!("# TYPE m gauge\nm{{ {}{tail}", &block[1..]);
            assert_eq!(
                render(&fast, Format::Text),
                render(&general, Format::Text),
                "{fast:?}"
            );
        }
    }
    // The page may end inside a plain-looking block.
    for page in ["m{a=\"b\"", "m{a=\"b\",", "m{a=\"b", "m{a=", "m{a"] {
        assert!(render(page, Format::Text).is_err(), "{page:?}");
    }
    // The single-digit line end in both formats.
    assert_eq!(
        render("a 1\nb{c=\"d\"} 2\n", Format::Text).unwrap(),
        vec![r#"{__name__="a"} 1"#, r#"{__name__="b", c="d"} 2"#]
    );
    assert_eq!(
        render("a 1\nb{c=\"d\"} 2\n# EOF\n", Format::OpenMetrics).unwrap(),
        vec![r#"{__name__="a"} 1"#, r#"{__name__="b", c="d"} 2"#]
    );
    assert_eq!(
        render("a 1\n", Format::OpenMetrics).unwrap_err().msg,
        "data does not end with # EOF"
    );
}
