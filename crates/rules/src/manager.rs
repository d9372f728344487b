//! The rule manager: one task per group, each evaluating its group on the
//! group's interval at a stable offset, and the reload that swaps groups
//! while keeping the state of unchanged rules.
//!
//! Contract: the binary's rules component calls [`Manager::prepare`] (parses
//! every group; fails without changing anything) and then
//! [`Manager::commit`] (inside the Tokio runtime) for every configuration,
//! [`Manager::groups`] for the API, and [`Manager::stop`] once at shutdown.
//!
//! Scheduling (as Prometheus): a group's evaluations happen at
//! `k * interval + offset`, the offset being a hash of the group's file and
//! name modulo the interval, so groups spread out and keep their slots
//! across restarts and reloads. A cycle that overruns skips the slots it
//! missed (counted in `koban_rule_group_iterations_missed_total`); cycles
//! never pile up.

use crate::group::{now_ms, EvalEnv, Group, GroupStatus, RuleError};
use crate::spec::GroupSpec;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Shared = Arc<Mutex<Group>>;

struct Handle {
    file: String,
    name: String,
    group: Shared,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    /// Set before cancelling when the group is removed (not replaced): its
    /// task then writes stale markers for all its series.
    removed: Arc<AtomicBool>,
}

#[derive(Default)]
struct Inner {
    groups: Vec<Handle>,
    /// Tasks of removed groups, still writing their stale markers.
    retiring: Vec<JoinHandle<()>>,
    stopped: bool,
}

/// Groups parsed for a configuration, ready to [`Manager::commit`].
pub struct Prepared {
    groups: Vec<Group>,
    env: Arc<EvalEnv>,
}

/// See the module docs.
pub struct Manager {
    inner: Mutex<Inner>,
    cancel: CancellationToken,
}

impl Manager {
    /// A manager whose group tasks are children of `cancel`.
    pub fn new(cancel: CancellationToken) -> Self {
        Manager {
            inner: Mutex::new(Inner::default()),
            cancel,
        }
    }

    /// Parses every group of `specs`. Changes nothing that runs.
    pub fn prepare(&self, specs: Vec<GroupSpec>, env: Arc<EvalEnv>) -> Result<Prepared, RuleError> {
        let mut groups = Vec::with_capacity(specs.len());
        for s in specs {
            groups.push(Group::new(s, &env)?);
        }
        Ok(Prepared { groups, env })
    }

    /// Runs the prepared groups in place of the current ones. A group with
    /// the same file and name as a running one takes over the state of its
    /// unchanged rules (once the old task stopped; a rule query it has in
    /// flight is aborted); a new group restores its alerts from the state directory;
    /// a removed group writes stale markers for its series and removes its
    /// state file. Must be called inside the Tokio runtime.
    pub fn commit(&self, p: Prepared) {
        let mut inner = self.inner.lock();
        if inner.stopped {
            return;
        }
        let mut old = std::mem::take(&mut inner.groups);
        let now = now_ms();
        for mut g in p.groups {
            let prev = old
                .iter()
                .position(|h| h.file == g.spec().file && h.name == g.spec().name)
                .map(|i| old.remove(i));
            let prev = match prev {
                Some(mut h) => {
                    h.cancel.cancel();
                    h.task.take().map(|t| (h.group.clone(), t))
                }
                None => {
                    let n = crate::state::restore(&mut g, &p.env, now);
                    if n > 0 {
                        tracing::info!(group = %g.name(), file = %g.file(), alerts = n, "restored alert state");
                    }
                    None
                }
            };
            let (file, name) = (g.spec().file.clone(), g.spec().name.clone());
            let group = Arc::new(Mutex::new(g));
            let cancel = self.cancel.child_token();
            let removed = Arc::new(AtomicBool::new(false));
            let task = tokio::spawn(run(
                group.clone(),
                p.env.clone(),
                cancel.clone(),
                prev,
                removed.clone(),
            ));
            inner.groups.push(Handle {
                file,
                name,
                group,
                cancel,
                task: Some(task),
                removed,
            });
        }
        for mut h in old {
            h.removed.store(true, Ordering::SeqCst);
            h.cancel.cancel();
            if let Some(t) = h.task.take() {
                inner.retiring.push(t);
            }
        }
        inner.retiring.retain(|t| !t.is_finished());
    }

