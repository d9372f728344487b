//! The discovery manager: runs providers per target set (scrape job or
//! alertmanager set), merges their groups and publishes debounced snapshots.

use crate::dns::DnsDiscoverer;
use crate::file::{FileDiscoverer, FileSdStatus};
use crate::static_sd::StaticDiscoverer;
use crate::{Discoverer, TargetGroup};
use koban_config::{Config, DnsSdConfig, FileSdConfig, StaticConfig};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

/// The published view: target set name (job) -> its groups, sorted by
/// provider then source. Every configured set is present, possibly empty.
pub type Targets = HashMap<String, Vec<TargetGroup>>;

/// What to run for one target set. Equal specs keep their running provider
/// across [`DiscoveryManager::apply`] calls.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderSpec {
    /// All `static_configs` of a job, as one provider.
    Static(Vec<StaticConfig>),
    /// One `file_sd_configs` entry.
    File(FileSdConfig),
    /// One `dns_sd_configs` entry.
    Dns(DnsSdConfig),
}

impl ProviderSpec {
    fn build(&self, status: &Arc<FileSdStatus>) -> Box<dyn Discoverer> {
        match self {
            ProviderSpec::Static(c) => Box::new(StaticDiscoverer::new(c)),
            ProviderSpec::File(c) => Box::new(FileDiscoverer::new(c, status.clone())),
            ProviderSpec::Dns(c) => Box::new(DnsDiscoverer::new(c)),
        }
    }

    /// The providers of a scrape config's SD sections.
    fn for_sd(
        statics: &[StaticConfig],
        files: &[FileSdConfig],
        dns: &[DnsSdConfig],
    ) -> Vec<ProviderSpec> {
        let mut v = Vec::new();
        if !statics.is_empty() {
            v.push(ProviderSpec::Static(statics.to_vec()));
        }
        v.extend(files.iter().cloned().map(ProviderSpec::File));
        v.extend(dns.iter().cloned().map(ProviderSpec::Dns));
        v
    }
}

/// A running provider.
struct Running {
    set: String,
    spec: ProviderSpec,
    cancel: CancellationToken,
}

#[derive(Default)]
struct State {
    /// Provider id -> provider; ids grow, so a stale update from a stopped
    /// provider is recognised by its id being gone.
    providers: BTreeMap<u64, Running>,
    /// Provider id -> source -> latest group.
    groups: HashMap<u64, BTreeMap<String, TargetGroup>>,
    /// Configured set names, in config order.
    sets: Vec<String>,
    next_id: u64,
}

impl State {
    fn snapshot(&self) -> Targets {
        let mut out: Targets = self.sets.iter().map(|s| (s.clone(), Vec::new())).collect();
        for (id, p) in &self.providers {
            let Some(groups) = self.groups.get(id) else {
                continue;
            };
            let entry = out.entry(p.set.clone()).or_default();
            entry.extend(groups.values().filter(|g| !g.targets.is_empty()).cloned());
        }
        out
    }
}

