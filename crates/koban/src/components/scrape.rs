//! Scraping as a component: one pool per `scrape_configs` job. Targets
//! arrive from discovery through [`super::forward`].

use super::{Commit, Component};
use anyhow::{anyhow, Result};
use futures::future::BoxFuture;
use koban_config::Config;
use koban_scrape::ScrapeManager;
use std::sync::Arc;

/// The scrape manager; shared with the forwarder and the web layer.
pub struct Scrape {
    manager: Arc<ScrapeManager>,
}

impl Scrape {
    /// Wraps a manager whose loops are children of a token cancelled at
    /// shutdown. No pool runs until the first configuration is committed.
    pub fn new(manager: ScrapeManager) -> Self {
        Scrape {
            manager: Arc::new(manager),
        }
    }

    pub fn manager(&self) -> &Arc<ScrapeManager> {
        &self.manager
    }
}

impl Component for Scrape {
    fn name(&self) -> &'static str {
        "scrape"
    }

    /// Refuses settings Koban lacks (naming the key) and builds every
    /// pool's HTTP client.
    fn prepare<'a>(&'a self, cfg: &Arc<Config>) -> Result<Commit<'a>> {
        let pools = crate::pools::pool_configs(cfg)?;
        let prepared = self.manager.prepare(pools).map_err(|e| anyhow!("{e}"))?;
        Ok(Box::new(move || self.manager.commit(prepared)))
    }

    /// Stops every loop, without stale markers (as Prometheus at shutdown).
    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.manager.stop(false);
            Ok(())
        })
    }
}
