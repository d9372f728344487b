//! Discovery -> scrape forwarding as a component: every discovery update
//! reaches the scrape manager; jobs whose targets did not change are left
//! alone.

use super::{no_change, Commit, Component};
use anyhow::{anyhow, Result};
use futures::future::BoxFuture;
use koban_config::Config;
use koban_discovery::{DiscoveryManager, TargetGroup};
use koban_model::Labels;
use koban_scrape::ScrapeManager;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The forwarding task. Holds no configuration: discovery and scrape each
/// apply theirs.
pub struct Forward {
    task: Mutex<Option<JoinHandle<()>>>,
    cancel: CancellationToken,
}

impl Forward {
    /// Spawns the task; it runs until [`Component::stop`] or `cancel`.
    pub fn start(
        discovery: &DiscoveryManager,
        scrape: Arc<ScrapeManager>,
        cancel: CancellationToken,
    ) -> Self {
        let mut rx = discovery.subscribe();
        let c = cancel.clone();
        let task = tokio::spawn(async move {
            let mut last: HashMap<String, Vec<Labels>> = HashMap::new();
            loop {
                let snapshot = rx.borrow_and_update().clone();
                let mut seen = Vec::new();
                for (job, groups) in snapshot.iter() {
                    let merged = merge_groups(groups);
                    seen.push(job.clone());
                    if last.get(job) != Some(&merged) {
                        scrape.sync(job, merged.clone());
                        last.insert(job.clone(), merged);
                    }
                }
                last.retain(|k, _| seen.contains(k));
                tokio::select! {
                    _ = c.cancelled() => break,
                    r = rx.changed() => if r.is_err() { break },
                }
            }
        });
        Forward {
            task: Mutex::new(Some(task)),
            cancel,
        }
    }
}

impl Component for Forward {
    fn name(&self) -> &'static str {
        "discovery forwarding"
    }

    fn prepare<'a>(&'a self, _cfg: &Arc<Config>) -> Result<Commit<'a>> {
        Ok(no_change())
    }

    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.cancel.cancel();
            let task = self.task.lock().take();
            if let Some(t) = task {
                t.await
                    .map_err(|e| anyhow!("discovery forwarding task: {e}"))?;
            }
            Ok(())
        })
    }
}

/// Group labels merged under each target's labels.
fn merge_groups(groups: &[TargetGroup]) -> Vec<Labels> {
    let mut out = Vec::new();
    for g in groups {
        for t in &g.targets {
            let mut b = g.labels.builder();
            for l in t.iter() {
                b.set(&l.name, &l.value);
            }
            out.push(b.labels());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_labels_yield_to_target_labels() {
        let g = TargetGroup {
            source: "0".into(),
            targets: vec![Labels::from_pairs([("__address__", "a:1"), ("env", "dev")])],
            labels: Labels::from_pairs([("env", "prod"), ("team", "x")]),
        };
        let m = merge_groups(&[g]);
        assert_eq!(
            m[0].to_string(),
            r#"{__address__="a:1", env="dev", team="x"}"#
        );
    }
}
