//! Prometheus relabelling (`relabel_configs`, `metric_relabel_configs`, ...).
//!
//! [`RelabelConfig`] deserialises from the prometheus.yml fields with the
//! same defaults (`separator: ";"`, `regex: "(.*)"`, `replacement: "$1"`,
//! `action: replace`); the regex is compiled, fully anchored, while
//! deserialising so [`process`] never compiles anything. Call
//! [`RelabelConfig::validate`] after loading (Prometheus rejects the same
//! configurations at load time).

use crate::labels::{is_valid_label_name, Label, Labels, LabelsBuilder};
use crate::matcher::compile_anchored;
use crate::ModelError;
use md5::{Digest, Md5};
use regex::{Captures, Regex};
use std::fmt;
use std::sync::OnceLock;

/// Relabel actions, as named in prometheus.yml (case-insensitive there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// The lower-case name used in prometheus.yml.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name, ignoring case as Prometheus does.
    pub fn parse(s: &str) -> Result<Action, String> {
        let all = [
            Action::Replace,
            Action::Keep,
            Action::Drop,
            Action::KeepEqual,
            Action::DropEqual,
            Action::HashMod,
            Action::LabelMap,
            Action::LabelDrop,
            Action::LabelKeep,
            Action::Lowercase,
            Action::Uppercase,
        ];
        let l = s.to_lowercase();
        all.into_iter()
            .find(|a| a.as_str() == l)
            .ok_or_else(|| format!("unknown relabel action {s:?}"))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Action::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The default relabel regex.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The default separator.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The default replacement.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// A relabel regex: the source text as written plus the compiled,
/// fully anchored (`^(?s:...)$`) regex.
#[derive(Clone, Debug)]
pub struct RelabelRegex {
    source: String,
    re: Regex,
}

impl RelabelRegex {
    /// Compiles `source` anchored at both ends.
    pub fn new(source: &str) -> Result<Self, ModelError> {
        Ok(RelabelRegex {
            source: source.to_string(),
            re: compile_anchored(source)?,
        })
    }

    /// The regex as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled anchored regex.
    pub fn regex(&self) -> &Regex {
        &self.re
    }

    /// True if the whole of `s` matches.
    #[inline]
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        static DEFAULT: OnceLock<Regex> = OnceLock::new();
        let re = DEFAULT
            .get_or_init(|| {
                compile_anchored(DEFAULT_REGEX).expect("BUG: the default relabel regex compiles")
            })
            .clone();
        RelabelRegex {
            source: DEFAULT_REGEX.to_string(),
            re,
        }
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, o: &Self) -> bool {
        self.source == o.source
    }
}

impl<'de> serde::Deserialize<'de> for RelabelRegex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelabelRegex::new(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for RelabelRegex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// Which label names are valid (Prometheus's `metric_name_validation_scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameValidation {
    /// `[a-zA-Z_][a-zA-Z0-9_]*` (Prometheus 2 and the `legacy` scheme).
    #[default]
    Legacy,
    /// Any non-empty UTF-8 string (the Prometheus 3 `utf8` scheme).
    Utf8,
}

impl NameValidation {
    /// True if `name` is a valid label name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => is_valid_label_name(name),
            NameValidation::Utf8 => !name.is_empty(),
        }
    }

    /// Validity of a target label or labelmap replacement that may contain
    /// `$1`/`${name}` references.
    fn is_valid_with_vars(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => {
                static RE: OnceLock<Regex> = OnceLock::new();
                RE.get_or_init(|| {
                    Regex::new(
                        r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$",
                    )
                    .expect("BUG: the relabel target regex compiles")
                })
                .is_match(name)
            }
            NameValidation::Utf8 => !name.is_empty(),
        }
    }
}

fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_string()
}

fn default_replacement() -> String {
    DEFAULT_REPLACEMENT.to_string()
}

