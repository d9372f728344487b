//! Command line: Prometheus's flag names for the server, plus Koban's
//! subcommands. An unknown flag is an error naming it (clap does that).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "koban",
    version,
    about = "Koban: scrape, store, query and alert on metrics. A drop-in for Prometheus."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the server (the default when no subcommand is given).
    Server(Box<ServerArgs>),
    /// Checks configuration files.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Runs PromQL test files in Prometheus's format.
    Promqltest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Unit tests, as `promtool test`.
    Test {
        #[command(subcommand)]
        what: TestCommand,
    },
    /// TSDB tools.
    Tsdb {
        #[command(subcommand)]
        what: TsdbCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Checks prometheus.yml files: every error with its location, or a summary.
    Config {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Checks rule files as `promtool check rules` does: every error with its location, or the rule count.
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Checks alertmanager.yml files as `amtool check-config` does: the error with its location, or what was found.
    Alertmanager {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Runs promtool's rule unit-test files: exit code 0 when all pass, 1 otherwise.
    Rules(TestRulesArgs),
}

/// `koban test rules`, with later promtool's flags (promtool 2.42 has none).
#[derive(Debug, Args)]
pub struct TestRulesArgs {
    /// Only test groups whose name matches this regular expression. Repeatable.
    #[arg(long = "run", value_name = "REGEX")]
    pub run: Vec<String>,
    /// Print alert mismatches as a diff of expected and received alerts.
    #[arg(long = "diff")]
    pub diff: bool,
    /// Print when each test group starts and ends, and dump every series at its end.
    #[arg(long = "debug")]
    pub debug: bool,
    /// Write JUnit XML results to this file.
    #[arg(long = "junit", value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Ignore unknown keys in rule files instead of refusing them (test files stay strict).
    #[arg(long = "ignore-unknown-fields")]
    pub ignore_unknown_fields: bool,
    /// The unit-test files.
    #[arg(required = true, value_name = "TEST_FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TsdbCommand {
    /// Imports data into new, fully compacted blocks.
    CreateBlocksFrom {
        #[command(subcommand)]
        from: CreateBlocksFrom,
    },
    /// Reports series counts, cardinality and churn of a data directory.
    Analyze { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CreateBlocksFrom {
    /// From an OpenMetrics text file, as `promtool tsdb create-blocks-from openmetrics`.
    Openmetrics { input: PathBuf, output: PathBuf },
}

/// Server flags, named as Prometheus's.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// Configuration file path. Without it, ./prometheus.yml if present, else an embedded default that scrapes Koban itself.
    #[arg(long = "config.file")]
    pub config_file: Option<PathBuf>,
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub tsdb_path: PathBuf,
    /// How long to retain samples in storage (e.g. 15d). Default 15d when no size limit is set.
    #[arg(long = "storage.tsdb.retention.time")]
    pub retention_time: Option<String>,
    /// Maximum number of bytes blocks may use (e.g. 512MB).
    #[arg(long = "storage.tsdb.retention.size")]
    pub retention_size: Option<String>,
    /// Address to listen on for the UI, API and telemetry.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: String,
    /// The URL under which Koban is externally reachable (behind a reverse proxy).
    #[arg(long = "web.external-url")]
    pub external_url: Option<String>,
    /// Prefix for the internal routes of web endpoints. Defaults to the path of --web.external-url.
    #[arg(long = "web.route-prefix")]
    pub route_prefix: Option<String>,
    /// Enable shutdown and reload via HTTP request.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Enable API endpoints for admin control actions.
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,
    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info")]
    pub log_level: String,
    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", default_value = "logfmt")]
    pub log_format: String,
    /// The maximum lookback duration for retrieving metrics during expression evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    pub lookback_delta: String,
    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    pub query_timeout: String,
    /// Maximum number of samples a single query can load into memory.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    pub query_max_samples: usize,
    /// Maximum number of queries executed concurrently.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    pub query_max_concurrency: usize,
    /// Samples up to this much older than the newest in the head may still be appended
    /// out of order (0: in order only). The configuration's storage.tsdb section wins when present.
    #[arg(long = "storage.tsdb.out-of-order-time-window")]
    pub out_of_order_window: Option<String>,
    /// Adjust scrape timestamps by up to `scrape.timestamp-tolerance` to
    /// align them to the intended schedule (evenly spaced timestamps
    /// compress far better).
    #[arg(
        long = "scrape.adjust-timestamps",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub scrape_adjust_timestamps: bool,
    /// How far a scrape may start from its schedule and still get the
    /// scheduled timestamp (at most 1% of the scrape interval is used).
    #[arg(long = "scrape.timestamp-tolerance", default_value = "2ms")]
    pub scrape_timestamp_tolerance: String,
    /// Koban only: targets of one scrape interval start in one of this many
    /// evenly spaced instants (each target keeps a stable one), so scrapes
    /// that start together share wake-ups; 0 gives every target its own
    /// offset, as Prometheus does.
    #[arg(long = "scrape.slots", default_value_t = koban_scrape::DEFAULT_SCRAPE_SLOTS)]
    pub scrape_slots: u32,
    /// Max time to tolerate a Koban outage for restoring "for" state of alerts.
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h")]
    pub for_outage_tolerance: String,
    /// Minimum duration between an alert restored after a restart and it firing
    /// (for alerts whose "for" is at least this long).
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m")]
    pub for_grace_period: String,
    /// The capacity of the queue for pending Alertmanager notifications.
    #[arg(
        long = "alertmanager.notification-queue-capacity",
        default_value_t = 10_000
    )]
    pub notification_queue_capacity: usize,
    /// Send queued Alertmanager notifications when shutting down (false: drop them).
    #[arg(
        long = "alertmanager.drain-notification-queue-on-shutdown",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub drain_notification_queue: bool,
    /// Minimum amount of time to wait before resending an alert to Alertmanager.
    #[arg(long = "rules.alert.resend-delay", default_value = "1m")]
    pub resend_delay: String,
}

/// Prometheus server flags Koban does not have, refused by name (clap
/// would only call them unexpected). Flags Koban has are in [`ServerArgs`].
const PROMETHEUS_ONLY: &[&str] = &[
    "agent",
    "auto-gomemlimit",
    "auto-gomemlimit.ratio",
    "enable-feature",
    "rules.max-concurrent-evals",
    "scrape.discovery-reload-interval",
    "storage.agent.no-lockfile",
    "storage.agent.path",
    "storage.agent.retention.max-time",
    "storage.agent.retention.min-time",
    "storage.agent.use-lockfile",
    "storage.agent.wal-compression",
    "storage.remote.flush-deadline",
    "storage.remote.read-concurrent-limit",
    "storage.remote.read-max-bytes-in-frame",
    "storage.remote.read-sample-limit",
    "storage.tsdb.allow-overlapping-blocks",
    "storage.tsdb.head-chunks-write-queue-size",
    "storage.tsdb.max-block-chunk-segment-size",
    "storage.tsdb.max-block-duration",
    "storage.tsdb.min-block-duration",
    "storage.tsdb.no-lockfile",
    "storage.tsdb.samples-per-chunk",
    "storage.tsdb.use-lockfile",
    "storage.tsdb.wal-compression",
    "storage.tsdb.wal-segment-size",
    "web.config.file",
    "web.console.libraries",
    "web.console.templates",
    "web.cors.origin",
    "web.enable-otlp-receiver",
    "web.enable-remote-write-receiver",
    "web.local-assets",
    "web.max-connections",
    "web.page-title",
    "web.read-timeout",
    "web.remote-write-receiver.accepted-protobuf-messages",
    "web.user-assets",
];

/// Refuses a Prometheus flag Koban lacks, naming it, before clap parses
/// the command line. `--no-X` (how Prometheus negates a boolean flag)
/// counts as `X`. Arguments after `--` are not flags.
pub fn refuse_prometheus_only_flags<I, S>(args: I) -> Result<(), String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    for a in args.into_iter().skip(1) {
        let a = a.as_ref().to_string_lossy();
        if a == "--" {
            break;
        }
        let Some(flag) = a.strip_prefix("--") else {
            continue;
        };
        let name = flag.split('=').next().unwrap_or(flag);
        let bare = name.strip_prefix("no-").unwrap_or(name);
        if name == "storage.tsdb.retention" {
            return Err("--storage.tsdb.retention is not supported by Koban (Prometheus deprecated it); use --storage.tsdb.retention.time".into());
        }
        if PROMETHEUS_ONLY.contains(&name) || PROMETHEUS_ONLY.contains(&bare) {
            return Err(format!("--{name} is not supported by Koban yet"));
        }
    }
    Ok(())
}

