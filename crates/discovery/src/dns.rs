//! The DNS provider: `dns_sd_configs`.
//!
//! Every name of a config is one target group (source: the name). Each
//! answer record is one target with `__meta_dns_name` (the configured name)
//! and, by type:
//! - SRV: `__address__` is `target:port` of the record (the target's final
//!   dot trimmed), with `__meta_dns_srv_record_target` (as in the record,
//!   final dot kept) and `__meta_dns_srv_record_port`;
//! - A / AAAA: `__address__` is `ip:port` / `[ip]:port` with the config's port;
//! - MX / NS: `__address__` is the exchange / name server host (final dot
//!   trimmed) with the config's port, and `__meta_dns_mx_record_target` /
//!   `__meta_dns_ns_record_target` as in the record.
//!
//! Other records in an answer (a CNAME on the way) are skipped.
//!
//! Refresh: every name is queried again after `refresh_interval`, or
//! sooner when the shortest TTL of the last answers (or the negative TTL of
//! a "no such name" answer) says so, never more often than once a second.
//! A failed lookup keeps the TTL of the name's last answer, so the retry
//! comes as soon as that answer would have expired. Prometheus ignores
//! TTLs; Koban does not.
//!
//! Outcomes per name: records -> their targets; NXDOMAIN or an empty
//! answer -> the group becomes empty, so the name's targets go away; any
//! other failure (timeout, SERVFAIL, REFUSED, ...) is logged and the
//! name keeps its last targets, as in Prometheus.
//!
//! Resolvers: with the config's `nameservers` (Koban's own key) queries go
//! to those servers only (UDP, then TCP on truncation); otherwise to the
//! servers and search domains of the system's `/etc/resolv.conf`. The
//! resolver's cache is cleared before every round, so each refresh asks
//! the servers; `/etc/hosts` is not consulted (as in Prometheus).

use crate::{BoxFuture, Discoverer, TargetGroup, ADDRESS_LABEL};
use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};
use koban_config::{DnsRecordType, DnsSdConfig};
use koban_model::Labels;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The configured name that produced a target.
pub const META_DNS_NAME: &str = "__meta_dns_name";
/// The target field of an SRV record.
pub const META_DNS_SRV_TARGET: &str = "__meta_dns_srv_record_target";
/// The port field of an SRV record.
pub const META_DNS_SRV_PORT: &str = "__meta_dns_srv_record_port";
/// The exchange field of an MX record.
pub const META_DNS_MX_TARGET: &str = "__meta_dns_mx_record_target";
/// The name server field of an NS record.
pub const META_DNS_NS_TARGET: &str = "__meta_dns_ns_record_target";

/// No name is queried more often than this, whatever the TTLs say.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);

/// The DNS SD provider for one `dns_sd_configs` entry.
#[derive(Debug, Clone)]
pub struct DnsDiscoverer {
    names: Vec<String>,
    record_type: DnsRecordType,
    port: u16,
    refresh: Duration,
    nameservers: Vec<SocketAddr>,
}

impl DnsDiscoverer {
    /// A provider for `cfg`. Duplicate names are queried once; a zero
    /// `refresh_interval` means Prometheus's default (30s). Entries of
    /// `nameservers` that do not parse (the loader refuses them) are
    /// skipped with a warning.
    pub fn new(cfg: &DnsSdConfig) -> Self {
        let mut names: Vec<String> = Vec::with_capacity(cfg.names.len());
        for n in &cfg.names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let nameservers = cfg
            .nameservers
            .iter()
            .filter_map(|s| match koban_config::parse_nameserver(s) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, "dns_sd: skipping DNS server");
                    None
                }
            })
            .collect();
        DnsDiscoverer {
            names,
            record_type: cfg.record_type,
            port: cfg.port,
            refresh: match cfg.refresh_interval.as_std() {
                d if d.is_zero() => Duration::from_secs(30),
                d => d,
            },
            nameservers,
        }
    }

    /// Builds the resolver: the named servers, or the system's config (read
    /// off the async workers, as it reads files).
    async fn resolver(&self) -> Result<TokioResolver, String> {
        let mut builder = if self.nameservers.is_empty() {
            tokio::task::spawn_blocking(TokioResolver::builder_tokio)
                .await
                .map_err(|e| format!("reading the system resolver config failed: {e}"))?
                .map_err(|e| format!("cannot read the system resolver config: {e}"))?
        } else {
            let mut group = Vec::with_capacity(2 * self.nameservers.len());
            for a in &self.nameservers {
                group.push(NameServerConfig::new(*a, Protocol::Udp));
                group.push(NameServerConfig::new(*a, Protocol::Tcp));
            }
            let cfg =
                ResolverConfig::from_parts(None, Vec::new(), NameServerConfigGroup::from(group));
            TokioResolver::builder_with_config(cfg, TokioConnectionProvider::default())
                .with_options(ResolverOpts::default())
        };
        let opts = builder.options_mut();
        opts.use_hosts_file = ResolveHosts::Never;
        // Ask the named servers one at a time, in order.
        opts.num_concurrent_reqs = 1;
        Ok(builder.build())
    }
}

