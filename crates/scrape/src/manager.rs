//! The scrape manager: one pool per job, one loop per target; applies new
//! pool settings and discovered target sets, keeping unchanged loops
//! running so a reload or a discovery update leaves no gap.

use crate::client;
use crate::metrics::ScrapeMetrics;
use crate::scrape_loop::{
    BufferPool, LoopContext, LoopStatus, MetadataInterner, ScrapeLoop, DEFAULT_SCRAPE_SLOTS,
    DEFAULT_TIMESTAMP_TOLERANCE,
};
use crate::target::{populate, DroppedTarget, PoolConfig, Populated, Target};
use crate::ScrapeError;
use koban_model::Labels;
use koban_storage::Appendable;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct LoopHandle {
    target: Arc<Target>,
    status: Arc<Mutex<LoopStatus>>,
    cancel: CancellationToken,
    stale_on_exit: Arc<AtomicBool>,
}

impl LoopHandle {
    fn stop(&self, stale: bool) {
        self.stale_on_exit.store(stale, Ordering::Relaxed);
        self.cancel.cancel();
    }
}

struct Pool {
    cfg: Arc<PoolConfig>,
    client: koban_httpclient::HttpClient,
    loops: HashMap<u64, LoopHandle>,
    dropped: Vec<DroppedTarget>,
    /// Last discovered target set, re-applied when the pool's settings change.
    discovered: Vec<Labels>,
    /// Set when the pool has more targets than `target_limit`.
    limit_error: Option<String>,
    /// Targets refused by the limit, shown as down.
    refused: Vec<Arc<Target>>,
}

/// Pool settings checked and with their HTTP clients built, from
/// [`ScrapeManager::prepare`]; [`ScrapeManager::commit`] runs them.
pub struct PreparedPools(Vec<(PoolConfig, koban_httpclient::HttpClient)>);

/// One target as the API shows it.
#[derive(Debug, Clone)]
pub struct TargetSnapshot {
    pub pool: String,
    pub target: Arc<Target>,
    pub status: LoopStatus,
}

/// Runs every scrape loop. Shared (`Arc`) between the binary's discovery
/// task, reload handling and the web layer.
pub struct ScrapeManager {
    ctx: Arc<LoopContext>,
    pools: Mutex<BTreeMap<String, Pool>>,
    cancel: CancellationToken,
}

impl ScrapeManager {
    /// Loops are children of `cancel`: cancelling it stops every loop (without stale markers).
    pub fn new(
        storage: Arc<dyn Appendable>,
        metrics: ScrapeMetrics,
        cancel: CancellationToken,
    ) -> Self {
        ScrapeManager {
            ctx: Arc::new(LoopContext {
                storage,
                buffers: BufferPool::default(),
                interner: MetadataInterner::default(),
                metrics,
                timestamp_tolerance: DEFAULT_TIMESTAMP_TOLERANCE,
                scrape_slots: DEFAULT_SCRAPE_SLOTS,
            }),
            pools: Mutex::new(BTreeMap::new()),
            cancel,
        }
    }

    /// Sets how far a scrape may start from its schedule and still get the
    /// scheduled timestamp (`--scrape.timestamp-tolerance`; zero turns the
    /// alignment off, as `--scrape.adjust-timestamps=false`). Call before
    /// any config is applied.
    pub fn with_timestamp_tolerance(mut self, tolerance: Duration) -> Self {
        // The context is only shared with loops, and none exist yet.
        if let Some(ctx) = Arc::get_mut(&mut self.ctx) {
            ctx.timestamp_tolerance = tolerance;
        }
        self
    }

    /// Sets how many evenly spaced start instants per interval targets are
    /// grouped on (`--scrape.slots`; zero gives every target its own
    /// offset, as Prometheus does). Call before any config is applied.
    pub fn with_scrape_slots(mut self, slots: u32) -> Self {
        // The context is only shared with loops, and none exist yet.
        if let Some(ctx) = Arc::get_mut(&mut self.ctx) {
            ctx.scrape_slots = slots;
        }
        self
    }

