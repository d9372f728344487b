//! PromQL and HTTP API compatibility against Debian's Prometheus.
//!
//! The same history (`shared/bench/history.py --targets 2 --hours 3`) is
//! imported into Prometheus (`promtool tsdb create-blocks-from openmetrics`)
//! and into Koban (`koban tsdb create-blocks-from openmetrics`); both servers
//! are started on the imported data and asked the same queries (instant
//! queries at several times off the 15s sample grid, range queries with a 60s
//! step off the grid) covering every PromQL function family, plus the
//! metadata endpoints. Answers must match: status (and error type), result
//! type, the set of label sets, timestamps, and values to 1e-9 relative
//! (NaN equals NaN). Sort functions and topk/bottomk are also compared in
//! order.
//!
//! Query times are off the sample grid so that the Prometheus 2.x closed
//! range windows and the Prometheus 3.x left-open windows (Koban's) select
//! the same samples. Every other known difference is an explicit, named
//! [`Known`] exception, listed with its reason in `tests/compat/DIFFERENCES.md`.
//!
//! A missing `prometheus`/`promtool` fails the test in CI (CI set) and skips
//! it elsewhere.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// First sample of the history (history.py's default `--start`).
const START: i64 = 1_700_000_000;
/// Hours of history.
const HOURS: i64 = 3;
/// Start offset of the long range queries that end near the end of the data.
const LONG_BEFORE: i64 = HOURS * 3600 - 53 - 14 * 3600;
/// Relative tolerance for float comparison.
const REL_TOL: f64 = 1e-9;