/// What one query for one name gave.
#[derive(Debug)]
enum Outcome {
    /// Targets (possibly none) and how long the answer is valid.
    Targets(Vec<Labels>, Option<Duration>),
    /// The query failed; the name keeps its targets.
    Failed(String),
}

fn record_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::Srv => RecordType::SRV,
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Mx => RecordType::MX,
        DnsRecordType::Ns => RecordType::NS,
    }
}

/// `host:port`, with IPv6 literals bracketed.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The targets of the records of an answer for `name` (records of other
/// types than `t` are skipped), and the shortest TTL among the records.
fn targets_of(
    name: &str,
    t: DnsRecordType,
    port: u16,
    records: &[Record],
) -> (Vec<Labels>, Option<Duration>) {
    let mut out = Vec::new();
    let mut ttl: Option<u32> = None;
    for r in records {
        ttl = Some(ttl.map_or(r.ttl(), |m| m.min(r.ttl())));
        let mut pairs: Vec<(&str, String)> = Vec::with_capacity(4);
        match (t, r.data()) {
            (DnsRecordType::Srv, RData::SRV(srv)) => {
                let target = srv.target().to_utf8();
                pairs.push((
                    ADDRESS_LABEL,
                    host_port(target.trim_end_matches('.'), srv.port()),
                ));
                pairs.push((META_DNS_SRV_PORT, srv.port().to_string()));
                pairs.push((META_DNS_SRV_TARGET, target));
            }
            (DnsRecordType::A, RData::A(a)) => {
                pairs.push((ADDRESS_LABEL, host_port(&a.0.to_string(), port)));
            }
            (DnsRecordType::Aaaa, RData::AAAA(a)) => {
                pairs.push((ADDRESS_LABEL, host_port(&a.0.to_string(), port)));
            }
            (DnsRecordType::Mx, RData::MX(mx)) => {
                let target = mx.exchange().to_utf8();
                pairs.push((ADDRESS_LABEL, host_port(target.trim_end_matches('.'), port)));
                pairs.push((META_DNS_MX_TARGET, target));
            }
            (DnsRecordType::Ns, RData::NS(ns)) => {
                let target = ns.0.to_utf8();
                pairs.push((ADDRESS_LABEL, host_port(target.trim_end_matches('.'), port)));
                pairs.push((META_DNS_NS_TARGET, target));
            }
            _ => continue,
        }
        pairs.push((META_DNS_NAME, name.to_string()));
        out.push(Labels::from_pairs(pairs));
    }
    out.sort();
    out.dedup();
    (out, ttl.map(|s| Duration::from_secs(u64::from(s))))
}

/// Sorts a failed lookup into "the name has no such records" (NXDOMAIN, or
/// success with no answer: `Some(negative TTL)`) and real failures (`None`).
fn no_records(e: &ResolveError) -> Option<Option<Duration>> {
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound {
            response_code: ResponseCode::NXDomain | ResponseCode::NoError,
            negative_ttl,
            ..
        }) => Some(negative_ttl.map(|s| Duration::from_secs(u64::from(s)))),
        _ => None,
    }
}

async fn query(r: &TokioResolver, name: &str, t: DnsRecordType, port: u16) -> Outcome {
    match r.lookup(name, record_type(t)).await {
        Ok(l) => {
            let (targets, ttl) = targets_of(name, t, port, l.records());
            Outcome::Targets(targets, ttl)
        }
        Err(e) => match no_records(&e) {
            Some(ttl) => Outcome::Targets(Vec::new(), ttl),
            None => Outcome::Failed(e.to_string()),
        },
    }
}

/// The wait before the next round: the refresh interval, shortened to the
/// shortest TTL seen, but at least [`MIN_REFRESH`].
fn next_wait(refresh: Duration, ttls: impl IntoIterator<Item = Duration>) -> Duration {
    ttls.into_iter()
        .fold(refresh, Duration::min)
        .max(MIN_REFRESH)
}

