//! How results are printed: promtool's notation for labels, durations and
//! floats (so failure reports read the same), the `--diff` view and the
//! JUnit XML of `--junit`.

use std::fmt::Write as _;

/// Go's `strconv.Quote`: double quotes, Go escapes, printable Unicode kept.
pub fn go_quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\x07' => o.push_str("\\a"),
            '\x08' => o.push_str("\\b"),
            '\x0c' => o.push_str("\\f"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\x0b' => o.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A label set as Prometheus prints it: `{a="1", b="2"}` (pairs sorted).
pub fn labels_string(pairs: &[(String, String)]) -> String {
    let mut o = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            o.push_str(", ");
        }
        o.push_str(k);
        o.push('=');
        o.push_str(&go_quote(v));
    }
    o.push('}');
    o
}

/// Go's `time.Duration` text for whole milliseconds: `0s`, `500ms`,
/// `1m0s`, `1h0m0s`, `1m30.5s`. promtool prints rule evaluation times so.
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = ms < 0;
    let ms = ms.unsigned_abs();
    let mut o = String::new();
    if neg {
        o.push('-');
    }
    if ms < 1000 {
        let _ = write!(o, "{ms}ms");
        return o;
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        let _ = write!(o, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(o, "{m}m");
    }
    let _ = write!(o, "{s}");
    if frac > 0 {
        let f = format!("{frac:03}");
        let _ = write!(o, ".{}", f.trim_end_matches('0'));
    }
    o.push('s');
    o
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: shortest digits,
/// `1E+00`, `3.333333333333333E-01`, `+Inf`, `NaN`.
pub fn float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:E}");
    let (mant, exp) = s.split_once('E').expect("BUG: {:E} has an exponent");
    let exp: i32 = exp.parse().expect("BUG: {:E} exponent is a number");
    format!("{mant}E{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Prefixes every line but the first with `indent` (promtool's
/// `indentLines`).
pub fn indent_lines(s: &str, indent: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for (i, l) in s.split('\n').enumerate() {
        if i > 0 {
            o.push('\n');
            o.push_str(indent);
        }
        o.push_str(l);
    }
    o
}

/// One alert as compared: labels (with `alertname`) and annotations,
/// both sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AlertView {
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
}

/// A list of alerts as promtool prints it: `[]`, or numbered entries with
/// their `Labels:` and `Annotations:` lines.
pub fn alerts_string(a: &[AlertView]) -> String {
    if a.is_empty() {
        return "[]".into();
    }
    let mut o = String::from("[");
    for (i, x) in a.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let body = format!(
            "\nLabels:{}\nAnnotations:{}",
            labels_string(&x.labels),
            labels_string(&x.annotations)
        );
        let _ = write!(o, "\n{i}:{}", indent_lines(&body, "  "));
    }
    o.push_str("\n]");
    o
}

