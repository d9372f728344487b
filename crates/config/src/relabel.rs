//! Relabel rule schema used by `relabel_configs`, `metric_relabel_configs`,
//! `write_relabel_configs` and `alert_relabel_configs`.
//!
//! PLACEHOLDER: this mirrors the expected shape of
//! `koban_model::relabel::RelabelConfig` and will be replaced by a re-export
//! of it once the model crate provides it.

use serde::{Deserialize, Serialize};

/// The relabel actions Prometheus understands.
const ACTIONS: [&str; 11] = [
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
];

/// One relabel rule with Prometheus defaults (separator `;`, regex `(.*)`,
/// replacement `$1`, action `replace`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "default_regex")]
    pub regex: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modulus: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_label: String,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default = "default_action")]
    pub action: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn default_separator() -> String {
    ";".into()
}
fn default_regex() -> String {
    "(.*)".into()
}
fn default_replacement() -> String {
    "$1".into()
}
fn default_action() -> String {
    "replace".into()
}

impl RelabelConfig {
    /// Checks the rule as Prometheus does: known action, compiling regex,
    /// the fields each action requires.
    pub fn validate(&self) -> Result<(), String> {
        let action = self.action.to_ascii_lowercase();
        if !ACTIONS.contains(&action.as_str()) {
            return Err(format!("unknown relabel action {:?}", self.action));
        }
        if let Err(e) = regex::Regex::new(&format!("^(?s:{})$", self.regex)) {
            return Err(format!("invalid regular expression {:?}: {e}", self.regex));
        }
        let needs_target = matches!(
            action.as_str(),
            "replace" | "hashmod" | "lowercase" | "uppercase" | "keepequal" | "dropequal"
        );
        if needs_target && self.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        if action == "hashmod" && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        if matches!(action.as_str(), "labeldrop" | "labelkeep")
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != ";"
                || self.replacement != "$1")
        {
            return Err(format!(
                "{action} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}
