//! Label matchers: `=`, `!=`, `=~`, `!~`, with regexes fully anchored as Prometheus does.

use crate::ModelError;
use regex::Regex;
use std::fmt;

mod parse;

pub use parse::{go_quote, parse_matcher, parse_matchers, regex_error_message};

/// The four matcher kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regex => "=~",
            MatchType::NotRegex => "!~",
        })
    }
}

/// A compiled matcher on one label.
///
/// Regex matchers are compiled as `^(?:value)$` with dot-matches-newline,
/// as Prometheus; an absent label matches as the empty string.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub kind: MatchType,
    pub name: String,
    pub value: String,
    re: Option<Regex>,
    /// For regex matchers that are a plain alternation of literals
    /// (`a|b|c`) or a single literal, the literals, letting storage use
    /// postings lookups instead of scanning every value.
    set: Option<Vec<String>>,
    /// For regexes of the form `literal.*` or `literal.+`, the literal prefix.
    prefix: Option<String>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.kind == o.kind && self.name == o.name && self.value == o.value
    }
}

impl Matcher {
    /// Builds a matcher; fails only on a regex that does not compile.
    pub fn new(
        kind: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, ModelError> {
        let name = name.into();
        let value = value.into();
        let (re, set, prefix) = match kind {
            MatchType::Regex | MatchType::NotRegex => {
                let re = compile_anchored(&value)?;
                (
                    Some(re),
                    literal_alternation(&value),
                    literal_prefix(&value),
                )
            }
            _ => (None, None, None),
        };
        Ok(Matcher {
            kind,
            name,
            value,
            re,
            set,
            prefix,
        })
    }

    /// Shorthand for an equality matcher (cannot fail).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            kind: MatchType::Equal,
            name: name.into(),
            value: value.into(),
            re: None,
            set: None,
            prefix: None,
        }
    }

    /// True if `v` (the label's value, "" when absent) matches.
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        match self.kind {
            MatchType::Equal => v == self.value,
            MatchType::NotEqual => v != self.value,
            MatchType::Regex => self.regex_matches(v),
            MatchType::NotRegex => !self.regex_matches(v),
        }
    }

    #[inline]
    fn regex_matches(&self, v: &str) -> bool {
        if let Some(set) = &self.set {
            return set.iter().any(|s| s == v);
        }
        if let Some(p) = &self.prefix {
            if !v.starts_with(p.as_str()) {
                return false;
            }
            if self.value.len() == p.len() + 2 {
                // `prefix.*` with (?s): everything after the prefix matches;
                // `prefix.+`: anything non-empty after it.
                return !self.value.ends_with(".+") || v.len() > p.len();
            }
        }
        // The regex exists for every regex kind; built in `new`.
        self.re.as_ref().is_some_and(|re| re.is_match(v))
    }

    /// True if the matcher matches the empty string (so it also selects
    /// series that lack the label entirely).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// The literal values a `=~` matcher can match, when it is a plain alternation.
    pub fn set_matches(&self) -> Option<&[String]> {
        self.set.as_deref()
    }

    /// The literal prefix of a regex matcher, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }
}

impl Matcher {
    /// The matcher as Alertmanager prints it: `name="value"` with the value
    /// quoted as Go's `%q` does (`env=~"prod|dev"`).
    pub fn to_alertmanager_string(&self) -> String {
        format!("{}{}{}", self.name, self.kind, go_quote(&self.value))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}\"{}\"",
            self.name,
            self.kind,
            crate::labels::escape_label_value(&self.value)
        )
    }
}

/// Compiles `re` anchored at both ends, with `.` matching newlines, as Prometheus.
pub fn compile_anchored(re: &str) -> Result<Regex, ModelError> {
    regex::RegexBuilder::new(&format!("^(?s:{re})$"))
        .size_limit(64 << 20)
        .build()
        .map_err(|e| ModelError::InvalidRegex {
            regex: re.to_string(),
            reason: e.to_string(),
        })
}

fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

/// `a|b|c` of plain literals (no metacharacters) gives the list.
fn literal_alternation(re: &str) -> Option<Vec<String>> {
    if re.is_empty() {
        return Some(vec![String::new()]);
    }
    let parts: Vec<&str> = re.split('|').collect();
    if parts.iter().all(|p| !p.chars().any(is_meta)) {
        Some(parts.into_iter().map(String::from).collect())
    } else {
        None
    }
}

/// `foo.*` or `foo.+`-like regex: the literal prefix before the first metacharacter,
/// only when the rest is exactly `.*` (kept simple and always correct).
fn literal_prefix(re: &str) -> Option<String> {
    let p = re.strip_suffix(".*").or_else(|| re.strip_suffix(".+"))?;
    if p.is_empty() || p.chars().any(is_meta) {
        return None;
    }
    Some(p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchType, v: &str) -> Matcher {
        Matcher::new(kind, "x", v).unwrap()
    }

    #[test]
    fn regex_is_fully_anchored() {
        assert!(m(MatchType::Regex, "foo").matches("foo"));
        assert!(!m(MatchType::Regex, "foo").matches("foobar"));
        assert!(!m(MatchType::Regex, "foo").matches("xfoo"));
        assert!(m(MatchType::Regex, "a|b").matches("b"));
        assert!(!m(MatchType::Regex, "a|b").matches("ab"));
        assert!(m(MatchType::Regex, "fo+").matches("fooo"));
        assert!(m(MatchType::Regex, ".*").matches("a\nb"));
    }

    #[test]
    fn fast_paths_agree_with_regex() {
        for (re, v, want) in [
            ("foo.+", "foobar", true),
            ("foo.+", "foo", false),
            ("foo.+", "fo", false),
            ("foo.+", "foo\n", true),
            ("node_.+", "node_load1", true),
            ("node_.+", "xnode_load1", false),
            ("foo.*", "foobar", true),
            ("foo.*", "fo", false),
            ("foo.*", "foo\nx", true),
            ("a|bc|", "", true),
            ("a|bc|", "bc", true),
            ("a|bc|", "b", false),
        ] {
            assert_eq!(m(MatchType::Regex, re).matches(v), want, "{re} {v}");
            assert_eq!(compile_anchored(re).unwrap().is_match(v), want, "{re} {v}");
        }
    }

    #[test]
    fn negative_matchers() {
        assert!(m(MatchType::NotRegex, "4.14.*|3.10.*").matches("5.10.0"));
        assert!(!m(MatchType::NotRegex, "4.14.*|3.10.*").matches("4.14.1"));
        assert!(m(MatchType::NotEqual, "a").matches(""));
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(Matcher::new(MatchType::Regex, "x", "(").is_err());
    }
}
