//! `/api/v1/status/*`, `/api/v1/alertmanagers` and the admin TSDB endpoints.

use super::{success, ApiError};
use crate::params::{parse_time, Params};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// `/api/v1/alertmanagers`, with Prometheus's JSON.
pub async fn alertmanagers(State(st): State<Arc<AppState>>) -> Response {
    let (active, dropped) = st.backend.alertmanagers();
    let urls = |v: Vec<String>| -> Vec<serde_json::Value> {
        v.into_iter().map(|u| json!({ "url": u })).collect()
    };
    success(&json!({
        "activeAlertmanagers": urls(active),
        "droppedAlertmanagers": urls(dropped),
    }))
}

pub async fn config(State(st): State<Arc<AppState>>) -> Response {
    success(&json!({"yaml": st.backend.config_yaml()}))
}

pub async fn flags(State(st): State<Arc<AppState>>) -> Response {
    success(&st.opts.flags)
}

pub async fn buildinfo(State(st): State<Arc<AppState>>) -> Response {
    success(&st.backend.build_info())
}

pub async fn runtimeinfo(State(st): State<Arc<AppState>>) -> Response {
    let mut v = st.backend.runtime_info();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "startTime".into(),
            json!(st
                .start_time
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
        );
        let up = chrono::Utc::now() - st.start_time;
        o.insert(
            "uptimeSeconds".into(),
            json!(up.num_milliseconds().max(0) as f64 / 1000.0),
        );
    }
    success(&v)
}

pub async fn tsdb(State(st): State<Arc<AppState>>) -> Response {
    let s = st.backend.tsdb_status();
    let pairs = |v: &[(String, u64)]| -> Vec<serde_json::Value> {
        v.iter()
            .map(|(n, c)| json!({"name": n, "value": c}))
            .collect()
    };
    success(&json!({
        "headStats": {
            "numSeries": s.num_series,
            "numLabelPairs": s.num_label_pairs,
            "chunkCount": s.chunk_count,
            "minTime": s.min_time,
            "maxTime": s.max_time,
        },
        "seriesCountByMetricName": pairs(&s.series_count_by_metric_name),
        "labelValueCountByLabelName": pairs(&s.label_value_count_by_label_name),
        "memoryInBytesByLabelName": pairs(&s.memory_in_bytes_by_label_name),
        "seriesCountByLabelValuePair": pairs(&s.series_count_by_label_value_pair),
    }))
}

pub async fn walreplay(State(st): State<Arc<AppState>>) -> Response {
    let (min, max, current) = st.backend.wal_replay();
    success(&json!({"min": min, "max": max, "current": current}))
}

fn admin_enabled(st: &AppState) -> Result<(), ApiError> {
    if st.opts.enable_admin_api {
        Ok(())
    } else {
        Err(ApiError::unavailable("admin APIs disabled"))
    }
}

pub async fn delete_series(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin_enabled(&st)?;
    let p = Params::parse(q.as_deref(), &body);
    let sets = super::meta::matcher_sets(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let start = p
        .get("start")
        .map(parse_time)
        .transpose()
        .map_err(ApiError::bad_data)?
        .unwrap_or(i64::MIN / 4);
    let end = p
        .get("end")
        .map(parse_time)
        .transpose()
        .map_err(ApiError::bad_data)?
        .unwrap_or(i64::MAX / 4);
    let backend = st.backend.clone();
    blocking(move || backend.delete_series(sets, start, end)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn clean_tombstones(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    admin_enabled(&st)?;
    let backend = st.backend.clone();
    blocking(move || backend.clean_tombstones()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn snapshot(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin_enabled(&st)?;
    let p = Params::parse(q.as_deref(), &body);
    let skip_head = match p.get("skip_head") {
        None | Some("") => false,
        Some(v) => parse_bool(v).ok_or_else(|| {
            ApiError::bad_data(format!(
                "invalid parameter \"skip_head\": unable to parse boolean: strconv.ParseBool: parsing {v:?}: invalid syntax"
            ))
        })?,
    };
    let backend = st.backend.clone();
    let name = blocking(move || backend.snapshot(skip_head)).await?;
    Ok(success(&json!({ "name": name })))
}

/// Booleans as Go's `strconv.ParseBool` reads them.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Runs blocking storage work off the async workers; its error is an
/// internal API error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("BUG: storage task failed: {e}")))?
        .map_err(ApiError::internal)
}