/// Runs discovery providers and publishes merged target groups.
///
/// Must be created and used inside a Tokio runtime. Dropping it (or calling
/// [`DiscoveryManager::stop`]) stops every provider.
pub struct DiscoveryManager {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    tx: Arc<watch::Sender<Targets>>,
    cancel: CancellationToken,
    file_status: Arc<FileSdStatus>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // Nothing panics while holding the lock; recover the data if it ever does.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DiscoveryManager {
    /// Starts a manager that publishes at most once per `debounce` (Prometheus
    /// uses 5s; tests use a few milliseconds). Nothing runs until
    /// [`apply_config`](Self::apply_config) or [`apply`](Self::apply).
    pub fn new(debounce: Duration) -> Self {
        let (tx, _) = watch::channel(Targets::new());
        let m = DiscoveryManager {
            state: Arc::new(Mutex::new(State::default())),
            changed: Arc::new(Notify::new()),
            tx: Arc::new(tx),
            cancel: CancellationToken::new(),
            file_status: Arc::new(FileSdStatus::default()),
        };
        let (state, changed, tx, cancel) = (
            m.state.clone(),
            m.changed.clone(),
            m.tx.clone(),
            m.cancel.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = changed.notified() => {}
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(debounce) => {}
                }
                let snap = lock(&state).snapshot();
                tx.send_if_modified(|cur| {
                    let modified = *cur != snap;
                    if modified {
                        *cur = snap;
                    }
                    modified
                });
            }
        });
        m
    }

    /// A receiver of the merged targets; the first value is the current view.
    pub fn subscribe(&self) -> watch::Receiver<Targets> {
        self.tx.subscribe()
    }

    /// Errors of file SD files (path, line, message) and the read-failure count.
    pub fn file_sd_status(&self) -> Arc<FileSdStatus> {
        self.file_status.clone()
    }

    /// Runs the providers for the config's scrape jobs (`static_configs`,
    /// `file_sd_configs` and `dns_sd_configs`). Providers whose job and config are unchanged keep
    /// running; others are stopped or started.
    pub fn apply_config(&self, cfg: &Config) {
        let sets = cfg
            .scrape_configs
            .iter()
            .map(|sc| {
                (
                    sc.job_name.clone(),
                    ProviderSpec::for_sd(
                        &sc.static_configs,
                        &sc.file_sd_configs,
                        &sc.dns_sd_configs,
                    ),
                )
            })
            .collect();
        self.apply(sets);
    }

    /// Runs the providers for alertmanager discovery: one set per entry of
    /// `alerting.alertmanagers`, named `config-0`, `config-1`, ... as Prometheus.
    pub fn apply_alertmanagers(&self, cfg: &Config) {
        let sets = cfg
            .alerting
            .alertmanagers
            .iter()
            .enumerate()
            .map(|(i, am)| {
                (
                    format!("config-{i}"),
                    ProviderSpec::for_sd(
                        &am.static_configs,
                        &am.file_sd_configs,
                        &am.dns_sd_configs,
                    ),
                )
            })
            .collect();
        self.apply(sets);
    }

    /// Generic form of [`apply_config`](Self::apply_config): target set name
    /// and its providers. Set names must be unique.
    pub fn apply(&self, sets: Vec<(String, Vec<ProviderSpec>)>) {
        let mut st = lock(&self.state);
        // Keep providers whose (set, spec) is still wanted, once each.
        let mut wanted: Vec<(String, ProviderSpec)> = sets
            .iter()
            .flat_map(|(name, specs)| specs.iter().map(move |s| (name.clone(), s.clone())))
            .collect();
        let mut stop = Vec::new();
        for (id, p) in &st.providers {
            match wanted.iter().position(|(n, s)| *n == p.set && *s == p.spec) {
                Some(i) => {
                    wanted.swap_remove(i);
                }
                None => stop.push(*id),
            }
        }
        for id in stop {
            if let Some(p) = st.providers.remove(&id) {
                p.cancel.cancel();
            }
            st.groups.remove(&id);
        }
        for (set, spec) in wanted {
            let id = st.next_id;
            st.next_id += 1;
            let cancel = self.cancel.child_token();
            st.providers.insert(
                id,
                Running {
                    set,
                    spec: spec.clone(),
                    cancel: cancel.clone(),
                },
            );
            st.groups.insert(id, BTreeMap::new());
            self.spawn_provider(id, spec.build(&self.file_status), cancel);
        }
        st.sets = sets.into_iter().map(|(n, _)| n).collect();
        drop(st);
        self.changed.notify_one();
    }

    fn spawn_provider(&self, id: u64, d: Box<dyn Discoverer>, cancel: CancellationToken) {
        let (ptx, mut prx) = mpsc::channel::<Vec<TargetGroup>>(16);
        tokio::spawn(d.run(cancel.clone(), ptx));
        let (state, changed) = (self.state.clone(), self.changed.clone());
        tokio::spawn(async move {
            loop {
                let update = tokio::select! {
                    _ = cancel.cancelled() => return,
                    u = prx.recv() => match u { Some(u) => u, None => return },
                };
                let mut st = lock(&state);
                let Some(groups) = st.groups.get_mut(&id) else {
                    return;
                };
                for g in update {
                    if g.targets.is_empty() {
                        groups.remove(&g.source);
                    } else {
                        groups.insert(g.source.clone(), g);
                    }
                }
                drop(st);
                changed.notify_one();
            }
        });
    }

    /// Stops every provider and the publisher.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

impl Drop for DiscoveryManager {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koban_config::load_str;
    use std::path::Path;

    fn ids(m: &DiscoveryManager) -> Vec<(u64, String)> {
        lock(&m.state)
            .providers
            .iter()
            .map(|(id, p)| (*id, p.set.clone()))
            .collect()
    }

    #[tokio::test]
    async fn apply_restarts_only_changed_providers() {
        let m = DiscoveryManager::new(Duration::from_millis(1));
        let c1 = "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['x:1']}]\n  - job_name: b\n    static_configs: [{targets: ['y:1']}]\n";
        m.apply_config(&load_str(c1, Path::new("c.yml")).unwrap());
        assert_eq!(ids(&m), vec![(0, "a".to_string()), (1, "b".to_string())]);
        let c2 = "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['x:2']}]\n  - job_name: b\n    scrape_interval: 5s\n    static_configs: [{targets: ['y:1']}]\n";
        m.apply_config(&load_str(c2, Path::new("c.yml")).unwrap());
        assert_eq!(ids(&m), vec![(1, "b".to_string()), (2, "a".to_string())]);
        m.apply_config(&load_str("scrape_configs: []\n", Path::new("c.yml")).unwrap());
        assert!(ids(&m).is_empty());
    }
}
