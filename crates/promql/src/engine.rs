//! PromQL evaluation over a [`Queryable`].
//!
//! The evaluator works step by step: selector data is loaded once per query
//! (one `select` per selector node, over the whole time range it needs) and
//! every step then binary-searches into that data. Subqueries evaluate only
//! the inner steps where their inner expression can have output (see
//! [`crate::sparse`]); inner steps are memoised per node and timestamp where
//! outer windows overlap (range queries, nested subqueries).

use crate::ast::{AtModifier, Expr, PosRange, VectorSelector};
use crate::ParseError;
use koban_model::{is_stale_nan, Labels, METRIC_NAME};
use koban_storage::{Querier, Queryable, SelectHints};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
mod plan;
use plan::{at_time, find_min_max, mark_in_subquery, mark_invariant};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOpts {
    /// How far back an instant selector looks for a sample (default 5m).
    pub lookback_delta_ms: i64,
    pub timeout: Duration,
    /// Maximum samples held in memory by one query.
    pub max_samples: usize,
}

impl Default for EngineOpts {
    fn default() -> Self {
        EngineOpts {
            lookback_delta_ms: 5 * 60_000,
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
        }
    }
}

/// A query result value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<Sample>),
    Matrix(Vec<RangeSeries>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series of a range result.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// A result plus annotations (already rendered, with positions).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// Query failures, mapped by the API to Prometheus's error types.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Parse(ParseError),
    #[error("{0}")]
    Execution(String),
    #[error("{0}")]
    Timeout(String),
    #[error("query was canceled")]
    Canceled,
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    #[error("{0}")]
    Storage(String),
}

/// Maximum number of points per series in a range query result.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Default subquery step when none is given (as Prometheus's default
/// evaluation interval).
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// A fast, non-cryptographic hasher for integer keys (pointers, label
/// hashes, timestamps) in per-step maps.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
}

/// HashMap with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// Finds series by label set across the steps of a query: by `Arc`
/// pointer first (steps usually hand out the same `Arc`), then by label
/// hash with a full comparison.
#[derive(Default)]
struct SeriesIndex {
    by_hash: FastMap<u64, usize>,
    by_ptr: FastMap<usize, usize>,
}

impl SeriesIndex {
    /// Position of the series labelled `l` in `items` (whose labels
    /// `label_of` gives), pushing `make()` first when it is new.
    fn find_or_push<T>(
        &mut self,
        items: &mut Vec<T>,
        l: &Arc<Labels>,
        label_of: impl Fn(&T) -> &Arc<Labels>,
        make: impl FnOnce() -> T,
    ) -> usize {
        let p = Arc::as_ptr(l) as usize;
        if let Some(&i) = self.by_ptr.get(&p) {
            return i;
        }
        let h = l.hash();
        let found = match self.by_hash.get(&h) {
            Some(&i) if **label_of(&items[i]) == **l => Some(i),
            Some(_) => items.iter().position(|o| **label_of(o) == **l),
            None => None,
        };
        let i = match found {
            Some(i) => i,
            None => {
                items.push(make());
                self.by_hash.entry(h).or_insert(items.len() - 1);
                items.len() - 1
            }
        };
        // `items[i]` keeps this pointer's target alive only if it is the
        // same Arc; otherwise do not cache by pointer.
        if Arc::ptr_eq(label_of(&items[i]), l) {
            self.by_ptr.insert(p, i);
        }
        i
    }
}
/// HashSet with [`FxHasher`].
pub(crate) type FastSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<FxHasher>>;

/// Target time span of one evaluation block of a range query. Every block
/// selects its data again, and a block chunk holds up to 4096 samples
/// (~17h at a 15s interval) that are decoded whole, so short blocks decode
/// the same chunks many times; 12h keeps common dashboards ranges in one
/// block while bounding memory for long ones.
const BLOCK_MS: i64 = 12 * 3600 * 1000;
/// Minimum number of steps per block.
const MIN_BLOCK_STEPS: i64 = 120;

/// Selectors with at least this many series are decoded on two threads by
/// [`Ev::stream_map`].
const PARALLEL_MIN_SERIES: usize = 64;

/// Budget of samples memoised for subquery inner steps (every memoised
/// step counts one more, so empty steps are bounded too), and of points
/// held by one subquery block.
const SUBQUERY_CACHE_SAMPLES: usize = 4_000_000;

/// The PromQL engine. Cheap to share; holds only settings.
#[derive(Debug, Clone)]
pub struct Engine {
    opts: EngineOpts,
}

impl Engine {
    pub fn new(opts: EngineOpts) -> Self {
        Engine { opts }
    }

    /// The settings this engine was made with.
    pub fn opts(&self) -> &EngineOpts {
        &self.opts
    }

    /// Evaluates `expr` at `t_ms`.
    pub fn instant(
        &self,
        q: &dyn Queryable,
        expr: &str,
        t_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        self.instant_with_cancel(q, expr, t_ms, None)
    }

    /// Evaluates `expr` from `start_ms` to `end_ms` every `step_ms`.
    pub fn range(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        self.range_with_cancel(q, expr, start_ms, end_ms, step_ms, None)
    }