/// The `--diff` view of expected against got alerts: each alert's labels
/// and annotations, with lines only expected marked `-` and lines only
/// got marked `+` (red and green on a terminal, as promtool's).
pub fn alerts_diff(exp: &[AlertView], got: &[AlertView], color: bool) -> String {
    let (red, green, reset) = if color {
        ("\x1b[31m", "\x1b[32m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let lines = |a: &AlertView| -> Vec<String> {
        let mut v = Vec::new();
        v.push("{".to_string());
        v.push("  \"Labels\": {".to_string());
        for (k, val) in &a.labels {
            v.push(format!("    {}: {}", go_quote(k), go_quote(val)));
        }
        v.push("  },".to_string());
        v.push("  \"Annotations\": {".to_string());
        for (k, val) in &a.annotations {
            v.push(format!("    {}: {}", go_quote(k), go_quote(val)));
        }
        v.push("  }".to_string());
        v.push("}".to_string());
        v
    };
    let mut o = String::from("[");
    let n = exp.len().max(got.len());
    for i in 0..n {
        let e = exp.get(i).map(lines).unwrap_or_default();
        let g = got.get(i).map(lines).unwrap_or_default();
        for d in diff_lines(&e, &g) {
            o.push('\n');
            match d {
                Diff::Same(l) => {
                    o.push_str("  ");
                    o.push_str(l);
                }
                Diff::Exp(l) => {
                    let _ = write!(o, "{red}- {l}{reset}");
                }
                Diff::Got(l) => {
                    let _ = write!(o, "{green}+ {l}{reset}");
                }
            }
        }
        if i + 1 < n {
            o.push(',');
        }
    }
    o.push_str("\n]");
    o
}

enum Diff<'a> {
    Same(&'a str),
    Exp(&'a str),
    Got(&'a str),
}

/// A line diff by longest common subsequence (alerts are small).
fn diff_lines<'a>(a: &'a [String], b: &'a [String]) -> Vec<Diff<'a>> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(Diff::Same(&a[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(Diff::Got(&b[j]));
            j += 1;
        } else {
            out.push(Diff::Exp(&a[i]));
            i += 1;
        }
    }
    out
}

/// JUnit results, one suite per test file and one case per test group,
/// written by `--junit` as later promtool does.
#[derive(Debug, Default)]
pub struct Junit {
    pub suites: Vec<Suite>,
}

#[derive(Debug, Default)]
pub struct Suite {
    pub name: String,
    pub timestamp: String,
    pub cases: Vec<Case>,
    /// Set when the file could not be read or parsed at all.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct Case {
    pub name: String,
    pub failures: Vec<String>,
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            '\n' => o.push_str("&#xA;"),
            '\t' => o.push_str("&#x9;"),
            '\r' => o.push_str("&#xD;"),
            c => o.push(c),
        }
    }
    o
}

impl Junit {
    /// The XML document: `<testsuites>` of `<testsuite name tests failures
    /// errors skipped timestamp>` of `<testcase name>` with `<failure>` and
    /// `<error>` children.
    pub fn to_xml(&self) -> String {
        let mut o = String::from("<testsuites>");
        for s in &self.suites {
            // A file that could not be read counts one error on an
            // "unknown" case, as promtool's.
            let mut cases: Vec<(&str, &[String], Option<&str>)> = s
                .cases
                .iter()
                .map(|c| (c.name.as_str(), c.failures.as_slice(), None))
                .collect();
            if let Some(e) = &s.error {
                if cases.is_empty() {
                    cases.push(("unknown", &[], Some(e)));
                } else if let Some(last) = cases.last_mut() {
                    last.2 = Some(e);
                }
            }
            let failures: usize = s.cases.iter().map(|c| c.failures.len()).sum();
            let _ = write!(
                o,
                "<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" timestamp=\"{}\">",
                xml_escape(&s.name),
                cases.len(),
                failures,
                usize::from(s.error.is_some()),
                xml_escape(&s.timestamp)
            );
            for (name, fails, err) in cases {
                let _ = write!(o, "<testcase name=\"{}\">", xml_escape(name));
                for f in fails {
                    let _ = write!(o, "<failure>{}</failure>", xml_escape(f));
                }
                if let Some(e) = err {
                    let _ = write!(o, "<error>{}</error>", xml_escape(e));
                }
                o.push_str("</testcase>");
            }
            o.push_str("</testsuite>");
        }
        o.push_str("</testsuites>");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &str, b: &str) -> (String, String) {
        (a.into(), b.into())
    }

    #[test]
    fn prints_as_go_does() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(500), "500ms");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(go_duration(90_500), "1m30.5s");
        assert_eq!(float_e(1.0), "1E+00");
        assert_eq!(float_e(1.0 / 3.0), "3.333333333333333E-01");
        assert_eq!(float_e(1e21), "1E+21");
        assert_eq!(float_e(-0.0), "-0E+00");
        assert_eq!(float_e(f64::INFINITY), "+Inf");
        assert_eq!(go_quote("a\"b\\\n\u{1}é"), "\"a\\\"b\\\\\\n\\x01é\"");
        assert_eq!(
            labels_string(&[p("a", "1"), p("b", "x y")]),
            "{a=\"1\", b=\"x y\"}"
        );
    }

    #[test]
    fn alert_list_reads_as_promtools() {
        let a = AlertView {
            labels: vec![p("alertname", "A"), p("i", "a")],
            annotations: vec![p("summary", "s")],
        };
        assert_eq!(alerts_string(&[]), "[]");
        assert_eq!(
            indent_lines(&alerts_string(&[a.clone(), a]), "            "),
            "[\n            0:\n              Labels:{alertname=\"A\", i=\"a\"}\n              Annotations:{summary=\"s\"},\n            1:\n              Labels:{alertname=\"A\", i=\"a\"}\n              Annotations:{summary=\"s\"}\n            ]"
        );
    }

    #[test]
    fn diff_marks_what_differs() {
        let e = AlertView {
            labels: vec![p("alertname", "A"), p("sev", "page")],
            annotations: vec![],
        };
        let g = AlertView {
            labels: vec![p("alertname", "A"), p("sev", "warn")],
            annotations: vec![],
        };
        let d = alerts_diff(&[e], &[g], false);
        assert!(d.contains("-     \"sev\": \"page\""), "{d}");
        assert!(d.contains("+     \"sev\": \"warn\""), "{d}");
        assert!(d.contains("\n      \"alertname\": \"A\""), "{d}");
    }

    #[test]
    fn junit_counts_cases_failures_and_errors() {
        let j = Junit {
            suites: vec![
                Suite {
                    name: "a.yml".into(),
                    timestamp: "t".into(),
                    cases: vec![Case {
                        name: "g<1>".into(),
                        failures: vec!["x\ny".into()],
                    }],
                    error: None,
                },
                Suite {
                    name: "b.yml".into(),
                    error: Some("cannot read".into()),
                    ..Default::default()
                },
            ],
        };
        assert_eq!(
            j.to_xml(),
            "<testsuites><testsuite name=\"a.yml\" tests=\"1\" failures=\"1\" errors=\"0\" skipped=\"0\" timestamp=\"t\"><testcase name=\"g&lt;1&gt;\"><failure>x&#xA;y</failure></testcase></testsuite><testsuite name=\"b.yml\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" timestamp=\"\"><testcase name=\"unknown\"><error>cannot read</error></testcase></testsuite></testsuites>"
        );
    }
}