/// A child process killed (and reaped) on drop.
struct Proc {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn shared_dir() -> PathBuf {
    match std::env::var("KOBAN_SHARED_DIR") {
        Ok(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

// ---------------------------------------------------------------------------
// Known differences (see tests/compat/DIFFERENCES.md).

/// A documented, expected difference between Prometheus 2.42 and Koban.
struct Known {
    id: &'static str,
    reason: &'static str,
}

/// Prometheus 2.51 (PR #13725) changed where `rate`/`increase` stop
/// extrapolating towards a counter's zero point when the series starts inside
/// the window; Koban follows the newer rule.
const RATE_ZERO_POINT: Known = Known {
    id: "rate-zero-point",
    reason: "Prometheus >= 2.51 (PR #13725) applies the counter zero-point limit after the \
             half-interval rule when a series starts inside the window; 2.42 before it",
};

/// Prometheus 2.46 (PR #12595) drops the metric name for `atan2` like the
/// other arithmetic operators; 2.42 keeps the left-hand side's name.
const ATAN2_DROPS_NAME: Known = Known {
    id: "atan2-drops-name",
    reason: "Prometheus >= 2.46 (PR #12595) drops __name__ for atan2; 2.42 keeps it",
};

/// Which of several equal-valued series `topk`/`bottomk` keep is not
/// defined (it depends on heap order).
const TOPK_TIES: Known = Known {
    id: "topk-ties",
    reason: "with ties at the k-th place, which series topk/bottomk keeps is undefined",
};

/// Prometheus 3 accepts any UTF-8 label name (`label_replace`/`label_join`
/// destinations included); 2.42 only `[a-zA-Z_][a-zA-Z0-9_]*`.
const UTF8_LABEL_NAMES: Known = Known {
    id: "utf8-label-names",
    reason: "Prometheus 3 validates label names as UTF-8 (any non-empty name); \
             2.42 rejects names outside [a-zA-Z_][a-zA-Z0-9_]*",
};

/// `/api/v1/series` with `end` before `start`: Prometheus 2.42 selects
/// nothing (while its `/labels` and `/label/<name>/values` answer as if the
/// range covered the data); Koban answers all three alike.
const INVERTED_SERIES_RANGE: Known = Known {
    id: "series-inverted-range",
    reason: "with end < start, Prometheus 2.42's /api/v1/series returns [] but its /labels and \
             /label/<name>/values do not; Koban treats the three endpoints alike",
};

/// Prometheus 2.47+ adds `droppedTargetCounts` (per scrape pool) to
/// `/api/v1/targets`; 2.42 does not have it.
const TARGETS_DROPPED_COUNTS: Known = Known {
    id: "targets-dropped-counts",
    reason: "Prometheus >= 2.47 answers /api/v1/targets with droppedTargetCounts; 2.42 without",
};

/// The named exception for a metadata request, if any.
fn meta_exception(path: &str, params: &[(&str, String)]) -> Option<&'static Known> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    if path == "/api/v1/targets" {
        return Some(&TARGETS_DROPPED_COUNTS);
    }
    if path == "/api/v1/label/1x/values" {
        return Some(&UTF8_LABEL_NAMES);
    }
    match (path, param("start"), param("end")) {
        ("/api/v1/series", Some(s), Some(e)) if e < s => Some(&INVERTED_SERIES_RANGE),
        _ => None,
    }
}

/// Date functions on NaN or ±Inf: Prometheus converts the value to int64
/// seconds (NaN and ±Inf become the minimum int64) and answers a date far
/// in the past or future (`year(vector(NaN))` = 292277026596); Koban passes
/// the NaN/±Inf through.
const DATE_OF_NONFINITE: Known = Known {
    id: "date-of-nonfinite",
    reason: "date functions (year, month, hour, day_of_*, days_in_month) of NaN/±Inf: Prometheus \
             answers the date of int64(v) (garbage), Koban NaN/±Inf",
};

/// `count_values` with an invalid label name: Prometheus fails at
/// evaluation (`execution`, 422), Koban while checking the query
/// (`bad_data`, 400).
const COUNT_VALUES_LABEL_ERRORTYPE: Known = Known {
    id: "count_values-label-errortype",
    reason: "count_values(\"\", ...): Prometheus reports the invalid label name as an execution \
             error (422), Koban as bad_data (400)",
};

/// Prometheus 3 range windows (and Koban's) are left-open `(t-r, t]`; 2.x
/// windows are closed `[t-r, t]`. Every other case avoids the sample grid;
/// these cases sit on it on purpose, to show the difference.
const LEFT_OPEN_WINDOWS: Known = Known {
    id: "left-open-windows",
    reason: "Prometheus 3 range windows exclude a sample exactly at t-range; 2.x includes it \
             (only on-grid query times show it)",
};

/// A request target with raw (unescaped) `"` or `{}` characters, as sent by
/// `curl -g 'http://host/api/v1/query?query=up{job="x"}'`: Prometheus (Go)
/// answers it; Koban's HTTP parser refuses it with an empty 400.
const KOBAN_RAW_QUOTE_URI: Known = Known {
    id: "koban-bug-raw-quote-uri",
    reason: "KOBAN BUG: a request line with a raw '\"' in the query string gets an empty \
             HTTP 400 (hyper's strict URI parsing); Prometheus answers it",
};

/// Functions added after Prometheus 2.42: Prometheus rejects them as unknown,
/// Koban answers.
const NEWER_FUNCTION: Known = Known {
    id: "newer-function",
    reason: "function added in Prometheus 2.43+/3.x (sort_by_label, mad_over_time, \
             limitk, limit_ratio); 2.42 answers bad_data",
};

// ---------------------------------------------------------------------------
// Cases.

/// How a case is asked.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Instant queries at the [`instant_times`] and a range query.
    Both,
    /// Instant queries only (range vectors, sort functions).
    InstantOnly,
    /// Range query only.
    RangeOnly,
    /// Range query over the first 30 minutes of the history only (series
    /// starting inside the windows).
    EarlyRange,
    /// Range query over 14 hours from START + the given seconds (step 5m):
    /// longer than Koban's evaluation block (12h), mostly outside the data.
    LongRange(i64),
    /// One instant query at START + the given seconds.
    InstantAt(i64),
}

struct Case {
    query: &'static str,
    /// The query sent to Koban when it differs (a renamed function).
    koban_query: Option<&'static str>,
    mode: Mode,
    /// Compare the result order (sort, topk) of instant vectors.
    ordered: bool,
    known: Option<&'static Known>,
}

const fn q(query: &'static str) -> Case {
    Case {
        query,
        koban_query: None,
        mode: Mode::Both,
        ordered: false,
        known: None,
    }
}

const fn instant(query: &'static str) -> Case {
    Case {
        mode: Mode::InstantOnly,
        ..q(query)
    }
}

const fn range(query: &'static str) -> Case {
    Case {
        mode: Mode::RangeOnly,
        ..q(query)
    }
}

const fn sorted(query: &'static str) -> Case {
    Case {
        mode: Mode::InstantOnly,
        ordered: true,
        ..q(query)
    }
}

const fn early(query: &'static str) -> Case {
    Case {
        mode: Mode::EarlyRange,
        ..q(query)
    }
}

const fn known(query: &'static str, k: &'static Known) -> Case {
    Case {
        known: Some(k),
        ..q(query)
    }
}

const HQ_BUCKETS: &str = "sum without (mode) (label_replace(label_replace(label_replace(\
rate(node_cpu_seconds_total{mode=~\"system|user|idle\"}[5m]), \"le\", \"0.1\", \"mode\", \"system\"), \
\"le\", \"1\", \"mode\", \"user\"), \"le\", \"+Inf\", \"mode\", \"idle\"))";

fn cases() -> Vec<Case> {
    let hq = |phi: &str| -> &'static str {
        Box::leak(format!("histogram_quantile({phi}, {HQ_BUCKETS})").into_boxed_str())
    };
    vec![
        // Literals and selectors with every matcher kind.
        q("1"),
        q("1 + 2 * 3 ^ 2 % 5"),
        instant("\"a string\""),
        q("-node_load1"),
        q("node_load1"),
        q("node_cpu_seconds_total{mode=\"idle\"}"),
        q("node_cpu_seconds_total{mode!=\"idle\", cpu=\"1\"}"),
        q("node_cpu_seconds_total{mode=~\"user|system\"}"),
        q("node_cpu_seconds_total{mode!~\"i.*|s.*\"}"),
        q("{__name__=~\"node_load.*\"}"),
        q("{__name__=~\"node_memory_.*_bytes\", instance=\"127.0.0.1:21001\"}"),
        q("{job=\"node\", __name__!~\"go_.*|node_.*\"}"),
        q("nonexistent_metric"),
        q("node_load1 offset 10m"),
        q("node_load1 offset -10m"),
        q("node_load1 @ 1700003607"),
        q("node_load1 @ start()"),
        q("node_load1 @ end()"),
        q("rate(node_cpu_seconds_total{mode=\"user\"}[5m] @ start())"),
        Case {
            mode: Mode::LongRange(2407),
            ..q("node_load1 @ 1700003607")
        },
        Case {
            mode: Mode::LongRange(2407),
            ..q("max_over_time(node_load1[1h])")
        },
        Case {
            mode: Mode::LongRange(2407),
            ..q("rate(node_cpu_seconds_total{mode=\"user\"}[1h]) @ 1700005407")
        },
        Case {
            mode: Mode::LongRange(2407),
            ..range("node_load1 @ start()")
        },
        Case {
            mode: Mode::LongRange(LONG_BEFORE),
            ..range("node_load1 @ end()")
        },
        Case {
            mode: Mode::LongRange(LONG_BEFORE),
            ..range("rate(node_cpu_seconds_total{mode=\"user\"}[5m] @ end())")
        },
        q("rate(node_context_switches_total[5m] @ 1700005007 offset 1m)"),
        instant("node_load1[5m]"),
        instant("node_load1[2m] offset 1m"),
        instant("node_cpu_seconds_total{cpu=\"0\", mode=\"user\"}[3m] @ 1700001007"),
        // Counter and gauge range functions.
        q("rate(node_cpu_seconds_total[5m])"),
        q("rate(node_network_receive_bytes_total[1m])"),
        q("irate(node_cpu_seconds_total{mode=\"user\"}[5m])"),
        q("increase(node_context_switches_total[10m])"),
        q("increase(node_network_transmit_bytes_total[7m])"),
        q("delta(node_memory_MemFree_bytes[10m])"),
        q("idelta(node_memory_MemFree_bytes[5m])"),
        q("deriv(node_filesystem_avail_bytes[1h])"),
        q("predict_linear(node_filesystem_avail_bytes[1h], 3600)"),
        q("predict_linear(node_load1[10m], 600)"),
        q("resets(node_cpu_seconds_total[1h])"),
        q("changes(node_load1[30m])"),
        q("changes(node_uname_info[1h])"),
        // *_over_time.
        q("avg_over_time(node_load1[1h])"),
        q("min_over_time(node_memory_MemFree_bytes[15m])"),
        q("max_over_time(node_memory_MemFree_bytes[15m])"),
        q("sum_over_time(node_load5[10m])"),
        q("count_over_time(node_load1[10m])"),
        q("quantile_over_time(0.9, node_load5[15m])"),
        q("quantile_over_time(0, node_load1[15m])"),
        q("quantile_over_time(1, node_load1[15m])"),
        q("quantile_over_time(0.25, node_memory_Active_bytes[30m])"),
        q("stddev_over_time(node_load1[30m])"),
        q("stdvar_over_time(node_memory_MemFree_bytes[30m])"),
        q("last_over_time(node_load1[5m])"),
        q("present_over_time(node_load1[5m])"),
        q("absent_over_time(node_load1[5m])"),
        q("absent_over_time(nonexistent_metric{job=\"x\"}[5m])"),
        // Aggregations.
        q("sum(node_load1)"),
        q("sum by (instance) (rate(node_network_receive_bytes_total[5m]))"),
        q("sum without (cpu) (rate(node_cpu_seconds_total[5m]))"),
        q("avg by (mode) (rate(node_cpu_seconds_total[5m]))"),
        q("min by (instance) (node_memory_MemFree_bytes)"),
        q("max without (instance) (node_load15)"),
        q("count by (job) ({__name__=~\"node_.+\"})"),
        q("count without (__name__) (node_load1)"),
        q("stddev by (instance) (rate(node_cpu_seconds_total[5m]))"),
        q("stdvar(node_load1)"),
        q("group by (instance, mode) (node_cpu_seconds_total)"),
        q("group(node_load1)"),
        q("quantile(0.5, rate(node_cpu_seconds_total[5m]))"),
        q("quantile by (instance) (0.9, rate(node_cpu_seconds_total[5m]))"),
        q("count_values(\"load\", node_load1)"),
        q("count_values by (instance) (\"cpu_rate\", round(rate(node_cpu_seconds_total[5m])))"),
        known("topk(3, rate(node_disk_io_time_seconds_total[5m]))", &TOPK_TIES),
        q("topk(3, node_disk_io_time_seconds_total)"),
        q("bottomk by (instance) (2, node_memory_MemFree_bytes)"),
        q("topk(2, node_network_receive_bytes_total)"),
        q("sum(rate(node_cpu_seconds_total[5m])) by (instance)"),
        // Binary operators and vector matching.
        q("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes"),
        q("node_memory_MemTotal_bytes - node_memory_MemFree_bytes"),
        q("node_load1 * 2 + 1"),
        q("2 ^ node_load1"),
        q("node_load1 % 0.1"),
        known("node_load5 atan2 node_load1", &ATAN2_DROPS_NAME),
        q("node_load5 atan2 ignoring(__name__) node_load1 + 0"),
        q("node_load1 > 0.3"),
        q("node_load1 > bool 0.3"),
        q("node_load1 == bool node_load5"),
        q("0.3 < node_load1"),
        q("node_load1 != node_load5"),
        q("node_load1 <= on(instance) node_load5"),
        q("node_load1 / ignoring(__name__) node_load5"),
        q("sum by (mode) (irate(node_cpu_seconds_total[2m])) / on() group_left count(node_cpu_seconds_total{mode=\"idle\"})"),
        q("rate(node_cpu_seconds_total[5m]) / on(instance) group_left node_load1"),
        q("rate(node_cpu_seconds_total[5m]) * on(instance) group_left(nodename, release) node_uname_info"),
        q("node_uname_info * on(instance) group_right(nodename) rate(node_cpu_seconds_total{mode=\"user\"}[5m])"),
        q("node_filesystem_avail_bytes / ignoring(device, fstype, mountpoint) group_left node_memory_MemTotal_bytes"),
        q("node_cpu_seconds_total + on(instance) node_load1"),
        // Set operators.
        q("node_load1 and node_load5"),
        q("node_load1 and on(instance) node_load5 > 100"),
        q("node_load1 or node_load5"),
        q("node_load1 unless node_load5"),
        q("node_load1 unless on(instance) (node_load5 > 0.2)"),
        q("node_cpu_seconds_total{mode=\"idle\"} or on(cpu) node_cpu_seconds_total{mode=\"user\"}"),
        // Math.
        q("abs(-node_load1)"),
        q("ceil(node_load1)"),
        q("floor(node_load1 * 10)"),
        q("round(node_load1)"),
        q("round(node_load1, 0.05)"),
        q("round(rate(node_cpu_seconds_total[5m]), 10)"),
        q("exp(node_load1)"),
        q("ln(node_memory_MemFree_bytes)"),
        q("log2(node_memory_MemFree_bytes)"),
        q("log10(node_load1)"),
        q("sqrt(node_load5)"),
        q("sgn(node_load1 - 0.3)"),
        q("clamp(node_load1, 0.1, 0.2)"),
        q("clamp(node_load1, 2, 1)"),
        q("clamp_min(node_load1, 0.2)"),
        q("clamp_max(node_load1, 0.2)"),
        q("sin(node_load1) + cos(node_load1) + tan(node_load1)"),
        q("asin(node_load1 / 10) + acos(node_load1 / 10) + atan(node_load1)"),
        q("sinh(node_load1) + cosh(node_load1) + tanh(node_load1)"),
        q("asinh(node_load1) + acosh(node_load1 + 1) + atanh(node_load1 / 10)"),
        q("deg(node_load1) + rad(node_load1)"),
        q("pi()"),
        q("ln(node_load1 - 1)"),
        q("node_load1 / 0"),
        q("-node_load1 / 0"),
        q("0 * (node_load1 / 0)"),
        // Labels.
        q("label_replace(node_load1, \"host\", \"$1\", \"instance\", \"(.*):.*\")"),
        q("label_replace(node_load1, \"instance\", \"\", \"instance\", \".*\")"),
        q("label_replace(node_load1, \"x\", \"$2-$1\", \"instance\", \"([^:]*):(.*)\")"),
        q("label_replace(node_load1, \"x\", \"y\", \"instance\", \"nomatch\")"),
        q("label_join(node_filesystem_avail_bytes, \"where\", \"|\", \"device\", \"mountpoint\", \"fstype\")"),
        q("label_join(node_load1, \"job\", \"\", \"instance\")"),
        // Sorting (order compared).
        sorted("sort(node_load1)"),
        sorted("sort_desc(rate(node_cpu_seconds_total[5m]))"),
        sorted("sort(node_memory_MemFree_bytes)"),
        sorted("topk(3, rate(node_cpu_seconds_total[5m]))"),
        sorted("bottomk(3, {__name__=~\"node_memory_(MemFree|Cached)_bytes\"})"),
        // Classic histograms (the history has none: buckets are built from cpu modes).
        q(hq("0.9")),
        q(hq("0.5")),
        q(hq("0")),
        q(hq("1")),
        q(hq("-1")),
        q(hq("2")),
        // absent, vector, scalar, time.
        q("absent(nonexistent_metric{job=\"x\", instance=~\"a.*\"})"),
        q("absent(node_load1)"),
        q("vector(1)"),
        q("vector(time())"),
        q("scalar(sum(node_load1))"),
        q("scalar(node_load1)"),
        q("node_load1 * scalar(count(node_load1))"),
        q("time()"),
        q("timestamp(node_load1)"),
        q("timestamp(node_load1 offset 3m)"),
        q("minute()"),
        q("hour()"),
        q("day_of_week()"),
        q("day_of_month()"),
        q("day_of_year()"),
        q("days_in_month()"),
        q("month()"),
        q("year()"),
        q("hour(node_boot_time_seconds)"),
        q("day_of_year(node_boot_time_seconds)"),
        q("days_in_month(node_boot_time_seconds)"),
        q("minute(timestamp(node_load1))"),
        // Subqueries.
        q("max_over_time(rate(node_cpu_seconds_total{mode=\"user\"}[5m])[30m:1m])"),
        q("avg_over_time(node_load1[10m:])"),
        q("min_over_time(node_load1[20m:45s] offset 2m)"),
        q("rate(node_context_switches_total[10m:30s])"),
        q("sum_over_time(sum(node_load1)[15m:2m])"),
        instant("node_load1[5m:1m]"),
        // The first samples of every series inside the windows.
        early("node_load1"),
        early("avg_over_time(node_load1[10m])"),
        early("count_over_time(node_memory_MemFree_bytes[10m])"),
        early("deriv(node_memory_MemFree_bytes[10m])"),
        early("irate(node_context_switches_total[5m])"),
        early("delta(node_memory_MemFree_bytes[5m])"),
        early("rate(node_load1[5m])"),
        early("resets(node_cpu_seconds_total[5m])"),
        early("avg_over_time(node_load1[10m:1m])"),
        Case {
            known: Some(&RATE_ZERO_POINT),
            ..early("rate(node_cpu_seconds_total[5m])")
        },
        Case {
            known: Some(&RATE_ZERO_POINT),
            ..early("increase(node_network_transmit_bytes_total[7m])")
        },
        Case {
            known: Some(&RATE_ZERO_POINT),
            mode: Mode::InstantAt(67),
            ..q("rate(node_cpu_seconds_total{cpu=\"0\", mode=\"irq\"}[5m])")
        },
        // Errors (status and error type compared).
        q("rate(node_load1)"),
        q("sum(node_load1"),
        q("node_cpu_seconds_total + on(instance) group_left node_load1 + node_cpu_seconds_total"),
        q("node_load1 + on(job) node_load5"),
        q("nonexistent_function(node_load1)"),
        // Once a Koban bug (execution/422): now bad_data/400 as Prometheus.
        range("node_load1[5m]"),
        range("\"a string\""),
        q("node_load1{__name__=\"node_load1\"}"),
        q("label_replace(node_load1, \"x\", \"y\", \"instance\", \"(\")"),
        known(
            "label_replace(node_load1, \"1x\", \"y\", \"instance\", \".*\")",
            &UTF8_LABEL_NAMES,
        ),
        known("label_join(node_load1, \"1x\", \",\", \"instance\")", &UTF8_LABEL_NAMES),
        q("label_replace(node_load1, \"\", \"y\", \"instance\", \".*\")"),
        q("{job=~\".*\"}"),
        q("quantile_over_time(0.5, node_load1)"),
        q("topk(node_load1, node_load5)"),
        q("node_load1 offset 1m offset 2m"),
        // More parser and operator corners.
        q("+node_load1"),
        q("0x10 + 1e3 - 1_000"),
        q("Inf - Inf"),
        q("NaN"),
        q("1 > bool 2"),
        q("node_load1 == node_load1"),
        q("{__name__=\"node_load1\", instance!=\"\"}"),
        q("node_uname_info{version=~\".*#1 SMP.*\"}"),
        q("node_load1 offset 1m @ 1700003607"),
        q("timestamp(node_load1 @ 1700003607)"),
        q("quantile(2, node_load1)"),
        q("quantile(-1, node_load1)"),
        q("topk(0, node_load1)"),
        q("topk(scalar(count(node_load1)) - 1, node_load15)"),
        q("label_join(node_load1, \"empty\", \",\")"),
        q("-(node_load1 * 0)"),
        q("count(nonexistent_metric)"),
        q("sum(nonexistent_metric)"),
        q("absent(nonexistent_metric offset 1m)"),
        // Around the end of the data (lookback 5m) and before its start.
        Case {
            mode: Mode::InstantAt(HOURS * 3600 - 15 + 299),
            ..q("node_load1")
        },
        Case {
            mode: Mode::InstantAt(HOURS * 3600 - 15 + 301),
            ..q("node_load1")
        },
        Case {
            mode: Mode::InstantAt(HOURS * 3600 + 100),
            ..q("rate(node_cpu_seconds_total{mode=\"idle\"}[5m])")
        },
        Case {
            mode: Mode::InstantAt(-100),
            ..q("node_load1")
        },
        Case {
            mode: Mode::InstantAt(-100),
            ..q("count_over_time(node_load1[5m])")
        },
        // Longer windows and more functions over subqueries.
        // 1h windows reach back to the series' start at the early times.
        Case {
            known: Some(&RATE_ZERO_POINT),
            mode: Mode::InstantAt(607),
            ..q("rate(node_cpu_seconds_total{cpu=\"0\"}[1h])")
        },
        Case {
            known: Some(&RATE_ZERO_POINT),
            ..range("rate(node_cpu_seconds_total{cpu=\"0\"}[1h])")
        },
        Case {
            mode: Mode::InstantAt(10802),
            ..q("rate(node_cpu_seconds_total{cpu=\"0\"}[1h])")
        },
        q("avg_over_time(node_memory_MemFree_bytes[3h])"),
        q("count_over_time({__name__=~\"node_cpu.*\", mode=\"user\"}[1h])"),
        q("predict_linear(avg_over_time(node_load1[5m])[20m:1m], 300)"),
        q("max_over_time(node_load1[10m:1m] @ 1700003607)"),
        instant("rate(node_context_switches_total[5m] offset 5m)[10m:1m]"),
        // At START+607 the subquery's first rates see the series start.
        Case {
            known: Some(&RATE_ZERO_POINT),
            mode: Mode::InstantAt(607),
            ..q("deriv(sum(rate(node_cpu_seconds_total[5m]))[15m:])")
        },
        range("deriv(sum(rate(node_cpu_seconds_total[5m]))[15m:])"),
        Case {
            mode: Mode::InstantAt(5437),
            ..q("deriv(sum(rate(node_cpu_seconds_total[5m]))[15m:])")
        },
        q("changes(round(node_load1, 0.1)[30m:15s])"),
        q("timestamp(rate(node_context_switches_total[5m]))"),
        q("count_values(\"v\", node_memory_MemFree_bytes)"),
        q("count_values(\"v\", node_load1 * 1e21)"),
        q("count_values(\"v\", node_load1 / 1e10)"),
        q("count_values(\"v\", -node_load1 / 0)"),
        q("stddev_over_time(node_filesystem_size_bytes[10m])"),
        q("sum by (device) (increase(node_network_receive_packets_total[10m]))"),
        q("avg without (cpu, mode) (irate(node_cpu_seconds_total[1m]))"),
        q("node_memory_MemFree_bytes > bool on(instance) group_left node_memory_Cached_bytes"),
        q("sum(node_load1) by (job) + on(job) group_right count by (job, instance) (node_load5)"),
        // NaN and infinities through functions, sorts and aggregations.
        sorted("sort(ln(rate(node_cpu_seconds_total{cpu=\"0\"}[5m]) - 100))"),
        sorted("sort_desc(ln(rate(node_cpu_seconds_total{cpu=\"0\"}[5m]) - 100))"),
        sorted("topk(3, ln(rate(node_cpu_seconds_total{cpu=\"0\"}[5m]) - 100))"),
        sorted("bottomk(3, ln(rate(node_cpu_seconds_total{cpu=\"0\"}[5m]) - 100))"),
        q("max(ln(rate(node_cpu_seconds_total{cpu=\"0\"}[5m]) - 100))"),
        q("min(ln(rate(node_cpu_seconds_total{cpu=\"0\"}[5m]) - 100))"),
        q("quantile(0.5, ln(rate(node_cpu_seconds_total{cpu=\"0\"}[5m]) - 100))"),
        q("quantile_over_time(NaN, node_load1[5m])"),
        q("quantile(NaN, node_load1)"),
        q("quantile(0.5, vector(NaN))"),
        q("round(node_load1, 0)"),
        q("clamp(node_load1, NaN, 1)"),
        q("clamp_min(node_load1, NaN)"),
        q("avg(node_memory_MemTotal_bytes * 1e308)"),
        q("sum(node_memory_MemTotal_bytes * 1e308)"),
        q("stddev(node_memory_MemTotal_bytes * 1e300)"),
        q("avg_over_time((node_memory_MemTotal_bytes * 1e308)[5m:1m])"),
        q("max_over_time(ln(node_load1 - 0.3)[10m:1m])"),
        q("sum_over_time((-node_load1 / 0)[5m:1m])"),
        q("avg_over_time((node_load1 / 0)[5m:1m])"),
        q("stddev_over_time((node_load1 / 0)[5m:1m])"),
        q("sgn(-node_load1 * 0)"),
        q("exp(node_memory_MemTotal_bytes)"),
        // Odd arguments.
        q("label_replace(node_load1, \"__name__\", \"foo\", \"\", \"\")"),
        q("sum by (__name__) ({__name__=~\"node_load1|node_load5\"} offset 1m)"),
        q("count without () (node_load1)"),
        q("group without (instance) (node_load1)"),
        q("changes(nonexistent[5m])"),
        q("histogram_quantile(0.5, label_replace(node_load1, \"le\", \"+Inf\", \"\", \"\"))"),
        q("histogram_quantile(0.5, label_replace(node_load1, \"le\", \"x\", \"\", \"\"))"),
        q("histogram_quantile(0.5, node_load1)"),
        q("node_load1 > on(instance) group_left node_load5"),
        q("deriv(node_load1[1m])"),
        q("predict_linear(node_load1[1m], -60)"),
        q("irate(node_load1[5m])"),
        q("idelta(node_uname_info[5m])"),
        q("rate(node_uname_info[5m])"),
        q("increase(node_load1[5m] offset 1h)"),
        q("count_values(\"le\", node_load1)"),
        q("count_values(\"__name__\", node_load1)"),
        known("count_values(\"\", node_load1)", &COUNT_VALUES_LABEL_ERRORTYPE),
        q("topk(1.9, node_load1)"),
        q("topk(-1, node_load1)"),
        q("absent(sum(nonexistent))"),
        q("absent(vector(1))"),
        q("absent_over_time(nonexistent[5m:1m])"),
        q("vector(1) + on() group_left node_load1"),
        q("timestamp(vector(1))"),
        q("timestamp(-node_load1)"),
        q("year(vector(1e10))"),
        q("minute(vector(-1))"),
        known("day_of_week(vector(NaN))", &DATE_OF_NONFINITE),
        known("year(vector(NaN))", &DATE_OF_NONFINITE),
        known("hour(vector(Inf))", &DATE_OF_NONFINITE),
        known("days_in_month(vector(-Inf))", &DATE_OF_NONFINITE),
        // On the sample grid: the 2.x/3.x window difference itself.
        Case {
            known: Some(&LEFT_OPEN_WINDOWS),
            mode: Mode::InstantAt(600),
            ..q("count_over_time(node_load1[1m])")
        },
        Case {
            known: Some(&LEFT_OPEN_WINDOWS),
            mode: Mode::InstantAt(600),
            ..q("rate(node_context_switches_total[1m])")
        },
        Case {
            mode: Mode::InstantAt(600),
            ..q("node_load1")
        },
        Case {
            mode: Mode::LongRange(LONG_BEFORE),
            ..range("sum by (instance) (node_load1 @ end())")
        },
        // Value formatting.
        // Once a Koban bug (no exponent): now written as Prometheus does.
        q("node_load1 * 1e-7"),
        q("node_load1 * 1e22"),
        q("node_load1 * 1e-5"),
        q("node_load1 * 1e20"),
        q("-node_load1 * 1e20"),
        // Renamed / newer functions.
        // Prometheus 3 renamed holt_winters to double_exponential_smoothing;
        // 2.42 knows only the old name, Koban both: mapped, answers must match.
        Case {
            koban_query: Some("double_exponential_smoothing(node_load1[10m], 0.5, 0.5)"),
            ..q("holt_winters(node_load1[10m], 0.5, 0.5)")
        },
        q("holt_winters(node_memory_MemFree_bytes[30m], 0.1, 0.9)"),
        known("sort_by_label(node_load1, \"instance\")", &NEWER_FUNCTION),
        known("mad_over_time(node_load1[10m])", &NEWER_FUNCTION),
    ]
}

