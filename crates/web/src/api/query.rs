//! `/api/v1/query`, `/query_range`, `/query_exemplars`, `/format_query`, `/parse_query`.

use super::{success, success_raw, ApiError};
use crate::json::{write_labels, write_point, write_str, write_timestamp};
use crate::params::{parse_duration, parse_time, Params};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use koban_promql::{QueryResult, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Prometheus refuses range queries with more points than this per series.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn time_param(p: &Params, key: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(key) {
        None => Ok(default),
        Some(s) => parse_time(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{key}\": {e}"))),
    }
}

/// Renders a query result as the `data` object of the API.
pub fn render_result(r: &QueryResult) -> String {
    let mut out = String::with_capacity(capacity_hint(r));
    write_result(&mut out, r);
    out
}

/// A guess of the rendered size, so the buffer grows at most once or twice.
fn capacity_hint(r: &QueryResult) -> usize {
    match &r.value {
        Value::Vector(v) => 256 + v.len() * 160,
        Value::Matrix(m) => 256 + m.iter().map(|s| 160 + s.points.len() * 32).sum::<usize>(),
        _ => 256,
    }
}

/// The whole success response (envelope, data, warnings, infos) written
/// into one buffer: no intermediate copy of large results.
fn render_success(r: &QueryResult) -> Response {
    let mut out = String::with_capacity(capacity_hint(r) + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    write_result(&mut out, r);
    for (key, list) in [("warnings", &r.warnings), ("infos", &r.infos)] {
        if !list.is_empty() {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":[");
            for (i, w) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(&mut out, w);
            }
            out.push(']');
        }
    }
    out.push('}');
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}

fn write_result(out: &mut String, r: &QueryResult) {
    match &r.value {
        Value::Scalar { t, v } => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            write_point(out, *t, *v);
        }
        Value::String { t, v } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            write_timestamp(out, *t);
            out.push(',');
            write_str(out, v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.labels);
                out.push_str(",\"value\":");
                write_point(out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.labels);
                out.push_str(",\"values\":[");
                for (j, (t, v)) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(out, *t, *v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// Runs a query off the async workers, once it holds one of the
/// `--query.max-concurrency` permits (queries over the limit wait in line).
/// Dropping the returned future (the client went away) cancels the query
/// through the engine's cancel flag, in line or running. The engine's
/// timeout, or a shorter per-request `timeout`, counts from the request's
/// arrival (time in line included) and is reported as a timeout. The permit
/// is released when the evaluation has stopped, not when the request ends.
async fn run_blocking<F>(
    st: &AppState,
    timeout: Option<std::time::Duration>,
    f: F,
) -> Result<QueryResult, ApiError>
where
    F: FnOnce(&AtomicBool) -> Result<QueryResult, koban_promql::QueryError> + Send + 'static,
{
    use koban_promql::QueryError;
    struct CancelOnDrop(Arc<AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let limit = match timeout {
        Some(t) => t.min(st.engine.opts().timeout),
        None => st.engine.opts().timeout,
    };
    let flag = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(flag.clone());
    let timed_out = Arc::new(AtomicBool::new(false));
    let timer = {
        let (flag, timed_out) = (flag.clone(), timed_out.clone());
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            timed_out.store(true, Ordering::Relaxed);
            flag.store(true, Ordering::Relaxed);
        })
    };
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _timer = AbortOnDrop(timer);
    let permit = match tokio::time::timeout(limit, st.query_slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return Err(ApiError::internal("query queue closed")),
        Err(_) => return Err(QueryError::Timeout("query timed out in query queue".into()).into()),
    };
    let task_flag = flag.clone();
    let res = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f(&task_flag)
    })
    .await
    .map_err(|e| ApiError::internal(format!("query task failed: {e}")));
    match res? {
        Err(QueryError::Canceled) if timed_out.load(Ordering::Relaxed) => {
            Err(QueryError::Timeout("query timed out in expression evaluation".into()).into())
        }
        other => Ok(other?),
    }
}

pub async fn instant(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &body);
    let expr = p.get("query").unwrap_or("").to_string();
    let t = time_param(&p, "time", now_ms())?;
    let timeout = query_timeout(&p)?;
    let storage = st.backend.storage();
    let engine = st.engine.clone();
    let r = run_blocking(&st, timeout, move |cancel| {
        engine.instant_with_cancel(&*storage, &expr, t, Some(cancel))
    })
    .await?;
    Ok(render_success(&r))
}

fn query_timeout(p: &Params) -> Result<Option<std::time::Duration>, ApiError> {
    match p.get("timeout") {
        None => Ok(None),
        Some(s) => {
            let ms = parse_duration(s)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"timeout\": {e}")))?;
            Ok(Some(std::time::Duration::from_millis(ms.max(0) as u64)))
        }
    }
}

pub async fn range(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &body);
    let expr = p.get("query").unwrap_or("").to_string();
    // As Prometheus: only scalars and instant vectors make a range query (bad_data).
    if let Ok(e) = koban_promql::parse(&expr) {
        use koban_promql::ast::ValueType;
        let t = e.value_type();
        if matches!(t, ValueType::Matrix | ValueType::String) {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"query\": invalid expression type \"{t}\" for range query, must be Scalar or instant Vector"
            )));
        }
    }
    let start = match p.get("start") {
        Some(s) => parse_time(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"start\": {e}")))?,
        None => {
            return Err(ApiError::bad_data(
                "invalid parameter \"start\": cannot parse \"\" to a valid timestamp",
            ))
        }
    };
    let end = match p.get("end") {
        Some(s) => parse_time(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"end\": {e}")))?,
        None => {
            return Err(ApiError::bad_data(
                "invalid parameter \"end\": cannot parse \"\" to a valid timestamp",
            ))
        }
    };
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = match p.get("step") {
        Some(s) => parse_duration(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"step\": {e}")))?,
        None => {
            return Err(ApiError::bad_data(
                "invalid parameter \"step\": cannot parse \"\" to a valid duration",
            ))
        }
    };
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = query_timeout(&p)?;
    let storage = st.backend.storage();
    let engine = st.engine.clone();
    let r = run_blocking(&st, timeout, move |cancel| {
        engine.range_with_cancel(&*storage, &expr, start, end, step, Some(cancel))
    })
    .await?;
    Ok(render_success(&r))
}

/// Exemplars are not stored yet: an empty list, as Prometheus with exemplar storage disabled.
pub async fn exemplars(RawQuery(q): RawQuery, body: Bytes) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &body);
    koban_promql::parse(p.get("query").unwrap_or(""))
        .map_err(|e| ApiError::bad_data(e.to_string()))?;
    Ok(success_raw("[]", &[], &[]))
}

pub async fn format_query(RawQuery(q): RawQuery, body: Bytes) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &body);
    let e = koban_promql::parse(p.get("query").unwrap_or(""))
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    Ok(success(&e.to_string()))
}

pub async fn parse_query(RawQuery(q): RawQuery, body: Bytes) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &body);
    let e = koban_promql::parse(p.get("query").unwrap_or(""))
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    Ok(success(&crate::selector::ast_json(&e)))
}
