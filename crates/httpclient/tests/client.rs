//! The HTTP client against loopback servers: TLS names, client
//! certificates, custom CAs, oauth2, proxies, auth and headers, and files
//! rotated under a running client.

#[path = "client/support.rs"]
mod support;

use koban_httpclient::{error_chain, ClientOptions, HttpClient, HttpClientConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::*;

/// A validated config from the YAML of an HTTP client config's nested
/// keys (tls_config, basic_auth, ...), the way the config crate builds it.
fn config(yaml: &str) -> HttpClientConfig {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Y {
        #[serde(default)]
        basic_auth: Option<koban_httpclient::BasicAuth>,
        #[serde(default)]
        authorization: Option<koban_httpclient::Authorization>,
        #[serde(default)]
        oauth2: Option<koban_httpclient::OAuth2>,
        #[serde(default)]
        tls_config: koban_httpclient::TlsConfig,
        #[serde(default)]
        proxy_url: String,
        #[serde(default)]
        no_proxy: String,
        #[serde(default)]
        proxy_connect_header: std::collections::BTreeMap<String, Vec<koban_httpclient::Secret>>,
        #[serde(default)]
        http_headers: std::collections::BTreeMap<String, koban_httpclient::HttpHeader>,
    }
    let y: Y = serde_saphyr::from_str(yaml).unwrap();
    let mut c = HttpClientConfig {
        basic_auth: y.basic_auth,
        authorization: y.authorization,
        oauth2: y.oauth2,
        tls_config: y.tls_config,
        proxy_url: y.proxy_url,
        no_proxy: y.no_proxy,
        proxy_connect_header: y.proxy_connect_header,
        http_headers: y.http_headers,
        ..Default::default()
    };
    c.validate().unwrap();
    c
}

fn client(cfg: &HttpClientConfig) -> HttpClient {
    HttpClient::new(cfg, "test", ClientOptions::default()).unwrap()
}

/// GETs `url`; the body, or the whole error chain.
async fn get(c: &HttpClient, url: &str) -> Result<String, String> {
    let req = c
        .request(reqwest::Method::GET, url)
        .await
        .map_err(|e| error_chain(&e))?;
    let resp = req.send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| error_chain(&e))?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
}