impl ServerArgs {
    /// The flags as `/api/v1/status/flags` shows them.
    pub fn as_map(&self) -> std::collections::BTreeMap<String, String> {
        let mut m = std::collections::BTreeMap::new();
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        m.insert(
            "config.file".into(),
            self.config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        m.insert(
            "storage.tsdb.path".into(),
            self.tsdb_path.display().to_string(),
        );
        m.insert(
            "storage.tsdb.retention.time".into(),
            opt(&self.retention_time),
        );
        m.insert(
            "storage.tsdb.retention.size".into(),
            opt(&self.retention_size),
        );
        m.insert("web.listen-address".into(), self.listen_address.clone());
        m.insert("web.external-url".into(), opt(&self.external_url));
        m.insert("web.route-prefix".into(), opt(&self.route_prefix));
        m.insert(
            "web.enable-lifecycle".into(),
            self.enable_lifecycle.to_string(),
        );
        m.insert(
            "web.enable-admin-api".into(),
            self.enable_admin_api.to_string(),
        );
        m.insert("log.level".into(), self.log_level.clone());
        m.insert("log.format".into(), self.log_format.clone());
        m.insert("query.lookback-delta".into(), self.lookback_delta.clone());
        m.insert("query.timeout".into(), self.query_timeout.clone());
        m.insert(
            "query.max-samples".into(),
            self.query_max_samples.to_string(),
        );
        m.insert(
            "query.max-concurrency".into(),
            self.query_max_concurrency.to_string(),
        );
        m.insert(
            "scrape.adjust-timestamps".into(),
            self.scrape_adjust_timestamps.to_string(),
        );
        m.insert(
            "scrape.timestamp-tolerance".into(),
            self.scrape_timestamp_tolerance.clone(),
        );
        m.insert("scrape.slots".into(), self.scrape_slots.to_string());
        m.insert(
            "rules.alert.for-outage-tolerance".into(),
            self.for_outage_tolerance.clone(),
        );
        m.insert(
            "rules.alert.for-grace-period".into(),
            self.for_grace_period.clone(),
        );
        m.insert("rules.alert.resend-delay".into(), self.resend_delay.clone());
        m.insert(
            "alertmanager.notification-queue-capacity".into(),
            self.notification_queue_capacity.to_string(),
        );
        m.insert(
            "alertmanager.drain-notification-queue-on-shutdown".into(),
            self.drain_notification_queue.to_string(),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_flag_names_parse() {
        let c = Cli::try_parse_from([
            "koban",
            "--config.file=p.yml",
            "--storage.tsdb.path=/d",
            "--web.listen-address=127.0.0.1:1",
            "--web.external-url=http://example.com/prometheus/",
            "--web.route-prefix=/prometheus",
            "--web.enable-lifecycle",
        ])
        .unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.server.route_prefix.as_deref(), Some("/prometheus"));
        assert!(c.server.enable_lifecycle);
    }

    #[test]
    fn scrape_timestamp_flags_parse_as_prometheus_spells_them() {
        let c = Cli::try_parse_from(["koban"]).unwrap();
        assert!(c.server.scrape_adjust_timestamps);
        assert_eq!(c.server.scrape_timestamp_tolerance, "2ms");
        let c = Cli::try_parse_from([
            "koban",
            "--scrape.adjust-timestamps=false",
            "--scrape.timestamp-tolerance=10ms",
        ])
        .unwrap();
        assert!(!c.server.scrape_adjust_timestamps);
        assert_eq!(c.server.scrape_timestamp_tolerance, "10ms");
        let c = Cli::try_parse_from(["koban", "--scrape.adjust-timestamps"]).unwrap();
        assert!(c.server.scrape_adjust_timestamps);
    }

    #[test]
    fn scrape_slots_flag() {
        let c = Cli::try_parse_from(["koban"]).unwrap();
        assert_eq!(c.server.scrape_slots, 20);
        assert_eq!(c.server.as_map()["scrape.slots"], "20");
        let c = Cli::try_parse_from(["koban", "--scrape.slots=0"]).unwrap();
        assert_eq!(c.server.scrape_slots, 0);
        assert!(Cli::try_parse_from(["koban", "--scrape.slots=-1"]).is_err());
    }

    #[test]
    fn unknown_flag_is_named() {
        let e = Cli::try_parse_from(["koban", "--storage.tsdb.nope=1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--storage.tsdb.nope"), "{e}");
    }

    #[test]
    fn prometheus_flags_koban_lacks_are_refused_by_name() {
        let refuse = |args: &[&str]| refuse_prometheus_only_flags(args.iter().copied());
        assert_eq!(
            refuse(&["koban", "--web.read-timeout=1m"]),
            Err("--web.read-timeout is not supported by Koban yet".into())
        );
        assert_eq!(
            refuse(&["koban", "--config.file=p.yml", "--enable-feature", "x"]),
            Err("--enable-feature is not supported by Koban yet".into())
        );
        assert_eq!(
            refuse(&["koban", "--no-storage.tsdb.wal-compression"]),
            Err("--no-storage.tsdb.wal-compression is not supported by Koban yet".into())
        );
        assert!(refuse(&["koban", "--storage.tsdb.retention=1d"])
            .unwrap_err()
            .contains("use --storage.tsdb.retention.time"));
        assert_eq!(
            refuse(&["koban", "--storage.tsdb.retention.time=1d"]),
            Ok(())
        );
        assert_eq!(
            refuse(&["koban", "promqltest", "--", "--web.page-title"]),
            Ok(())
        );
        // None of them is a flag Koban has.
        let c = <Cli as clap::CommandFactory>::command();
        for f in c.get_arguments().filter_map(|a| a.get_long()) {
            assert!(!PROMETHEUS_ONLY.contains(&f), "{f}");
        }
    }

    #[test]
    fn subcommands_parse() {
        let c = Cli::try_parse_from([
            "koban",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "in.om",
            "out",
        ])
        .unwrap();
        assert!(matches!(c.command, Some(Command::Tsdb { .. })));
        let c = Cli::try_parse_from(["koban", "check", "config", "a.yml"]).unwrap();
        assert!(matches!(c.command, Some(Command::Check { .. })));
    }
}
