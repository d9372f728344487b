//! Per-alert status as 0.25's `types.Marker`: unprocessed until the
//! dispatcher has looked at the alert, then active or suppressed, with the
//! silences and inhibiting alerts that suppress it. The API reports it.

use crate::types::Fingerprint;
use parking_lot::RwLock;
use std::collections::HashMap;

/// An alert's state as the API v2 prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertState {
    Unprocessed,
    Active,
    Suppressed,
}

impl AlertState {
    /// `unprocessed`, `active` or `suppressed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Unprocessed => "unprocessed",
            AlertState::Active => "active",
            AlertState::Suppressed => "suppressed",
        }
    }
}

/// One alert's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertStatus {
    pub state: AlertState,
    /// Ids of the active silences muting the alert.
    pub silenced_by: Vec<String>,
    /// Fingerprints (printed) of the alerts inhibiting it.
    pub inhibited_by: Vec<String>,
    /// Ids of pending silences that will mute it once they start.
    pub pending_silences: Vec<String>,
    /// The silences' version the silence fields were computed against (lets
    /// the silencer skip re-evaluation when nothing changed).
    pub silences_version: u64,
}

impl Default for AlertStatus {
    fn default() -> Self {
        AlertStatus {
            state: AlertState::Unprocessed,
            silenced_by: Vec::new(),
            inhibited_by: Vec::new(),
            pending_silences: Vec::new(),
            silences_version: 0,
        }
    }
}

/// The marker: status per fingerprint. Unknown fingerprints are
/// unprocessed. Safe to share between the dispatcher, the silencer, the
/// inhibitor and the API.
#[derive(Debug, Default)]
pub struct Marker {
    m: RwLock<HashMap<Fingerprint, AlertStatus>>,
}

impl Marker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the silences muting (`active`) or about to mute (`pending`)
    /// the alert, computed at `version`. The alert is suppressed when some
    /// silence or inhibition applies, else active.
    pub fn set_active_or_silenced(
        &self,
        fp: Fingerprint,
        version: u64,
        active: Vec<String>,
        pending: Vec<String>,
    ) {
        let mut m = self.m.write();
        let s = m.entry(fp).or_default();
        s.silenced_by = active;
        s.pending_silences = pending;
        s.silences_version = version;
        s.state = if s.silenced_by.is_empty() && s.inhibited_by.is_empty() {
            AlertState::Active
        } else {
            AlertState::Suppressed
        };
    }

    /// Records the alerts inhibiting this one (empty: none).
    pub fn set_inhibited(&self, fp: Fingerprint, by: Vec<String>) {
        let mut m = self.m.write();
        let s = m.entry(fp).or_default();
        s.inhibited_by = by;
        s.state = if s.silenced_by.is_empty() && s.inhibited_by.is_empty() {
            AlertState::Active
        } else {
            AlertState::Suppressed
        };
    }

    /// The alert's status (unprocessed when unknown).
    pub fn status(&self, fp: Fingerprint) -> AlertStatus {
        self.m.read().get(&fp).cloned().unwrap_or_default()
    }

    /// Forgets the alert (it was garbage-collected).
    pub fn delete(&self, fp: Fingerprint) {
        self.m.write().remove(&fp);
    }

    pub fn unprocessed(&self, fp: Fingerprint) -> bool {
        self.status(fp).state == AlertState::Unprocessed
    }

    pub fn active(&self, fp: Fingerprint) -> bool {
        self.status(fp).state == AlertState::Active
    }

    /// The inhibiting fingerprints and whether there are any.
    pub fn inhibited(&self, fp: Fingerprint) -> (Vec<String>, bool) {
        let s = self.status(fp);
        let b = !s.inhibited_by.is_empty();
        (s.inhibited_by, b)
    }

    /// Active silence ids, pending silence ids, the version they were
    /// computed at, and whether any active silence mutes the alert.
    pub fn silenced(&self, fp: Fingerprint) -> (Vec<String>, Vec<String>, u64, bool) {
        let s = self.status(fp);
        let b = !s.silenced_by.is_empty();
        (s.silenced_by, s.pending_silences, s.silences_version, b)
    }

    /// How many known alerts are in one of `states` (all known alerts when
    /// `states` is empty); unknown alerts are not counted.
    pub fn count(&self, states: &[AlertState]) -> usize {
        let m = self.m.read();
        if states.is_empty() {
            return m.len();
        }
        m.values().filter(|s| states.contains(&s.state)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_silences_and_inhibitions() {
        let mk = Marker::new();
        let fp = Fingerprint(1);
        assert!(mk.unprocessed(fp));
        assert_eq!(mk.status(fp).state.as_str(), "unprocessed");
        mk.set_active_or_silenced(fp, 1, vec![], vec!["p".into()]);
        assert!(mk.active(fp));
        mk.set_inhibited(fp, vec!["00000000000000ff".into()]);
        assert_eq!(mk.status(fp).state, AlertState::Suppressed);
        mk.set_active_or_silenced(fp, 2, vec!["s".into()], vec![]);
        mk.set_inhibited(fp, vec![]);
        let (ids, pending, v, silenced) = mk.silenced(fp);
        assert_eq!(
            (ids, pending, v, silenced),
            (vec!["s".to_string()], vec![], 2, true)
        );
        assert_eq!(mk.status(fp).state, AlertState::Suppressed);
        mk.set_active_or_silenced(fp, 3, vec![], vec![]);
        assert!(mk.active(fp));
        assert_eq!(mk.count(&[AlertState::Active]), 1);
        assert_eq!(mk.count(&[AlertState::Suppressed]), 0);
        mk.delete(fp);
        assert!(mk.unprocessed(fp));
        assert_eq!(mk.count(&[]), 0);
    }
}
