//! Service discovery as a component: the providers of every scrape job
//! (`static_configs`, `file_sd_configs`, `dns_sd_configs`).

use super::{Commit, Component};
use anyhow::Result;
use futures::future::BoxFuture;
use koban_config::Config;
use koban_discovery::DiscoveryManager;
use std::sync::Arc;
use std::time::Duration;

/// The discovery manager; [`super::forward`] subscribes to its updates.
pub struct Discovery {
    manager: Arc<DiscoveryManager>,
}

impl Discovery {
    /// Starts a manager publishing at most once per `debounce`. Must run
    /// inside the Tokio runtime.
    pub fn start(debounce: Duration) -> Self {
        Discovery {
            manager: Arc::new(DiscoveryManager::new(debounce)),
        }
    }

    pub fn manager(&self) -> &Arc<DiscoveryManager> {
        &self.manager
    }
}

impl Component for Discovery {
    fn name(&self) -> &'static str {
        "discovery"
    }

    /// The config loader already checked every SD section; nothing here fails.
    fn prepare<'a>(&'a self, cfg: &Arc<Config>) -> Result<Commit<'a>> {
        let cfg = cfg.clone();
        Ok(Box::new(move || self.manager.apply_config(&cfg)))
    }

    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.manager.stop();
            Ok(())
        })
    }
}
