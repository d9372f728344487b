//! The one alert queue shared by every Alertmanager.
//!
//! Alerts are appended with increasing sequence numbers. Each Alertmanager
//! sender is a *reader* with its own cursor (the next sequence number it
//! sends), so a slow or dead Alertmanager never holds up the others: it
//! only lags behind. An alert leaves the queue once every reader passed it.
//! The queue holds at most `capacity` alerts; when more arrive the oldest
//! are dropped (and counted), as Prometheus drops the oldest of its queue.
//! With no reader at all (Alertmanagers configured, none discovered yet),
//! alerts wait in the queue for the first reader, up to the capacity.

use koban_model::Alert;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::watch;

use crate::metrics::NotifierMetrics;

/// Identifies a reader's cursor.
pub(crate) type ReaderId = u64;

pub(crate) struct Queue {
    inner: Mutex<Inner>,
    /// The sequence number after the last queued alert; readers wait on it.
    tail: watch::Sender<u64>,
    capacity: usize,
    metrics: NotifierMetrics,
}

struct Inner {
    alerts: VecDeque<Arc<Alert>>,
    /// Sequence number of `alerts[0]`.
    first_seq: u64,
    cursors: HashMap<ReaderId, u64>,
    next_reader: ReaderId,
}

impl Inner {
    fn tail(&self) -> u64 {
        self.first_seq + self.alerts.len() as u64
    }

    /// Removes alerts every reader has passed.
    fn trim(&mut self) {
        let Some(min) = self.cursors.values().copied().min() else {
            return;
        };
        while self.first_seq < min && self.alerts.pop_front().is_some() {
            self.first_seq += 1;
        }
    }
}