    /// [`Manager::prepare`] then [`Manager::commit`].
    pub fn update(&self, specs: Vec<GroupSpec>, env: Arc<EvalEnv>) -> Result<(), RuleError> {
        let p = self.prepare(specs, env)?;
        self.commit(p);
        Ok(())
    }

    /// Every group's status, in configuration order.
    pub fn groups(&self) -> Vec<GroupStatus> {
        let shared: Vec<Shared> = self
            .inner
            .lock()
            .groups
            .iter()
            .map(|h| h.group.clone())
            .collect();
        shared.iter().map(|g| g.lock().status()).collect()
    }

    /// Series written by recording rules' last evaluations, all groups.
    pub fn recorded_series(&self) -> usize {
        let shared: Vec<Shared> = self
            .inner
            .lock()
            .groups
            .iter()
            .map(|h| h.group.clone())
            .collect();
        shared.iter().map(|g| g.lock().recorded_series()).sum()
    }

    /// Stops every group task, aborting the rule queries in flight (the
    /// rules not evaluated are left for the next start). No
    /// stale markers are written (as Prometheus at shutdown), and state
    /// files stay for the next start.
    pub async fn stop(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut inner = self.inner.lock();
            inner.stopped = true;
            let mut v: Vec<JoinHandle<()>> = inner
                .groups
                .iter_mut()
                .filter_map(|h| {
                    h.cancel.cancel();
                    h.task.take()
                })
                .collect();
            v.append(&mut inner.retiring);
            v
        };
        for t in tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "rule group task");
            }
        }
    }
}

/// The stable offset of a group within its interval (ms).
pub fn eval_offset_ms(file: &str, name: &str, interval_ms: i64) -> i64 {
    if interval_ms <= 0 {
        return 0;
    }
    let l = koban_model::Labels::from_pairs([("file", file), ("name", name)]);
    (l.hash() % interval_ms as u64) as i64
}

/// The first evaluation time after `now_ms` on the group's schedule.
pub fn first_eval_ms(now_ms: i64, interval_ms: i64, offset_ms: i64) -> i64 {
    let adj = now_ms - offset_ms;
    adj - adj.rem_euclid(interval_ms) + offset_ms + interval_ms
}

