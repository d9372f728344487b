//! The rule file schema (Prometheus's `rulefmt`), with the position of every
//! value a later check may point at.
//!
//! [`parse_rule_file`] / [`load_rule_file`] only decode: unknown keys
//! (`deny_unknown_fields`), wrong types, bad durations and malformed YAML are
//! a [`ConfigError`] naming `file:line:col`. The semantic checks (names,
//! expressions, templates, duplicates) live in `koban-rules`'s loader, which
//! needs the PromQL parser and the template engine.
//!
//! Accepted beyond promtool 2.42's format: the group keys `query_offset` and
//! `labels` (Prometheus 3). promtool 2.42 refuses both as unknown fields.

use crate::error::ConfigError;
use crate::load::yaml_err;
use crate::tree::{parse_tree, Node, Pos};
use crate::Duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// A whole rule file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default)]
    pub groups: Vec<RuleGroup>,
}

/// One `groups:` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    #[serde(default)]
    pub name: String,
    /// `None` (or `0`): the global `evaluation_interval`.
    #[serde(default)]
    pub interval: Option<Duration>,
    /// Most series one rule may produce; 0 or negative: no limit (Prometheus
    /// accepts negative values and ignores them).
    #[serde(default)]
    pub limit: i64,
    /// Prometheus 3; `None`: the global `rule_query_offset`.
    #[serde(default)]
    pub query_offset: Option<Duration>,
    /// Prometheus 3: labels added to every rule of the group.
    #[serde(default, deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Where things are in the file (filled by [`parse_rule_file`]).
    #[serde(skip)]
    pub at: GroupPositions,
}

/// One rule: recording when `record` is set, alerting when `alert` is.
/// Which of the two is set is checked by the loader, not here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, deserialize_with = "opt_string")]
    pub record: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub alert: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    pub expr: Option<String>,
    #[serde(default, rename = "for")]
    pub for_: Option<Duration>,
    #[serde(default)]
    pub keep_firing_for: Option<Duration>,
    #[serde(default, deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "string_map")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip)]
    pub at: RulePositions,
}

/// Positions in a group (line 0: unknown or absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPositions {
    /// The group's mapping (its first key), as promtool reports group errors.
    pub group: Pos,
    pub name: Pos,
    /// The key of each group label.
    pub labels: BTreeMap<String, Pos>,
}

/// Positions in a rule (line 0: unknown or absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulePositions {
    /// The rule's mapping (its first key).
    pub rule: Pos,
    /// Values of `record`, `alert`, `expr`, `for`, `keep_firing_for`.
    pub record: Pos,
    pub alert: Pos,
    pub expr: Pos,
    pub for_: Pos,
    pub keep_firing_for: Pos,
    /// The key of each label / annotation.
    pub labels: BTreeMap<String, Pos>,
    pub annotations: BTreeMap<String, Pos>,
}

/// Reads and decodes a rule file; see [`parse_rule_file`].
pub fn load_rule_file(path: &Path) -> Result<RuleFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.to_path_buf(),
        message: format!("cannot read rule file: {e}"),
    })?;
    parse_rule_file(&text, path)
}

/// Decodes a rule file held in `text` (`path` names it in errors). An empty
/// file has no groups. Positions are filled in from the same text.
pub fn parse_rule_file(text: &str, path: &Path) -> Result<RuleFile, ConfigError> {
    let tree = parse_tree(text).map_err(|e| yaml_err(path, &e))?;
    let file: Option<RuleFile> = serde_saphyr::from_str(text).map_err(|e| yaml_err(path, &e))?;
    let mut file = file.unwrap_or_default();
    let groups = tree.get("groups");
    for (i, g) in file.groups.iter_mut().enumerate() {
        let Some(gn) = groups.and_then(|n| n.index(i)) else {
            continue;
        };
        g.at = GroupPositions {
            group: first_key(gn),
            name: value_pos(gn, "name"),
            labels: key_positions(gn.get("labels")),
        };
        let rules = gn.get("rules");
        for (j, r) in g.rules.iter_mut().enumerate() {
            let Some(rn) = rules.and_then(|n| n.index(j)) else {
                continue;
            };
            r.at = RulePositions {
                rule: first_key(rn),
                record: value_pos(rn, "record"),
                alert: value_pos(rn, "alert"),
                expr: value_pos(rn, "expr"),
                for_: value_pos(rn, "for"),
                keep_firing_for: value_pos(rn, "keep_firing_for"),
                labels: key_positions(rn.get("labels")),
                annotations: key_positions(rn.get("annotations")),
            };
        }
    }
    Ok(file)
}

