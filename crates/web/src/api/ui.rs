//! The embedded web UI: `index.html` at the home (`<prefix>/` and
//! `<prefix>/graph`), its scripts and styles under `<prefix>/static/` and
//! third-party files under `<prefix>/vendor/`.
//!
//! Every file is compiled into the binary; nothing is read from disk and no
//! Node toolchain is needed. The UI uses only relative URLs, so it works
//! unchanged under `--web.route-prefix`. Responses carry a strong ETag (a
//! hash of the content) and `Cache-Control: no-cache`, so browsers revalidate
//! cheaply and never run stale scripts after an upgrade.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

/// One embedded file: its URL path relative to the UI home, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($( $path:literal => $ct:literal ),* $(,)?) => {
        &[ $( Asset {
            path: $path,
            content_type: $ct,
            body: include_bytes!(concat!("../../assets/", $path)),
        } ),* ]
    };
}

static ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "static/style.css" => "text/css; charset=utf-8",
    "static/app.js" => "text/javascript; charset=utf-8",
    "static/api.js" => "text/javascript; charset=utf-8",
    "static/util.js" => "text/javascript; charset=utf-8",
    "static/promql.js" => "text/javascript; charset=utf-8",
    "static/editor.js" => "text/javascript; charset=utf-8",
    "static/graph.js" => "text/javascript; charset=utf-8",
    "static/query.js" => "text/javascript; charset=utf-8",
    "static/export.js" => "text/javascript; charset=utf-8",
    "static/pages.js" => "text/javascript; charset=utf-8",
    "static/favicon.svg" => "image/svg+xml",
    "vendor/uplot/uPlot.iife.min.js" => "text/javascript; charset=utf-8",
    "vendor/uplot/uPlot.min.css" => "text/css; charset=utf-8",
    "vendor/uplot/LICENSE" => "text/plain; charset=utf-8",
};

/// ETags of [`ASSETS`], same order, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:016x}\"", fnv1a(a.body)))
            .collect()
    })
}

/// 64-bit FNV-1a: small, stable across builds, good enough for cache validation.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Answers with the embedded file at `path`, honouring `If-None-Match`;
/// 404 when there is no such file.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.path == path) else {
        return not_found_response();
    };
    let a = &ASSETS[i];
    let tag = &etags()[i];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut out = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = a.body.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(a.content_type),
        );
        r
    };
    let h = out.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out
}

/// The UI's single page (served at `<prefix>/` and `<prefix>/graph`).
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `<prefix>/static/{*path}`: the UI's own scripts, styles and images.
pub async fn static_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("static/{path}"), &headers)
}

/// `<prefix>/vendor/{*path}`: third-party files, as released, with their licenses.
pub async fn vendor_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("vendor/{path}"), &headers)
}

fn not_found_response() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

pub async fn not_found() -> Response {
    not_found_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";

    #[test]
    fn every_asset_has_a_known_content_type() {
        for a in ASSETS {
            let ext = a.path.rsplit('.').next().unwrap_or("");
            let want = match ext {
                "js" => JS,
                "css" => CSS,
                "html" => "text/html; charset=utf-8",
                "svg" => "image/svg+xml",
                _ => "text/plain; charset=utf-8",
            };
            assert_eq!(a.content_type, want, "{}", a.path);
            assert!(!a.body.is_empty(), "{}", a.path);
        }
    }

    #[test]
    fn etag_revalidation() {
        let r = serve("static/app.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let tag = r.headers()[header::ETAG].clone();
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(
            serve("static/app.js", &h).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(serve("static/nope.js", &h).status(), StatusCode::NOT_FOUND);
    }
}
