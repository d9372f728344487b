//! Template + data + expected output, tabulated as Go's own exec tests are.

use koban_template::{Error, Funcs, HostValue, Options, Template, Value};
use serde_json::json;

fn data() -> Value {
    Value::from(json!({
        "Labels": {"instance": "a:9100", "job": "node", "empty": ""},
        "Value": 12.3456,
        "Count": 3,
        "Zero": 0,
        "List": ["x", "y", "z"],
        "Empty": [],
        "Nested": {"A": {"B": "deep"}},
        "Html": "<b>&\"'",
        "T": true,
        "F": false,
        "Nil": null,
    }))
}

#[test]
fn string_maps_yield_empty_for_missing_keys() {
    let data = Value::map([("Labels", Value::str_map([("job", "node"), ("a", "1")]))]);
    let mut t = Template::new("s");
    t.parse("{{.Labels.job}}|{{.Labels.nope}}|{{index .Labels \"nope\"}}|{{eq .Labels.nope \"\"}}|{{range $k, $v := .Labels}}{{$k}}={{$v}},{{end}}|{{len .Labels}}|{{.Labels}}").unwrap();
    assert_eq!(
        t.execute(&data).unwrap(),
        "node|||true|a=1,job=node,|2|map[a:1 job:node]"
    );
}

#[test]
fn range_over_a_huge_int_is_bounded() {
    let e = run("{{range 1000000000000}}{{end}}").unwrap_err();
    assert!(matches!(e, Error::StepLimit { .. }), "{e}");
}

fn funcs() -> Funcs {
    let mut f = Funcs::new();
    f.insert("toUpper", |a: &[Value]| match a {
        [Value::String(s)] => Ok(Value::String(s.to_uppercase())),
        _ => Err("toUpper wants one string".into()),
    });
    f.insert("fail", |_: &[Value]| {
        Err(Box::new(std::io::Error::other("boom")) as _)
    });
    f.insert("add", |a: &[Value]| match a {
        [Value::Int(x), Value::Int(y)] => Ok(Value::Int(x + y)),
        _ => Err("add wants two ints".into()),
    });
    f
}

fn run(src: &str) -> Result<String, Error> {
    run_with(src, Options::default())
}

fn run_with(src: &str, opts: Options) -> Result<String, Error> {
    let mut t = Template::new("t").funcs(&funcs()).options(opts);
    t.parse(src)?;
    t.execute(&data())
}