/// Instant query times: off the 15s grid (samples at START + 15k), early,
/// middle and at the end of the history.
fn instant_times() -> [i64; 3] {
    [START + 607, START + 5437, START + HOURS * 3600 + 2]
}

/// Range query (start, end, step): off the grid, the step 60s. It starts 40
/// minutes in, so that windows (up to 30m, subqueries included) do not reach
/// the first samples; [`early_range_params`] covers the start.
fn range_params() -> (i64, i64, i64) {
    (START + 2407, START + HOURS * 3600 - 53, 60)
}

/// Range query over the first 30 minutes: series start inside the windows.
fn early_range_params() -> (i64, i64, i64) {
    (START + 7, START + 1807, 60)
}

// ---------------------------------------------------------------------------
// Comparison.

fn parse_float(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            s => s.parse().ok(),
        },
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn floats_equal(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= REL_TOL * a.abs().max(b.abs())
}

/// `[ts, "value"]` pair.
fn sample(v: &Value) -> Result<(f64, f64), String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("sample is not an array: {v}"))?;
    if a.len() != 2 {
        return Err(format!("sample is not a pair: {v}"));
    }
    let ts = a[0].as_f64().ok_or_else(|| format!("bad timestamp: {v}"))?;
    let val = parse_float(&a[1]).ok_or_else(|| format!("bad value: {v}"))?;
    Ok((ts, val))
}

