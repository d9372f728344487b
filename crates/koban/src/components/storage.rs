//! Storage as a component: the TSDB (head, WAL, blocks) and its
//! maintenance thread. The configuration sets its out-of-order window.

use super::{Commit, Component};
use anyhow::{anyhow, Context, Result};
use futures::future::BoxFuture;
use koban_config::Config;
use koban_tsdb::{BlockStore, Db, DbOptions};
use parking_lot::Mutex;
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

/// The open TSDB. Other components and the web layer share [`db`](Self::db)
/// and [`blocks`](Self::blocks); storage stops last, after every user.
pub struct Storage {
    db: Arc<Db>,
    blocks: Arc<BlockStore>,
    /// Head cuts, compaction and retention; taken by [`Component::stop`].
    maintenance: Mutex<Option<std::thread::JoinHandle<()>>>,
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
        let blocks = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || BlockStore::open(db))
                .await
                .context("block store task")?
                .context("opening blocks")?
        };
        let blocks = Arc::new(blocks);
        tracing::info!(blocks = blocks.stats().blocks, "storage ready");
        let maintenance = blocks
            .clone()
            .spawn(cancel.clone())
            .context("starting storage maintenance")?;
        Ok(Storage {
            db,
            blocks,
            maintenance: Mutex::new(Some(maintenance)),
            cancel,
            ooo_flag_ms,
        })
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    pub fn blocks(&self) -> &Arc<BlockStore> {
        &self.blocks
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

    /// Waits for maintenance to finish, then closes the head and WAL under
    /// it (fsync, head snapshot).
    fn stop(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.cancel.cancel();
            let maintenance = self.maintenance.lock().take();
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || {
                if let Some(m) = maintenance {
                    if m.join().is_err() {
                        tracing::error!("storage maintenance thread panicked");
                    }
                }
                db.close()
            })
            .await
            .map_err(|e| anyhow!("closing storage: {e}"))?
            .context("closing storage")
        })
    }
}
