//! The text-format writer (one sample line), as Prometheus's `/federate` writes.

use super::float::format_float;
use crate::labels::{
    escape_label_value, is_valid_label_name, is_valid_metric_name, Labels, METRIC_NAME,
};
use std::fmt::Write as _;

/// Appends one text-format line `name{a="1",b="2"} value [timestamp]\n`.
///
/// Label values are escaped (`\\`, `\"`, `\n`); the value uses Prometheus
/// float formatting ([`format_float`]); `t` is milliseconds. A metric name
/// or label name that is not a legacy name is written quoted
/// (`{"my.metric","my.label"="v"}`), as newer Prometheus does. Does not
/// allocate unless a value needs escaping.
pub fn write_text(out: &mut String, labels: &Labels, v: f64, t: Option<i64>) {
    let name = labels.metric_name();
    let legacy = is_valid_metric_name(name);
    let mut open = false;
    let mut first = true;
    if legacy {
        out.push_str(name);
    } else if !name.is_empty() {
        out.push_str("{\"");
        out.push_str(&escape_label_value(name));
        out.push('"');
        open = true;
        first = false;
    }
    for l in labels.iter().filter(|l| l.name != METRIC_NAME) {
        if !open {
            out.push('{');
            open = true;
        }
        if !first {
            out.push(',');
        }
        first = false;
        if is_valid_label_name(&l.name) {
            out.push_str(&l.name);
        } else {
            out.push('"');
            out.push_str(&escape_label_value(&l.name));
            out.push('"');
        }
        out.push_str("=\"");
        out.push_str(&escape_label_value(&l.value));
        out.push('"');
    }
    if open {
        out.push('}');
    }
    out.push(' ');
    format_float(out, v);
    if let Some(t) = t {
        let _ = write!(out, " {t}");
    }
    out.push('\n');
}
