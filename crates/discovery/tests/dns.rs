//! DNS SD against a real DNS server: Debian's dnsmasq, started by the test
//! on 127.0.0.1 with a free port and queried through Koban's `nameservers`
//! key. Checks targets and meta labels of SRV, A, AAAA, MX and NS answers,
//! and that a name that stops resolving loses its targets within the
//! records' TTL (refresh_interval is an hour).
//!
//! The dnsmasq binary is `KOBAN_DNSMASQ`, else `dnsmasq` under /usr/sbin or
//! on PATH. A missing dnsmasq fails the test in CI (CI=true) and skips it
//! elsewhere; scripts/test.sh installs it (Debian's dnsmasq-base).

use koban_config::DnsSdConfig;
use koban_discovery::{Discoverer, DnsDiscoverer, TargetGroup};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Dnsmasq {
    child: Child,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer_missing(what: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("{what} is required in CI but missing");
    }
    eprintln!("skipping: {what} is missing (scripts/test.sh installs it)");
    true
}

fn dnsmasq_bin() -> Option<PathBuf> {
    let from_env = std::env::var("KOBAN_DNSMASQ")
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("dnsmasq"));
    from_env
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/dnsmasq")])
        .chain(on_path)
        .find(|p| p.exists())
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

const ZONE: &str = "koban.test";

/// Records every run serves.
fn base_records() -> Vec<String> {
    [
        "--srv-host=_node._tcp.koban.test,web1.koban.test,9100,0,0",
        "--srv-host=_node._tcp.koban.test,web2.koban.test,9101,0,0",
        "--host-record=web1.koban.test,127.0.0.11,fd00::11",
        "--host-record=web2.koban.test,127.0.0.12",
        "--mx-host=koban.test,mail.koban.test,10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Records that a later run drops.
fn extra_records() -> Vec<String> {
    [
        "--srv-host=_gone._tcp.koban.test,web3.koban.test,9102,0,0",
        "--host-record=gone.koban.test,127.0.0.13",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(bin: &PathBuf, port: u16, records: &[String]) -> Dnsmasq {
    let child = Command::new(bin)
        .args([
            "--conf-file=/dev/null",
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--local-ttl=1",
            "--auth-ttl=1",
        ])
        .arg(format!("--port={port}"))
        // Authoritative for the zone: NS records at its apex, NXDOMAIN
        // for names it does not hold.
        .arg(format!("--auth-server=ns1.{ZONE},127.0.0.1"))
        .arg(format!("--auth-zone={ZONE}"))
        .arg(format!("--local=/{ZONE}/"))
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dnsmasq");
    let d = Dnsmasq { child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "dnsmasq did not start on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

fn config(port: u16, yaml: &str) -> DnsSdConfig {
    serde_saphyr::from_str(&format!("{yaml}\nnameservers: ['127.0.0.1:{port}']\n")).unwrap()
}

struct Running {
    rx: mpsc::Receiver<Vec<TargetGroup>>,
    cancel: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn run(cfg: &DnsSdConfig) -> Running {
    let (tx, rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    tokio::spawn(Box::new(DnsDiscoverer::new(cfg)).run(cancel.clone(), tx));
    Running { rx, cancel }
}

async fn next(r: &mut Running) -> Vec<TargetGroup> {
    tokio::time::timeout(Duration::from_secs(20), r.rx.recv())
        .await
        .expect("no update from the DNS provider")
        .expect("provider stopped")
}

/// `source: [targets as label sets]`, sorted.
fn show(groups: &[TargetGroup]) -> Vec<String> {
    let mut v: Vec<String> = groups
        .iter()
        .map(|g| {
            let t: Vec<String> = g.targets.iter().map(|l| l.to_string()).collect();
            format!("{}: [{}]", g.source, t.join(", "))
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn dns_sd_against_dnsmasq() {
    let Some(bin) = dnsmasq_bin() else {
        if peer_missing("dnsmasq") {
            return;
        }
        unreachable!()
    };
    let port = free_port();
    let mut records = base_records();
    records.extend(extra_records());
    let dns = start(&bin, port, &records);

    // SRV (the default type).
    let mut r = run(&config(port, "names: [_node._tcp.koban.test]"));
    assert_eq!(
        show(&next(&mut r).await),
        [concat!(
            "_node._tcp.koban.test: [",
            r#"{__address__="web1.koban.test:9100", __meta_dns_name="_node._tcp.koban.test", __meta_dns_srv_record_port="9100", __meta_dns_srv_record_target="web1.koban.test."}, "#,
            r#"{__address__="web2.koban.test:9101", __meta_dns_name="_node._tcp.koban.test", __meta_dns_srv_record_port="9101", __meta_dns_srv_record_target="web2.koban.test."}]"#
        )]
    );
    drop(r);

    // A and AAAA with the config's port, one group per name.
    let mut r = run(&config(
        port,
        "names: [web1.koban.test, web2.koban.test]\ntype: A\nport: 9100",
    ));
    assert_eq!(
        show(&next(&mut r).await),
        [
            r#"web1.koban.test: [{__address__="127.0.0.11:9100", __meta_dns_name="web1.koban.test"}]"#,
            r#"web2.koban.test: [{__address__="127.0.0.12:9100", __meta_dns_name="web2.koban.test"}]"#,
        ]
    );
    drop(r);
    let mut r = run(&config(
        port,
        "names: [web1.koban.test]\ntype: AAAA\nport: 9100",
    ));
    assert_eq!(
        show(&next(&mut r).await),
        [
            r#"web1.koban.test: [{__address__="[fd00::11]:9100", __meta_dns_name="web1.koban.test"}]"#
        ]
    );
    drop(r);

    // MX and NS: the host of the record with the config's port.
    let mut r = run(&config(port, "names: [koban.test]\ntype: MX\nport: 25"));
    assert_eq!(
        show(&next(&mut r).await),
        [
            r#"koban.test: [{__address__="mail.koban.test:25", __meta_dns_mx_record_target="mail.koban.test.", __meta_dns_name="koban.test"}]"#
        ]
    );
    drop(r);
    let mut r = run(&config(port, "names: [koban.test]\ntype: NS\nport: 53"));
    assert_eq!(
        show(&next(&mut r).await),
        [
            r#"koban.test: [{__address__="ns1.koban.test:53", __meta_dns_name="koban.test", __meta_dns_ns_record_target="ns1.koban.test."}]"#
        ]
    );
    drop(r);

    // A name that stops resolving loses its targets; the records' TTL (1s)
    // brings the refresh long before refresh_interval (1h).
    let mut srv = run(&config(
        port,
        "names: [_node._tcp.koban.test, _gone._tcp.koban.test]\nrefresh_interval: 1h",
    ));
    let mut a = run(&config(
        port,
        "names: [web2.koban.test, gone.koban.test]\ntype: A\nport: 80\nrefresh_interval: 1h",
    ));
    let first = show(&next(&mut srv).await);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first[0].starts_with("_gone._tcp.koban.test: [{__address__=\"web3.koban.test:9102\""),
        "{first:?}"
    );
    let first = show(&next(&mut a).await);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first[0].starts_with("gone.koban.test: [{__address__=\"127.0.0.13:80\""),
        "{first:?}"
    );

    drop(dns);
    let _dns = start(&bin, port, &base_records());
    let changed = Instant::now();
    assert_eq!(show(&next(&mut srv).await), ["_gone._tcp.koban.test: []"]);
    assert_eq!(show(&next(&mut a).await), ["gone.koban.test: []"]);
    assert!(
        changed.elapsed() < Duration::from_secs(15),
        "removal took {:?}",
        changed.elapsed()
    );
}