fn compare_sample(what: &str, p: &Value, k: &Value) -> Result<(), String> {
    let (pt, pv) = sample(p)?;
    let (kt, kv) = sample(k)?;
    if pt != kt {
        return Err(format!("{what}: timestamp prometheus={pt} koban={kt}"));
    }
    if !floats_equal(pv, kv) {
        return Err(format!("{what} @{pt}: value prometheus={pv} koban={kv}"));
    }
    // The same float must also be written the same way.
    let same_float = pv.to_bits() == kv.to_bits() || (pv.is_nan() && kv.is_nan());
    if same_float && p[1] != k[1] {
        return Err(format!(
            "{what} @{pt}: value formatting prometheus={} koban={}",
            p[1], k[1]
        ));
    }
    Ok(())
}

fn label_key(metric: &Value) -> String {
    // serde_json maps are ordered by key (no preserve_order), so this is canonical.
    metric.to_string()
}

fn keyed(result: &[Value]) -> Result<BTreeMap<String, &Value>, String> {
    let mut m = BTreeMap::new();
    for s in result {
        let key = label_key(&s["metric"]);
        if m.insert(key.clone(), s).is_some() {
            return Err(format!("duplicate series {key}"));
        }
    }
    Ok(m)
}

fn compare_series_sets(p: &[Value], k: &[Value]) -> Result<(), String> {
    let pm = keyed(p).map_err(|e| format!("prometheus: {e}"))?;
    let km = keyed(k).map_err(|e| format!("koban: {e}"))?;
    let only_p: Vec<&String> = pm.keys().filter(|x| !km.contains_key(*x)).collect();
    let only_k: Vec<&String> = km.keys().filter(|x| !pm.contains_key(*x)).collect();
    if !only_p.is_empty() || !only_k.is_empty() {
        return Err(format!(
            "series differ ({} vs {}): only in prometheus {}: {}; only in koban {}: {}",
            pm.len(),
            km.len(),
            only_p.len(),
            first_few(&only_p),
            only_k.len(),
            first_few(&only_k)
        ));
    }
    for (key, ps) in &pm {
        let ks = km[key];
        if let Some(pv) = ps.get("value") {
            compare_sample(key, pv, &ks["value"])?;
        } else {
            let pvals = ps["values"].as_array().cloned().unwrap_or_default();
            let kvals = ks["values"].as_array().cloned().unwrap_or_default();
            let pt: Vec<f64> = pvals.iter().filter_map(|s| s[0].as_f64()).collect();
            let kt: Vec<f64> = kvals.iter().filter_map(|s| s[0].as_f64()).collect();
            if pt != kt {
                return Err(format!(
                    "{key}: timestamps differ: prometheus {} points [{}..{}], koban {} points [{}..{}]",
                    pt.len(),
                    pt.first().unwrap_or(&0.0),
                    pt.last().unwrap_or(&0.0),
                    kt.len(),
                    kt.first().unwrap_or(&0.0),
                    kt.last().unwrap_or(&0.0)
                ));
            }
            for (a, b) in pvals.iter().zip(&kvals) {
                compare_sample(key, a, b)?;
            }
        }
    }
    Ok(())
}