impl Queue {
    /// A queue of at most `capacity` alerts (at least 1).
    pub(crate) fn new(capacity: usize, metrics: NotifierMetrics) -> Self {
        let capacity = capacity.max(1);
        metrics.queue_capacity.set(capacity as i64);
        metrics.queue_length.set(0);
        Queue {
            inner: Mutex::new(Inner {
                alerts: VecDeque::new(),
                first_seq: 0,
                cursors: HashMap::new(),
                next_reader: 0,
            }),
            tail: watch::channel(0).0,
            capacity,
            metrics,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends `alerts`, dropping the oldest (of the batch first when the
    /// batch alone exceeds the capacity, then of the queue) and counting
    /// them in `dropped`. Never blocks beyond the queue's lock.
    pub(crate) fn push(&self, mut alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let mut dropped = 0usize;
        if alerts.len() > self.capacity {
            let d = alerts.len() - self.capacity;
            alerts.drain(..d);
            dropped += d;
        }
        let tail = {
            let mut q = self.inner.lock();
            let over = (q.alerts.len() + alerts.len()).saturating_sub(self.capacity);
            for _ in 0..over {
                q.alerts.pop_front();
                q.first_seq += 1;
            }
            dropped += over;
            q.alerts.extend(alerts.into_iter().map(Arc::new));
            self.metrics.queue_length.set(q.alerts.len() as i64);
            q.tail()
        };
        if dropped > 0 {
            tracing::warn!(
                num_dropped = dropped,
                "alert notification queue full, dropping the oldest alerts"
            );
            self.metrics.dropped.inc_by(dropped as u64);
        }
        self.tail.send_replace(tail);
    }

    /// Drops every queued alert, counting them (no Alertmanager is
    /// configured any more).
    pub(crate) fn clear(&self) {
        let mut q = self.inner.lock();
        let n = q.alerts.len();
        q.first_seq += n as u64;
        q.alerts.clear();
        self.metrics.queue_length.set(0);
        if n > 0 {
            self.metrics.dropped.inc_by(n as u64);
        }
    }

    /// A new reader, starting at the oldest queued alert.
    pub(crate) fn add_reader(&self) -> ReaderId {
        let mut q = self.inner.lock();
        let id = q.next_reader;
        q.next_reader += 1;
        let first = q.first_seq;
        q.cursors.insert(id, first);
        id
    }

    /// Forgets a reader; alerts only it still needed leave the queue.
    pub(crate) fn remove_reader(&self, id: ReaderId) {
        let mut q = self.inner.lock();
        q.cursors.remove(&id);
        q.trim();
        self.metrics.queue_length.set(q.alerts.len() as i64);
    }

    /// Up to `max` alerts from `id`'s cursor on, and the cursor value after
    /// them (for [`advance`](Self::advance)); None when the reader is
    /// unknown or has nothing to send. The cursor itself moves only on
    /// `advance`, so a batch whose send was cancelled is taken again.
    pub(crate) fn take(&self, id: ReaderId, max: usize) -> Option<(Vec<Arc<Alert>>, u64)> {
        let q = self.inner.lock();
        let cursor = (*q.cursors.get(&id)?).max(q.first_seq);
        let start = (cursor - q.first_seq) as usize;
        if start >= q.alerts.len() {
            return None;
        }
        let batch: Vec<Arc<Alert>> = q.alerts.range(start..).take(max).cloned().collect();
        let end = cursor + batch.len() as u64;
        Some((batch, end))
    }

    /// Moves `id`'s cursor to `end` (never backwards) and trims the queue.
    pub(crate) fn advance(&self, id: ReaderId, end: u64) {
        let mut q = self.inner.lock();
        if let Some(c) = q.cursors.get_mut(&id) {
            *c = (*c).max(end);
        }
        q.trim();
        self.metrics.queue_length.set(q.alerts.len() as i64);
    }

    /// Changes whenever alerts are appended.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.tail.subscribe()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().alerts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_model::Labels;

    fn alerts(names: &[&str]) -> Vec<Alert> {
        names
            .iter()
            .map(|n| Alert {
                labels: Labels::from_pairs([("alertname", *n)]),
                annotations: Labels::default(),
                starts_at: 1,
                ends_at: 0,
                generator_url: String::new(),
            })
            .collect()
    }

    fn names(b: &[Arc<Alert>]) -> Vec<String> {
        b.iter()
            .map(|a| a.labels.get("alertname").to_string())
            .collect()
    }

    #[test]
    fn each_reader_has_its_own_cursor_and_the_slowest_keeps_alerts() {
        let m = NotifierMetrics::default();
        let q = Queue::new(10, m.clone());
        let fast = q.add_reader();
        let slow = q.add_reader();
        q.push(alerts(&["a", "b", "c"]));
        let (b, end) = q.take(fast, 2).unwrap();
        assert_eq!(names(&b), ["a", "b"]);
        q.advance(fast, end);
        let (b, end) = q.take(fast, 2).unwrap();
        assert_eq!(names(&b), ["c"]);
        q.advance(fast, end);
        assert!(q.take(fast, 2).is_none());
        // The slow reader still has everything; nothing left the queue.
        assert_eq!(q.len(), 3);
        let (b, end) = q.take(slow, 64).unwrap();
        assert_eq!(names(&b), ["a", "b", "c"]);
        q.advance(slow, end);
        assert_eq!(q.len(), 0);
        assert_eq!(m.queue_length.get(), 0);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let m = NotifierMetrics::default();
        let q = Queue::new(3, m.clone());
        let r = q.add_reader();
        q.push(alerts(&["a", "b"]));
        q.push(alerts(&["c", "d"]));
        assert_eq!(m.dropped.get(), 1);
        q.push(alerts(&["e", "f", "g", "h", "i"]));
        assert_eq!(m.dropped.get(), 1 + 2 + 3);
        let (b, _) = q.take(r, 64).unwrap();
        assert_eq!(names(&b), ["g", "h", "i"]);
        assert_eq!(m.queue_length.get(), 3);
        assert_eq!(m.queue_capacity.get(), 3);
    }

    #[test]
    fn alerts_wait_for_the_first_reader_and_removing_a_reader_trims() {
        let m = NotifierMetrics::default();
        let q = Queue::new(10, m.clone());
        q.push(alerts(&["a"]));
        let r1 = q.add_reader();
        let r2 = q.add_reader();
        let (b, end) = q.take(r1, 64).unwrap();
        assert_eq!(names(&b), ["a"]);
        q.advance(r1, end);
        assert_eq!(q.len(), 1);
        q.remove_reader(r2);
        assert_eq!(q.len(), 0);
        assert!(q.take(r2, 64).is_none());
        q.push(alerts(&["b"]));
        q.clear();
        assert_eq!(m.dropped.get(), 1);
    }
}
