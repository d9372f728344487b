//! The server's subsystems as components with one lifecycle, and the list
//! that applies configurations to them and stops them.
//!
//! Lifecycle of a component:
//! 1. **Start**: the server constructs it (opening files, spawning its
//!    tasks, each under a cancellation token of its own) and pushes it onto
//!    the [`Components`] list, after the components it depends on.
//! 2. **Apply**: every configuration, the first one included, goes through
//!    [`Components::apply`]: each component [`prepare`](Component::prepare)s
//!    it (checks it and builds what it needs, changing nothing that runs);
//!    only when all succeeded does each commit, in list order. A refusal by
//!    any component leaves every component on the old configuration.
//! 3. **Stop**: at shutdown, [`Components::stop`] stops them in reverse list
//!    order, so a component stops before those it depends on (the web layer
//!    before scraping, scraping before storage).
//!
//! Adding a subsystem means writing one [`Component`] and pushing it in
//! `server::run`; no other component changes.

use anyhow::{anyhow, Result};
use futures::future::BoxFuture;
use koban_config::Config;
use std::sync::Arc;

pub mod discovery;
pub mod forward;
pub mod notifier;
pub mod rules;
pub mod scrape;
pub mod storage;
pub mod web;

/// Runs a prepared configuration. Cannot fail: everything that can go wrong
/// is found by [`Component::prepare`].
pub type Commit<'a> = Box<dyn FnOnce() + Send + 'a>;

/// A commit that changes nothing, for components without configuration.
pub fn no_change<'a>() -> Commit<'a> {
    Box::new(|| {})
}

/// One subsystem of the server. See the module docs for the lifecycle.
pub trait Component: Send + Sync {
    /// Names the component in logs and errors ("storage", "scrape", ...).
    fn name(&self) -> &'static str;

    /// Checks `cfg` and builds what running it needs (HTTP clients, target
    /// set specs, ...) without changing what runs. Called for every
    /// configuration before any component commits; an error refuses the
    /// whole configuration. The returned [`Commit`] is called at most once,
    /// right after every component prepared successfully, with the
    /// [`Components`] lock held (no other apply or stop runs meanwhile).
    fn prepare<'a>(&'a self, cfg: &Arc<Config>) -> Result<Commit<'a>>;

    /// Stops the component and waits until its tasks have ended. Called once,
    /// at shutdown, after every component later in the list stopped. Errors
    /// are logged; the other components still stop.
    fn stop(&self) -> BoxFuture<'_, Result<()>>;
}

/// The running components, in start order. Shared (`Arc`) by the server
/// and the reloader; components join as they start.
pub struct Components {
    /// Serialises applies, pushes and stop.
    inner: tokio::sync::Mutex<Inner>,
}

struct Inner {
    list: Vec<Box<dyn Component>>,
    /// Set once stopping began.
    stopping: bool,
}

impl Components {
    pub fn new() -> Self {
        Components {
            inner: tokio::sync::Mutex::new(Inner {
                list: Vec::new(),
                stopping: false,
            }),
        }
    }

    /// Adds a started component after those it depends on. It takes part
    /// in the next apply; the configuration in effect is the caller's to
    /// give it when it starts.
    pub async fn push(&self, c: impl Component + 'static) {
        self.inner.lock().await.list.push(Box::new(c));
    }

    /// Applies `cfg` to every component, or to none: all prepare first, then
    /// all commit. The error names the component that refused. Refused once
    /// stopping began.
    pub async fn apply(&self, cfg: &Arc<Config>) -> Result<()> {
        let inner = self.inner.lock().await;
        if inner.stopping {
            return Err(anyhow!("the server is shutting down"));
        }
        let mut commits = Vec::with_capacity(inner.list.len());
        for c in &inner.list {
            let commit = c.prepare(cfg).map_err(|e| e.context(c.name()))?;
            commits.push(commit);
        }
        for commit in commits {
            commit();
        }
        Ok(())
    }

    /// Stops every component in reverse start order, waiting for an apply
    /// in flight to finish first. Later applies are refused; a second call
    /// does nothing.
    pub async fn stop(&self) {
        let list = {
            let mut inner = self.inner.lock().await;
            if inner.stopping {
                return;
            }
            inner.stopping = true;
            std::mem::take(&mut inner.list)
        };
        // Not under the lock: stopping the web layer waits for requests in
        // flight, and a `/-/reload` among them waits for the lock.
        for c in list.iter().rev() {
            tracing::debug!(component = c.name(), "stopping");
            if let Err(e) = c.stop().await {
                tracing::error!(component = c.name(), error = %format!("{e:#}"), "stopping");
            }
        }
    }
}

impl Default for Components {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Records prepares, commits and stops in a shared log.
    struct Fake {
        name: &'static str,
        refuse: bool,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Component for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn prepare<'a>(&'a self, _cfg: &Arc<Config>) -> Result<Commit<'a>> {
            self.log.lock().push(format!("prepare {}", self.name));
            if self.refuse {
                return Err(anyhow!("bad setting"));
            }
            Ok(Box::new(move || {
                self.log.lock().push(format!("commit {}", self.name))
            }))
        }
        fn stop(&self) -> BoxFuture<'_, Result<()>> {
            Box::pin(async move {
                self.log.lock().push(format!("stop {}", self.name));
                if self.refuse {
                    return Err(anyhow!("stop failed"));
                }
                Ok(())
            })
        }
    }

    async fn list(refuse: &str) -> (Components, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let c = Components::new();
        for name in ["storage", "scrape", "web"] {
            c.push(Fake {
                name,
                refuse: name == refuse,
                log: log.clone(),
            })
            .await;
        }
        (c, log)
    }

    #[tokio::test]
    async fn all_prepare_before_any_commits() {
        let (c, log) = list("").await;
        c.apply(&Arc::new(Config::default())).await.unwrap();
        assert_eq!(
            *log.lock(),
            [
                "prepare storage",
                "prepare scrape",
                "prepare web",
                "commit storage",
                "commit scrape",
                "commit web"
            ]
        );
    }

    #[tokio::test]
    async fn one_refusal_commits_nothing_and_names_the_component() {
        let (c, log) = list("scrape").await;
        let e = c.apply(&Arc::new(Config::default())).await.unwrap_err();
        assert_eq!(format!("{e:#}"), "scrape: bad setting");
        assert_eq!(*log.lock(), ["prepare storage", "prepare scrape"]);
    }

    #[tokio::test]
    async fn stop_runs_in_reverse_order_once_and_past_errors() {
        let (c, log) = list("scrape").await;
        c.stop().await;
        c.stop().await;
        assert_eq!(*log.lock(), ["stop web", "stop scrape", "stop storage"]);
        let e = c.apply(&Arc::new(Config::default())).await.unwrap_err();
        assert!(e.to_string().contains("shutting down"), "{e}");
    }
}