fn first_few(v: &[&String]) -> String {
    let mut s: Vec<&str> = v.iter().take(3).map(|x| x.as_str()).collect();
    if v.len() > 3 {
        s.push("...");
    }
    s.join(" ")
}

/// Compares two `/api/v1/query[_range]` answers.
fn compare_query(p: &Value, k: &Value, ordered: bool) -> Result<(), String> {
    let ps = p["status"].as_str().unwrap_or("?");
    let ks = k["status"].as_str().unwrap_or("?");
    if ps != ks {
        return Err(format!(
            "status prometheus={ps} ({}) koban={ks} ({})",
            p["error"], k["error"]
        ));
    }
    if ps != "success" {
        if p["errorType"] != k["errorType"] {
            return Err(format!(
                "errorType prometheus={} ({}) koban={} ({})",
                p["errorType"], p["error"], k["errorType"], k["error"]
            ));
        }
        return compare_http_status(p, k);
    }
    let (pd, kd) = (&p["data"], &k["data"]);
    if pd["resultType"] != kd["resultType"] {
        return Err(format!(
            "resultType prometheus={} koban={}",
            pd["resultType"], kd["resultType"]
        ));
    }
    match pd["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            if pd["resultType"] == "string" {
                if pd["result"] != kd["result"] {
                    return Err(format!(
                        "prometheus={} koban={}",
                        pd["result"], kd["result"]
                    ));
                }
                return Ok(());
            }
            compare_sample("scalar", &pd["result"], &kd["result"])
        }
        Some("vector") | Some("matrix") => {
            let pr = pd["result"].as_array().cloned().unwrap_or_default();
            let kr = kd["result"].as_array().cloned().unwrap_or_default();
            compare_series_sets(&pr, &kr)?;
            if pd["resultType"] == "matrix" {
                // Prometheus sorts range query results by label set.
                let po: Vec<String> = pr.iter().map(|s| label_key(&s["metric"])).collect();
                let ko: Vec<String> = kr.iter().map(|s| label_key(&s["metric"])).collect();
                if po != ko {
                    return Err(format!(
                        "matrix order differs: prometheus [{}] koban [{}]",
                        truncate(&po.join(" ")),
                        truncate(&ko.join(" "))
                    ));
                }
            }
            if ordered {
                for (i, (a, b)) in pr.iter().zip(&kr).enumerate() {
                    // Equal values may come in either order; the values must be in the same order.
                    compare_sample(&format!("position {i}"), &a["value"], &b["value"])
                        .map_err(|e| format!("order differs: {e}"))?;
                }
            }
            Ok(())
        }
        other => Err(format!("unexpected resultType {other:?}")),
    }
}