async fn run(
    group: Shared,
    env: Arc<EvalEnv>,
    cancel: CancellationToken,
    prev: Option<(Shared, JoinHandle<()>)>,
    removed: Arc<AtomicBool>,
) {
    if let Some((old, task)) = prev {
        let _ = task.await;
        let g = group.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut o = old.lock();
            g.lock().copy_state(&mut o);
        })
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "BUG: copying rule state");
        }
    }
    let (interval_ms, offset_ms, metrics, name) = {
        let g = group.lock();
        let i = (g.interval().as_millis() as i64).max(1);
        (
            i,
            eval_offset_ms(g.file(), g.name(), i),
            g.metrics().clone(),
            g.name().to_string(),
        )
    };
    // Set when `cancel` fires during an evaluation: the rule query in
    // flight stops (shutdown and reload never wait for a long query).
    let abort = Arc::new(AtomicBool::new(false));
    let mut next = first_eval_ms(now_ms(), interval_ms, offset_ms);
    loop {
        let wait = (next - now_ms()).max(0) as u64;
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
        let late = now_ms() - next;
        let missed = late / interval_ms;
        if missed > 0 {
            metrics.iterations_missed.inc_by(missed as u64);
            metrics.iterations.inc_by(missed as u64);
            next += missed * interval_ms;
            tracing::warn!(group = %name, missed, "rule group evaluation overran its interval");
        }
        let ts = next;
        let (g, e, a) = (group.clone(), env.clone(), abort.clone());
        let mut eval =
            tokio::task::spawn_blocking(move || g.lock().eval_cancellable(&e, ts, Some(&a)));
        let r = tokio::select! {
            r = &mut eval => r,
            _ = cancel.cancelled() => {
                abort.store(true, Ordering::SeqCst);
                eval.await
            }
        };
        if let Err(err) = r {
            tracing::error!(group = %name, error = %err, "BUG: rule group evaluation panicked");
        }
        next += interval_ms;
    }
    if removed.load(Ordering::SeqCst) {
        let (g, e) = (group.clone(), env.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let mut g = g.lock();
            g.mark_all_stale(&e, now_ms());
            if let Some(dir) = &e.state_dir {
                crate::state::remove(dir, g.file(), g.name());
            }
            e.metrics.remove_group(g.metrics());
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::EvalEnv;
    use crate::spec::{RuleKind, RuleSpec};
    use crate::testing::MemStorage;
    use koban_model::{Labels, Matcher};
    use koban_promql::Engine;
    use koban_storage::{
        MemSeries, Querier, Queryable, Result, SampleIterator, SelectHints, Series, SeriesSet,
    };
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicUsize;

    /// Far more series than a test can wait for: each takes 100 ms to
    /// read, so a query over all of them (~17 min, longer than the
    /// engine's 2 min timeout) only ends early if it is cancelled.
    const SLOW_SERIES: usize = 10_000;

    /// A storage whose every series is slow to read; counts the series
    /// read so far.
    #[derive(Clone, Default)]
    struct Slow {
        read: Arc<AtomicUsize>,
    }

    struct SlowSeries {
        inner: MemSeries,
        read: Arc<AtomicUsize>,
    }

    impl Series for SlowSeries {
        fn labels(&self) -> &Labels {
            &self.inner.labels
        }
        fn iter(&self) -> Box<dyn SampleIterator + '_> {
            std::thread::sleep(Duration::from_millis(100));
            self.read.fetch_add(1, Ordering::SeqCst);
            self.inner.iter()
        }
    }

    impl Queryable for Slow {
        fn querier(&self, _mint: i64, _maxt: i64) -> Result<Box<dyn Querier>> {
            Ok(Box::new(self.clone()))
        }
    }

    impl Querier for Slow {
        fn select(&self, _: bool, _: Option<&SelectHints>, _: &[Matcher]) -> Result<SeriesSet> {
            let (read, t) = (self.read.clone(), now_ms());
            Ok(Box::new((0..SLOW_SERIES).map(move |i| {
                let s: Box<dyn Series> = Box::new(SlowSeries {
                    inner: MemSeries {
                        labels: Labels::from_pairs([
                            ("__name__", "slow".to_string()),
                            ("i", format!("{i:05}")),
                        ]),
                        samples: vec![(t, 1.0)],
                    },
                    read: read.clone(),
                });
                Ok(s)
            })))
        }
        fn label_values(&self, _: &str, _: &[Matcher]) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
        fn label_names(&self, _: &[Matcher]) -> Result<Vec<String>> {
            Ok(Vec::new())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_aborts_a_rule_query_in_flight() {
        let slow = Slow::default();
        let out = MemStorage::new();
        let env = EvalEnv::new(
            Arc::new(Engine::new(Default::default())),
            Arc::new(slow.clone()),
            Arc::new(out.clone()),
        );
        let spec = GroupSpec {
            file: "r.yml".into(),
            name: "g".into(),
            interval: Some(Duration::from_secs(1)),
            limit: 0,
            query_offset: None,
            labels: BTreeMap::new(),
            rules: vec![RuleSpec {
                expr: "sum(slow)".into(),
                labels: BTreeMap::new(),
                kind: RuleKind::Recording {
                    record: "slow:sum".into(),
                },
                line: 0,
            }],
        };
        let m = Manager::new(CancellationToken::new());
        m.update(vec![spec], Arc::new(env)).unwrap();
        // Poll (generous deadline) until the query is reading series.
        for _ in 0..600 {
            if slow.read.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(slow.read.load(Ordering::SeqCst) > 0, "no rule query ran");
        // Without the abort this waits for the whole query (minutes); the
        // deadline only keeps a failure from hanging the run.
        tokio::time::timeout(Duration::from_secs(60), m.stop())
            .await
            .expect("stop waited for the rule query in flight");
        let read = slow.read.load(Ordering::SeqCst);
        assert!(read < SLOW_SERIES, "the query read all {read} series");
        // The aborted query wrote nothing and left the rule's health alone.
        assert!(out.log().is_empty(), "{:?}", out.log());
        let g = &m.groups()[0];
        assert_eq!(g.rules[0].last_error, None);
    }

    #[test]
    fn schedule_keeps_a_stable_slot() {
        let off = eval_offset_ms("f.yml", "g", 10_000);
        assert!((0..10_000).contains(&off));
        assert_eq!(off, eval_offset_ms("f.yml", "g", 10_000));
        let first = first_eval_ms(1_000_003, 10_000, off);
        assert!(first > 1_000_003 && first <= 1_000_003 + 10_000);
        assert_eq!((first - off).rem_euclid(10_000), 0);
    }
}
