//! The Prometheus HTTP API v1 and the plain endpoints beside it.
//!
//! Every handler returns `Result<_, ApiError>`; [`ApiError`] is the one place
//! where errors become HTTP status codes and Prometheus's `errorType`s.

pub mod federate;
pub mod lifecycle;
pub mod meta;
pub mod query;
pub mod rules;
pub mod status;
pub mod ui;

use crate::AppState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Prometheus's error types, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Timeout,
    Canceled,
    Internal,
    Unavailable,
    NotFound,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Timeout | ErrorType::Canceled | ErrorType::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

/// An API failure as Prometheus reports it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorType,
    pub msg: String,
}

impl ApiError {
    pub fn bad_data(msg: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::BadData,
            msg: msg.into(),
        }
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::Internal,
            msg: msg.into(),
        }
    }
    pub fn unavailable(msg: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::Unavailable,
            msg: msg.into(),
        }
    }
}

impl From<koban_promql::QueryError> for ApiError {
    fn from(e: koban_promql::QueryError) -> Self {
        use koban_promql::QueryError as Q;
        let kind = match &e {
            Q::Parse(_) => ErrorType::BadData,
            Q::Timeout(_) => ErrorType::Timeout,
            Q::Canceled => ErrorType::Canceled,
            Q::Storage(_) => ErrorType::Internal,
            _ => ErrorType::Execution,
        };
        ApiError {
            kind,
            msg: e.to_string(),
        }
    }
}

impl From<koban_storage::StorageError> for ApiError {
    fn from(e: koban_storage::StorageError) -> Self {
        ApiError::internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"status": "error", "errorType": self.kind.as_str(), "error": self.msg});
        (
            self.kind.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// A success envelope around pre-rendered JSON `data`.
pub fn success_raw(data: &str, warnings: &[String], infos: &[String]) -> Response {
    let mut out = String::with_capacity(data.len() + 64);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if !list.is_empty() {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":[");
            for (i, w) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::json::write_str(&mut out, w);
            }
            out.push(']');
        }
    }
    out.push('}');
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

/// A success envelope around a serialisable value.
pub fn success<T: serde::Serialize>(data: &T) -> Response {
    match serde_json::to_string(data) {
        Ok(s) => success_raw(&s, &[], &[]),
        Err(e) => ApiError::internal(format!("encoding response: {e}")).into_response(),
    }
}

/// Routes under `/api/v1`.
pub fn v1_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/query", get(query::instant).post(query::instant))
        .route("/query_range", get(query::range).post(query::range))
        .route(
            "/query_exemplars",
            get(query::exemplars).post(query::exemplars),
        )
        .route(
            "/format_query",
            get(query::format_query).post(query::format_query),
        )
        .route(
            "/parse_query",
            get(query::parse_query).post(query::parse_query),
        )
        .route("/series", get(meta::series).post(meta::series))
        .route("/labels", get(meta::labels).post(meta::labels))
        .route("/label/{name}/values", get(meta::label_values))
        .route("/metadata", get(meta::metadata))
        .route("/targets", get(meta::targets))
        .route("/targets/metadata", get(meta::targets_metadata))
        .route("/rules", get(rules::rules).post(rules::rules))
        .route("/alerts", get(rules::alerts))
        .route("/alertmanagers", get(status::alertmanagers))
        .route("/status/config", get(status::config))
        .route("/status/flags", get(status::flags))
        .route("/status/buildinfo", get(status::buildinfo))
        .route("/status/runtimeinfo", get(status::runtimeinfo))
        .route("/status/tsdb", get(status::tsdb))
        .route("/status/walreplay", get(status::walreplay))
        .route(
            "/admin/tsdb/delete_series",
            post(status::delete_series).put(status::delete_series),
        )
        .route(
            "/admin/tsdb/clean_tombstones",
            post(status::clean_tombstones).put(status::clean_tombstones),
        )
        .route(
            "/admin/tsdb/snapshot",
            post(status::snapshot).put(status::snapshot),
        )
        .fallback(|| async {
            ApiError {
                kind: ErrorType::NotFound,
                msg: "not found".into(),
            }
        })
}