fn yaml_block(pem: &str) -> String {
    let mut s = String::from("|\n");
    for l in pem.lines() {
        s.push_str("    ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

#[tokio::test]
async fn certificate_for_another_host_needs_server_name() {
    let ca = Ca::new("test CA");
    let srv = https_server(&ca.server(&["mail.example.net"]), None, ok()).await;
    let url = format!("https://127.0.0.1:{}/", srv.addr.port());
    let ca_yaml = yaml_block(&ca.pem);

    let plain = client(&config(&format!("tls_config:\n  ca: {ca_yaml}")));
    let e = get(&plain, &url).await.unwrap_err();
    assert!(
        e.contains("127.0.0.1") && e.contains("mail.example.net"),
        "the error names the certificate's names: {e}"
    );

    let named = client(&config(&format!(
        "tls_config:\n  server_name: mail.example.net\n  ca: {ca_yaml}"
    )));
    assert_eq!(get(&named, &url).await.unwrap(), "ok");

    let insecure = client(&config("tls_config: {insecure_skip_verify: true}"));
    assert_eq!(get(&insecure, &url).await.unwrap(), "ok");
}

#[tokio::test]
async fn client_certificate_when_the_server_requires_one() {
    let ca = Ca::new("test CA");
    let clients = Ca::new("client CA");
    let srv = https_server(&ca.server(&["127.0.0.1"]), Some(&clients), ok()).await;
    let url = format!("https://127.0.0.1:{}/", srv.addr.port());
    let dir = tempfile::tempdir().unwrap();
    let leaf = clients.client("koban");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.path().join("c.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.path().join("c.key"), &leaf.key_pem).unwrap();
    let d = dir.path().display();

    let without = client(&config(&format!("tls_config: {{ca_file: {d}/ca.pem}}")));
    assert!(get(&without, &url).await.is_err());

    let with = client(&config(&format!(
        "tls_config: {{ca_file: {d}/ca.pem, cert_file: {d}/c.pem, key_file: {d}/c.key}}"
    )));
    assert_eq!(get(&with, &url).await.unwrap(), "ok");

    // Inline certificate and key work the same.
    let inline = client(&config(&format!(
        "tls_config:\n  ca_file: {d}/ca.pem\n  cert: {}\n  key: {}",
        yaml_block(&leaf.cert_pem),
        yaml_block(&leaf.key_pem)
    )));
    assert_eq!(get(&inline, &url).await.unwrap(), "ok");
}

#[tokio::test]
async fn custom_ca_from_file_or_inline() {
    let ca = Ca::new("private CA");
    let srv = https_server(&ca.server(&["127.0.0.1"]), None, ok()).await;
    let url = format!("https://127.0.0.1:{}/", srv.addr.port());

    let public_roots = client(&HttpClientConfig::default());
    let e = get(&public_roots, &url).await.unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ca.pem");
    std::fs::write(&f, &ca.pem).unwrap();
    let from_file = client(&config(&format!(
        "tls_config: {{ca_file: {}}}",
        f.display()
    )));
    assert_eq!(get(&from_file, &url).await.unwrap(), "ok");
    let inline = client(&config(&format!(
        "tls_config:\n  ca: {}",
        yaml_block(&ca.pem)
    )));
    assert_eq!(get(&inline, &url).await.unwrap(), "ok");

    // A CA file without a certificate refuses the client, naming the file.
    std::fs::write(&f, "not a pem").unwrap();
    let cfg = config(&format!("tls_config: {{ca_file: {}}}", f.display()));
    let e = HttpClient::new(&cfg, "x", ClientOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "tls_config: unable to use specified CA cert file {}",
            f.display()
        )
    );
}

/// A token endpoint issuing `tok-1`, `tok-2`... with `expires_in`.
async fn token_server(expires_in: u64) -> (Server, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let srv = http_server(Arc::new(move |_req: &Req| {
        let i = n2.fetch_add(1, Ordering::SeqCst) + 1;
        (
            200,
            "application/json",
            format!(
                r#"{{"access_token":"tok-{i}","token_type":"bearer","expires_in":{expires_in}}}"#
            ),
        )
    }))
    .await;
    (srv, n)
}

#[tokio::test]
async fn oauth2_token_is_cached_until_it_expires() {
    let (tokens, issued) = token_server(3600).await;
    let api = http_server(ok()).await;
    let cfg = config(&format!(
        "oauth2:\n  client_id: my id\n  client_secret: s&cret\n  scopes: [read, write]\n  token_url: http://{}/token\n  endpoint_params: {{audience: koban}}",
        tokens.addr
    ));
    let c = client(&cfg);
    let url = format!("http://{}/api", api.addr);
    get(&c, &url).await.unwrap();
    get(&c, &url).await.unwrap();
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "one token for both requests"
    );
    let seen: Vec<String> = api
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_string())
        .collect();
    assert_eq!(seen, vec!["Bearer tok-1", "Bearer tok-1"]);

    let t = &tokens.requests()[0];
    assert_eq!(t.method, "POST");
    assert_eq!(t.target, "/token");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("my+id:s%26cret");
    assert_eq!(
        t.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(t.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "read write");
    assert_eq!(form["audience"], "koban");
}

#[tokio::test]
async fn oauth2_token_is_refreshed_when_it_expires() {
    // Tokens valid for 5 s are within the 10 s refresh margin at once, so
    // each request needs a new one.
    let (tokens, issued) = token_server(5).await;
    let api = http_server(ok()).await;
    let cfg = config(&format!(
        "oauth2: {{client_id: a, client_secret: b, token_url: 'http://{}/t'}}",
        tokens.addr
    ));
    let c = client(&cfg);
    let url = format!("http://{}/", api.addr);
    get(&c, &url).await.unwrap();
    get(&c, &url).await.unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 2);
    let seen: Vec<String> = api
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or("").to_string())
        .collect();
    assert_eq!(seen, vec!["Bearer tok-1", "Bearer tok-2"]);
}

#[tokio::test]
async fn oauth2_endpoint_errors_are_reported() {
    let tokens = http_server(Arc::new(|_req: &Req| {
        (
            401,
            "application/json",
            r#"{"error":"invalid_client","error_description":"bad secret"}"#.into(),
        )
    }))
    .await;
    let cfg = config(&format!(
        "oauth2: {{client_id: a, client_secret: b, token_url: 'http://{}/t'}}",
        tokens.addr
    ));
    let c = client(&cfg);
    let e = get(&c, "http://127.0.0.1:1/").await.unwrap_err();
    assert_eq!(e, r#"oauth2: "invalid_client" "bad secret""#);
    // Refused with basic auth, the credentials were sent as form fields too.
    let reqs = tokens.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].body.contains("client_id=a") && reqs[1].header("authorization").is_none());
}