/// Compares two metadata answers (`/api/v1/series`, `/labels`, `/label/x/values`).
fn compare_meta(p: &Value, k: &Value) -> Result<(), String> {
    if p["status"] != k["status"] {
        return Err(format!(
            "status prometheus={} ({}) koban={} ({})",
            p["status"], p["error"], k["status"], k["error"]
        ));
    }
    if p["status"] != "success" {
        return if p["errorType"] == k["errorType"] {
            compare_http_status(p, k)
        } else {
            Err(format!(
                "errorType prometheus={} koban={}",
                p["errorType"], k["errorType"]
            ))
        };
    }
    let (pd, kd) = (&p["data"], &k["data"]);
    match (pd.as_array(), kd.as_array()) {
        (Some(pa), Some(ka))
            if pa.first().is_some_and(|x| x.is_object())
                || ka.first().is_some_and(|x| x.is_object()) =>
        {
            // /api/v1/series: a set of label sets.
            let mut ps: Vec<String> = pa.iter().map(label_key).collect();
            let mut ks: Vec<String> = ka.iter().map(label_key).collect();
            ps.sort();
            ks.sort();
            if ps != ks {
                let pk: Vec<&String> = ps.iter().filter(|x| !ks.contains(x)).collect();
                let kp: Vec<&String> = ks.iter().filter(|x| !ps.contains(x)).collect();
                return Err(format!(
                    "series differ ({} vs {}): only in prometheus: {}; only in koban: {}",
                    ps.len(),
                    ks.len(),
                    first_few(&pk),
                    first_few(&kp)
                ));
            }
            Ok(())
        }
        _ => {
            // Sorted string lists (labels, values) and objects (metadata): exact.
            if pd != kd {
                return Err(format!(
                    "prometheus={} koban={}",
                    truncate(&pd.to_string()),
                    truncate(&kd.to_string())
                ));
            }
            Ok(())
        }
    }
}

fn truncate(s: &str) -> String {
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------
// Servers.

struct Server {
    proc: Proc,
    base: String,
}

fn spawn(name: &'static str, bin: &Path, args: &[String], log: PathBuf) -> Proc {
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    Proc { child, name, log }
}

fn run_import(bin: &Path, args: &[&str]) -> std::process::Child {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()))
}

fn finish_import(what: &str, child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn wait_ready(client: &reqwest::Client, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("{}/api/v1/query?query=1", server.base);
    loop {
        if let Ok(Some(status)) = server.proc.child.try_wait() {
            panic!(
                "{} exited early ({status}):\n{}",
                server.proc.name,
                server.proc.log_tail()
            );
        }
        if let Ok(r) = client.get(&url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} not ready after 60s:\n{}",
            server.proc.name,
            server.proc.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn post_form(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    params: &[(&str, String)],
) -> Value {
    let url = format!("{base}{path}");
    let r = client
        .post(&url)
        .form(params)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    answer(r).await
}

/// The JSON body, with the HTTP status code added as `httpStatus`.
async fn answer(r: reqwest::Response) -> Value {
    let code = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let mut v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| serde_json::json!({"status": "non-json", "error": truncate(&text)}));
    if let Some(o) = v.as_object_mut() {
        o.insert("httpStatus".into(), code.into());
    }
    v
}

/// Same HTTP status code.
fn compare_http_status(p: &Value, k: &Value) -> Result<(), String> {
    if p["httpStatus"] != k["httpStatus"] {
        return Err(format!(
            "HTTP status prometheus={} koban={} (errorType {} / {})",
            p["httpStatus"], k["httpStatus"], p["errorType"], k["errorType"]
        ));
    }
    Ok(())
}

async fn get(client: &reqwest::Client, base: &str, path: &str, params: &[(&str, String)]) -> Value {
    let mut url = reqwest::Url::parse(&format!("{base}{path}")).unwrap();
    url.query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    let r = client
        .get(url.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    answer(r).await
}

/// One request to ask both servers: (what, path, Prometheus params, Koban params).
type Ask<'a> = (String, &'a str, Params<'a>, Params<'a>);
type Params<'a> = Vec<(&'a str, String)>;

/// Sends `GET target` exactly as given (no client-side escaping) and returns
/// the status code and the body's `data` (or the raw body if not JSON).
async fn raw_get(base: &str, target: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("no status line: {}", truncate(&text)))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Chunked bodies: the JSON object sits between the chunk sizes.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if a < b => &body[a..=b],
        _ => body,
    };
    let data = serde_json::from_str::<Value>(json)
        .map(|v| v["data"].to_string())
        .unwrap_or_else(|_| json.trim().to_string());
    Ok((code, data))
}