impl Discoverer for DnsDiscoverer {
    fn run(
        self: Box<Self>,
        cancel: CancellationToken,
        tx: mpsc::Sender<Vec<TargetGroup>>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut resolver: Option<TokioResolver> = None;
            // Targets last sent per name.
            let mut sent: HashMap<String, Vec<Labels>> = HashMap::new();
            // How long each name's last answer is valid; a failed lookup
            // keeps the name's targets, and with them this deadline.
            let mut valid: HashMap<String, Duration> = HashMap::new();
            let mut first = true;
            loop {
                if resolver.is_none() {
                    match self.resolver().await {
                        Ok(r) => resolver = Some(r),
                        Err(e) => {
                            tracing::error!(error = %e, "dns_sd: no resolver; retrying at the next refresh")
                        }
                    }
                }
                let mut update = Vec::new();
                if let Some(r) = &resolver {
                    r.clear_cache();
                    let lookups = futures::future::join_all(
                        self.names
                            .iter()
                            .map(|n| query(r, n, self.record_type, self.port)),
                    );
                    let outcomes = tokio::select! {
                        _ = cancel.cancelled() => return,
                        o = lookups => o,
                    };
                    for (name, outcome) in self.names.iter().zip(outcomes) {
                        let targets = match outcome {
                            Outcome::Targets(t, ttl) => {
                                match ttl {
                                    Some(ttl) => valid.insert(name.clone(), ttl),
                                    None => valid.remove(name),
                                };
                                t
                            }
                            Outcome::Failed(e) => {
                                tracing::warn!(name = %name, record_type = %self.record_type, error = %e,
                                    "dns_sd: lookup failed; keeping the name's last targets");
                                continue;
                            }
                        };
                        if sent.get(name) != Some(&targets) {
                            tracing::debug!(name = %name, targets = targets.len(), "dns_sd: targets changed");
                            update.push(TargetGroup {
                                source: name.clone(),
                                targets: targets.clone(),
                                labels: Labels::default(),
                            });
                            sent.insert(name.clone(), targets);
                        }
                    }
                }
                if first || !update.is_empty() {
                    first = false;
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = tx.send(update) => if r.is_err() { return },
                    }
                }
                let wait = next_wait(self.refresh, valid.values().copied());
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SRV};
    use hickory_resolver::proto::rr::Name;

    fn rec(ttl: u32, data: RData) -> Record {
        Record::from_rdata(Name::from_ascii("q.test.").unwrap(), ttl, data)
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn show(t: &[Labels]) -> Vec<String> {
        t.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn targets_and_meta_labels_per_type() {
        let recs = [
            rec(60, RData::CNAME(CNAME(name("other.test.")))),
            rec(30, RData::SRV(SRV::new(0, 0, 9100, name("web1.test.")))),
        ];
        let (t, ttl) = targets_of("_x._tcp.test", DnsRecordType::Srv, 0, &recs);
        assert_eq!(ttl, Some(Duration::from_secs(30)));
        assert_eq!(
            show(&t),
            [
                r#"{__address__="web1.test:9100", __meta_dns_name="_x._tcp.test", __meta_dns_srv_record_port="9100", __meta_dns_srv_record_target="web1.test."}"#
            ]
        );
        let (t, _) = targets_of(
            "a.test",
            DnsRecordType::A,
            80,
            &[rec(5, RData::A(A::new(10, 0, 0, 1)))],
        );
        assert_eq!(
            show(&t),
            [r#"{__address__="10.0.0.1:80", __meta_dns_name="a.test"}"#]
        );
        let (t, _) = targets_of(
            "a.test",
            DnsRecordType::Aaaa,
            80,
            &[rec(5, RData::AAAA(AAAA::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)))],
        );
        assert_eq!(
            show(&t),
            [r#"{__address__="[fd00::1]:80", __meta_dns_name="a.test"}"#]
        );
        let (t, _) = targets_of(
            "m.test",
            DnsRecordType::Mx,
            25,
            &[rec(5, RData::MX(MX::new(10, name("mail.test."))))],
        );
        assert_eq!(
            show(&t),
            [
                r#"{__address__="mail.test:25", __meta_dns_mx_record_target="mail.test.", __meta_dns_name="m.test"}"#
            ]
        );
        let (t, _) = targets_of(
            "test",
            DnsRecordType::Ns,
            53,
            &[rec(5, RData::NS(NS(name("ns1.test."))))],
        );
        assert_eq!(
            show(&t),
            [
                r#"{__address__="ns1.test:53", __meta_dns_name="test", __meta_dns_ns_record_target="ns1.test."}"#
            ]
        );
        // A record of another type than asked for is no target.
        let (t, _) = targets_of(
            "a.test",
            DnsRecordType::Aaaa,
            80,
            &[rec(5, RData::A(A::new(10, 0, 0, 1)))],
        );
        assert!(t.is_empty());
    }

    #[test]
    fn refresh_follows_the_shortest_ttl_with_a_floor() {
        let r = Duration::from_secs(30);
        assert_eq!(next_wait(r, []), r);
        assert_eq!(
            next_wait(r, [Duration::from_secs(7), Duration::from_secs(12)]),
            Duration::from_secs(7)
        );
        assert_eq!(next_wait(r, [Duration::from_secs(300)]), r);
        assert_eq!(next_wait(r, [Duration::ZERO]), MIN_REFRESH);
    }

    #[test]
    fn new_dedups_names_and_defaults_refresh() {
        let cfg: DnsSdConfig = serde_saphyr::from_str(
            "names: [a.test, a.test, b.test]\nrefresh_interval: 0s\nnameservers: ['127.0.0.1:5353']\n",
        )
        .unwrap();
        let d = DnsDiscoverer::new(&cfg);
        assert_eq!(d.names, ["a.test", "b.test"]);
        assert_eq!(d.refresh, Duration::from_secs(30));
        assert_eq!(d.nameservers, ["127.0.0.1:5353".parse().unwrap()]);
    }
}
