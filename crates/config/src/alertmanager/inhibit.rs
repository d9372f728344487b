//! `inhibit_rules`.

use super::matchers::Matchers;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One inhibition rule: alerts matching the target matchers are muted
/// while an alert matching the source matchers fires with the same values
/// of the `equal` labels.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InhibitRule {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Matchers::is_empty")]
    pub source_matchers: Matchers,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Matchers::is_empty")]
    pub target_matchers: Matchers,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// The source side's matchers (`source_match`, `source_match_re`, `source_matchers`).
    pub fn all_source_matchers(&self) -> Vec<koban_model::Matcher> {
        combine(
            &self.source_match,
            &self.source_match_re,
            &self.source_matchers,
        )
    }

    /// The target side's matchers.
    pub fn all_target_matchers(&self) -> Vec<koban_model::Matcher> {
        combine(
            &self.target_match,
            &self.target_match_re,
            &self.target_matchers,
        )
    }
}

fn combine(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    ms: &Matchers,
) -> Vec<koban_model::Matcher> {
    use koban_model::{MatchType, Matcher};
    let mut out: Vec<Matcher> = eq
        .iter()
        .map(|(k, v)| Matcher::equal(k.clone(), v.clone()))
        .collect();
    out.extend(
        re.iter()
            .filter_map(|(k, v)| Matcher::new(MatchType::Regex, k.clone(), v.clone()).ok()),
    );
    out.extend(ms.0.iter().cloned());
    out
}

/// Checks label names of the `*_match(_re)` maps and `equal`, and the regexes.
pub(crate) fn check(
    r: &InhibitRule,
    node: Option<&crate::tree::Node>,
    path: &std::path::Path,
) -> Result<(), crate::ConfigError> {
    use crate::load::{invalid, item_pos};
    use koban_model::labels::is_valid_label_name;
    for (key, m, regex) in [
        ("source_match", &r.source_match, false),
        ("source_match_re", &r.source_match_re, true),
        ("target_match", &r.target_match, false),
        ("target_match_re", &r.target_match_re, true),
    ] {
        super::load::check_label_map(m, node, key, path, regex)?;
    }
    let enode = node.and_then(|n| n.get("equal"));
    for (i, l) in r.equal.iter().enumerate() {
        if !is_valid_label_name(l) {
            return Err(invalid(
                path,
                item_pos(enode, Some(i)),
                format!("{l:?} is not a valid label name"),
            ));
        }
    }
    Ok(())
}
