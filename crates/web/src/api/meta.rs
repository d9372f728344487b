//! `/api/v1/series`, `/labels`, `/label/<name>/values`, `/metadata`,
//! `/targets` and `/targets/metadata`.

use super::{success, success_raw, ApiError};
use crate::json::{write_labels, write_str};
use crate::params::{parse_time, Params};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use koban_model::{Labels, Matcher};
use koban_storage::SelectHints;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The earliest and latest times the API accepts when a range is omitted.
pub const MIN_TIME: i64 = i64::MIN / 4;
pub const MAX_TIME: i64 = i64::MAX / 4;

fn range(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = match p.get("start") {
        Some(s) => parse_time(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"start\": {e}")))?,
        None => MIN_TIME,
    };
    let end = match p.get("end") {
        Some(s) => parse_time(s)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"end\": {e}")))?,
        None => MAX_TIME,
    };
    Ok((start, end))
}

/// Every `match[]` selector of the request, parsed.
pub(crate) fn matcher_sets(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]")
        .into_iter()
        .map(|s| {
            crate::selector::parse_metric_selector(s).map_err(|e| ApiError::bad_data(e.to_string()))
        })
        .collect()
}

fn limit(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None => Ok(0),
        Some(s) => s.parse::<usize>().map_err(|_| {
            ApiError::bad_data("invalid parameter \"limit\": limit must be a non-negative integer")
        }),
    }
}

const TRUNCATED: &str = "results truncated due to limit";

pub async fn series(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &body);
    let sets = matcher_sets(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let storage = st.backend.storage();
    let found = tokio::task::spawn_blocking(move || -> Result<BTreeSet<Labels>, ApiError> {
        let querier = storage.querier(start, end)?;
        let hints = SelectHints {
            start,
            end,
            labels_only: true,
            ..Default::default()
        };
        let mut found = BTreeSet::new();
        for m in &sets {
            for s in querier.select(true, Some(&hints), m)? {
                found.insert(s?.labels().clone());
            }
        }
        Ok(found)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let mut out = String::from("[");
    let mut warnings = Vec::new();
    for (i, l) in found.iter().enumerate() {
        if limit > 0 && i >= limit {
            warnings.push(TRUNCATED.to_string());
            break;
        }
        if i > 0 {
            out.push(',');
        }
        write_labels(&mut out, l);
    }
    out.push(']');
    Ok(success_raw(&out, &warnings, &[]))
}

fn string_list(mut v: Vec<String>, limit: usize) -> Response {
    let mut warnings = Vec::new();
    if limit > 0 && v.len() > limit {
        v.truncate(limit);
        warnings.push(TRUNCATED.to_string());
    }
    let mut out = String::from("[");
    for (i, s) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, s);
    }
    out.push(']');
    success_raw(&out, &warnings, &[])
}