const CASES: &[(&str, &str)] = &[
    // text, fields, trimming, comments
    ("hello", "hello"),
    ("{{.Labels.instance}}", "a:9100"),
    ("{{ .Nested.A.B }}", "deep"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Nil}}", "<no value>"),
    ("a  {{- .Count -}}  b", "a3b"),
    ("a {{- /* c */ -}} b", "ab"),
    ("a{{/* c */}}b", "ab"),
    ("{{- 1 }}\n{{- 2 -}}\n", "12"),
    ("{{if .T -}}\n  yes\n{{- else -}}\n  no\n{{- end}}", "yes"),
    ("{{range .List -}}\n {{.}}\n{{- end}}", "xyz"),
    ("{{if\n  .T\n}}multi-line action{{end}}", "multi-line action"),
    ("{{`a\nb`}}", "a\nb"),
    ("{{/* a\nmulti-line\ncomment */}}x", "x"),
    ("{{ \"\\u00e9\\x41\\t\" }}", "éA\t"),
    ("{{.List}}", "[x y z]"),
    ("{{.Labels}}", "map[empty: instance:a:9100 job:node]"),
    ("{{.Value}}", "12.3456"),
    // literals
    ("{{1}} {{-2}} {{0x10}} {{1.5}} {{1e6}} {{'a'}} {{true}} {{\"s\\n\"}} {{`r\\n`}}", "1 -2 16 1.5 1e+06 97 true s\n r\\n"),
    // variables
    ("{{$x := .Count}}{{$x}}", "3"),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}", "21"),
    ("{{$.Count}}", "3"),
    ("{{$n := 0}}{{range .List}}{{$n = .}}{{end}}{{$n}}", "z"),
    ("{{range $i, $v := .List}}{{$i}}{{end}}{{with $x := 5}}{{$x}}{{end}}", "0125"),
    ("{{1.0}} {{0.5}} {{-0.0}} {{123456789.0}} {{printf \"%v %.1f %d\" 2.0 2.25 -7}}", "1 0.5 -0 1.23456789e+08 2 2.2 -7"),
    ("{{with .Nested}}{{$.Count}}{{.A.B}}{{end}}", "3deep"),
    ("{{$l := .Labels}}{{$l.job}}", "node"),
    // pipelines and parentheses
    ("{{.Labels.job | toUpper}}", "NODE"),
    ("{{\"abc\" | printf \"%s-\" | len}}", "4"),
    ("{{.Count | printf \"%d!\"}}", "3!"),
    ("{{(.Nested.A).B}}", "deep"),
    ("{{len (index .List 1)}}", "1"),
    ("{{add 1 (add 2 3)}}", "6"),
    // if / else if / else
    ("{{if .T}}y{{else}}n{{end}}", "y"),
    ("{{if .F}}y{{else}}n{{end}}", "n"),
    ("{{if .Zero}}a{{else if .Empty}}b{{else if .Count}}c{{else}}d{{end}}", "c"),
    ("{{if .Labels.empty}}a{{else if .Missing}}b{{end}}", ""),
    ("{{if and .T .Count}}y{{end}}", "y"),
    ("{{if not .F}}y{{end}}", "y"),
    // range
    ("{{range .List}}[{{.}}]{{end}}", "[x][y][z]"),
    ("{{range $i, $v := .List}}{{$i}}={{$v}},{{end}}", "0=x,1=y,2=z,"),
    ("{{range $v := .List}}{{$v}}{{end}}", "xyz"),
    ("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", "empty=;instance=a:9100;job=node;"),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{range .Missing}}x{{else}}none{{end}}", "none"),
    ("{{range .List}}{{if eq . \"y\"}}{{break}}{{end}}{{.}}{{end}}", "x"),
    ("{{range .List}}{{if eq . \"y\"}}{{continue}}{{end}}{{.}}{{end}}", "xz"),
    ("{{range $i := 3}}{{$i}}{{end}}", "012"),
    ("{{range .List}}{{range $.List}}{{.}}{{break}}{{end}}{{end}}", "xxx"),
    // with
    ("{{with .Labels.job}}<{{.}}>{{end}}", "<node>"),
    ("{{with .Labels.empty}}x{{else}}empty{{end}}", "empty"),
    ("{{with .Missing}}x{{else with .Count}}{{.}}{{end}}", "3"),
    ("{{with $x := .Count}}{{$x}}{{end}}", "3"),
    // define / template / block
    ("{{define \"a\"}}A{{.}}{{end}}{{template \"a\" .Count}}", "A3"),
    ("{{define \"a\"}}[{{$}}]{{end}}{{template \"a\" \"x\"}}{{template \"a\"}}", "[x][<no value>]"),
    ("{{block \"b\" .Labels.job}}B{{.}}{{end}}", "Bnode"),
    ("{{define \"r\"}}{{if .}}{{len .}}{{template \"r\" (slice . 1)}}{{end}}{{end}}{{template \"r\" .List}}", "321"),
    // and / or return operands, short-circuit
    ("{{and 1 0 (fail)}}", "0"),
    ("{{or 0 \"\" \"x\" (fail)}}", "x"),
    ("{{or 0 .F}}", "false"),
    ("{{and 1 2}}", "2"),
    ("{{.Count | and 1}}", "3"),
    // comparisons
    ("{{eq .Labels.job \"node\"}} {{eq 1 2 3 1}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge \"b\" \"a\"}}", "true true true true true false true"),
    ("{{eq .Labels.nope \"x\"}}", "false"),
    // print family
    ("{{print 1 2 \"a\" 3}}", "1 2a3"),
    ("{{println 1 \"a\"}}", "1 a\n"),
    ("{{printf \"%.2f\" .Value}}", "12.35"),
    ("{{printf \"%s|%5s|%-5s|%d|%v|%q|%x\" \"a\" \"b\" \"c\" 7 .List \"q\" 255}}", "a|    b|c    |7|[x y z]|\"q\"|ff"),
    ("{{printf \"%g %e\" 1e21 1234.5678}}", "1e+21 1.234568e+03"),
    ("{{printf \"%d\" \"x\"}}", "%!d(string=x)"),
    // escapers
    ("{{html .Html}}", "&lt;b&gt;&amp;&#34;&#39;"),
    ("{{.Html | html}}", "&lt;b&gt;&amp;&#34;&#39;"),
    ("{{js .Html}}", "\\u003Cb\\u003E\\u0026\\\"\\'"),
    ("{{urlquery \"a b&c\"}}", "a+b%26c"),
    // index, slice, len
    ("{{index .List 2}} {{index .Labels \"job\"}} {{index .Nested \"A\" \"B\"}}", "z node deep"),
    ("{{slice .List 1 2}} {{slice \"abc\" 1}}", "[y] bc"),
    ("{{len .List}} {{len .Labels}} {{len \"abc\"}}", "3 3 3"),
];