/// The position of a mapping's first key, else of the node.
fn first_key(n: &Node) -> Pos {
    n.entries().first().map(|(_, p, _)| *p).unwrap_or(n.pos)
}

fn value_pos(n: &Node, key: &str) -> Pos {
    n.get(key).map(|v| v.pos).unwrap_or_default()
}

fn key_positions(n: Option<&Node>) -> BTreeMap<String, Pos> {
    n.map(|n| {
        n.entries()
            .iter()
            .map(|(k, p, _)| (k.clone(), *p))
            .collect()
    })
    .unwrap_or_default()
}

/// A scalar read as Go's yaml reads it into a string: numbers and booleans
/// keep their text, null is the empty string.
#[derive(Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Text, E> {
                Ok(Text(String::new()))
            }
        }
        // Ask for a string so plain scalars keep their exact text.
        d.deserialize_str(V)
    }
}

fn opt_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(Option::<Text>::deserialize(d)?.unwrap_or_default().0))
}

fn string_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let m: Option<BTreeMap<String, Option<Text>>> = Option::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default().0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RuleFile, ConfigError> {
        parse_rule_file(s, Path::new("r.yml"))
    }

    #[test]
    fn decodes_groups_and_rules_with_positions() {
        let f = parse(
            "groups:\n  - name: a\n    interval: 30s\n    query_offset: 1m\n    limit: 5\n    labels:\n      team: x\n    rules:\n      - record: job:up\n        expr: sum(up)\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels:\n          sev: 1\n          empty:\n        annotations:\n          s: hi\n",
        )
        .unwrap();
        let g = &f.groups[0];
        assert_eq!(g.name, "a");
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.query_offset, Some(Duration::from_secs(60)));
        assert_eq!(g.limit, 5);
        assert_eq!(g.labels["team"], "x");
        assert_eq!(g.at.group, Pos { line: 2, column: 5 });
        assert_eq!(g.at.labels["team"], Pos { line: 7, column: 7 });
        let r = &g.rules[1];
        assert_eq!(r.alert.as_deref(), Some("Down"));
        assert_eq!(r.record, None);
        assert_eq!(r.for_, Some(Duration::from_secs(300)));
        assert_eq!(r.labels["sev"], "1");
        assert_eq!(r.labels["empty"], "");
        assert_eq!(
            r.at.rule,
            Pos {
                line: 11,
                column: 9
            }
        );
        assert_eq!(
            r.at.expr,
            Pos {
                line: 12,
                column: 15
            }
        );
        assert_eq!(
            r.at.annotations["s"],
            Pos {
                line: 19,
                column: 11
            }
        );
    }

    #[test]
    fn empty_file_has_no_groups() {
        assert!(parse("").unwrap().groups.is_empty());
        assert!(parse("# nothing\n").unwrap().groups.is_empty());
    }

    #[test]
    fn unknown_keys_and_bad_durations_name_their_position() {
        let e = parse("groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        foo: 1\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("r.yml:6:9: unknown field \"foo\""),
            "{e}"
        );
        let e = parse("groups:\n  - name: a\n    interval: 5\n").unwrap_err();
        assert!(e.to_string().starts_with("r.yml:3:15:"), "{e}");
        assert!(e.to_string().contains("not a valid duration"), "{e}");
        let e = parse("groupz: []\n").unwrap_err();
        assert!(e.to_string().starts_with("r.yml:1:1: unknown field"), "{e}");
    }
}
