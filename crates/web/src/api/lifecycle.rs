//! `/-/healthy`, `/-/ready`, `/-/reload`, `/-/quit` and `/metrics`.

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub async fn healthy() -> &'static str {
    "Koban Server is Healthy.\n"
}

pub async fn ready(State(st): State<Arc<AppState>>) -> Response {
    if st.backend.is_ready() {
        "Koban Server is Ready.\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

pub async fn reload(State(st): State<Arc<AppState>>) -> Response {
    if !st.opts.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response();
    }
    match st.backend.reload().await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}

pub async fn quit(State(st): State<Arc<AppState>>) -> Response {
    if !st.opts.enable_lifecycle {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response();
    }
    st.shutdown.cancel();
    "Requesting termination... Goodbye!\n".into_response()
}

pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.backend.metrics_text(),
    )
        .into_response()
}