/// One comparison's outcome.
enum Outcome {
    Equal,
    Known(&'static Known, String),
    KnownButEqual(&'static Known),
    Differs(String),
}

struct Report {
    rows: Vec<(String, Outcome)>,
}

impl Report {
    fn add(&mut self, what: String, known: Option<&'static Known>, r: Result<(), String>) {
        let o = match (r, known) {
            (Ok(()), None) => Outcome::Equal,
            (Ok(()), Some(k)) => Outcome::KnownButEqual(k),
            (Err(e), Some(k)) => Outcome::Known(k, e),
            (Err(e), None) => Outcome::Differs(e),
        };
        self.rows.push((what, o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_answers_match_prometheus() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (prometheus, promtool) = match (which("prometheus"), which("promtool")) {
        (Some(p), Some(t)) => (p, t),
        _ => {
            assert!(
                !in_ci(),
                "prometheus and promtool are required in CI (Debian package `prometheus`)"
            );
            eprintln!("skipping: prometheus/promtool not on PATH (Debian package `prometheus`)");
            return;
        }
    };
    let history = shared_dir().join("bench/history.py");
    assert!(history.exists(), "{} is missing", history.display());

    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("history.om");
    let out = Command::new("python3")
        .arg(&history)
        .args([
            "--targets",
            "2",
            "--hours",
            &HOURS.to_string(),
            "--format",
            "openmetrics",
        ])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "history.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&om, &out.stdout).unwrap();

    let koban = PathBuf::from(env!("CARGO_BIN_EXE_koban"));
    let (pdata, kdata) = (dir.path().join("prom"), dir.path().join("koban"));
    let om_s = om.to_str().unwrap();
    let pi = run_import(
        &promtool,
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=24h",
            om_s,
            pdata.to_str().unwrap(),
        ],
    );
    let ki = run_import(
        &koban,
        &[
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            om_s,
            kdata.to_str().unwrap(),
        ],
    );
    finish_import("promtool", pi);
    finish_import("koban", ki);

    let cfg = dir.path().join("empty.yml");
    std::fs::write(&cfg, "global: {scrape_interval: 15s}\n").unwrap();
    let server_args = |data: &Path, port: u16| {
        vec![
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", data.display()),
            "--storage.tsdb.retention.time=100y".to_string(),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ]
    };
    let (pport, kport) = (free_port(), free_port());
    let mut prom = Server {
        proc: spawn(
            "prometheus",
            &prometheus,
            &server_args(&pdata, pport),
            dir.path().join("prometheus.log"),
        ),
        base: format!("http://127.0.0.1:{pport}"),
    };
    let mut kob = Server {
        proc: spawn(
            "koban",
            &koban,
            &server_args(&kdata, kport),
            dir.path().join("koban.log"),
        ),
        base: format!("http://127.0.0.1:{kport}"),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    wait_ready(&client, &mut prom).await;
    wait_ready(&client, &mut kob).await;
    // Debugging aid: compare against another server holding the same history
    // (another Koban build, or Prometheus itself to check the harness).
    if let Ok(url) = std::env::var("KOBAN_COMPAT_KOBAN_URL") {
        if !url.is_empty() {
            eprintln!("comparing prometheus with {url} instead of the koban just started");
            kob.base = url;
        }
    }

    // Sanity: both serve the imported history (else every comparison below fails for one reason).
    let probe = [
        ("query", "count({job=\"node\"})".to_string()),
        ("time", (START + 607).to_string()),
    ];
    let pp = post_form(&client, &prom.base, "/api/v1/query", &probe).await;
    let kp = post_form(&client, &kob.base, "/api/v1/query", &probe).await;
    assert_eq!(
        pp["data"]["result"][0]["value"][1], "1014",
        "prometheus does not serve the imported history: {pp}"
    );
    assert!(
        compare_query(&pp, &kp, false).is_ok(),
        "koban does not serve the imported history (blocks in --storage.tsdb.path): \
         count({{job=\"node\"}}) prometheus={pp} koban={kp}\n{}",
        kob.proc.log_tail()
    );

    let mut report = Report { rows: Vec::new() };
    for case in cases() {
        let kq = case.koban_query.unwrap_or(case.query);
        let mut asks: Vec<Ask> = Vec::new();
        let times: Vec<i64> = match case.mode {
            Mode::Both | Mode::InstantOnly => instant_times().to_vec(),
            Mode::InstantAt(s) => vec![START + s],
            Mode::RangeOnly | Mode::EarlyRange | Mode::LongRange(_) => vec![],
        };
        {
            for t in times {
                asks.push((
                    format!("instant @{t}"),
                    "/api/v1/query",
                    vec![("query", case.query.to_string()), ("time", t.to_string())],
                    vec![("query", kq.to_string()), ("time", t.to_string())],
                ));
            }
        }
        let ranges: Vec<(&str, (i64, i64, i64))> = match case.mode {
            Mode::Both | Mode::RangeOnly => vec![("range", range_params())],
            Mode::EarlyRange => vec![("early range", early_range_params())],
            Mode::LongRange(from) => {
                vec![("long range", (START + from, START + from + 14 * 3600, 300))]
            }
            Mode::InstantOnly | Mode::InstantAt(_) => vec![],
        };
        for (label, (rs, re, step)) in ranges {
            let r = |q: &str| {
                vec![
                    ("query", q.to_string()),
                    ("start", rs.to_string()),
                    ("end", re.to_string()),
                    ("step", step.to_string()),
                ]
            };
            asks.push((
                label.to_string(),
                "/api/v1/query_range",
                r(case.query),
                r(kq),
            ));
        }
        for (what, path, pparams, kparams) in asks {
            let (p, k) = tokio::join!(
                post_form(&client, &prom.base, path, &pparams),
                post_form(&client, &kob.base, path, &kparams)
            );
            report.add(
                format!("{what} {}", case.query),
                case.known,
                compare_query(&p, &k, case.ordered),
            );
        }
    }

    // Query API parameters: time formats, steps, limits, errors.
    let api: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "/api/v1/query",
            vec![
                ("query", "node_load1".into()),
                ("time", "2023-11-14T22:23:27Z".into()),
            ],
        ),
        (
            "/api/v1/query",
            vec![
                ("query", "node_load1".into()),
                ("time", "2023-11-14T22:23:27.123Z".into()),
            ],
        ),
        (
            "/api/v1/query",
            vec![
                ("query", "node_load1".into()),
                ("time", "1700000607.123".into()),
            ],
        ),
        (
            "/api/v1/query",
            vec![("query", "node_load1".into()), ("time", "yesterday".into())],
        ),
        ("/api/v1/query", vec![("time", "1700000607".into())]),
        (
            "/api/v1/query",
            vec![("query", "".into()), ("time", "1700000607".into())],
        ),
        (
            "/api/v1/query",
            vec![
                ("query", "timestamp(node_load1)".into()),
                ("time", "1700000607.5".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "2023-11-14T22:53:27Z".into()),
                ("end", "1700005407".into()),
                ("step", "1m".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "1700002407".into()),
                ("end", "1700005407".into()),
                ("step", "1m30s".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "avg_over_time(node_load1[7m])".into()),
                ("start", "1700002407".into()),
                ("end", "1700010747".into()),
                ("step", "30".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                (
                    "query",
                    "rate(node_cpu_seconds_total{cpu=\"1\"}[2m])".into(),
                ),
                ("start", "1700000607".into()),
                ("end", "1700010747".into()),
                ("step", "45".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                (
                    "query",
                    "max_over_time(rate(node_context_switches_total[5m])[20m:30s])".into(),
                ),
                ("start", "1700002407".into()),
                ("end", "1700010747".into()),
                ("step", "45".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "1700002407.5".into()),
                ("end", "1700002900.25".into()),
                ("step", "60.5".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "1700005407".into()),
                ("end", "1700002407".into()),
                ("step", "60".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "1700002407".into()),
                ("end", "1700005407".into()),
                ("step", "0".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "1700002407".into()),
                ("end", "1700005407".into()),
                ("step", "-60".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "1700000000".into()),
                ("end", "1700011001".into()),
                ("step", "1".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "1700002407".into()),
                ("end", "1700005407".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "node_load1".into()),
                ("start", "1700011207".into()),
                ("end", "1700014807".into()),
                ("step", "60".into()),
            ],
        ),
        (
            "/api/v1/query_range",
            vec![
                ("query", "vector(1)".into()),
                ("start", "1700002407".into()),
                ("end", "1700002407".into()),
                ("step", "60".into()),
            ],
        ),
    ];
    for (path, params) in api {
        let (p, k) = tokio::join!(
            get(&client, &prom.base, path, &params),
            get(&client, &kob.base, path, &params)
        );
        let what = format!(
            "GET {path}?{}",
            params
                .iter()
                .map(|(a, b)| format!("{a}={b}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        report.add(what, None, compare_query(&p, &k, false));
    }

    // Raw request targets (not percent-encoded), as quick curl scripts send them.
    for target in [
        "/api/v1/query?query=node_load1{job=%22node%22}&time=1700000607",
        "/api/v1/query?query=node_load1{job=\"node\"}&time=1700000607",
        "/api/v1/series?match[]=node_load1{instance=~\".*21001\"}",
    ] {
        let p = raw_get(&prom.base, target).await;
        let k = raw_get(&kob.base, target).await;
        let known = target.contains('"').then_some(&KOBAN_RAW_QUOTE_URI);
        let r = match (&p, &k) {
            (Ok((pc, pb)), Ok((kc, kb))) if pc == kc && pb == kb => Ok(()),
            (Ok((pc, pb)), Ok((kc, kb))) => Err(format!(
                "raw GET: prometheus {pc} {} / koban {kc} {}",
                truncate(pb),
                truncate(kb)
            )),
            _ => Err(format!("raw GET failed: prometheus {p:?} koban {k:?}")),
        };
        report.add(format!("raw GET {target}"), known, r);
    }

    // Metadata endpoints.
    let (ms, me) = (START.to_string(), (START + HOURS * 3600).to_string());
    let meta: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("/api/v1/labels", vec![]),
        ("/api/v1/labels", vec![("match[]", "node_load1".into())]),
        (
            "/api/v1/labels",
            vec![
                ("match[]", "{__name__=~\"node_disk_.*\"}".into()),
                ("match[]", "node_uname_info".into()),
            ],
        ),
        (
            "/api/v1/labels",
            vec![("start", ms.clone()), ("end", me.clone())],
        ),
        ("/api/v1/label/__name__/values", vec![]),
        ("/api/v1/label/mode/values", vec![]),
        (
            "/api/v1/label/mode/values",
            vec![(
                "match[]",
                "node_cpu_seconds_total{cpu=\"0\", mode=~\"s.*\"}".into(),
            )],
        ),
        (
            "/api/v1/label/device/values",
            vec![
                ("match[]", "node_disk_info".into()),
                ("match[]", "node_network_up".into()),
            ],
        ),
        (
            "/api/v1/label/instance/values",
            vec![("start", ms.clone()), ("end", me.clone())],
        ),
        ("/api/v1/label/nonexistent/values", vec![]),
        ("/api/v1/series", vec![("match[]", "node_load1".into())]),
        (
            "/api/v1/series",
            vec![
                ("match[]", "node_cpu_seconds_total{cpu=\"0\"}".into()),
                ("match[]", "node_load1".into()),
            ],
        ),
        (
            "/api/v1/series",
            vec![
                (
                    "match[]",
                    "{__name__=~\"node_memory_.*\", instance=\"127.0.0.1:21001\"}".into(),
                ),
                ("start", ms.clone()),
                ("end", me.clone()),
            ],
        ),
        ("/api/v1/series", vec![("match[]", "{job=\"node\"}".into())]),
        (
            "/api/v1/series",
            vec![
                ("match[]", "node_load1".into()),
                ("start", "1600000000".into()),
                ("end", "1600003600".into()),
            ],
        ),
        ("/api/v1/series", vec![]),
        ("/api/v1/series", vec![("match[]", "{job=~\".*\"}".into())]),
        ("/api/v1/metadata", vec![]),
        ("/api/v1/metadata", vec![("metric", "node_load1".into())]),
        ("/api/v1/targets", vec![]),
        ("/api/v1/targets/metadata", vec![]),
        ("/api/v1/rules", vec![]),
        ("/api/v1/alerts", vec![]),
        ("/api/v1/alertmanagers", vec![]),
        (
            "/api/v1/query_exemplars",
            vec![
                ("query", "node_load1".into()),
                ("start", ms.clone()),
                ("end", me.clone()),
            ],
        ),
        (
            "/api/v1/labels",
            vec![("match[]", "nonexistent_metric".into())],
        ),
        (
            "/api/v1/labels",
            vec![("start", "1700010900".into()), ("end", "1700011000".into())],
        ),
        (
            "/api/v1/labels",
            vec![
                ("start", "1700010700".into()),
                ("end", "1700011000".into()),
                ("match[]", "node_boot_time_seconds".into()),
            ],
        ),
        (
            "/api/v1/label/__name__/values",
            vec![(
                "match[]",
                "{instance=\"127.0.0.1:21001\", __name__=~\"node_load.*\"}".into(),
            )],
        ),
        (
            "/api/v1/label/job/values",
            vec![("match[]", "nonexistent_metric".into())],
        ),
        (
            "/api/v1/label/__name__/values",
            vec![("start", "1600000000".into()), ("end", "1600003600".into())],
        ),
        (
            "/api/v1/label/instance/values",
            vec![
                ("match[]", "node_load1".into()),
                ("start", "2023-11-14T22:13:20Z".into()),
                ("end", "2023-11-14T23:13:20Z".into()),
            ],
        ),
        (
            "/api/v1/series",
            vec![
                ("match[]", "node_load1".into()),
                ("start", "1700010900".into()),
                ("end", "1700011000".into()),
            ],
        ),
        (
            "/api/v1/series",
            vec![
                ("match[]", "node_load1".into()),
                ("start", "1700010700".into()),
                ("end", "1700011000".into()),
            ],
        ),
        (
            "/api/v1/series",
            vec![
                ("match[]", "node_load1".into()),
                ("start", "1700000100".into()),
                ("end", "1700000200".into()),
            ],
        ),
        (
            "/api/v1/series",
            vec![
                (
                    "match[]",
                    "{__name__=~\"node_load.*\", instance!~\".*21000\"}".into(),
                ),
                ("match[]", "node_load1".into()),
            ],
        ),
        ("/api/v1/series", vec![("match[]", "node_load1{".into())]),
        (
            "/api/v1/series",
            vec![("match[]", "{instance=~\".*\"}".into())],
        ),
        ("/api/v1/labels", vec![("match[]", "node_load1{".into())]),
        ("/api/v1/label/1x/values", vec![]),
        (
            "/api/v1/series",
            vec![
                ("match[]", "node_load1".into()),
                ("start", "1700005000".into()),
                ("end", "1700001000".into()),
            ],
        ),
    ];
    for (path, params) in meta {
        let (p, k) = tokio::join!(
            get(&client, &prom.base, path, &params),
            get(&client, &kob.base, path, &params)
        );
        let what = format!(
            "GET {path}?{}",
            params
                .iter()
                .map(|(a, b)| format!("{a}={b}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        report.add(what, meta_exception(path, &params), compare_meta(&p, &k));
    }

    // Summary.
    let (mut equal, mut knowns, mut known_equal, mut differs) = (0, 0, 0, Vec::new());
    for (what, o) in &report.rows {
        match o {
            Outcome::Equal => equal += 1,
            Outcome::Known(k, e) => {
                knowns += 1;
                eprintln!(
                    "known difference [{}] {what}: {e}\n    reason: {}",
                    k.id, k.reason
                );
            }
            Outcome::KnownButEqual(k) => {
                known_equal += 1;
                eprintln!(
                    "known difference [{}] did not show (equal answers): {what}",
                    k.id
                );
            }
            Outcome::Differs(e) => differs.push(format!("{what}: {e}")),
        }
    }
    for d in &differs {
        eprintln!("DIFFERS {d}");
    }
    eprintln!(
        "promql_compat: {} compared, {equal} equal, {knowns} known differences ({known_equal} more known cases answered equally), {} unexpected differences",
        report.rows.len(),
        differs.len()
    );
    drop(prom);
    drop(kob);
    assert!(
        differs.is_empty(),
        "{} unexpected differences (see above)",
        differs.len()
    );
}
