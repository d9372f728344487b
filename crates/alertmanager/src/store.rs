//! The alert store, as 0.25's in-memory alerts provider: alerts keyed by
//! fingerprint, a re-posted alert merged with the held one when their
//! activity ranges overlap, resolved alerts dropped by a periodic gc
//! (`--alerts.gc-interval`, default 30m) together with their marker
//! entries, and a subscription for the dispatcher.

use crate::marker::Marker;
use crate::types::{now_millis, Alert, Fingerprint, Millis};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Default `--alerts.gc-interval`.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// How many new or updated alerts a subscriber may fall behind before it
/// sees [`broadcast::error::RecvError::Lagged`]; a lagged subscriber should
/// subscribe again (it then gets every held alert anew).
const SUBSCRIBER_BUFFER: usize = 4096;

/// A subscription: every alert held when it was taken, then each alert
/// stored afterwards (as merged), in order.
pub struct Subscription {
    pub current: Vec<Alert>,
    pub updates: broadcast::Receiver<Alert>,
}

/// The alert store. Cheap to share behind an `Arc`.
pub struct AlertStore {
    alerts: Mutex<HashMap<Fingerprint, Alert>>,
    marker: Arc<Marker>,
    tx: broadcast::Sender<Alert>,
}

impl AlertStore {
    /// An empty store whose gc also forgets alerts in `marker`.
    pub fn new(marker: Arc<Marker>) -> Self {
        let (tx, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        AlertStore {
            alerts: Mutex::new(HashMap::new()),
            marker,
            tx,
        }
    }

    /// The marker this store cleans up.
    pub fn marker(&self) -> &Arc<Marker> {
        &self.marker
    }

    /// Stores alerts (already validated). An alert whose fingerprint is held
    /// and whose activity overlaps the held one's (its end or its start falls
    /// strictly inside the held one's range) is merged with it
    /// ([`Alert::merge`]); otherwise it replaces it. Subscribers receive the
    /// stored result.
    pub fn put(&self, alerts: impl IntoIterator<Item = Alert>) {
        let now = now_millis();
        let mut m = self.alerts.lock();
        for mut a in alerts {
            let fp = a.fingerprint();
            if let Some(old) = m.get(&fp) {
                let inside = |t: Millis| t > old.starts_at && t < old.ends_at;
                if inside(a.ends_at) || inside(a.starts_at) {
                    a = old.merge_at(&a, now);
                }
            }
            m.insert(fp, a.clone());
            // No subscriber is not an error.
            let _ = self.tx.send(a);
        }
    }

    /// The alert with this fingerprint.
    pub fn get(&self, fp: Fingerprint) -> Option<Alert> {
        self.alerts.lock().get(&fp).cloned()
    }

    /// Every held alert, in fingerprint order.
    pub fn list(&self) -> Vec<Alert> {
        let m = self.alerts.lock();
        let mut v: Vec<(Fingerprint, Alert)> = m.iter().map(|(fp, a)| (*fp, a.clone())).collect();
        v.sort_by_key(|(fp, _)| *fp);
        v.into_iter().map(|(_, a)| a).collect()
    }

    /// How many alerts are held.
    pub fn len(&self) -> usize {
        self.alerts.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Subscribes: the held alerts and, with no gap or repeat, those stored
    /// from now on.
    pub fn subscribe(&self) -> Subscription {
        let m = self.alerts.lock();
        let updates = self.tx.subscribe();
        let mut current: Vec<(Fingerprint, Alert)> =
            m.iter().map(|(fp, a)| (*fp, a.clone())).collect();
        current.sort_by_key(|(fp, _)| *fp);
        Subscription {
            current: current.into_iter().map(|(_, a)| a).collect(),
            updates,
        }
    }

    /// Drops alerts resolved at `now` and their marker entries; returns the
    /// fingerprints dropped.
    pub fn gc_at(&self, now: Millis) -> Vec<Fingerprint> {
        let mut m = self.alerts.lock();
        let gone: Vec<Fingerprint> = m
            .iter()
            .filter(|(_, a)| a.resolved_at(now))
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &gone {
            m.remove(fp);
            self.marker.delete(*fp);
        }
        gone
    }

    /// Runs [`AlertStore::gc_at`] every `interval` until `cancel` fires.
    pub async fn run_gc(self: Arc<Self>, interval: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    let gone = self.gc_at(now_millis());
                    if !gone.is_empty() {
                        tracing::debug!(count = gone.len(), "alerts gc: dropped resolved alerts");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marker::AlertState;
    use koban_model::labels::Labels;

    fn alert(name: &str, starts: Millis, ends: Millis, updated: Millis) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name)]),
            annotations: Labels::empty(),
            starts_at: starts,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: updated,
            timeout: false,
        }
    }

    #[test]
    fn put_merges_overlapping_and_replaces_others() {
        let st = AlertStore::new(Arc::new(Marker::new()));
        let now = now_millis();
        st.put([alert("a", now - 1000, now + 10_000, now - 1000)]);
        // Overlapping re-send with a later start: the earliest start is kept.
        st.put([alert("a", now - 500, now + 20_000, now)]);
        let got = st.get(alert("a", 0, 0, 0).fingerprint()).unwrap();
        assert_eq!(got.starts_at, now - 1000);
        assert_eq!(got.ends_at, now + 20_000);
        // Not overlapping (starts after the held end): replaced as is.
        st.put([alert("a", now + 30_000, now + 40_000, now + 1)]);
        let got = st.get(alert("a", 0, 0, 0).fingerprint()).unwrap();
        assert_eq!(got.starts_at, now + 30_000);
        assert_eq!(st.len(), 1);
    }

    #[test]
    fn gc_drops_resolved_alerts_and_their_status() {
        let mk = Arc::new(Marker::new());
        let st = AlertStore::new(mk.clone());
        st.put([alert("old", 10, 20, 10), alert("firing", 10, 1_000, 10)]);
        let fp_old = alert("old", 0, 0, 0).fingerprint();
        mk.set_active_or_silenced(fp_old, 0, vec![], vec![]);
        assert_eq!(st.gc_at(500), vec![fp_old]);
        assert!(mk.unprocessed(fp_old));
        assert_eq!(mk.count(&[AlertState::Active]), 0);
        let names: Vec<String> = st.list().iter().map(|a| a.name().to_string()).collect();
        assert_eq!(names, ["firing"]);
    }

    #[tokio::test]
    async fn subscription_sees_held_then_new_alerts() {
        let st = AlertStore::new(Arc::new(Marker::new()));
        st.put([alert("a", 10, 0, 10)]);
        let mut sub = st.subscribe();
        assert_eq!(sub.current.len(), 1);
        st.put([alert("b", 10, 0, 10)]);
        let got = sub.updates.recv().await.unwrap();
        assert_eq!(got.name(), "b");
    }
}
