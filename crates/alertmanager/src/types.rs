//! Alerts as the Alertmanager holds them: identity (fingerprint), state
//! (resolved or not), the merge of a re-posted alert and validation, all as
//! Alertmanager 0.25 does (`types.Alert`, `model.Alert`).
//!
//! Times are Unix milliseconds; 0 means unset (Go's zero `time.Time`,
//! which also compares before every set time, as 0 does here).

use koban_model::labels::{is_valid_label_name, Labels};
use std::fmt;

/// Unix milliseconds; 0 is "unset".
pub type Millis = i64;

/// An alert's identity: FNV-1a (64-bit) over its label set, exactly as
/// Prometheus's `model.LabelSet.Fingerprint`, so fingerprints equal real
/// Alertmanager's. Printed as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 14695981039346656037;
const FNV_PRIME: u64 = 1099511628211;
const SEPARATOR: u8 = 0xff;

#[inline]
fn fnv_add(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

impl Fingerprint {
    /// The fingerprint of a label set: for each label in name order, its
    /// name, a 0xff byte, its value and a 0xff byte; the empty set hashes to
    /// the FNV offset basis.
    pub fn of(labels: &Labels) -> Fingerprint {
        let mut h = FNV_OFFSET;
        for l in labels {
            h = fnv_add(h, l.name.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
            h = fnv_add(h, l.value.as_bytes());
            h = fnv_add(h, &[SEPARATOR]);
        }
        Fingerprint(h)
    }

    /// Parses the 16-hex-digit form (as printed); any length up to 16 digits
    /// is accepted, as Go's `ParseFingerprint`.
    pub fn parse(s: &str) -> Option<Fingerprint> {
        if s.is_empty() || s.len() > 16 {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(Fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One alert in the Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Identifying labels (never empty once validated).
    pub labels: Labels,
    /// Annotations (values may be empty).
    pub annotations: Labels,
    /// When the alert started firing.
    pub starts_at: Millis,
    /// When it resolves (or resolved); 0 while unknown. An alert posted
    /// without an end gets `now + resolve_timeout` with `timeout` set.
    pub ends_at: Millis,
    /// Link to the producer's expression.
    pub generator_url: String,
    /// When the Alertmanager last received (or merged) it.
    pub updated_at: Millis,
    /// True when `ends_at` was set by the Alertmanager (resolve_timeout),
    /// not by the client.
    pub timeout: bool,
}

impl Alert {
    /// This alert's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.labels)
    }

    /// The `alertname` label, "" when absent.
    pub fn name(&self) -> &str {
        self.labels.get("alertname")
    }

    /// True when the alert has an end at or before `now`.
    pub fn resolved_at(&self, now: Millis) -> bool {
        self.ends_at != 0 && self.ends_at <= now
    }

    /// True when the alert has ended by the wall clock now.
    pub fn resolved(&self) -> bool {
        self.resolved_at(now_millis())
    }

    /// The alert that results when `o`, the same alert (same labels), is
    /// received while `self` is held, as 0.25's `Alert.Merge`: the younger
    /// (by `updated_at`) wins as a whole, but the earliest start is kept;
    /// if the younger is resolved at `now` and the older too, the later end
    /// wins; if the younger is not resolved, a later end of the older wins
    /// unless that end was a timeout.
    pub fn merge_at(&self, o: &Alert, now: Millis) -> Alert {
        if o.updated_at < self.updated_at {
            return o.merge_at(self, now);
        }
        let mut res = o.clone();
        if self.starts_at < o.starts_at {
            res.starts_at = self.starts_at;
        }
        if o.resolved_at(now) {
            if self.resolved_at(now) && self.ends_at > o.ends_at {
                res.ends_at = self.ends_at;
            }
        } else if self.ends_at > o.ends_at && !self.timeout {
            res.ends_at = self.ends_at;
        }
        res
    }

    /// [`Alert::merge_at`] by the wall clock.
    pub fn merge(&self, o: &Alert) -> Alert {
        self.merge_at(o, now_millis())
    }

    /// Checks the alert as 0.25's `model.Alert.Validate`, with its messages
    /// (what `POST /api/v2/alerts` reports for a malformed alert).
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.starts_at == 0 {
            return Err(ValidationError("start time missing".into()));
        }
        if self.ends_at != 0 && self.ends_at < self.starts_at {
            return Err(ValidationError("start time must be before end time".into()));
        }
        if let Err(e) = validate_label_set(&self.labels) {
            return Err(ValidationError(format!("invalid label set: {e}")));
        }
        if self.labels.is_empty() {
            return Err(ValidationError("at least one label pair required".into()));
        }
        if let Err(e) = validate_label_set(&self.annotations) {
            return Err(ValidationError(format!("invalid annotations: {e}")));
        }
        Ok(())
    }
}

/// Why an alert was refused; the text is 0.25's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

/// 0.25's `LabelSet.Validate`: names must be `[a-zA-Z_][a-zA-Z0-9_]*`
/// (values are Rust strings, hence valid UTF-8). Go quotes with `%q`.
fn validate_label_set(ls: &Labels) -> Result<(), String> {
    for l in ls {
        if !is_valid_label_name(&l.name) {
            return Err(format!(
                "invalid name {}",
                koban_model::matcher::go_quote(&l.name)
            ));
        }
    }
    Ok(())
}

/// The wall clock in Unix milliseconds.
pub fn now_millis() -> Millis {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as Millis,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)], starts: Millis, ends: Millis, updated: Millis) -> Alert {
        Alert {
            labels: Labels::from_pairs(labels.iter().copied()),
            annotations: Labels::empty(),
            starts_at: starts,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: updated,
            timeout: false,
        }
    }

    #[test]
    fn fingerprint_matches_prometheus_common() {
        // Values from prometheus/common's fingerprint tests.
        assert_eq!(Fingerprint::of(&Labels::empty()).0, 14695981039346656037);
        let ls = Labels::from_pairs([("name", "garland, briggs"), ("fear", "love is not enough")]);
        assert_eq!(Fingerprint::of(&ls).0, 5799056148416392346);
        let ls = Labels::from_pairs([("foo", "bar"), ("qux", "quux")]);
        assert_eq!(Fingerprint::of(&ls).to_string(), "50ddaaa8273d034b");
        let fp = Fingerprint::of(&ls);
        assert_eq!(Fingerprint::parse(&fp.to_string()), Some(fp));
        assert_eq!(Fingerprint::parse("xyz"), None);
        // Order of construction does not matter.
        let ls2 = Labels::from_pairs([("qux", "quux"), ("foo", "bar")]);
        assert_eq!(Fingerprint::of(&ls2), fp);
    }

    #[test]
    fn resolved() {
        let a = alert(&[("a", "b")], 10, 0, 10);
        assert!(!a.resolved_at(1_000));
        let a = alert(&[("a", "b")], 10, 20, 10);
        assert!(a.resolved_at(20));
        assert!(!a.resolved_at(19));
    }

    #[test]
    fn merge_follows_alertmanager() {
        let now = 1_000;
        // Younger wins, earliest start kept.
        let old = alert(&[("a", "b")], 100, 2_000, 500);
        let mut new = alert(&[("a", "b")], 200, 1_500, 600);
        new.generator_url = "new".into();
        let m = old.merge_at(&new, now);
        assert_eq!(m.generator_url, "new");
        assert_eq!(m.starts_at, 100);
        // Younger not resolved, older has a later non-timeout end: it wins.
        assert_eq!(m.ends_at, 2_000);
        // Argument order does not matter.
        assert_eq!(new.merge_at(&old, now), m);
        // A later timeout end of the older does not win.
        let mut old_to = old.clone();
        old_to.timeout = true;
        assert_eq!(old_to.merge_at(&new, now).ends_at, 1_500);
        // Both resolved: the later end wins.
        let old = alert(&[("a", "b")], 100, 900, 500);
        let new = alert(&[("a", "b")], 100, 800, 600);
        assert_eq!(old.merge_at(&new, now).ends_at, 900);
        // Younger resolved, older not: the younger's end stands.
        let old = alert(&[("a", "b")], 100, 5_000, 500);
        assert_eq!(old.merge_at(&new, now).ends_at, 800);
    }

    #[test]
    fn validation_messages_are_alertmanagers() {
        let msg = |a: &Alert| a.validate().unwrap_err().to_string();
        assert!(alert(&[("a", "b")], 1, 0, 1).validate().is_ok());
        assert_eq!(msg(&alert(&[("a", "b")], 0, 0, 1)), "start time missing");
        assert_eq!(
            msg(&alert(&[("a", "b")], 10, 5, 1)),
            "start time must be before end time"
        );
        assert_eq!(
            msg(&alert(&[], 10, 0, 1)),
            "at least one label pair required"
        );
        assert_eq!(
            msg(&alert(&[("0bad", "x")], 10, 0, 1)),
            "invalid label set: invalid name \"0bad\""
        );
        let mut a = alert(&[("a", "b")], 10, 0, 1);
        a.annotations = Labels::from_pairs([("bad-name", "x")]);
        assert_eq!(msg(&a), "invalid annotations: invalid name \"bad-name\"");
    }
}
