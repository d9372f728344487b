//! `/federate`: the latest sample of every series matching `match[]`, in the
//! text exposition format, with the external labels of the configuration
//! in effect added to series lacking them.

use super::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use koban_model::Labels;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How far back federation looks for a series' latest sample (Prometheus's lookback delta).
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

pub async fn federate(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), b"");
    let sets = super::meta::matcher_sets(&p)?;
    let now = super::query::now_ms();
    let storage = st.backend.storage();
    let external = st.backend.external_labels();
    let body = tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
        let querier = storage.querier(now - LOOKBACK_MS, now)?;
        let mut latest: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
        for m in &sets {
            for s in querier.select(true, None, m)? {
                let s = s?;
                let mut it = s.iter();
                let mut last = None;
                while let Some(p) = it.next() {
                    last = Some(p);
                }
                if let Some((t, v)) = last {
                    if !koban_model::is_stale_nan(v) {
                        latest.insert(with_external(s.labels(), &external), (t, v));
                    }
                }
            }
        }
        let mut out = String::new();
        let mut last_name = String::new();
        for (l, (t, v)) in &latest {
            let name = l.metric_name();
            if name != last_name {
                out.push_str(&format!("# TYPE {name} untyped\n"));
                last_name = name.to_string();
            }
            koban_model::exposition::write_text(&mut out, l, v.to_owned(), Some(*t));
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// `labels` with each external label it lacks (as Prometheus: a series'
/// own value wins).
fn with_external(labels: &Labels, external: &Labels) -> Labels {
    if external.is_empty() {
        return labels.clone();
    }
    let mut b = labels.builder();
    for l in external.iter() {
        if labels.get(&l.name).is_empty() {
            b.set(&l.name, &l.value);
        }
    }
    b.into_labels()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_labels_fill_in_only_missing_labels() {
        let s = Labels::from_pairs([("__name__", "up"), ("dc", "own")]);
        let ext = Labels::from_pairs([("dc", "eu"), ("replica", "a")]);
        assert_eq!(
            with_external(&s, &ext).to_string(),
            r#"{__name__="up", dc="own", replica="a"}"#
        );
    }
}