    /// Applies the pool settings of a (re)loaded config: [`prepare`](Self::prepare)
    /// then [`commit`](Self::commit). A bad setting refuses the whole config
    /// and the old one keeps running. Pools that did not change keep their loops.
    pub fn apply_config(&self, cfgs: Vec<PoolConfig>) -> Result<(), ScrapeError> {
        let prepared = self.prepare(cfgs)?;
        self.commit(prepared);
        Ok(())
    }

    /// Checks the pool settings of a (re)loaded config and builds every
    /// HTTP client, changing nothing that runs. The binary prepares every
    /// component before committing any, so one refusal keeps the old config
    /// everywhere.
    pub fn prepare(&self, cfgs: Vec<PoolConfig>) -> Result<PreparedPools, ScrapeError> {
        let mut built = Vec::with_capacity(cfgs.len());
        for c in cfgs {
            let client = client::build(&c.job_name, &c.http, c.timeout)?;
            built.push((c, client));
        }
        Ok(PreparedPools(built))
    }

    /// Runs prepared pool settings: pools no longer configured stop (with
    /// stale markers), changed pools restart their loops, unchanged pools
    /// keep them. Cannot fail.
    pub fn commit(&self, prepared: PreparedPools) {
        let built = prepared.0;
        let mut pools = self.pools.lock();
        let keep: Vec<String> = built.iter().map(|(c, _)| c.job_name.clone()).collect();
        let gone: Vec<String> = pools
            .keys()
            .filter(|k| !keep.contains(k))
            .cloned()
            .collect();
        for job in gone {
            if let Some(p) = pools.remove(&job) {
                for l in p.loops.values() {
                    l.stop(true);
                }
                self.ctx
                    .metrics
                    .targets
                    .get_or_create(&ScrapeMetrics::pool(&job))
                    .set(0);
            }
        }
        for (cfg, client) in built {
            let job = cfg.job_name.clone();
            match pools.get_mut(&job) {
                Some(p) if *p.cfg == cfg => {}
                Some(p) => {
                    p.cfg = Arc::new(cfg);
                    p.client = client;
                    // New settings: restart every loop; targets that stay get no stale markers.
                    let discovered = std::mem::take(&mut p.discovered);
                    let old: Vec<LoopHandle> = p.loops.drain().map(|(_, l)| l).collect();
                    self.sync_pool(&job, p, discovered);
                    for l in old {
                        let still = p.loops.values().any(|n| n.target.labels == l.target.labels);
                        l.stop(!still);
                    }
                }
                None => {
                    pools.insert(
                        job,
                        Pool {
                            cfg: Arc::new(cfg),
                            client,
                            loops: HashMap::new(),
                            dropped: Vec::new(),
                            discovered: Vec::new(),
                            limit_error: None,
                            refused: Vec::new(),
                        },
                    );
                }
            }
        }
    }

    /// Applies the full discovered target set of `job` (each entry: group
    /// labels merged under target labels). Unknown jobs are ignored.
    pub fn sync(&self, job: &str, discovered: Vec<Labels>) {
        let mut pools = self.pools.lock();
        if let Some(p) = pools.get_mut(job) {
            self.sync_pool(job, p, discovered);
        }
    }

