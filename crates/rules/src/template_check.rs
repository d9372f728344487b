//! Parse-checks rule templates for the loader, as promtool does: the text
//! is parsed after Prometheus's variable definitions (`$labels`,
//! `$externalLabels`, `$externalURL`, `$value`), with Prometheus's template
//! function names known. Nothing is executed.
//!
//! Stand-in until `crate::template::check` (the template engineer's, with
//! the real functions) lands; the function list is Prometheus's.

use koban_template::{Funcs, Template, Value};

/// Prometheus's definitions, prepended to every rule template.
const DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Prometheus's template functions (prometheus/template), besides Go's.
const FUNCS: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "stripPort",
    "stripDomain",
    "toTime",
    "toDuration",
];

/// `Ok` when `text` parses as a rule template called `name`; else the
/// error, positioned in `text` (line and column, the definitions excluded).
pub fn check(name: &str, text: &str) -> Result<(), String> {
    let mut funcs = Funcs::new();
    for f in FUNCS {
        funcs.insert(*f, |_: &[Value]| Ok(Value::Nil));
    }
    let mut t = Template::new(name).funcs(&funcs);
    match t.parse(&format!("{DEFS}{text}")) {
        Ok(_) => Ok(()),
        Err(koban_template::Error::Parse {
            name,
            line,
            col,
            msg,
        }) => {
            let col = if line == 1 {
                col.saturating_sub(DEFS.len())
            } else {
                col
            };
            Err(format!("template: {name}:{line}:{col}: {msg}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn knows_prometheus_variables_and_functions() {
        check(
            "a",
            "{{ $labels.job }} {{ $value | humanize }} {{ query \"up\" | first | value }}",
        )
        .unwrap();
        check(
            "a",
            "{{ $externalLabels.x }} {{ $externalURL }} {{ toUpper \"x\" }}",
        )
        .unwrap();
    }

    #[test]
    fn errors_name_the_template_and_position() {
        let e = check("__alert_X", "{{ $foo }}").unwrap_err();
        assert!(e.starts_with("template: __alert_X:1:"), "{e}");
        assert!(e.contains("$foo"), "{e}");
        let e = check("__alert_X", "{{ nofunc }}").unwrap_err();
        assert!(e.contains("nofunc"), "{e}");
        assert!(check("__alert_X", "{{ .Foo ").is_err());
    }
}
