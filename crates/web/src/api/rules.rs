//! `/api/v1/rules` and `/api/v1/alerts`, with Prometheus 3's filters,
//! pagination and error messages.

use super::{success, success_raw, ApiError};
use crate::params::Params;
use crate::rules::{GroupJson, RuleGroupStatus, RuleStatus};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use koban_model::Matcher;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

/// Filters of one `/api/v1/rules` request.
#[derive(Debug, Default)]
pub(crate) struct RulesQuery {
    want_alerting: bool,
    want_recording: bool,
    rule_names: HashSet<String>,
    rule_groups: HashSet<String>,
    files: HashSet<String>,
    matchers: Vec<Vec<Matcher>>,
    exclude_alerts: bool,
    /// `group_limit` (> 0), with `group_next_token`.
    page: Option<(usize, Option<String>)>,
}

fn invalid(param: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_data(format!("invalid parameter {param:?}: {msg}"))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl RulesQuery {
    pub(crate) fn parse(p: &Params) -> Result<Self, ApiError> {
        let typ = p.get("type").unwrap_or("").to_lowercase();
        if !typ.is_empty() && typ != "alert" && typ != "record" {
            return Err(invalid("type", format!("not supported value {typ:?}")));
        }
        let set =
            |k: &str| -> HashSet<String> { p.all(k).into_iter().map(str::to_string).collect() };
        let matchers = super::meta::matcher_sets(p)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {}", e.msg)))?;
        let exclude_alerts = match p.get("exclude_alerts") {
            None | Some("") => false,
            Some(s) => {
                let s = s.to_lowercase();
                parse_bool(&s).ok_or_else(|| {
                    invalid(
                        "exclude_alerts",
                        format!(
                            "error converting exclude_alerts: strconv.ParseBool: parsing {s:?}: invalid syntax"
                        ),
                    )
                })?
            }
        };
        let limit = p.get("group_limit").filter(|s| !s.is_empty());
        let token = p.get("group_next_token").filter(|s| !s.is_empty());
        if token.is_some() && limit.is_none() {
            return Err(invalid(
                "group_next_token",
                "group_limit needs to be present in order to paginate over the groups",
            ));
        }
        let page = match limit {
            None => None,
            Some(s) => {
                let n: i64 = match s.parse::<i64>() {
                    Ok(n) => n,
                    Err(e) => {
                        let why = if matches!(
                            e.kind(),
                            std::num::IntErrorKind::PosOverflow
                                | std::num::IntErrorKind::NegOverflow
                        ) {
                            "value out of range"
                        } else {
                            "invalid syntax"
                        };
                        return Err(invalid(
                            "group_limit",
                            format!("group_limit needs to be a valid number: strconv.ParseInt: parsing {s:?}: {why}"),
                        ));
                    }
                };
                if n <= 0 {
                    return Err(invalid(
                        "group_limit",
                        "group_limit needs to be greater than 0",
                    ));
                }
                Some((n as usize, token.map(str::to_string)))
            }
        };
        Ok(RulesQuery {
            want_alerting: typ.is_empty() || typ == "alert",
            want_recording: typ.is_empty() || typ == "record",
            rule_names: set("rule_name[]"),
            rule_groups: set("rule_group[]"),
            files: set("file[]"),
            matchers,
            exclude_alerts,
            page,
        })
    }

    /// Whether any filter applies to single rules.
    fn filters_rules(&self) -> bool {
        !self.want_alerting
            || !self.want_recording
            || !self.rule_names.is_empty()
            || !self.matchers.is_empty()
    }

    fn keeps_rule(&self, r: &RuleStatus) -> bool {
        let kind_ok = match r {
            RuleStatus::Recording(_) => self.want_recording,
            RuleStatus::Alerting(_) => self.want_alerting,
        };
        if !kind_ok {
            return false;
        }
        if !self.rule_names.is_empty() && !self.rule_names.contains(r.name()) {
            return false;
        }
        if self.matchers.is_empty() {
            return true;
        }
        let labels = r.labels();
        self.matchers.iter().any(|set| {
            set.iter()
                .all(|m| m.matches(labels.get(&m.name).map(String::as_str).unwrap_or("")))
        })
    }
}

/// The opaque pagination token of a group: a hash of its file and name
/// (Prometheus hashes the same pair with SHA-1; clients only echo it back).
pub(crate) fn group_token(file: &str, name: &str) -> String {
    let mut buf = Vec::with_capacity(file.len() + name.len() + 1);
    buf.extend_from_slice(file.as_bytes());
    buf.push(b';');
    buf.extend_from_slice(name.as_bytes());
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&buf))
}

#[derive(Serialize)]
struct Discovery<'a> {
    groups: Vec<GroupJson<'a>>,
    #[serde(rename = "groupNextToken", skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Applies `q` to `groups` as Prometheus does: the page starts at the
/// group whose token was given, groups and rules are filtered, groups left
/// without rules dropped, and the group after a full page gives the next
/// token.
pub(crate) fn select<'a>(
    q: &RulesQuery,
    groups: &'a [RuleGroupStatus],
) -> Result<(Vec<GroupJson<'a>>, Option<String>), ApiError> {
    let mut out = Vec::new();
    let mut next = None;
    let mut found = false;
    for g in groups {
        if let Some((_, Some(tok))) = &q.page {
            if !found {
                if *tok != group_token(&g.file, &g.name) {
                    continue;
                }
                found = true;
            }
        }
        if !q.rule_groups.is_empty() && !q.rule_groups.contains(&g.name) {
            continue;
        }
        if !q.files.is_empty() && !q.files.contains(&g.file) {
            continue;
        }
        let rules: Vec<&RuleStatus> = g.rules.iter().filter(|r| q.keeps_rule(r)).collect();
        // A group whose rules were all filtered out is left out; one with
        // no rules at all shows unless rules are being filtered.
        if rules.is_empty() && (!g.rules.is_empty() || q.filters_rules()) {
            continue;
        }
        if let Some((limit, _)) = &q.page {
            if out.len() == *limit {
                next = Some(group_token(&g.file, &g.name));
                break;
            }
        }
        out.push(GroupJson {
            group: g,
            rules,
            exclude_alerts: q.exclude_alerts,
        });
    }
    if let Some((_, Some(tok))) = &q.page {
        if !found {
            return Err(invalid(
                "group_next_token",
                format!("invalid group_next_token '{tok}'. were rule groups changed?"),
            ));
        }
    }
    Ok((out, next))
}

/// `GET|POST /api/v1/rules`.
pub async fn rules(
    State(st): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::parse(raw.as_deref(), &body);
    let q = RulesQuery::parse(&p)?;
    let groups = st.backend.rule_groups();
    let (groups, next) = select(&q, &groups)?;
    let s = serde_json::to_string(&Discovery { groups, next })
        .map_err(|e| ApiError::internal(format!("encoding response: {e}")))?;
    Ok(success_raw(&s, &[], &[]))
}

/// `GET /api/v1/alerts`.
pub async fn alerts(State(st): State<Arc<AppState>>) -> Response {
    #[derive(Serialize)]
    struct Alerts {
        alerts: Vec<crate::rules::AlertStatus>,
    }
    success(&Alerts {
        alerts: st.backend.alerts(),
    })
}