/// One relabelling step, as a `relabel_config` in prometheus.yml.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` to form the input.
    #[serde(default)]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Regex matched against the joined value (fully anchored).
    #[serde(default)]
    pub regex: RelabelRegex,
    /// Modulus for `hashmod`.
    #[serde(default)]
    pub modulus: u64,
    #[serde(default)]
    pub target_label: String,
    /// Replacement with `$1`, `${1}`, `${name}` references (Go `Expand` rules).
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
    /// Label-name validation scheme used by `validate` and when checking
    /// computed target labels in `process` (not part of the YAML).
    #[serde(skip)]
    name_validation: NameValidation,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: default_separator(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: default_replacement(),
            action: Action::Replace,
            name_validation: NameValidation::Legacy,
        }
    }
}

impl RelabelConfig {
    /// A config with the defaults and the given action.
    pub fn new(action: Action) -> Self {
        RelabelConfig {
            action,
            ..Default::default()
        }
    }

    /// Sets the label-name validation scheme (default [`NameValidation::Legacy`]).
    pub fn set_name_validation(&mut self, v: NameValidation) {
        self.name_validation = v;
    }

    pub fn name_validation(&self) -> NameValidation {
        self.name_validation
    }

    /// Checks the rules Prometheus applies when loading a relabel config.
    /// The error text matches Prometheus's.
    pub fn validate(&self) -> Result<(), String> {
        use Action::*;
        let nv = self.name_validation;
        let act = self.action;
        for l in &self.source_labels {
            if !nv.is_valid_label_name(l) {
                return Err(format!("{l:?} is not a valid label name"));
            }
        }
        if self.modulus == 0 && act == HashMod {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target = matches!(
            act,
            Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {act} action requires 'target_label' value"
            ));
        }
        let templated = self.target_label.contains('$');
        let bad_target = || {
            Err(format!(
                "{:?} is invalid 'target_label' for {act} action",
                self.target_label
            ))
        };
        if act == Replace && !templated && !nv.is_valid_label_name(&self.target_label) {
            return bad_target();
        }
        if act == Replace && templated && !nv.is_valid_with_vars(&self.target_label) {
            return bad_target();
        }
        let simple_target = matches!(act, Lowercase | Uppercase | KeepEqual | DropEqual);
        if simple_target && !nv.is_valid_label_name(&self.target_label) {
            return bad_target();
        }
        if simple_target && self.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {act} action"));
        }
        if act == LabelMap && !nv.is_valid_with_vars(&self.replacement) {
            return Err(format!(
                "{:?} is invalid 'replacement' for {act} action",
                self.replacement
            ));
        }
        if act == HashMod && !nv.is_valid_label_name(&self.target_label) {
            return bad_target();
        }
        if matches!(act, KeepEqual | DropEqual)
            && (self.regex.as_str() != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!("{act} action requires only 'source_labels' and `target_label`, and no other fields"));
        }
        if matches!(act, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{act} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }

    /// Applies this one step to `lb`; false means the series/target is dropped.
    pub fn apply(&self, lb: &mut LabelsBuilder) -> bool {
        let val = self.joined_source(lb);
        match self.action {
            Action::Drop => {
                if self.regex.is_match(&val) {
                    return false;
                }
            }
            Action::Keep => {
                if !self.regex.is_match(&val) {
                    return false;
                }
            }
            Action::DropEqual => {
                if lb.get(&self.target_label) == val {
                    return false;
                }
            }
            Action::KeepEqual => {
                if lb.get(&self.target_label) != val {
                    return false;
                }
            }
            Action::Replace => {
                let Some(caps) = self.regex.re.captures(&val) else {
                    // No match: no replacement takes place.
                    return true;
                };
                let mut target = String::new();
                expand(&self.target_label, &self.regex.re, &caps, &mut target);
                if !self.name_validation.is_valid_label_name(&target) {
                    return true;
                }
                let mut res = String::new();
                expand(&self.replacement, &self.regex.re, &caps, &mut res);
                if res.is_empty() {
                    lb.del(&target);
                } else {
                    lb.set(&target, &res);
                }
            }
            Action::Lowercase => {
                let v: String = val.chars().flat_map(char::to_lowercase).collect();
                lb.set(&self.target_label, &v);
            }
            Action::Uppercase => {
                let v: String = val.chars().flat_map(char::to_uppercase).collect();
                lb.set(&self.target_label, &v);
            }
            Action::HashMod => {
                let m = hashmod(&val, self.modulus);
                lb.set(&self.target_label, &m.to_string());
            }
            Action::LabelMap => {
                // Iterate a snapshot: labels set here are not revisited.
                let snapshot: Vec<Label> = lb.iter().cloned().collect();
                for l in &snapshot {
                    if let Some(caps) = self.regex.re.captures(&l.name) {
                        let mut name = String::new();
                        expand(&self.replacement, &self.regex.re, &caps, &mut name);
                        lb.set(&name, &l.value);
                    }
                }
            }
            Action::LabelDrop => {
                lb.retain(|l| !self.regex.is_match(&l.name));
            }
            Action::LabelKeep => {
                lb.retain(|l| self.regex.is_match(&l.name));
            }
        }
        true
    }

    /// The source label values joined with the separator ("" for an absent label).
    fn joined_source(&self, lb: &LabelsBuilder) -> String {
        let mut val = String::new();
        for (i, n) in self.source_labels.iter().enumerate() {
            if i > 0 {
                val.push_str(&self.separator);
            }
            val.push_str(lb.get(n));
        }
        val
    }
}