    fn sync_pool(&self, job: &str, p: &mut Pool, discovered: Vec<Labels>) {
        let mut active: Vec<Target> = Vec::new();
        let mut dropped = Vec::new();
        for d in &discovered {
            match populate(d, &p.cfg) {
                Populated::Active(t) => active.push(t),
                Populated::Dropped(t) => dropped.push(t),
                Populated::Invalid(reason) => {
                    tracing::warn!(job, labels = %d, reason, "target refused");
                }
            }
        }
        p.discovered = discovered;
        if p.cfg.keep_dropped_targets > 0 {
            dropped.truncate(p.cfg.keep_dropped_targets);
        }
        p.dropped = dropped;
        // Identical targets (same labels and URL) are scraped once.
        let mut wanted: HashMap<u64, Target> = HashMap::new();
        for t in active {
            wanted.entry(t.hash()).or_insert(t);
        }
        let limit = p.cfg.target_limit;
        if limit > 0 && wanted.len() > limit {
            let msg = format!(
                "target_limit exceeded (number of targets: {}, limit: {limit})",
                wanted.len()
            );
            for l in p.loops.values() {
                l.stop(true);
            }
            p.loops.clear();
            p.refused = wanted.into_values().map(Arc::new).collect();
            p.limit_error = Some(msg);
            self.ctx
                .metrics
                .targets
                .get_or_create(&ScrapeMetrics::pool(job))
                .set(0);
            return;
        }
        p.limit_error = None;
        p.refused.clear();
        let gone: Vec<u64> = p
            .loops
            .keys()
            .filter(|h| !wanted.contains_key(h))
            .copied()
            .collect();
        for h in gone {
            if let Some(l) = p.loops.remove(&h) {
                l.stop(true);
            }
        }
        for (h, t) in wanted {
            if p.loops.contains_key(&h) {
                continue;
            }
            let target = Arc::new(t);
            let status = Arc::new(Mutex::new(LoopStatus::default()));
            let cancel = self.cancel.child_token();
            let stale = Arc::new(AtomicBool::new(false));
            let lp = ScrapeLoop::new(
                target.clone(),
                p.cfg.clone(),
                p.client.clone(),
                self.ctx.clone(),
                status.clone(),
            );
            tokio::spawn(lp.run(cancel.clone(), stale.clone()));
            p.loops.insert(
                h,
                LoopHandle {
                    target,
                    status,
                    cancel,
                    stale_on_exit: stale,
                },
            );
        }
        self.ctx
            .metrics
            .targets
            .get_or_create(&ScrapeMetrics::pool(job))
            .set(p.loops.len() as i64);
    }

    /// Every active target with its status, by pool then labels.
    pub fn active_targets(&self) -> Vec<TargetSnapshot> {
        let pools = self.pools.lock();
        let mut out = Vec::new();
        for (job, p) in pools.iter() {
            let mut v: Vec<TargetSnapshot> = p
                .loops
                .values()
                .map(|l| TargetSnapshot {
                    pool: job.clone(),
                    target: l.target.clone(),
                    status: l.status.lock().clone(),
                })
                .collect();
            if let Some(msg) = &p.limit_error {
                v.extend(p.refused.iter().map(|t| TargetSnapshot {
                    pool: job.clone(),
                    target: t.clone(),
                    status: LoopStatus {
                        health: crate::scrape_loop::Health::Down,
                        last_error: msg.clone(),
                        ..Default::default()
                    },
                }));
            }
            v.sort_by(|a, b| a.target.labels.cmp(&b.target.labels));
            out.extend(v);
        }
        out
    }

    /// Targets dropped by relabelling, by pool.
    pub fn dropped_targets(&self) -> Vec<(String, DroppedTarget)> {
        let pools = self.pools.lock();
        pools
            .iter()
            .flat_map(|(job, p)| p.dropped.iter().map(move |d| (job.clone(), d.clone())))
            .collect()
    }

    /// Number of active loops (for tests and status).
    pub fn num_loops(&self) -> usize {
        self.pools.lock().values().map(|p| p.loops.len()).sum()
    }

    /// Stops every loop. With `stale`, loops write stale markers as they stop.
    pub fn stop(&self, stale: bool) {
        let mut pools = self.pools.lock();
        for p in pools.values() {
            for l in p.loops.values() {
                l.stop(stale);
            }
        }
        pools.clear();
    }
}
