//! The web layer (UI, HTTP API, lifecycle endpoints) as a component. It
//! reads the current configuration through the backend, so applying one
//! changes nothing here; it is last in the list so it stops first, before
//! the components its handlers use.

use super::{no_change, Commit, Component};
use anyhow::{anyhow, Result};
use futures::future::BoxFuture;
use koban_config::Config;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The HTTP server task.
pub struct Web {
    task: Mutex<Option<JoinHandle<Result<(), koban_web::WebError>>>>,
    cancel: CancellationToken,
}

impl Web {
    /// Serves on `listener` until [`Component::stop`] or `cancel`, which
    /// stop accepting and let requests in flight finish.
    pub fn start(
        listener: tokio::net::TcpListener,
        state: Arc<koban_web::AppState>,
        cancel: CancellationToken,
    ) -> Self {
        let task = tokio::spawn(koban_web::serve_on(listener, state, cancel.clone()));
        Web {
            task: Mutex::new(Some(task)),
            cancel,
        }
    }
}

impl Component for Web {
    fn name(&self) -> &'static str {
        "web"
    }

    fn prepare<'a>(&'a self, _cfg: &Arc<Config>) -> Result<Commit<'a>> {
        Ok(no_change())
    }

    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.cancel.cancel();
            let task = self.task.lock().take();
            match task {
                Some(t) => match t.await {
                    Ok(r) => r.map_err(|e| anyhow!("web server: {e}")),
                    Err(e) => Err(anyhow!("web task: {e}")),
                },
                None => Ok(()),
            }
        })
    }
}
