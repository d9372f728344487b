//! The schema of alertmanager.yml (Alertmanager 0.25), with its defaults
//! and validation.
//!
//! Ownership while issue 16 is built: [`global`] (integration defaults) and
//! [`receivers`] (receivers and their integration configs) are one part;
//! the top-level config, the route tree, inhibit rules, time intervals and
//! loading are the other. The contract between them is [`global::Global`]
//! and [`receivers::Receiver::finish`].
//!
//! Entry points: [`load_file`] / [`load_str`]. After loading, every route
//! has its receiver, `group_by` and timers filled in (inherited from its
//! parent, the root's from Alertmanager's defaults), `templates` are made
//! relative to the file's directory, and the cross-references (receivers,
//! time intervals) are checked as Alertmanager 0.25 checks them.

pub mod global;
mod inhibit;
mod load;
mod matchers;
pub mod receivers;
mod route;
mod time_intervals;

pub use inhibit::InhibitRule;
pub use load::{load_file, load_str};
pub use matchers::Matchers;
pub use route::Route;
pub use time_intervals::{
    DayOfMonthRange, MonthRange, NamedTimeInterval, TimeInterval, TimeRange, WeekdayRange,
    YearRange,
};

use serde::{Deserialize, Serialize};

/// A whole alertmanager.yml.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub global: global::Global,
    /// The root of the routing tree (required).
    pub route: Option<Route>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub receivers: Vec<receivers::Receiver>,
    /// Template file globs, relative to the config file's directory once loaded.
    pub templates: Vec<String>,
    pub time_intervals: Vec<NamedTimeInterval>,
    /// The older name for `time_intervals`; both may be used.
    pub mute_time_intervals: Vec<NamedTimeInterval>,
}

impl Config {
    /// The receiver named `name`.
    pub fn receiver(&self, name: &str) -> Option<&receivers::Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }

    /// The time interval named `name`, from `time_intervals` or
    /// `mute_time_intervals`.
    pub fn time_interval(&self, name: &str) -> Option<&NamedTimeInterval> {
        self.time_intervals
            .iter()
            .chain(&self.mute_time_intervals)
            .find(|t| t.name == name)
    }

    /// The files the `templates` globs match, sorted, each glob's in turn.
    pub fn template_files(&self) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for pattern in &self.templates {
            if let Ok(paths) = glob::glob(pattern) {
                let mut files: Vec<_> = paths.filter_map(Result::ok).collect();
                files.sort();
                out.extend(files);
            }
        }
        out
    }
}
