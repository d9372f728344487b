//! Alert delivery as a component: the notifier (crates/notifier) with its
//! own Alertmanager discovery. It starts before the rules component, which
//! sends to it, so it stops after the rules stopped sending.

use super::{Commit, Component};
use anyhow::Result;
use futures::future::BoxFuture;
use koban_config::Config;
use koban_notifier::Notifier as Inner;
use std::sync::Arc;

/// The notifier; the rules component and the web layer share it.
pub struct Notifier {
    inner: Arc<Inner>,
}

impl Notifier {
    /// Starts a notifier with no Alertmanager until the first configuration
    /// is committed. Must run inside the Tokio runtime.
    pub fn start(opts: koban_notifier::Options, metrics: koban_notifier::NotifierMetrics) -> Self {
        Notifier {
            inner: Arc::new(Inner::start(opts, metrics)),
        }
    }

    pub fn notifier(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Component for Notifier {
    fn name(&self) -> &'static str {
        "notifier"
    }

    /// Checks `alerting` and builds the Alertmanager HTTP clients.
    fn prepare<'a>(&'a self, cfg: &Arc<Config>) -> Result<Commit<'a>> {
        let prepared = self.inner.prepare(cfg)?;
        Ok(Box::new(move || self.inner.commit(prepared)))
    }

    /// Drains the queue when asked to (`--alertmanager.drain-notification-queue-on-shutdown`),
    /// then stops discovery and the senders.
    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.inner.stop().await;
            Ok(())
        })
    }
}