    /// As [`Engine::instant`]; stops with [`QueryError::Canceled`] soon after `cancel` becomes true.
    pub fn instant_with_cancel(
        &self,
        q: &dyn Queryable,
        expr: &str,
        t_ms: i64,
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryResult, QueryError> {
        let e = crate::parse(expr).map_err(QueryError::Parse)?;
        self.exec(q, &e, expr, t_ms, t_ms, 0, cancel)
    }

    /// As [`Engine::range`] with a cancellation flag.
    pub fn range_with_cancel(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryResult, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::Execution(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::Execution(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end_ms - start_ms) / step_ms > MAX_POINTS_PER_SERIES {
            return Err(QueryError::Execution(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let e = crate::parse(expr).map_err(QueryError::Parse)?;
        self.exec(q, &e, expr, start_ms, end_ms, step_ms, cancel)
    }

    /// Evaluates an already parsed expression. `step_ms == 0` means an
    /// instant query at `start_ms`.
    #[allow(clippy::too_many_arguments)]
    pub fn exec(
        &self,
        q: &dyn Queryable,
        e: &Expr,
        text: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: Option<&AtomicBool>,
    ) -> Result<QueryResult, QueryError> {
        let mm = find_min_max(
            e,
            start_ms,
            end_ms,
            start_ms,
            end_ms,
            self.opts.lookback_delta_ms,
        );
        let (mint, maxt) = mm.all;
        let querier = q
            .querier(mint, maxt)
            .map_err(|e| QueryError::Storage(e.to_string()))?;
        let mut ev = Ev {
            querier,
            start: start_ms,
            end: end_ms,
            interval: step_ms,
            lookback: self.opts.lookback_delta_ms,
            cache: FastMap::default(),
            sel_ranges: mm.per,
            subq_cache: FastMap::default(),
            group_cache: FastMap::default(),
            regex_cache: HashMap::new(),
            block: None,
            invariant: FastSet::default(),
            inv_cache: FastMap::default(),
            key_cache: FastMap::default(),
            bin_labels: FastMap::default(),
            grids: FastMap::default(),
            agg_maps: FastMap::default(),
            block_vecs: FastMap::default(),
            subq_blocks: FastMap::default(),
            support_cache: FastMap::default(),
            in_subquery: FastSet::default(),
            subq_cached_samples: 0,
            warnings: Vec::new(),
            infos: Vec::new(),
            query: text,
            max_samples: self.opts.max_samples,
            cur_samples: 0,
            deadline: Instant::now() + self.opts.timeout,
            cancel,
            checks: 0,
            range_query: step_ms != 0,
        };
        if step_ms != 0 {
            mark_invariant(e, &mut ev.invariant);
        }
        mark_in_subquery(e, false, &mut ev.in_subquery);
        let value = if step_ms == 0 {
            ev.run_instant(e, start_ms)?
        } else {
            ev.run_range(e)?
        };
        Ok(QueryResult {
            value,
            warnings: ev.warnings,
            infos: ev.infos,
        })
    }
}

/// Functions whose value depends on the evaluation time itself (also the
/// `@`-unsafe functions of the promqltest runner).
pub(crate) const TIME_DEPENDENT: &[&str] = &[
    "time",
    "timestamp",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
];

/// Internal instant-vector element. `drop_name` implements Prometheus's
/// delayed `__name__` removal: the name stays readable (e.g. for
/// `label_replace`) and is removed when the result leaves the engine.
#[derive(Debug, Clone)]
pub(crate) struct Smp {
    pub l: Arc<Labels>,
    pub v: f64,
    /// Sample timestamp (for `timestamp()` over a selector); otherwise the eval time.
    pub t: i64,
    pub drop_name: bool,
}

pub(crate) type Vector = Vec<Smp>;

/// Internal range-vector series.
#[derive(Debug, Clone)]
pub(crate) struct MSeries {
    pub l: Arc<Labels>,
    pub pts: Vec<(i64, f64)>,
    pub drop_name: bool,
}

/// Internal value of one evaluation step.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Scalar(f64),
    Str(String),
    Vector(Vector),
    Matrix(Vec<MSeries>),
}

/// Largest step grid (steps x series) built for one selector and block.
const MAX_GRID_CELLS: usize = 4_000_000;

/// Values of an instant selector at each step of a block, step-major:
/// `cells[step * n + series]` = (sample timestamp, value), `i64::MIN` if absent.
pub(crate) struct Grid {
    start: i64,
    n: usize,
    cells: Vec<(i64, f64)>,
}

impl Grid {
    /// Row `k` (one cell per series).
    #[inline]
    pub(crate) fn row(&self, k: usize) -> &[(i64, f64)] {
        &self.cells[k * self.n..(k + 1) * self.n]
    }
}

/// The per-step output of one node over a whole evaluation block,
/// computed series by series (each selected series is decoded once into a
/// scratch buffer and dropped), so raw samples are never all held at once.
pub(crate) struct BlockVec {
    /// Output label sets.
    pub labels: Vec<Arc<Labels>>,
    /// Elements of step `k` are `cells[offs[k]..offs[k + 1]]`: (index into
    /// `labels`, value), in the order the step-by-step path gives them.
    pub cells: Vec<(u32, f64)>,
    pub offs: Vec<usize>,
    /// Samples read at each step (for the sample limit).
    pub samples: Vec<usize>,
    /// Info annotations first due at a step: (step, message, position).
    pub infos: Vec<(usize, String, PosRange)>,
    pub drop_name: bool,
}

/// A subquery's inner values over a block (see [`Ev::subquery_block`]).
pub(crate) struct SubqBlock {
    bs: i64,
    series: Vec<SubqSeries>,
}

pub(crate) struct SubqSeries {
    l: Arc<Labels>,
    pts: Vec<(i64, f64)>,
    /// Per point: position in the inner step's vector, and its drop_name.
    pos: Vec<(u32, bool)>,
    /// Window cursors remembered between outer steps.
    lo: std::cell::Cell<usize>,
    hi: std::cell::Cell<usize>,
}

/// Number of points with timestamp <= `t`, moving `cursor` (a previous
/// answer) forward by a short scan, or searching when `t` went back or far.
#[inline]
fn seek_cursor(pts: &[(i64, f64)], cursor: &std::cell::Cell<usize>, t: i64) -> usize {
    let mut c = cursor.get().min(pts.len());
    if c > 0 && pts[c - 1].0 > t {
        c = pts.partition_point(|p| p.0 <= t);
    } else {
        let mut n = 0;
        while c < pts.len() && pts[c].0 <= t {
            c += 1;
            n += 1;
            if n == 8 {
                c += pts[c..].partition_point(|p| p.0 <= t);
                break;
            }
        }
    }
    cursor.set(c);
    c
}

/// One loaded series of a selector.
pub(crate) struct Loaded {
    pub l: Arc<Labels>,
    pub pts: Vec<(i64, f64)>,
    pub has_stale: bool,
    /// Cursors remembered between steps so forward-moving lookups scan a
    /// few neighbouring samples instead of binary searching cold memory.
    cur: std::cell::Cell<usize>,
    lo: std::cell::Cell<usize>,
}

impl Loaded {
    /// Number of samples with timestamp <= `t`, starting from `cursor`.
    #[inline]
    fn seek(&self, cursor: &std::cell::Cell<usize>, t: i64) -> usize {
        seek_cursor(&self.pts, cursor, t)
    }
}

/// Per-query evaluation state.
pub(crate) struct Ev<'a> {
    querier: Box<dyn Querier>,
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    pub lookback: i64,
    cache: FastMap<usize, Rc<Vec<Loaded>>>,
    /// Closed time range each selector reads.
    sel_ranges: FastMap<usize, (i64, i64)>,
    subq_cache: FastMap<(usize, i64), Rc<Val>>,
    /// Aggregation output label sets by (node, group key), shared between steps.
    pub(crate) group_cache: FastMap<(usize, u64), Arc<Labels>>,
    /// Aggregation group keys and binary matching signatures by (node,
    /// input label-set pointer).
    pub(crate) key_cache: FastMap<(usize, usize), (Arc<Labels>, u64)>,
    /// Binary vector/vector result label sets by (node, left pointer, right
    /// pointer), holding both operands so the pointers stay unique.
    #[allow(clippy::type_complexity)]
    pub(crate) bin_labels: FastMap<(usize, usize, usize), (Arc<Labels>, Arc<Labels>, Arc<Labels>)>,
    /// Step-invariant subtrees (all selectors under `@`, no time-dependent
    /// functions) worth caching, by node address.
    invariant: FastSet<usize>,
    /// Their values, computed once per query.
    inv_cache: FastMap<usize, Val>,
    /// Current block `[start, end]` of a range query's steps.
    block: Option<(i64, i64)>,
    /// Step grids of instant selectors for the current block (None: too big).
    grids: FastMap<usize, Option<Rc<Grid>>>,
    /// Series-to-group maps of aggregations read straight from a grid, for
    /// the current block, by aggregation node.
    pub(crate) agg_maps: FastMap<usize, Rc<crate::aggregations::AggMap>>,
    /// Compiled `label_replace` regexes by pattern.
    pub(crate) regex_cache: HashMap<String, regex::Regex>,
    /// Whole-block results of nodes evaluated series by series (None: the
    /// node does not fit), for the current block, by node address.
    pub(crate) block_vecs: FastMap<usize, Option<Rc<BlockVec>>>,
    /// Subquery inner values for the current block, by subquery node.
    subq_blocks: FastMap<usize, Option<Rc<SubqBlock>>>,
    /// Spans where subquery inner expressions may have output, for the
    /// current block, by node address (see [`crate::sparse`]).
    pub(crate) support_cache: FastMap<usize, crate::sparse::Spans>,
    /// Nodes under a subquery (evaluated at the subquery's inner steps).
    in_subquery: FastSet<usize>,
    subq_cached_samples: usize,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    pub query: &'a str,
    max_samples: usize,
    cur_samples: usize,
    deadline: Instant,
    cancel: Option<&'a AtomicBool>,
    checks: u32,
    pub range_query: bool,
}

pub(crate) fn err<T>(m: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError::Execution(m.into()))
}

impl<'a> Ev<'a> {
    /// Renders an annotation with the position of `pos`.
    fn annot(&self, msg: &str, pos: PosRange) -> String {
        let (l, c) = crate::line_col(self.query, pos.start);
        format!("{msg} ({l}:{c})")
    }

    pub(crate) fn warn(&mut self, msg: &str, pos: PosRange) {
        let s = self.annot(&format!("PromQL warning: {msg}"), pos);
        if !self.warnings.contains(&s) {
            self.warnings.push(s);
        }
    }

    pub(crate) fn info(&mut self, msg: &str, pos: PosRange) {
        let s = self.annot(&format!("PromQL info: {msg}"), pos);
        if !self.infos.contains(&s) {
            self.infos.push(s);
        }
    }

    fn check_interrupt(&mut self) -> Result<(), QueryError> {
        self.checks = self.checks.wrapping_add(1);
        if let Some(c) = self.cancel {
            if c.load(Ordering::Relaxed) {
                return Err(QueryError::Canceled);
            }
        }
        if self.checks.is_multiple_of(16) && Instant::now() > self.deadline {
            return Err(QueryError::Timeout(
                "query timed out in expression evaluation".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn add_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.cur_samples += n;
        if self.cur_samples > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    fn run_instant(&mut self, e: &Expr, t: i64) -> Result<Value, QueryError> {
        self.check_interrupt()?;
        let v = self.eval(e, t)?;
        Ok(match v {
            Val::Scalar(v) => Value::Scalar { t, v },
            Val::Str(s) => Value::String { t, v: s },
            Val::Vector(vec) => {
                let out = finalize_vector(vec)?;
                Value::Vector(
                    out.into_iter()
                        .map(|(l, s)| Sample {
                            labels: l,
                            t,
                            v: s.v,
                        })
                        .collect(),
                )
            }
            Val::Matrix(m) => {
                let mut out: Vec<RangeSeries> = Vec::with_capacity(m.len());
                let mut seen: HashMap<Labels, ()> = HashMap::new();
                for s in m {
                    let l = if s.drop_name {
                        s.l.without_metric_name()
                    } else {
                        (*s.l).clone()
                    };
                    if seen.insert(l.clone(), ()).is_some() {
                        return err("vector cannot contain metrics with the same labelset");
                    }
                    out.push(RangeSeries {
                        labels: l,
                        points: s.pts,
                    });
                }
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
        })
    }

    fn run_range(&mut self, e: &Expr) -> Result<Value, QueryError> {
        match e.value_type() {
            crate::ast::ValueType::Scalar | crate::ast::ValueType::Vector => {}
            t => {
                return err(format!("invalid expression type \"{t}\" for range query, must be Scalar or instant Vector"));
            }
        }
        let mut series: HashMap<Labels, usize> = HashMap::new();
        let mut by_ptr: FastMap<(usize, bool), usize> = FastMap::default();
        let mut keep_alive: Vec<Arc<Labels>> = Vec::new();
        let mut out: Vec<RangeSeries> = Vec::new();
        // Long ranges are evaluated in blocks of steps; selector data is
        // re-selected per block so memory stays bounded by one block.
        let block_steps = (BLOCK_MS / self.interval).max(MIN_BLOCK_STEPS);
        let mut steps_in_block = block_steps;
        let mut t = self.start;
        while t <= self.end {
            self.check_interrupt()?;
            if steps_in_block == block_steps {
                steps_in_block = 0;
                let block_end = t
                    .saturating_add(self.interval.saturating_mul(block_steps - 1))
                    .min(self.end);
                self.cache.clear();
                self.grids.clear();
                self.agg_maps.clear();
                self.block_vecs.clear();
                self.subq_blocks.clear();
                self.support_cache.clear();
                self.block = Some((t, block_end));
                self.subq_cache.clear();
                self.subq_cached_samples = 0;
                self.sel_ranges =
                    find_min_max(e, t, block_end, self.start, self.end, self.lookback).per;
            }
            steps_in_block += 1;
            let base = self.cur_samples;
            let v = self.eval(e, t)?;
            self.cur_samples = base;
            match v {
                Val::Scalar(v) => {
                    if out.is_empty() {
                        out.push(RangeSeries {
                            labels: Labels::empty(),
                            points: Vec::new(),
                        });
                    }
                    out[0].points.push((t, v));
                    self.add_samples(1)?;
                }
                Val::Vector(vec) => {
                    let n = vec.len();
                    for s in vec {
                        // Output series are found by label-set pointer first
                        // (selector and aggregation label sets are shared
                        // between steps), by value otherwise.
                        let pk = (Arc::as_ptr(&s.l) as usize, s.drop_name);
                        let idx = match by_ptr.get(&pk) {
                            Some(&i) => i,
                            None => {
                                let l = if s.drop_name && s.l.has(METRIC_NAME) {
                                    s.l.without_metric_name()
                                } else {
                                    (*s.l).clone()
                                };
                                let i = match series.get(&l) {
                                    Some(&i) => i,
                                    None => {
                                        out.push(RangeSeries {
                                            labels: l.clone(),
                                            points: Vec::new(),
                                        });
                                        series.insert(l, out.len() - 1);
                                        out.len() - 1
                                    }
                                };
                                by_ptr.insert(pk, i);
                                keep_alive.push(s.l.clone());
                                i
                            }
                        };
                        if out[idx].points.last().is_some_and(|p| p.0 == t) {
                            return err("vector cannot contain metrics with the same labelset");
                        }
                        out[idx].points.push((t, s.v));
                    }
                    self.add_samples(n)?;
                    if keep_alive.len() > 1_000_000 {
                        // Label sets are not shared between steps: stop caching.
                        by_ptr.clear();
                        keep_alive.clear();
                    }
                }
                _ => return err("BUG: unexpected value type in range evaluation"),
            }
            match t.checked_add(self.interval) {
                Some(n) => t = n,
                None => break,
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Value::Matrix(out))
    }

    /// Loads (once) the series of a selector node.
    pub(crate) fn load(
        &mut self,
        vs: &VectorSelector,
        range: i64,
    ) -> Result<Rc<Vec<Loaded>>, QueryError> {
        let key = vs as *const VectorSelector as usize;
        if let Some(d) = self.cache.get(&key) {
            return Ok(d.clone());
        }
        let hints = self.hints(key, range);
        let set = self
            .querier
            .select(true, Some(&hints), &vs.matchers)
            .map_err(|e| QueryError::Storage(e.to_string()))?;
        let mut out = Vec::new();
        let mut loaded_samples = 0usize;
        // Series of one selector usually have similar lengths: size each
        // buffer like the previous one to avoid regrowing.
        let mut hint = 0usize;
        for s in set {
            let s = s.map_err(|e| QueryError::Storage(e.to_string()))?;
            self.check_interrupt()?;
            let mut pts = Vec::with_capacity(hint);
            s.iter().drain_into(&mut pts);
            if pts.is_empty() {
                continue;
            }
            hint = pts.len() + pts.len() / 16;
            let has_stale = pts.iter().any(|p| is_stale_nan(p.1));
            // Raw samples held in memory count against the sample limit
            // (generously: four raw samples per counted sample).
            loaded_samples += pts.len();
            if loaded_samples / 4 > self.max_samples {
                return Err(QueryError::TooManySamples);
            }
            out.push(Loaded {
                l: Arc::new(s.labels().clone()),
                pts,
                has_stale,
                cur: Default::default(),
                lo: Default::default(),
            });
        }
        out.sort_by(|a, b| a.l.cmp(&b.l));
        let d = Rc::new(out);
        self.cache.insert(key, d.clone());
        Ok(d)
    }

    /// Effective evaluation time of a selector at step `t`.
    pub(crate) fn sel_time(&self, at: &Option<AtModifier>, offset: i64, t: i64) -> i64 {
        at_time(at, self.start, self.end)
            .unwrap_or(t)
            .saturating_sub(offset)
    }

    /// Step-major values of an instant selector over the current block's
    /// steps, so range queries read one contiguous row per step.
    fn grid(&mut self, vs: &VectorSelector, data: &[Loaded]) -> Option<Rc<Grid>> {
        let (bs, be) = self.block?;
        let key = vs as *const VectorSelector as usize;
        if let Some(g) = self.grids.get(&key) {
            return g.clone();
        }
        let n_steps = ((be - bs) / self.interval + 1) as usize;
        let n = data.len();
        if n_steps.saturating_mul(n) > MAX_GRID_CELLS {
            self.grids.insert(key, None);
            return None;
        }
        // Filled in tiles of TILE series x TILE steps, so both the reads
        // (one cursor per series) and the step-major writes stay within a
        // few pages.
        const TILE: usize = 64;
        let tes: Vec<i64> = (0..n_steps)
            .map(|k| self.sel_time(&vs.at, vs.offset, bs + k as i64 * self.interval))
            .collect();
        let mut cells = vec![(i64::MIN, 0.0); n_steps * n];
        let mut cur = vec![0usize; n];
        for s0 in (0..n).step_by(TILE) {
            let s1 = (s0 + TILE).min(n);
            for k0 in (0..n_steps).step_by(TILE) {
                let k1 = (k0 + TILE).min(n_steps);
                for i in s0..s1 {
                    let pts = &data[i].pts[..];
                    let mut c = cur[i];
                    for (k, &te) in tes.iter().enumerate().take(k1).skip(k0) {
                        if c > 0 && pts[c - 1].0 > te {
                            c = pts.partition_point(|p| p.0 <= te);
                        }
                        while c < pts.len() && pts[c].0 <= te {
                            c += 1;
                        }
                        if c > 0 {
                            let (st, v) = pts[c - 1];
                            if st > te.saturating_sub(self.lookback) && !is_stale_nan(v) {
                                cells[k * n + i] = (st, v);
                            }
                        }
                    }
                    cur[i] = c;
                }
            }
        }
        let g = Rc::new(Grid {
            start: bs,
            n,
            cells,
        });
        self.grids.insert(key, Some(g.clone()));
        Some(g)
    }

    /// In a range query, when `t` is a step of the current block and the
    /// selector's step grid fits: its loaded series and the grid row of `t`
    /// (`row[i]` belongs to series `i`; `i64::MIN` timestamps mark absence).
    #[allow(clippy::type_complexity)]
    pub(crate) fn grid_row(
        &mut self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Option<(Rc<Vec<Loaded>>, Rc<Grid>, usize)>, QueryError> {
        let Some((bs, be)) = self.block else {
            return Ok(None);
        };
        if t < bs || t > be || (t - bs) % self.interval != 0 {
            return Ok(None);
        }
        let data = self.load(vs, 0)?;
        let Some(g) = self.grid(vs, &data) else {
            return Ok(None);
        };
        let k = ((t - g.start) / self.interval) as usize;
        Ok(Some((data, g, k)))
    }

    /// Step index of `t` in the current block of a range query, when `t` is
    /// one of its steps and `node` is evaluated only at query steps.
    pub(crate) fn block_step(&self, node: usize, t: i64) -> Option<usize> {
        let (bs, be) = self.block?;
        if t < bs || t > be || (t - bs) % self.interval != 0 || self.in_subquery.contains(&node) {
            return None;
        }
        Some(((t - bs) / self.interval) as usize)
    }

    /// The current block of a range query.
    pub(crate) fn block_bounds(&self) -> Option<(i64, i64)> {
        self.block
    }

    /// Evaluation times of the current block's steps, after `@` and `offset`.
    pub(crate) fn block_times(&self, at: &Option<AtModifier>, offset: i64) -> Vec<i64> {
        let Some((bs, be)) = self.block else {
            return Vec::new();
        };
        let n = ((be - bs) / self.interval + 1) as usize;
        (0..n)
            .map(|k| self.sel_time(at, offset, bs + k as i64 * self.interval))
            .collect()
    }

    /// Step `k` of a block result as an instant vector at `t`.
    pub(crate) fn block_row(
        &mut self,
        bv: &BlockVec,
        k: usize,
        t: i64,
    ) -> Result<Vector, QueryError> {
        for (_, msg, pos) in bv.infos.iter().filter(|x| x.0 == k) {
            self.info(msg, *pos);
        }
        self.add_samples(bv.samples[k])?;
        Ok(bv.cells[bv.offs[k]..bv.offs[k + 1]]
            .iter()
            .map(|&(i, v)| Smp {
                l: bv.labels[i as usize].clone(),
                v,
                t,
                drop_name: bv.drop_name,
            })
            .collect())
    }

    /// For every non-empty series of a selector in label order (as
    /// [`Ev::load`] holds them): `map(labels, samples, has_stale)` computes a
    /// per-series result that `consume` receives, in that order, on this
    /// thread; `consume` returns false to stop early. Series are decoded one
    /// at a time into a reused buffer (unless the selector is already
    /// loaded); for large selectors the second half is decoded and mapped on
    /// a second thread meanwhile.
    pub(crate) fn stream_map<R: Send>(
        &mut self,
        vs: &VectorSelector,
        range: i64,
        map: &(dyn Fn(&Labels, &[(i64, f64)], bool) -> R + Sync),
        consume: &mut dyn FnMut(&Arc<Labels>, R) -> bool,
    ) -> Result<(), QueryError> {
        let key = vs as *const VectorSelector as usize;
        if let Some(d) = self.cache.get(&key).cloned() {
            for s in d.iter() {
                if !consume(&s.l, map(&s.l, &s.pts, s.has_stale)) {
                    break;
                }
            }
            return Ok(());
        }
        let hints = self.hints(key, range);
        let mut series = self
            .querier
            .select(true, Some(&hints), &vs.matchers)
            .map_err(|e| QueryError::Storage(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueryError::Storage(e.to_string()))?;
        series.sort_by(|a, b| a.labels().cmp(b.labels()));
        let parallel = series.len() >= PARALLEL_MIN_SERIES
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let rest = if parallel {
            series.split_off(series.len() / 2)
        } else {
            Vec::new()
        };
        let stop = AtomicBool::new(false);
        let cancel = self.cancel;
        std::thread::scope(|scope| {
            let stop = &stop;
            let worker = (!rest.is_empty()).then(|| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(rest.len());
                    let mut buf = Vec::new();
                    for s in &rest {
                        if stop.load(Ordering::Relaxed)
                            || cancel.is_some_and(|c| c.load(Ordering::Relaxed))
                        {
                            break;
                        }
                        buf.clear();
                        s.iter().drain_into(&mut buf);
                        if buf.is_empty() {
                            continue;
                        }
                        let has_stale = buf.iter().any(|p| is_stale_nan(p.1));
                        out.push((s.labels().clone(), map(s.labels(), &buf, has_stale)));
                    }
                    out
                })
            });
            let mut go = true;
            let mut buf = Vec::new();
            let mut res = Ok(());
            for s in &series {
                if let Err(e) = self.check_interrupt() {
                    res = Err(e);
                    break;
                }
                buf.clear();
                s.iter().drain_into(&mut buf);
                if buf.is_empty() {
                    continue;
                }
                let has_stale = buf.iter().any(|p| is_stale_nan(p.1));
                let r = map(s.labels(), &buf, has_stale);
                if !consume(&Arc::new(s.labels().clone()), r) {
                    go = false;
                    break;
                }
            }
            if res.is_err() || !go {
                stop.store(true, Ordering::Relaxed);
            }
            let out = match worker.map(|w| w.join()) {
                Some(Ok(out)) => out,
                Some(Err(_)) => return err("BUG: query worker thread panicked"),
                None => Vec::new(),
            };
            res?;
            if go {
                for (l, r) in out {
                    self.check_interrupt()?;
                    if !consume(&Arc::new(l), r) {
                        break;
                    }
                }
            }
            Ok(())
        })
    }

    fn hints(&self, key: usize, range: i64) -> SelectHints {
        let (hs, he) = self
            .sel_ranges
            .get(&key)
            .copied()
            .unwrap_or((i64::MIN, i64::MAX));
        SelectHints {
            start: hs,
            end: he,
            step: self.interval,
            range,
            func: None,
            labels_only: false,
        }
    }

    fn eval_vector_selector(&mut self, vs: &VectorSelector, t: i64) -> Result<Vector, QueryError> {
        let data = self.load(vs, 0)?;
        let mut out = Vec::new();
        if let Some((bs, be)) = self.block {
            if t >= bs && t <= be && (t - bs) % self.interval == 0 {
                if let Some(g) = self.grid(vs, &data) {
                    let k = ((t - g.start) / self.interval) as usize;
                    let row = &g.cells[k * g.n..(k + 1) * g.n];
                    for (i, c) in row.iter().enumerate() {
                        if c.0 != i64::MIN {
                            out.push(Smp {
                                l: data[i].l.clone(),
                                v: c.1,
                                t: c.0,
                                drop_name: false,
                            });
                        }
                    }
                    self.add_samples(out.len())?;
                    return Ok(out);
                }
            }
        }
        let te = self.sel_time(&vs.at, vs.offset, t);
        for s in data.iter() {
            let i = s.seek(&s.cur, te);
            if i == 0 {
                continue;
            }
            let (st, v) = s.pts[i - 1];
            if st <= te - self.lookback || is_stale_nan(v) {
                continue;
            }
            out.push(Smp {
                l: s.l.clone(),
                v,
                t: st,
                drop_name: false,
            });
        }
        self.add_samples(out.len())?;
        Ok(out)
    }

    /// Calls `f` for every series of a range-vector expression at `t` with
    /// its samples in the window `(te - range, te]` (stale markers removed).
    /// Returns (range_start, range_end, range) of the window.
    pub(crate) fn for_each_window(
        &mut self,
        e: &Expr,
        t: i64,
        f: &mut dyn FnMut(&mut Ev<'a>, &Arc<Labels>, bool, &[(i64, f64)]) -> Result<(), QueryError>,
    ) -> Result<(i64, i64, i64), QueryError> {
        match e {
            Expr::Paren { expr, .. } => self.for_each_window(expr, t, f),
            Expr::MatrixSelector { vs, range, .. } => {
                let data = self.load(vs, *range)?;
                let te = self.sel_time(&vs.at, vs.offset, t);
                let ts = te.saturating_sub(*range);
                let mut buf: Vec<(i64, f64)> = Vec::new();
                let mut n = 0;
                for s in data.iter() {
                    let lo = s.seek(&s.lo, ts);
                    let hi = s.seek(&s.cur, te);
                    if lo >= hi {
                        continue;
                    }
                    let w = &s.pts[lo..hi];
                    n += w.len();
                    if s.has_stale && w.iter().any(|p| is_stale_nan(p.1)) {
                        buf.clear();
                        buf.extend(w.iter().filter(|p| !is_stale_nan(p.1)));
                        if buf.is_empty() {
                            continue;
                        }
                        f(self, &s.l, false, &buf)?;
                    } else {
                        f(self, &s.l, false, w)?;
                    }
                }
                self.add_samples(n)?;
                Ok((ts, te, *range))
            }
            Expr::Subquery {
                range, offset, at, ..
            } => {
                let te = self.sel_time(at, *offset, t);
                if let Some(sb) = self.subquery_block(e, t)? {
                    debug_assert!((t - sb.bs) % self.interval == 0);
                    let lo = te.saturating_sub(*range);
                    // Series with points in (lo, te], in order of their
                    // first point there (as the step-by-step path builds them).
                    let mut order: Vec<(i64, u32, usize, usize, usize)> = Vec::new();
                    let mut n = 0;
                    for (i, s) in sb.series.iter().enumerate() {
                        // Outer steps move forward: slide the cursors.
                        let a = seek_cursor(&s.pts, &s.lo, lo);
                        let b = seek_cursor(&s.pts, &s.hi, te).max(a);
                        if a < b {
                            n += b - a;
                            order.push((s.pts[a].0, s.pos[a].0, i, a, b));
                        }
                    }
                    self.add_samples(n)?;
                    order.sort_unstable_by_key(|x| (x.0, x.1));
                    for &(_, _, i, a, b) in &order {
                        let s = &sb.series[i];
                        f(self, &s.l, s.pos[a].1, &s.pts[a..b])?;
                    }
                    return Ok((lo, te, *range));
                }
                let m = match self.eval(e, t)? {
                    Val::Matrix(m) => m,
                    _ => return err("BUG: subquery did not return a matrix"),
                };
                for s in &m {
                    f(self, &s.l, s.drop_name, &s.pts)?;
                }
                Ok((te.saturating_sub(*range), te, *range))
            }
            _ => err("BUG: expected a range vector expression"),
        }
    }

    /// The inner values of a subquery at every inner step any window of the
    /// current block needs, evaluated once per block, as series of points
    /// (instead of re-assembling a matrix at every outer step). None when it
    /// does not apply (instant query, `@`, nested, off the block's steps,
    /// non-vector inner expression, too many points).
    fn subquery_block(&mut self, e: &Expr, t: i64) -> Result<Option<Rc<SubqBlock>>, QueryError> {
        let Expr::Subquery {
            expr,
            range,
            step,
            offset,
            at,
            ..
        } = e
        else {
            return Ok(None);
        };
        let node = e as *const Expr as usize;
        if at.is_some()
            || !self.range_query
            || self.block_step(node, t).is_none()
            || expr.value_type() != crate::ast::ValueType::Vector
        {
            return Ok(None);
        }
        if let Some(b) = self.subq_blocks.get(&node) {
            return Ok(b.clone());
        }
        let b = self
            .build_subquery_block(expr, *range, *step, *offset)?
            .map(Rc::new);
        self.subq_blocks.insert(node, b.clone());
        Ok(b)
    }

    fn build_subquery_block(
        &mut self,
        expr: &Expr,
        range: i64,
        step: i64,
        offset: i64,
    ) -> Result<Option<SubqBlock>, QueryError> {
        let Some((bs, _)) = self.block else {
            return Ok(None);
        };
        let step = if step > 0 {
            step
        } else {
            DEFAULT_SUBQUERY_STEP_MS
        };
        let tes = self.block_times(&None, offset);
        // Only steps where the inner expression can have output.
        let spans = self.support(expr)?;
        // Inner steps: the union of every outer window's steps, in order.
        let mut inner: Vec<i64> = Vec::new();
        let mut runs = Vec::new();
        for &te in &tes {
            let lo = te.saturating_sub(range);
            let mut st = step * (lo / step);
            if st <= lo {
                st += step;
            }
            if let Some(&last) = inner.last() {
                if st <= last {
                    st = last.saturating_add(step);
                }
            }
            runs.clear();
            crate::sparse::step_runs(st, te, step, spans.as_deref().map(|v| &v[..]), &mut runs);
            for &(from, to) in &runs {
                let mut ts = from;
                loop {
                    inner.push(ts);
                    match ts.checked_add(step) {
                        Some(n) if n <= to => ts = n,
                        _ => break,
                    }
                }
            }
            if inner.len() > SUBQUERY_CACHE_SAMPLES {
                return Ok(None);
            }
        }
        let mut index = SeriesIndex::default();
        let mut series: Vec<SubqSeries> = Vec::new();
        let mut total = 0usize;
        for &ts in &inner {
            self.check_interrupt()?;
            let Val::Vector(vec) = self.eval(expr, ts)? else {
                return err("BUG: subquery inner expression must be a vector");
            };
            total += vec.len();
            if total > SUBQUERY_CACHE_SAMPLES {
                return Ok(None);
            }
            for (pos, s) in vec.into_iter().enumerate() {
                let i = index.find_or_push(
                    &mut series,
                    &s.l,
                    |o| &o.l,
                    || SubqSeries {
                        l: s.l.clone(),
                        pts: Vec::new(),
                        pos: Vec::new(),
                        lo: Default::default(),
                        hi: Default::default(),
                    },
                );
                let se = &mut series[i];
                se.pts.push((ts, s.v));
                se.pos.push((pos as u32, s.drop_name));
            }
        }
        Ok(Some(SubqBlock { bs, series }))
    }

    /// (range_start, range_end, range) of a range-vector expression at `t`.
    pub(crate) fn window_bounds(&self, e: &Expr, t: i64) -> Result<(i64, i64, i64), QueryError> {
        match e {
            Expr::Paren { expr, .. } => self.window_bounds(expr, t),
            Expr::MatrixSelector { vs, range, .. } => {
                let te = self.sel_time(&vs.at, vs.offset, t);
                Ok((te.saturating_sub(*range), te, *range))
            }
            Expr::Subquery {
                range, offset, at, ..
            } => {
                let te = self.sel_time(at, *offset, t);
                Ok((te.saturating_sub(*range), te, *range))
            }
            _ => err("BUG: expected a range vector expression"),
        }
    }

    /// Evaluates `e` at step time `t`.
    pub(crate) fn eval(&mut self, e: &Expr, t: i64) -> Result<Val, QueryError> {
        let key = e as *const Expr as usize;
        if self.range_query && self.invariant.contains(&key) {
            if let Some(v) = self.inv_cache.get(&key) {
                return Ok(v.clone());
            }
            let v = self.eval_inner(e, t)?;
            self.inv_cache.insert(key, v.clone());
            return Ok(v);
        }
        self.eval_inner(e, t)
    }

    fn eval_inner(&mut self, e: &Expr, t: i64) -> Result<Val, QueryError> {
        match e {
            Expr::Number { val, .. } => Ok(Val::Scalar(*val)),
            Expr::String { val, .. } => Ok(Val::Str(val.clone())),
            Expr::Paren { expr, .. } => self.eval(expr, t),
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.eval_vector_selector(vs, t)?)),
            Expr::MatrixSelector { .. } => {
                let mut out = Vec::new();
                self.for_each_window(e, t, &mut |_, l, dn, w| {
                    out.push(MSeries {
                        l: l.clone(),
                        pts: w.to_vec(),
                        drop_name: dn,
                    });
                    Ok(())
                })?;
                Ok(Val::Matrix(out))
            }
            Expr::Subquery {
                expr,
                range,
                step,
                offset,
                at,
                ..
            } => {
                let te = self.sel_time(at, *offset, t);
                let step = if *step > 0 {
                    *step
                } else {
                    DEFAULT_SUBQUERY_STEP_MS
                };
                let lo = te.saturating_sub(*range);
                // First step-aligned timestamp strictly after `lo` (Go truncating division).
                let mut st = step * (lo / step);
                if st <= lo {
                    st += step;
                }
                // Output series by label hash (verified; a colliding label set
                // is found by a scan instead).
                let mut index = SeriesIndex::default();
                let mut out: Vec<MSeries> = Vec::new();
                let key = &**expr as *const Expr as usize;
                // Only the inner steps where the inner expression can have
                // output (all of them when that is not known).
                let spans = if expr.value_type() == crate::ast::ValueType::Vector {
                    self.support(expr)?
                } else {
                    None
                };
                let mut runs = Vec::new();
                crate::sparse::step_runs(st, te, step, spans.as_deref().map(|v| &v[..]), &mut runs);
                // Inner steps are shared between outer steps only in range
                // queries and nested subqueries.
                let memo =
                    self.range_query || self.in_subquery.contains(&(e as *const Expr as usize));
                for (from, to) in runs {
                    let mut ts = from;
                    loop {
                        self.check_interrupt()?;
                        let v = match self.subq_cache.get(&(key, ts)) {
                            Some(v) => v.clone(),
                            None => {
                                let v = Rc::new(self.eval(expr, ts)?);
                                // Each entry counts, empty or not.
                                let n = match &*v {
                                    Val::Vector(v) => v.len() + 1,
                                    _ => 1,
                                };
                                if memo && self.subq_cached_samples + n <= SUBQUERY_CACHE_SAMPLES {
                                    self.subq_cached_samples += n;
                                    self.subq_cache.insert((key, ts), v.clone());
                                }
                                v
                            }
                        };
                        match &*v {
                            &Val::Scalar(v) => {
                                if out.is_empty() {
                                    out.push(MSeries {
                                        l: Arc::new(Labels::empty()),
                                        pts: vec![],
                                        drop_name: false,
                                    });
                                }
                                out[0].pts.push((ts, v));
                                self.add_samples(1)?;
                            }
                            Val::Vector(vec) => {
                                self.add_samples(vec.len())?;
                                for s in vec.iter() {
                                    let i = index.find_or_push(
                                        &mut out,
                                        &s.l,
                                        |o| &o.l,
                                        || MSeries {
                                            l: s.l.clone(),
                                            pts: vec![],
                                            drop_name: s.drop_name,
                                        },
                                    );
                                    out[i].pts.push((ts, s.v));
                                }
                            }
                            _ => return err("BUG: subquery inner expression must be a vector"),
                        }
                        match ts.checked_add(step) {
                            Some(n) if n <= to => ts = n,
                            _ => break,
                        }
                    }
                }
                Ok(Val::Matrix(out))
            }
            Expr::Unary { neg, expr, .. } => {
                let v = self.eval(expr, t)?;
                if !*neg {
                    return Ok(v);
                }
                Ok(match v {
                    Val::Scalar(v) => Val::Scalar(-v),
                    Val::Vector(mut vec) => {
                        for s in vec.iter_mut() {
                            s.v = -s.v;
                            s.drop_name = true;
                        }
                        Val::Vector(vec)
                    }
                    other => other,
                })
            }
            Expr::Binary { .. } => crate::binary::eval_binary(self, e, t),
            Expr::Call { .. } => crate::functions::eval_call(self, e, t),
            Expr::Aggregate { .. } => crate::aggregations::eval_aggregate(self, e, t),
        }
    }

    pub(crate) fn eval_vector(&mut self, e: &Expr, t: i64) -> Result<Vector, QueryError> {
        match self.eval(e, t)? {
            Val::Vector(v) => Ok(v),
            _ => err("BUG: expected an instant vector"),
        }
    }

    pub(crate) fn eval_scalar(&mut self, e: &Expr, t: i64) -> Result<f64, QueryError> {
        match self.eval(e, t)? {
            Val::Scalar(v) => Ok(v),
            _ => err("BUG: expected a scalar"),
        }
    }
}

/// Removes names marked for dropping and rejects duplicate label sets.
fn finalize_vector(vec: Vector) -> Result<Vec<(Labels, Smp)>, QueryError> {
    let mut out = Vec::with_capacity(vec.len());
    let any_drop = vec.iter().any(|s| s.drop_name);
    for s in vec {
        let l = if s.drop_name && s.l.has(METRIC_NAME) {
            s.l.without_metric_name()
        } else {
            (*s.l).clone()
        };
        out.push((l, s));
    }
    if any_drop {
        let mut seen: std::collections::HashSet<&Labels> =
            std::collections::HashSet::with_capacity(out.len());
        for (l, _) in &out {
            if !seen.insert(l) {
                return err("vector cannot contain metrics with the same labelset");
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
