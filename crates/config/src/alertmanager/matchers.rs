//! `matchers:` lists: each string is an Alertmanager matcher list
//! (`a="b"`, `{a=~"c", d!="e"}`), parsed with [`koban_model::parse_matchers`].

use koban_model::{parse_matchers, Matcher};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The matchers of a `matchers:` list, in the order written.
///
/// Serializes as one `name="value"` string per matcher.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True if every matcher matches `labels` (an absent label is "").
    pub fn matches<'a>(&self, mut get: impl FnMut(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|m| m.matches(get(&m.name).unwrap_or("")))
    }
}

impl<'de> Deserialize<'de> for Matchers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        let mut out = Vec::new();
        for line in lines {
            out.extend(parse_matchers(&line).map_err(serde::de::Error::custom)?);
        }
        Ok(Matchers(out))
    }
}

impl Serialize for Matchers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|m| m.to_alertmanager_string()))
    }
}
