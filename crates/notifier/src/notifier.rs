//! The [`Notifier`]: owns the queue, the Alertmanager discovery and one
//! sender task per discovered Alertmanager, and reconciles them with each
//! configuration and each discovery update.

use crate::config::{prepare, Global, Prepared, SetConfig};
use crate::metrics::NotifierMetrics;
use crate::queue::{Queue, ReaderId};
use crate::send::{relabel_alerts, Sender};
use crate::targets::alertmanagers;
use crate::NotifierError;
use koban_config::Config;
use koban_discovery::{DiscoveryManager, Targets};
use koban_model::{Alert, AlertSink};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--alertmanager.notification-queue-capacity` (Prometheus: 10000).
    pub queue_capacity: usize,
    /// How long discovery collects changes before publishing them
    /// (Prometheus: 5s; tests use a few milliseconds).
    pub discovery_debounce: Duration,
    /// `--alertmanager.drain-notification-queue-on-shutdown`: at stop,
    /// keep sending queued alerts (each post bounded by its timeout) until
    /// every Alertmanager has them or the longest configured timeout
    /// passes without progress.
    pub drain_on_shutdown: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue_capacity: 10_000,
            discovery_debounce: Duration::from_secs(5),
            drain_on_shutdown: true,
        }
    }
}

/// The Alertmanagers, as `/api/v1/alertmanagers` lists them: URLs alerts
/// are posted to, and URLs of the discovered ones relabelling dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertmanagerList {
    pub active: Vec<String>,
    pub dropped: Vec<String>,
}

/// Sends alerts to the Alertmanagers of `alerting.alertmanagers`.
///
/// Lifecycle: [`start`](Self::start) inside the Tokio runtime, then for
/// every configuration [`prepare`](Self::prepare) (checks it and builds the
/// HTTP clients; changes nothing) and [`commit`](Self::commit) (swaps it
/// in; Alertmanagers whose entry is unchanged keep their senders and their
/// place in the queue), and [`stop`](Self::stop) once at shutdown. Alerts
/// arrive through [`AlertSink::send`] from any thread at any time.
pub struct Notifier {
    inner: Arc<Inner>,
    discovery: DiscoveryManager,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    drain_on_shutdown: bool,
}

struct Inner {
    queue: Arc<Queue>,
    metrics: NotifierMetrics,
    global: RwLock<Arc<Global>>,
    state: Mutex<State>,
    /// Parent of every sender's token.
    cancel: CancellationToken,
}

#[derive(Default)]
struct State {
    sets: Vec<Arc<SetConfig>>,
    /// (set name, URL) -> its sender.
    senders: HashMap<(String, String), Running>,
    view: AlertmanagerList,
    stopped: bool,
}

struct Running {
    set: Arc<SetConfig>,
    reader: ReaderId,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Notifier {
    /// Starts the notifier with no Alertmanager (alerts are dropped until a
    /// configuration with some is committed). Must run inside the Tokio
    /// runtime; its tasks stop with [`stop`](Self::stop).
    pub fn start(opts: Options, metrics: NotifierMetrics) -> Notifier {
        let cancel = CancellationToken::new();
        let inner = Arc::new(Inner {
            queue: Arc::new(Queue::new(opts.queue_capacity, metrics.clone())),
            metrics,
            global: RwLock::new(Arc::new(Global::default())),
            state: Mutex::new(State::default()),
            cancel: cancel.child_token(),
        });
        let discovery = DiscoveryManager::new(opts.discovery_debounce);
        let mut rx = discovery.subscribe();
        let (i, c) = (inner.clone(), cancel.clone());
        let task = tokio::spawn(async move {
            loop {
                let snapshot = rx.borrow_and_update().clone();
                i.reconcile(&snapshot);
                tokio::select! {
                    _ = c.cancelled() => return,
                    r = rx.changed() => if r.is_err() { return },
                }
            }
        });
        Notifier {
            inner,
            discovery,
            cancel,
            task: Mutex::new(Some(task)),
            drain_on_shutdown: opts.drain_on_shutdown,
        }
    }

    /// Checks `cfg`'s `alerting` section and builds what it needs (one
    /// HTTP client per changed `alertmanagers` entry, reading its TLS
    /// files). Changes nothing that runs; errors name the entry.
    pub fn prepare(&self, cfg: &Arc<Config>) -> Result<Prepared, NotifierError> {
        let old = self.inner.state.lock().sets.clone();
        prepare(cfg, &old)
    }

    /// Runs a prepared configuration: external labels and alert relabelling
    /// apply to the next [`send`](AlertSink::send), discovery runs the new
    /// entries' providers, and senders are started and stopped to match.
    /// With no `alertmanagers` entry left, queued alerts are dropped.
    pub fn commit(&self, p: Prepared) {
        let has = p.global.has_alertmanagers;
        *self.inner.global.write() = p.global;
        self.inner.state.lock().sets = p.sets;
        if !has {
            self.inner.queue.clear();
        }
        self.discovery.apply_alertmanagers(&p.config);
        let snapshot = self.discovery.subscribe().borrow().clone();
        self.inner.reconcile(&snapshot);
    }

    /// The Alertmanagers in use and those relabelling dropped.
    pub fn alertmanagers(&self) -> AlertmanagerList {
        self.inner.state.lock().view.clone()
    }

    /// The queue capacity in effect.
    pub fn queue_capacity(&self) -> usize {
        self.inner.queue.capacity()
    }

    /// Stops discovery and every sender and waits for their tasks. With
    /// `drain_on_shutdown`, first gives the senders the chance to deliver
    /// what is queued (see [`Options::drain_on_shutdown`]). Alerts sent
    /// afterwards are dropped. Call once.
    pub async fn stop(&self) {
        if self.drain_on_shutdown {
            self.drain().await;
        }
        self.discovery.stop();
        self.cancel.cancel();
        let task = self.task.lock().take();
        if let Some(t) = task {
            let _ = t.await;
        }
        let senders: Vec<Running> = {
            let mut st = self.inner.state.lock();
            st.stopped = true;
            st.senders.drain().map(|(_, r)| r).collect()
        };
        for r in senders {
            r.cancel.cancel();
            let _ = r.task.await;
        }
        *self.inner.global.write() = Arc::new(Global::default());
    }

    /// Waits until every sender has sent all it has queued, or until the
    /// longest timeout of the running sets passed with no sender making
    /// progress.
    async fn drain(&self) {
        let (readers, patience) = {
            let st = self.inner.state.lock();
            let readers: Vec<ReaderId> = st.senders.values().map(|r| r.reader).collect();
            let patience = st
                .sets
                .iter()
                .map(|s| s.timeout)
                .max()
                .unwrap_or(Duration::ZERO);
            (readers, patience + Duration::from_millis(100))
        };
        let q = &self.inner.queue;
        let pending = || -> Vec<u64> {
            readers
                .iter()
                .filter_map(|r| q.take(*r, 1).map(|(_, end)| end))
                .collect()
        };
        let mut last = pending();
        let mut since = tokio::time::Instant::now();
        while !last.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let now = pending();
            if now != last {
                last = now;
                since = tokio::time::Instant::now();
            } else if since.elapsed() > patience {
                tracing::warn!(
                    alertmanagers = last.len(),
                    "stopping with alerts some Alertmanagers did not receive"
                );
                return;
            }
        }
    }
}

impl AlertSink for Notifier {
    /// Applies external labels and `alerting.alert_relabel_configs`, then
    /// queues the alerts (dropping the oldest when the queue is full).
    /// Without any configured Alertmanager the alerts are dropped (and
    /// counted) at once. Never blocks beyond short locks.
    fn send(&self, alerts: Vec<Alert>) {
        self.inner.send(alerts)
    }
}

impl Inner {
    fn send(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let g = self.global.read().clone();
        if !g.has_alertmanagers {
            self.metrics.dropped.inc_by(alerts.len() as u64);
            return;
        }
        let alerts = relabel_alerts(
            &g.external_labels,
            &g.alert_relabel_configs,
            alerts.into_iter().map(std::borrow::Cow::Owned),
        );
        self.queue.push(alerts);
    }

    /// Starts, restarts (set entry changed) and stops senders so that there
    /// is one per Alertmanager of `targets` under the current sets.
    fn reconcile(&self, targets: &Targets) {
        let mut st = self.state.lock();
        if st.stopped {
            return;
        }
        let mut wanted: Vec<((String, String), Arc<SetConfig>)> = Vec::new();
        let mut view = AlertmanagerList::default();
        for set in &st.sets {
            let groups = targets.get(&set.name).map(Vec::as_slice).unwrap_or(&[]);
            let (active, dropped) = alertmanagers(groups, set);
            for url in active {
                view.active.push(url.clone());
                wanted.push(((set.name.clone(), url), set.clone()));
            }
            view.dropped.extend(dropped);
        }
        let old = std::mem::take(&mut st.senders);
        let mut senders = HashMap::with_capacity(wanted.len());
        let mut readers: HashMap<(String, String), ReaderId> = HashMap::new();
        for (key, r) in old {
            match wanted.iter().find(|(k, _)| *k == key) {
                Some((_, set)) if Arc::ptr_eq(set, &r.set) => {
                    senders.insert(key, r);
                }
                Some(_) => {
                    // Same Alertmanager, changed entry: restart it where it was.
                    r.cancel.cancel();
                    readers.insert(key, r.reader);
                }
                None => {
                    r.cancel.cancel();
                    self.queue.remove_reader(r.reader);
                    if !view.active.contains(&key.1) {
                        self.metrics.remove_alertmanager(&key.1);
                    }
                    tracing::info!(set = %key.0, alertmanager = %key.1, "alertmanager removed");
                }
            }
        }
        for (key, set) in wanted {
            if senders.contains_key(&key) {
                continue;
            }
            let reader = match readers.remove(&key) {
                Some(r) => r,
                None => {
                    tracing::info!(set = %key.0, alertmanager = %key.1, "alertmanager discovered");
                    self.queue.add_reader()
                }
            };
            self.metrics.add_alertmanager(&key.1);
            let cancel = self.cancel.child_token();
            let sender = Sender {
                url: key.1.clone(),
                set: set.clone(),
                queue: self.queue.clone(),
                reader,
                metrics: self.metrics.clone(),
            };
            let task = tokio::spawn(sender.run(cancel.clone()));
            senders.insert(
                key,
                Running {
                    set,
                    reader,
                    cancel,
                    task,
                },
            );
        }
        self.metrics
            .alertmanagers_discovered
            .set(senders.len() as i64);
        st.senders = senders;
        st.view = view;
    }
}
