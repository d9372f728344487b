//! `route`: the routing tree.

use super::matchers::Matchers;
use crate::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Alertmanager's defaults for the root route's timers.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(300);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// One node of the routing tree.
///
/// As decoded, unset fields are `None`; after loading, `receiver`,
/// `group_by`, `group_wait`, `group_interval` and `repeat_interval` are
/// always `Some`, inherited from the parent route (the root's timers from
/// the defaults above).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Route {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// Label names to group by; `["..."]` groups by all labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(rename = "continue", skip_serializing_if = "std::ops::Not::not")]
    pub continue_: bool,
    /// Deprecated equality matchers.
    #[serde(rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub match_: BTreeMap<String, String>,
    /// Deprecated regex matchers (anchored).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub match_re: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Matchers::is_empty")]
    pub matchers: Matchers,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<Duration>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub active_time_intervals: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

impl Route {
    /// True if `group_by` is `["..."]`: every label groups.
    pub fn group_by_all(&self) -> bool {
        self.group_by
            .as_deref()
            .is_some_and(|g| g.iter().any(|l| l == "..."))
    }

    /// The receiver's name ("" before loading fills it).
    pub fn receiver_name(&self) -> &str {
        self.receiver.as_deref().unwrap_or("")
    }

    pub fn group_wait(&self) -> Duration {
        self.group_wait.unwrap_or(DEFAULT_GROUP_WAIT)
    }

    pub fn group_interval(&self) -> Duration {
        self.group_interval.unwrap_or(DEFAULT_GROUP_INTERVAL)
    }

    pub fn repeat_interval(&self) -> Duration {
        self.repeat_interval.unwrap_or(DEFAULT_REPEAT_INTERVAL)
    }

    /// All matchers of the route: `match`, `match_re` (label names sorted)
    /// and `matchers`, as Alertmanager combines them. Regexes are checked
    /// at load, so they compile here.
    pub fn all_matchers(&self) -> Vec<koban_model::Matcher> {
        use koban_model::{MatchType, Matcher};
        let mut out: Vec<Matcher> = self
            .match_
            .iter()
            .map(|(k, v)| Matcher::equal(k.clone(), v.clone()))
            .collect();
        out.extend(
            self.match_re
                .iter()
                .filter_map(|(k, v)| Matcher::new(MatchType::Regex, k.clone(), v.clone()).ok()),
        );
        out.extend(self.matchers.0.iter().cloned());
        out
    }

    /// Fills the unset inherited fields from `parent`, recursively.
    pub(crate) fn inherit(&mut self, parent: &Route) {
        if self.receiver.as_deref().is_none_or(str::is_empty) {
            self.receiver = parent.receiver.clone();
        }
        if self.group_by.is_none() {
            self.group_by = parent.group_by.clone();
        }
        self.group_wait = self.group_wait.or(parent.group_wait);
        self.group_interval = self.group_interval.or(parent.group_interval);
        self.repeat_interval = self.repeat_interval.or(parent.repeat_interval);
        let me = self.clone_head();
        for r in &mut self.routes {
            r.inherit(&me);
        }
    }

    /// This route without its children (cheap parent for inheritance).
    fn clone_head(&self) -> Route {
        Route {
            receiver: self.receiver.clone(),
            group_by: self.group_by.clone(),
            group_wait: self.group_wait,
            group_interval: self.group_interval,
            repeat_interval: self.repeat_interval,
            ..Route::default()
        }
    }
}
