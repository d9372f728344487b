use super::*;
use crate::tree::parse_tree;
use std::path::Path;

/// Decodes `global` (optional) and one receiver the way the loader does,
/// and finishes the receiver.
fn load(global: &str, receiver: &str) -> Result<Receiver, ConfigError> {
    let path = Path::new("/etc/am/alertmanager.yml");
    let g: Global = if global.is_empty() {
        Global::default()
    } else {
        serde_saphyr::from_str(global).expect("global decodes")
    };
    let tree = parse_tree(receiver).expect("tree");
    let mut r: Receiver = serde_saphyr::from_str(receiver).expect("receiver decodes");
    r.finish(&g, Some(&tree), path, Path::new("/etc/am"))?;
    Ok(r)
}

#[test]
fn defaults_as_0_25() {
    let r = load(
        "smtp_smarthost: mail:25\nsmtp_from: am@x\nslack_api_url: https://hooks.slack/x\n",
        "name: r\nemail_configs: [{to: a@x}]\nslack_configs: [{channel: '#c'}]\nwebhook_configs: [{url: 'http://127.0.0.1:1/'}]\n",
    )
    .unwrap();
    let e = &r.email_configs[0];
    assert!(!e.send_resolved);
    assert_eq!(e.smarthost, "mail:25");
    assert_eq!(e.from, "am@x");
    assert_eq!(e.hello, "localhost");
    assert_eq!(e.require_tls, Some(true));
    assert_eq!(e.html, r#"{{ template "email.default.html" . }}"#);
    assert_eq!(
        e.headers["Subject"],
        r#"{{ template "email.default.subject" . }}"#
    );
    assert_eq!(e.headers["To"], "a@x");
    assert_eq!(e.headers["From"], "am@x");
    let s = &r.slack_configs[0];
    assert!(!s.send_resolved);
    assert_eq!(s.api_url.expose(), "https://hooks.slack/x");
    assert_eq!(s.title, r#"{{ template "slack.default.title" . }}"#);
    assert_eq!(s.mrkdwn_in, ["fallback", "pretext", "text"]);
    let w = &r.webhook_configs[0];
    assert!(w.send_resolved);
    assert_eq!(w.max_alerts, 0);
    assert!(w.http().follow_redirects);
}

#[test]
fn headers_canonical_and_duplicates_refused() {
    let g = "smtp_smarthost: mail:25\nsmtp_from: am@x\n";
    let r = load(
        g,
        "name: r\nemail_configs: [{to: a@x, headers: {subject: hi}}]\n",
    )
    .unwrap();
    assert_eq!(r.email_configs[0].headers["Subject"], "hi");
    let e = load(
        g,
        "name: r\nemail_configs: [{to: a@x, headers: {subject: hi, Subject: ho}}]\n",
    )
    .unwrap_err();
    assert_eq!(e.message(), "duplicate header \"Subject\" in email config");
}

#[test]
fn messages_of_0_25() {
    let cases = [
        (
            "",
            "name: r\nemail_configs:\n- from: a@x\n",
            "/etc/am/alertmanager.yml:3:3: missing to address in email config",
        ),
        (
            "",
            "name: r\nemail_configs:\n- to: a@x\n",
            "/etc/am/alertmanager.yml:3:3: no global SMTP smarthost set",
        ),
        (
            "smtp_smarthost: m:25",
            "name: r\nemail_configs:\n- to: a@x\n",
            "/etc/am/alertmanager.yml:3:3: no global SMTP from set",
        ),
        (
            "",
            "name: r\nslack_configs:\n- channel: x\n",
            "/etc/am/alertmanager.yml:3:3: no global Slack API URL set",
        ),
        (
            "",
            "name: r\nwebhook_configs:\n- max_alerts: 1\n",
            "/etc/am/alertmanager.yml:3:3: one of url or url_file must be configured",
        ),
        (
            "",
            "name: r\nwebhook_configs:\n- url: ftp://x\n",
            "/etc/am/alertmanager.yml:3:8: unsupported scheme \"ftp\" for URL",
        ),
    ];
    for (g, r, want) in cases {
        let e = load(g, r).unwrap_err();
        assert_eq!(e.to_string(), want, "{r}");
    }
}

#[test]
fn other_integrations_refused_by_name() {
    let e = load("", "name: r\npagerduty_configs:\n- routing_key: x\n").unwrap_err();
    assert!(matches!(&e, ConfigError::Unsupported { key, .. } if key == "pagerduty_configs"));
    assert_eq!(
        e.to_string(),
        "/etc/am/alertmanager.yml:2:1: pagerduty_configs is not supported by Koban yet"
    );
}

#[test]
fn file_paths_resolved() {
    let r = load(
        "",
        "name: r\nwebhook_configs:\n- url_file: url.txt\n  http_config: {tls_config: {ca_file: ca.pem}}\n",
    )
    .unwrap();
    let w = &r.webhook_configs[0];
    assert_eq!(w.url_file, "/etc/am/url.txt");
    assert_eq!(w.http().tls_config.ca_file, "/etc/am/ca.pem");
}