/// `hashmod`: MD5 of `val`, its last 8 bytes read big-endian, modulo `modulus`
/// (exactly Prometheus's formula). `modulus` must be non-zero (validated); 0
/// yields 0 rather than panicking.
pub fn hashmod(val: &str, modulus: u64) -> u64 {
    let h = Md5::digest(val.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[8..16]);
    u64::from_be_bytes(b).checked_rem(modulus).unwrap_or(0)
}

/// Applies `cfgs` in order to a copy of `labels`; `None` if a step dropped it.
pub fn process(labels: &Labels, cfgs: &[RelabelConfig]) -> Option<Labels> {
    if cfgs.is_empty() {
        return Some(labels.clone());
    }
    let mut lb = labels.builder();
    if process_builder(&mut lb, cfgs) {
        Some(lb.into_labels())
    } else {
        None
    }
}

/// Applies `cfgs` in order to `lb`, stopping at the first step that drops;
/// returns false if dropped (`lb` is then partially relabelled).
pub fn process_builder(lb: &mut LabelsBuilder, cfgs: &[RelabelConfig]) -> bool {
    cfgs.iter().all(|c| c.apply(lb))
}

/// Expands `template` as Go's `regexp.Expand`: `$$` is a literal `$`;
/// `$name` takes the longest run of letters, digits and `_` as the name
/// (`$1x` is the group named `1x`, usually empty); `${name}` delimits it; an
/// all-digit name (no leading zero) is a group number; unknown or unmatched
/// groups expand to ""; a `$` not followed by a valid name is kept literally.
pub fn expand(template: &str, re: &Regex, caps: &Captures<'_>, out: &mut String) {
    let mut rest = template;
    while let Some(p) = rest.find('$') {
        out.push_str(&rest[..p]);
        rest = &rest[p + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let Some((name, after)) = extract_name(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        match group_number(name) {
            Some(n) => {
                if let Some(m) = caps.get(n) {
                    out.push_str(m.as_str());
                }
            }
            None => {
                let idx = re.capture_names().position(|c| c == Some(name));
                if let Some(m) = idx.and_then(|i| caps.get(i)) {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out.push_str(rest);
}

/// Go's `extract`: the name after `$` (braced or not) and the remaining text.
fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphabetic() || c.is_numeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if brace {
        let after = body[end..].strip_prefix('}')?;
        Some((name, after))
    } else {
        Some((name, &body[end..]))
    }
}

/// An all-ASCII-digit name without leading zero below 1e8 is a group number.
fn group_number(name: &str) -> Option<usize> {
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let mut n: usize = 0;
    for c in name.bytes() {
        if !c.is_ascii_digit() || n >= 100_000_000 {
            return None;
        }
        n = n * 10 + usize::from(c - b'0');
    }
    Some(n)
}

#[cfg(test)]
mod tests;
