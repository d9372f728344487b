//! Behind a reverse proxy, as shared/seeds/001 runs Prometheus: Debian's
//! nginx serves Koban under /prometheus/ with `--web.external-url` and
//! `--web.route-prefix`; every page, asset and API call works through it.
//!
//! A missing nginx fails the test in CI (CI=true) and skips it elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn nginx_bin() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn nginx_conf(dir: &Path, port: u16, upstream: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  server {{\n    listen 127.0.0.1:{port};\n    location /prometheus/ {{\n      proxy_pass http://127.0.0.1:{upstream};\n    }}\n  }}\n}}\n"
    )
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_works_under_a_prefix_behind_nginx() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(nginx) = nginx_bin() else {
        if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
            panic!("nginx is required in CI but missing");
        }
        eprintln!("skipping: nginx is missing (scripts/test.sh installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kport = free_port();
    let nport = free_port();
    let log = std::fs::File::create(dir.path().join("koban.log")).unwrap();
    let _koban = Proc(
        Command::new(env!("CARGO_BIN_EXE_koban"))
            .current_dir(dir.path())
            .arg(format!("--web.listen-address=127.0.0.1:{kport}"))
            .arg(format!(
                "--web.external-url=http://127.0.0.1:{nport}/prometheus/"
            ))
            .arg("--web.route-prefix=/prometheus")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir.path(), nport, kport)).unwrap();
    let _nginx = Proc(
        Command::new(nginx)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{nport}/prometheus");
    // Wait (bounded) until the self-scrape target has been scraped through its prefixed path.
    let mut targets = serde_json::Value::Null;
    for _ in 0..300 {
        let (s, body) = get(&format!("{base}/api/v1/targets")).await;
        if s == 200 {
            targets = serde_json::from_str(&body).unwrap();
            if targets["data"]["activeTargets"][0]["health"] == "up" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t = &targets["data"]["activeTargets"][0];
    assert_eq!(t["health"], "up", "self-scrape under the prefix: {targets}");
    assert_eq!(
        t["scrapeUrl"],
        format!("http://localhost:{kport}/prometheus/metrics")
    );

    // The UI home, its assets (found through relative links) and the API, all through nginx.
    let (s, home) = get(&format!("{base}/")).await;
    assert_eq!(s, 200);
    assert!(home.contains("Koban"), "{home}");
    let assets: Vec<String> = home
        .split(['"', '\''])
        .filter(|p| p.starts_with("static/") || p.starts_with("vendor/"))
        .map(String::from)
        .collect();
    assert!(!assets.is_empty(), "no relative asset links in {home}");
    for a in &assets {
        assert!(!a.starts_with('/'), "asset link {a} is absolute");
        let (s, _) = get(&format!("{base}/{a}")).await;
        assert_eq!(s, 200, "{a}");
    }
    let (s, body) = get(&format!("{base}/api/v1/query?query=up")).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"job\":\"koban\""), "{body}");
    let (s, _) = get(&format!("{base}/graph?g0.expr=up&g0.tab=1")).await;
    assert_eq!(s, 200);
    let (s, body) = get(&format!("{base}/-/healthy")).await;
    assert_eq!(s, 200);
    assert!(body.contains("Healthy"));
}
