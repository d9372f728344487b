//! Delivery to one Alertmanager: a task that takes batches from the shared
//! queue at its own pace, applies its set's `alert_relabel_configs`, and
//! posts them as Alertmanager API v2 `postableAlerts` JSON, each post
//! bounded by the set's `timeout`. A failed post is counted, not retried:
//! the rule manager re-sends active alerts every resend delay.

use crate::config::SetConfig;
use crate::metrics::NotifierMetrics;
use crate::queue::{Queue, ReaderId};
use koban_model::{relabel, Alert, Labels};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Most alerts in one post, as Prometheus.
pub const MAX_BATCH: usize = 64;

/// Alertmanager's `postableAlert`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: LabelMap<'a>,
    annotations: LabelMap<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    starts_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL", skip_serializing_if = "str::is_empty")]
    generator_url: &'a str,
}

struct LabelMap<'a>(&'a Labels);

impl Serialize for LabelMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
}

/// Unix milliseconds as Go's strfmt.DateTime writes them (RFC 3339, UTC,
/// milliseconds); None for 0 (unset).
fn time_text(ms: i64) -> Option<String> {
    if ms == 0 {
        return None;
    }
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The JSON body of a post.
pub(crate) fn encode(alerts: &[Alert]) -> String {
    let v: Vec<PostableAlert<'_>> = alerts
        .iter()
        .map(|a| PostableAlert {
            labels: LabelMap(&a.labels),
            annotations: LabelMap(&a.annotations),
            starts_at: time_text(a.starts_at),
            ends_at: time_text(a.ends_at),
            generator_url: &a.generator_url,
        })
        .collect();
    // Maps of strings, options of strings: serializing cannot fail.
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

/// Applies relabel configs to alerts' labels, external labels first (set
/// where the alert lacks them), dropping those relabelling drops.
pub(crate) fn relabel_alerts<'a>(
    external: &Labels,
    cfgs: &[koban_config::RelabelConfig],
    alerts: impl IntoIterator<Item = std::borrow::Cow<'a, Alert>>,
) -> Vec<Alert> {
    let mut out = Vec::new();
    for a in alerts {
        if external.is_empty() && cfgs.is_empty() {
            out.push(a.into_owned());
            continue;
        }
        let mut lb = a.labels.builder();
        for l in external.iter() {
            if a.labels.get(&l.name).is_empty() {
                lb.set(&l.name, &l.value);
            }
        }
        if !relabel::process_builder(&mut lb, cfgs) {
            continue;
        }
        let mut a = a.into_owned();
        a.labels = lb.into_labels();
        out.push(a);
    }
    out
}

/// One Alertmanager's sender task.
pub(crate) struct Sender {
    pub url: String,
    pub set: Arc<SetConfig>,
    pub queue: Arc<Queue>,
    pub reader: ReaderId,
    pub metrics: NotifierMetrics,
}

impl Sender {
    /// Sends until `cancel`; a post in flight is abandoned then (its batch
    /// stays queued for this reader).
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let mut tail = self.queue.subscribe();
        loop {
            tail.borrow_and_update();
            while let Some((batch, end)) = self.queue.take(self.reader, MAX_BATCH) {
                let alerts = relabel_alerts(
                    &Labels::default(),
                    self.set.alert_relabel_configs(),
                    batch.iter().map(|a| std::borrow::Cow::Borrowed(&**a)),
                );
                if !alerts.is_empty() {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = self.post(&alerts) => {}
                    }
                }
                self.queue.advance(self.reader, end);
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = tail.changed() => if r.is_err() { return },
            }
        }
    }

    /// Posts one batch and counts it.
    async fn post(&self, alerts: &[Alert]) {
        let body = encode(alerts);
        let begin = Instant::now();
        let res = match tokio::time::timeout(self.set.timeout, self.post_body(body)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "context deadline exceeded (timeout {:?})",
                self.set.timeout
            )),
        };
        let l = NotifierMetrics::label(&self.url);
        let n = alerts.len() as u64;
        if let Err(e) = res {
            tracing::error!(alertmanager = %self.url, count = n, error = %e, "error sending alerts");
            self.metrics.errors.get_or_create(&l).inc_by(n);
        }
        self.metrics
            .latency
            .get_or_create(&l)
            .observe(begin.elapsed().as_secs_f64());
        self.metrics.sent.get_or_create(&l).inc_by(n);
    }

    async fn post_body(&self, body: String) -> Result<(), String> {
        let err = |e: &dyn std::error::Error| koban_httpclient::error_chain(e);
        let req = self
            .set
            .client
            .request(reqwest::Method::POST, &self.url)
            .await
            .map_err(|e| err(&e))?;
        let resp = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| err(&e))?;
        let status = resp.status();
        // Read the body so the connection can be reused.
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let detail = text.trim();
            return Err(if detail.is_empty() {
                format!("bad response status {status}")
            } else {
                format!("bad response status {status}: {detail}")
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_encode_as_postable_alerts() {
        let a = Alert {
            labels: Labels::from_pairs([("alertname", "Up"), ("job", "j")]),
            annotations: Labels::from_pairs([("summary", "it \"is\" down")]),
            starts_at: 1_700_000_000_123,
            ends_at: 0,
            generator_url: "http://k:9090/graph?g0.expr=up".into(),
        };
        assert_eq!(
            encode(&[a]),
            r#"[{"labels":{"alertname":"Up","job":"j"},"annotations":{"summary":"it \"is\" down"},"startsAt":"2023-11-14T22:13:20.123Z","generatorURL":"http://k:9090/graph?g0.expr=up"}]"#
        );
    }

    #[test]
    fn external_labels_do_not_override_and_come_before_relabelling() {
        let a = Alert {
            labels: Labels::from_pairs([("alertname", "A"), ("dc", "mine")]),
            annotations: Labels::default(),
            starts_at: 1,
            ends_at: 2,
            generator_url: String::new(),
        };
        let mut b = a.clone();
        b.labels = Labels::from_pairs([("alertname", "B")]);
        let cfg = koban_config::load_str(
            "alerting:\n  alert_relabel_configs:\n    - source_labels: [dc, alertname]\n      regex: 'eu;B'\n      action: drop\n",
            std::path::Path::new("p.yml"),
        )
        .unwrap();
        let cfgs = cfg.alerting.alert_relabel_configs;
        let ext = Labels::from_pairs([("dc", "eu"), ("replica", "1")]);
        let out = relabel_alerts(&ext, &cfgs, [a, b].into_iter().map(std::borrow::Cow::Owned));
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].labels.to_string(),
            r#"{alertname="A", dc="mine", replica="1"}"#
        );
    }
}
