//! Storage as a component: the TSDB (head, WAL, blocks) and its
//! maintenance thread. The configuration sets its out-of-order window.

use super::{Commit, Component};
use anyhow::{anyhow, Context, Result};
use futures::future::BoxFuture;
use koban_config::Config;
use koban_tsdb::{Db, DbOptions};
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The out-of-order window to apply (ms): the configuration's
/// `storage.tsdb.out_of_order_time_window` when it has a `storage.tsdb`
/// section (as Prometheus, which only reads the file), else the flag.
pub fn out_of_order_window_ms(cfg: &Config, flag_ms: i64) -> i64 {
    match &cfg.storage.tsdb {
        Some(t) => i64::try_from(t.out_of_order_time_window.as_millis()).unwrap_or(i64::MAX),
        None => flag_ms,
    }
}

/// The open TSDB (head, WAL, blocks and their maintenance thread). Other
/// components and the web layer share [`db`](Self::db); storage stops
/// last, after every user.
pub struct Storage {
    db: Arc<Db>,
    cancel: CancellationToken,
    /// `--storage.tsdb.out-of-order-time-window` (ms), used when the
    /// configuration has no `storage.tsdb` section.
    ooo_flag_ms: i64,
}

impl Storage {
    /// Opens the TSDB at `path` (WAL replay, blocks) off the async workers
    /// and starts its maintenance thread, which stops with `cancel`.
    /// `opts.out_of_order_window_ms` is overridden from `cfg`.
    pub async fn open(
        path: &Path,
        mut opts: DbOptions,
        cfg: &Config,
        ooo_flag_ms: i64,
        cancel: CancellationToken,
    ) -> Result<Storage> {
        tracing::info!(path = %path.display(), "opening storage");
        opts.out_of_order_window_ms = out_of_order_window_ms(cfg, ooo_flag_ms);
        let p = path.to_path_buf();
        let db = tokio::task::spawn_blocking(move || Db::open(&p, opts))
            .await
            .context("storage task")?
            .with_context(|| format!("opening storage at {}", path.display()))?;
        let db = Arc::new(db);
        tracing::info!(blocks = db.stats().blocks.blocks, "storage ready");
        // Head cuts, compaction and retention run on the Db's own thread.
        db.start_maintenance(cancel.clone())
            .context("starting storage maintenance")?;
        Ok(Storage {
            db,
            cancel,
            ooo_flag_ms,
        })
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }
}

impl Component for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn prepare<'a>(&'a self, cfg: &Arc<Config>) -> Result<Commit<'a>> {
        let ooo = out_of_order_window_ms(cfg, self.ooo_flag_ms);
        Ok(Box::new(move || {
            if ooo != self.db.out_of_order_window() {
                tracing::info!(window_ms = ooo, "TSDB out-of-order window changed");
                self.db.set_out_of_order_window(ooo);
            }
        }))
    }

    /// Stops maintenance (waiting for the pass in progress), then closes
    /// the head and WAL (fsync, head snapshot).
    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.cancel.cancel();
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.close())
                .await
                .map_err(|e| anyhow!("closing storage: {e}"))?
                .context("closing storage")
        })
    }
}