pub async fn labels(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &body);
    let sets = matcher_sets(&p)?;
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let storage = st.backend.storage();
    let names = tokio::task::spawn_blocking(move || -> Result<Vec<String>, ApiError> {
        let querier = storage.querier(start, end)?;
        if sets.is_empty() {
            return Ok(querier.label_names(&[])?);
        }
        let mut all = BTreeSet::new();
        for m in &sets {
            all.extend(querier.label_names(m)?);
        }
        Ok(all.into_iter().collect())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(string_list(names, limit))
}

pub async fn label_values(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), b"");
    // Prometheus 3 accepts UTF-8 names escaped as `U__...`; plain names pass through.
    let name = unescape_label_name(&name);
    if name.is_empty() {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = matcher_sets(&p)?;
    let (start, end) = range(&p)?;
    let limit = limit(&p)?;
    let storage = st.backend.storage();
    let values = tokio::task::spawn_blocking(move || -> Result<Vec<String>, ApiError> {
        let querier = storage.querier(start, end)?;
        if sets.is_empty() {
            return Ok(querier.label_values(&name, &[])?);
        }
        let mut all = BTreeSet::new();
        for m in &sets {
            all.extend(querier.label_values(&name, m)?);
        }
        Ok(all.into_iter().collect())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(string_list(values, limit))
}

/// Decodes Prometheus's `U__` escaping of UTF-8 label names in URL paths
/// (`U__my_2e_label` is `my.label`; `__` is `_`).
fn unescape_label_name(s: &str) -> String {
    let Some(rest) = s.strip_prefix("U__") else {
        return s.to_string();
    };
    let mut out = String::new();
    let mut it = rest.char_indices().peekable();
    let b = rest.as_bytes();
    while let Some((i, c)) = it.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if b.get(i + 1) == Some(&b'_') {
            out.push('_');
            it.next();
            continue;
        }
        // `_hex_`
        let end = rest[i + 1..].find('_').map(|e| i + 1 + e);
        match end.and_then(|e| {
            u32::from_str_radix(&rest[i + 1..e], 16)
                .ok()
                .map(|v| (e, v))
        }) {
            Some((e, v)) => {
                if let Some(ch) = char::from_u32(v) {
                    out.push(ch);
                }
                while it.peek().is_some_and(|(j, _)| *j <= e) {
                    it.next();
                }
            }
            None => return s.to_string(),
        }
    }
    out
}

pub async fn metadata(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), b"");
    let limit: i64 = p
        .get("limit")
        .map(|s| s.parse().unwrap_or(-1))
        .unwrap_or(-1);
    let per_metric: i64 = p
        .get("limit_per_metric")
        .map(|s| s.parse().unwrap_or(-1))
        .unwrap_or(-1);
    let metric = p.get("metric").map(String::from);
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for m in st.backend.target_metadata() {
        if metric.as_deref().is_some_and(|x| x != m.metric) {
            continue;
        }
        let entry = serde_json::json!({"type": m.meta.metric_type, "help": m.meta.help, "unit": m.meta.unit});
        let list = out.entry(m.metric).or_default();
        if !list.contains(&entry) && (per_metric <= 0 || (list.len() as i64) < per_metric) {
            list.push(entry);
        }
    }
    if limit >= 0 {
        let keep: Vec<String> = out.keys().take(limit as usize).cloned().collect();
        out.retain(|k, _| keep.contains(k));
    }
    Ok(success(&out))
}

pub async fn targets(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), b"");
    let state = p.get("state").unwrap_or("any").to_ascii_lowercase();
    let pool = p.get("scrapePool").map(String::from);
    let (mut active, mut dropped) = st.backend.targets();
    if let Some(pool) = &pool {
        active.retain(|t| &t.scrape_pool == pool);
        dropped.retain(|t| &t.scrape_pool == pool);
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for d in &dropped {
        *counts.entry(d.scrape_pool.clone()).or_default() += 1;
    }
    let mut data = serde_json::Map::new();
    if state == "any" || state == "active" {
        data.insert(
            "activeTargets".into(),
            serde_json::to_value(&active).unwrap_or_default(),
        );
    } else {
        data.insert("activeTargets".into(), serde_json::Value::Array(vec![]));
    }
    if state == "any" || state == "dropped" {
        data.insert(
            "droppedTargets".into(),
            serde_json::to_value(&dropped).unwrap_or_default(),
        );
        data.insert(
            "droppedTargetCounts".into(),
            serde_json::to_value(&counts).unwrap_or_default(),
        );
    } else {
        data.insert("droppedTargets".into(), serde_json::Value::Array(vec![]));
    }
    Ok(success(&data))
}

pub async fn targets_metadata(
    State(st): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), b"");
    let matchers = match p.get("match_target") {
        Some(s) => crate::selector::parse_metric_selector(s)
            .map_err(|e| ApiError::bad_data(e.to_string()))?,
        None => Vec::new(),
    };
    let metric = p.get("metric").map(String::from);
    let limit: usize = p
        .get("limit")
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for m in st.backend.target_metadata() {
        if out.len() >= limit {
            break;
        }
        if metric.as_deref().is_some_and(|x| x != m.metric) {
            continue;
        }
        if !matchers
            .iter()
            .all(|mt| mt.matches(m.target.get(&mt.name).map(String::as_str).unwrap_or("")))
        {
            continue;
        }
        out.push(serde_json::json!({
            "target": m.target, "metric": m.metric, "type": m.meta.metric_type, "help": m.meta.help, "unit": m.meta.unit
        }));
    }
    Ok(success(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_label_names_unescape() {
        assert_eq!(unescape_label_name("job"), "job");
        assert_eq!(unescape_label_name("U__my_2e_label"), "my.label");
        assert_eq!(unescape_label_name("U__a__b"), "a_b");
    }
}