#[tokio::test]
async fn proxy_forwards_http_tunnels_https_and_no_proxy_bypasses_it() {
    let px = proxy().await;
    let direct = http_server(Arc::new(|_req: &Req| (200, "text/plain", "direct".into()))).await;
    let ca = Ca::new("test CA");
    let tls = https_server(&ca.server(&["127.0.0.1"]), None, ok()).await;
    let cfg = config(&format!(
        "proxy_url: http://{}\nproxy_connect_header: {{X-Proxy-Token: [pt]}}\ntls_config:\n  ca: {}",
        px.addr,
        yaml_block(&ca.pem)
    ));
    let c = client(&cfg);
    let plain_url = format!("http://{}/m", direct.addr);
    assert_eq!(get(&c, &plain_url).await.unwrap(), "via proxy");
    let tls_url = format!("https://127.0.0.1:{}/m", tls.addr.port());
    assert_eq!(get(&c, &tls_url).await.unwrap(), "ok");
    let seen = px.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("GET", plain_url.as_str())
    );
    assert_eq!(seen[1].method, "CONNECT");
    assert_eq!(seen[1].target, format!("127.0.0.1:{}", tls.addr.port()));
    assert_eq!(seen[1].header("x-proxy-token"), Some("pt"));
    assert_eq!(tls.requests().len(), 1, "the tunnel reached the server");

    let bypass = client(&config(&format!(
        "proxy_url: http://{}\nno_proxy: 127.0.0.1",
        px.addr
    )));
    assert_eq!(get(&bypass, &plain_url).await.unwrap(), "direct");
    assert_eq!(
        px.requests().len(),
        2,
        "no_proxy: the proxy saw nothing more"
    );
}

#[tokio::test]
async fn basic_auth_authorization_and_http_headers() {
    let srv = http_server(ok()).await;
    let url = format!("http://{}/", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("h");
    std::fs::write(&f, " from-file \n").unwrap();

    let c = client(&config(&format!(
        "basic_auth: {{username: u, password: p}}\nhttp_headers:\n  X-Tenant:\n    values: [a, b]\n    secrets: [s]\n    files: ['{}']",
        f.display()
    )));
    get(&c, &url).await.unwrap();
    let c = client(&config("authorization: {type: Token, credentials: abc}"));
    get(&c, &url).await.unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs[0].header("authorization"), Some("Basic dTpw"));
    assert_eq!(reqs[0].all("x-tenant"), vec!["a", "b", "s", "from-file"]);
    assert_eq!(reqs[1].header("authorization"), Some("Token abc"));

    // All fixed: a plain-HTTP caller may send them itself.
    let fixed = client(&config("basic_auth: {username: u, password: p}")).fixed_headers();
    assert_eq!(
        fixed,
        Some(vec![(
            "Authorization".to_string(),
            "Basic dTpw".to_string()
        )])
    );
    let from_file = client(&config(&format!(
        "basic_auth: {{username: u, password_file: '{}'}}",
        f.display()
    )));
    assert_eq!(from_file.fixed_headers(), None);
}

#[tokio::test]
async fn rotated_files_apply_without_a_new_client() {
    let srv = http_server(ok()).await;
    let url = format!("http://{}/", srv.addr);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    let tok = dir.path().join("tok");
    std::fs::write(&pw, "old\n").unwrap();
    std::fs::write(&tok, "t1").unwrap();
    let basic = client(&config(&format!(
        "basic_auth: {{username: u, password_file: '{}'}}",
        pw.display()
    )));
    let bearer = client(&config(&format!(
        "authorization: {{credentials_file: '{}'}}",
        tok.display()
    )));
    get(&basic, &url).await.unwrap();
    get(&bearer, &url).await.unwrap();
    std::fs::write(&pw, "newer\n").unwrap();
    std::fs::write(&tok, "t2-rotated").unwrap();
    get(&basic, &url).await.unwrap();
    get(&bearer, &url).await.unwrap();
    let auth: Vec<String> = srv
        .requests()
        .iter()
        .map(|r| r.header("authorization").unwrap().to_string())
        .collect();
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert_eq!(
        auth,
        vec![
            format!("Basic {}", b64("u:old")),
            "Bearer t1".to_string(),
            format!("Basic {}", b64("u:newer")),
            "Bearer t2-rotated".to_string(),
        ]
    );

    // A missing secret file fails the request, naming the file.
    std::fs::remove_file(&pw).unwrap();
    let e = get(&basic, &url).await.unwrap_err();
    assert!(
        e.starts_with(&format!(
            "unable to read basic_auth password_file {}: ",
            pw.display()
        )),
        "{e}"
    );
}

#[tokio::test]
async fn rotated_ca_file_applies_without_a_new_client() {
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let srv = https_server(&new_ca.server(&["127.0.0.1"]), None, ok()).await;
    let url = format!("https://127.0.0.1:{}/", srv.addr.port());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ca.pem");
    std::fs::write(&f, &old_ca.pem).unwrap();
    let c = client(&config(&format!(
        "tls_config: {{ca_file: '{}'}}",
        f.display()
    )));
    assert!(get(&c, &url).await.is_err(), "signed by another CA");
    // Replaced by rename, as certificate tools do.
    let tmp = dir.path().join("ca.pem.new");
    std::fs::write(&tmp, format!("{}{}", new_ca.pem, old_ca.pem)).unwrap();
    std::fs::rename(&tmp, &f).unwrap();
    assert_eq!(get(&c, &url).await.unwrap(), "ok");
}
