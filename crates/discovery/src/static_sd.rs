//! The static provider: `static_configs`.

use crate::{BoxFuture, Discoverer, TargetGroup, ADDRESS_LABEL};
use koban_config::StaticConfig;
use koban_model::Labels;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Sends its groups once, then waits for cancellation.
#[derive(Debug, Clone)]
pub struct StaticDiscoverer {
    groups: Vec<TargetGroup>,
}

impl StaticDiscoverer {
    /// One group per static config, with sources `"0"`, `"1"`, ... .
    pub fn new(configs: &[StaticConfig]) -> Self {
        let groups = configs
            .iter()
            .enumerate()
            .map(|(i, c)| TargetGroup {
                source: i.to_string(),
                targets: c
                    .targets
                    .iter()
                    .map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.as_str())]))
                    .collect(),
                labels: Labels::from_pairs(c.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            })
            .collect();
        StaticDiscoverer { groups }
    }

    /// The groups this provider sends.
    pub fn groups(&self) -> &[TargetGroup] {
        &self.groups
    }
}

impl Discoverer for StaticDiscoverer {
    fn run(
        self: Box<Self>,
        cancel: CancellationToken,
        tx: mpsc::Sender<Vec<TargetGroup>>,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = tx.send(self.groups) => if r.is_err() { return },
            }
            cancel.cancelled().await;
        })
    }
}