#[test]
fn table() {
    let mut failed = Vec::new();
    for (src, want) in CASES {
        match run(src) {
            Ok(got) if got == *want => {}
            Ok(got) => failed.push(format!("{src:?}: got {got:?}, want {want:?}")),
            Err(e) => failed.push(format!("{src:?}: error {e}")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} failures:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

const ERRORS: &[(&str, &str)] = &[
    ("{{.Labels.job.x}}", "template: t:1:2: executing \"t\" at <.Labels.job.x>: can't evaluate field x in type string"),
    ("\n  {{.Missing.x}}", "template: t:2:4: executing \"t\" at <.Missing.x>: nil pointer evaluating interface {}.x"),
    ("{{index .List 5}}", "template: t:1:2: executing \"t\" at <index .List 5>: error calling index: index out of range: 5"),
    ("{{len 1 2}}", "template: t:1:2: executing \"t\" at <len 1 2>: wrong number of args for len: want 1 got 2"),
    ("{{fail}}", "template: t:1:2: executing \"t\" at <fail>: error calling fail: boom"),
    ("{{template \"nope\"}}", "template: t:1:2: executing \"t\" at <template \"nope\">: template \"nope\" not defined"),
    ("{{range .Count}}{{end}}{{range .Value}}{{end}}", "template: t:1:31: executing \"t\" at <.Value>: range can't iterate over 12.3456"),
    ("{{eq 1 1.0}}", "template: t:1:2: executing \"t\" at <eq 1 1.0>: error calling eq: incompatible types for comparison"),
    ("{{.Count 1}}", "template: t:1:2: executing \"t\" at <.Count>: can't give argument to non-function .Count"),
    ("{{nil}}", "template: t:1:2: executing \"t\" at <nil>: nil is not a command"),
    ("{{define \"a\"}}{{.x}}{{end}}{{template \"a\" 1}}", "template: t:1:16: executing \"a\" at <.x>: can't evaluate field x in type int"),
    // parse errors
    ("{{if .T}}", "template: t:1:9: unexpected EOF"),
    ("a\n{{end}}", "template: t:2:2: unexpected {{end}}"),
    ("{{nope 1}}", "template: t:1:2: function \"nope\" not defined"),
    ("{{$x}}", "template: t:1:2: undefined variable \"$x\""),
    ("{{break}}", "template: t:1:2: {{break}} outside {{range}}"),
    ("{{.X", "template: t:1:0: unclosed action"),
    ("x{{/* a", "template: t:1:1: unclosed comment"),
    ("{{\"abc}}", "template: t:1:2: unterminated quoted string"),
    ("{{if}}{{end}}", "template: t:1:4: missing value for if"),
    ("{{range .List}}{{else}}{{else}}{{end}}", "template: t:1:25: expected end; found {{else}} in range"),
    ("{{1 | 2}}", "template: t:1:6: non executable command in pipeline stage 2"),
    ("{{(1}}", "template: t:1:4: unclosed left paren"),
    ("{{define 1}}{{end}}", "template: t:1:9: unexpected \"1\" in define clause"),
];

#[test]
fn errors() {
    let mut failed = Vec::new();
    for (src, want) in ERRORS {
        match run(src) {
            Ok(got) => failed.push(format!("{src:?}: no error, got {got:?}")),
            Err(e) if e.to_string() == *want => {}
            Err(e) => failed.push(format!("{src:?}:\n  got  {e}\n  want {want}")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} failures:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn func_error_keeps_source() {
    let e = run("{{fail}}").unwrap_err();
    let src = std::error::Error::source(&e).expect("source");
    assert_eq!(src.to_string(), "boom");
    assert!(src.downcast_ref::<std::io::Error>().is_some());
}

#[test]
fn escape_html_option() {
    let o = Options {
        escape_html: true,
        ..Options::default()
    };
    assert_eq!(
        run_with(
            "<p>{{.Html}}</p>{{define \"a\"}}{{.}}{{end}}{{template \"a\" \"<i>\"}}",
            o
        )
        .unwrap(),
        "<p>&lt;b&gt;&amp;&#34;&#39;</p>&lt;i&gt;"
    );
}

#[test]
fn hostile_templates_end_in_errors() {
    // Unbounded recursion.
    let e = run("{{define \"a\"}}{{template \"a\" .}}{{end}}{{template \"a\" .}}").unwrap_err();
    assert!(
        e.to_string()
            .contains("exceeded maximum template depth (200)"),
        "{e}"
    );
    // Exponential fan-out with no output.
    let e =
        run("{{define \"a\"}}{{template \"a\" .}}{{template \"a\" .}}{{end}}{{template \"a\" .}}")
            .unwrap_err();
    assert!(matches!(e, Error::StepLimit { .. } | Error::Exec(_)), "{e}");
    // Output doubling.
    let e = run("{{define \"a\"}}xxxxxxxxxxxxxxxx{{template \"a\" .}}{{template \"a\" .}}{{end}}{{template \"a\" .}}").unwrap_err();
    assert!(
        matches!(
            e,
            Error::OutputLimit { limit: 1048576, .. } | Error::StepLimit { .. } | Error::Exec(_)
        ),
        "{e}"
    );
    let o = Options {
        max_output: 10,
        ..Options::default()
    };
    assert!(matches!(
        run_with("{{range .List}}abcd{{end}}", o),
        Err(Error::OutputLimit { limit: 10, .. })
    ));
    // Deep nesting in the parser.
    let e = run(&"{{if 1}}".repeat(10_000)).unwrap_err();
    assert!(e.to_string().contains("nesting deeper than 100"), "{e}");
    let e = run(&format!("{{{{{}1}}}}", "(".repeat(10_000))).unwrap_err();
    assert!(e.to_string().contains("nesting deeper than 100"), "{e}");
    // Nested bodies across recursive calls stay within max_depth.
    let body = format!(
        "{{{{define \"a\"}}}}{}{{{{template \"a\" .}}}}{}{{{{end}}}}{{{{template \"a\" .}}}}",
        "{{if 1}}".repeat(90),
        "{{end}}".repeat(90)
    );
    let e = run(&body).unwrap_err();
    assert!(
        e.to_string().contains("exceeded maximum template depth"),
        "{e}"
    );
    // Deep parentheses at every level of a recursion.
    let parens = format!("{}.{}", "(".repeat(99), ")".repeat(99));
    let e = run(&format!("{{{{define \"a\"}}}}{{{{template \"a\" {parens}}}}}{{{{end}}}}{{{{template \"a\" {parens}}}}}")).unwrap_err();
    assert!(
        e.to_string().contains("exceeded maximum template depth"),
        "{e}"
    );
    // Huge printf widths are capped, then the output bound applies.
    let o = Options {
        max_output: 1000,
        ..Options::default()
    };
    assert!(matches!(
        run_with("{{printf \"%0999999999d\" 1}}", o),
        Err(Error::OutputLimit { .. })
    ));
}

#[test]
fn garbage_never_panics() {
    let pieces = [
        "{{", "}}", "{{-", "-}}", "/*", "*/", "(", ")", "|", "$", "$x", ":=", "=", ".", ".A", "if",
        "else", "end", "range", "with", "define", "template", "block", "break", "continue",
        "\"s\"", "`", "'", "1", "-", " ", "\n", "nil", ",", "é", "\\",
    ];
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    for _ in 0..20_000 {
        let mut s = String::new();
        for _ in 0..(seed % 12) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let _ = run(&s);
    }
}

#[derive(Debug)]
struct Alert;

impl HostValue for Alert {
    fn type_name(&self) -> &str {
        "*Alert"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Status" => Some("firing".into()),
            "Labels" => Some(Value::map([("severity", "page")])),
            _ => None,
        }
    }
    fn display(&self) -> String {
        "alert".into()
    }
}

#[test]
fn host_values() {
    let mut t = Template::new("n");
    t.parse("{{.Status}} {{.Labels.severity}} {{.}}").unwrap();
    let v = Value::Host(std::sync::Arc::new(Alert));
    assert_eq!(t.execute(&v).unwrap(), "firing page alert");
    let mut t = Template::new("n");
    t.parse("{{.Nope}}").unwrap();
    assert_eq!(
        t.execute(&v).unwrap_err().to_string(),
        "template: n:1:2: executing \"n\" at <.Nope>: can't evaluate field Nope in type *Alert"
    );
}

/// Alertmanager's `Alerts`: a list with a computed `Firing` field.
#[derive(Debug)]
struct Alerts(Vec<(&'static str, &'static str)>);

impl HostValue for Alerts {
    fn type_name(&self) -> &str {
        "Alerts"
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Firing" => Some(Value::list(
                self.0.iter().filter(|a| a.1 == "firing").map(|a| a.0),
            )),
            _ => None,
        }
    }
    fn display(&self) -> String {
        "alerts".into()
    }
    fn as_value(&self) -> Option<Value> {
        Some(Value::list(self.0.iter().map(|a| a.0)))
    }
    fn method(
        &self,
        name: &str,
        args: &[Value],
    ) -> Option<Result<Value, koban_template::FuncError>> {
        match (name, args) {
            ("Without", [Value::String(s)]) => Some(Ok(Value::list(
                self.0.iter().filter(|a| a.0 != s).map(|a| a.0),
            ))),
            ("Without", _) => Some(Err("Without wants one string".into())),
            _ => None,
        }
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[test]
fn host_values_with_a_plain_form_range_and_index() {
    let v = Value::map([(
        "Alerts",
        Value::Host(std::sync::Arc::new(Alerts(vec![
            ("a", "firing"),
            ("b", "resolved"),
            ("c", "firing"),
        ]))),
    )]);
    let mut t = Template::new("am");
    t.parse("{{range .Alerts}}{{.}}{{end}}|{{len .Alerts}}|{{index .Alerts 1}}|{{.Alerts.Firing}}|{{.Alerts}}|{{len .Alerts.Firing}}").unwrap();
    assert_eq!(t.execute(&v).unwrap(), "abc|3|b|[a c]|[a b c]|2");
    let mut t = Template::new("m");
    t.parse("{{.Alerts.Without \"b\"}} {{$a := .Alerts}}{{\"a\" | $a.Without}} {{(.Alerts).Without \"c\"}}").unwrap();
    assert_eq!(t.execute(&v).unwrap(), "[a c] [b c] [a b]");
    let mut t = Template::new("m");
    t.parse("{{.Alerts.Without 1}}").unwrap();
    assert_eq!(t.execute(&v).unwrap_err().to_string(), "template: m:1:2: executing \"m\" at <.Alerts.Without 1>: error calling Without: Without wants one string");
    let mut t = Template::new("m");
    t.parse("{{.Alerts.Nope 1}}").unwrap();
    assert!(t
        .execute(&v)
        .unwrap_err()
        .to_string()
        .ends_with("can't give argument to non-function .Alerts.Nope"));
    let Value::Map(m) = &v else { unreachable!() };
    let Some(Value::Host(h)) = m.get("Alerts") else {
        unreachable!()
    };
    assert!(h
        .as_any()
        .and_then(|a| a.downcast_ref::<Alerts>())
        .is_some());
    let empty = Value::Host(std::sync::Arc::new(Alerts(vec![])));
    let mut t = Template::new("am");
    t.parse("{{if .}}some{{else}}none{{end}}").unwrap();
    assert_eq!(t.execute(&empty).unwrap(), "none");
}

#[test]
fn call_and_multiple_parses() {
    let f: koban_template::Func = std::sync::Arc::new(|a: &[Value]| Ok(Value::Int(a.len() as i64)));
    let data = Value::map([("F", Value::Func(f))]);
    let mut t = Template::new("c");
    t.parse("{{call .F 1 2}}").unwrap();
    assert_eq!(t.execute(&data).unwrap(), "2");
    // A later parse of only defines keeps the body; defines are shared.
    t.parse("{{define \"x\"}}X{{end}}\n").unwrap();
    assert_eq!(t.execute(&data).unwrap(), "2");
    assert_eq!(t.execute_template("x", &data).unwrap(), "X");
    assert_eq!(t.templates(), vec!["c", "x"]);
    assert_eq!(
        t.execute_template("y", &data).unwrap_err().to_string(),
        "template: no template \"y\" associated with template \"c\""
    );
}

#[test]
fn errors_inside_defines_name_the_parsed_and_the_executing_template() {
    let mut t = Template::new("top");
    t.parse("a\n{{define \"x\"}}{{template \"y\" .}}{{end}}\n{{define \"y\"}}{{index \"ab\" $}}{{end}}{{template \"x\" 7}}").unwrap();
    assert_eq!(
        t.execute(&Value::Nil).unwrap_err().to_string(),
        "template: top:3:16: executing \"y\" at <index \"ab\" $>: error calling index: index out of range: 7"
    );
}

#[test]
fn templates_are_shareable_across_threads() {
    fn check<T: Send + Sync>() {}
    check::<Template>();
    check::<Value>();
    check::<Error>();
}
