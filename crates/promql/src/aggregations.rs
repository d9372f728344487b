//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `limitk`, ...).

use crate::ast::{AggOp, Expr, VectorSelector};
use crate::engine::{err, BlockVec, Ev, FastMap, QueryError, Smp, Val, Vector};
use crate::functions::{kahan_inc, quantile};
use koban_model::{is_stale_nan, Label, Labels, METRIC_NAME};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

struct Group {
    labels: Arc<Labels>,
    v: f64,
    c: f64,
    mean: f64,
    count: f64,
    incremental: bool,
    vals: Vec<usize>,
    drop_name: bool,
}

fn group_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        Labels::from_sorted_unchecked(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !grouping.contains(&x.name))
                .cloned()
                .collect(),
        )
    } else {
        Labels::from_sorted_unchecked(
            l.iter()
                .filter(|x| grouping.contains(&x.name))
                .cloned()
                .collect(),
        )
    }
}

/// Adds `v` to a group that already holds at least one value (every
/// operator but the `k`/quantile/count_values ones).
#[inline]
fn accumulate(g: &mut Group, op: AggOp, v: f64) {
    g.count += 1.0;
    match op {
        AggOp::Sum => {
            let (a, b) = kahan_inc(v, g.v, g.c);
            g.v = a;
            g.c = b;
        }
        AggOp::Avg => {
            if !g.incremental {
                let (ns, nc) = kahan_inc(v, g.v, g.c);
                if !ns.is_infinite() {
                    g.v = ns;
                    g.c = nc;
                    return;
                }
                g.incremental = true;
                g.mean = g.v / (g.count - 1.0);
                g.c /= g.count - 1.0;
            }
            let q = (g.count - 1.0) / g.count;
            let (m, c) = kahan_inc(v / g.count, q * g.mean, q * g.c);
            g.mean = m;
            g.c = c;
        }
        AggOp::Min => {
            if g.v > v || g.v.is_nan() {
                g.v = v;
            }
        }
        AggOp::Max => {
            if g.v < v || g.v.is_nan() {
                g.v = v;
            }
        }
        AggOp::Stddev | AggOp::Stdvar => {
            let delta = v - g.mean;
            g.mean += delta / g.count;
            g.v += delta * (v - g.mean);
        }
        _ => {}
    }
}

/// A group holding its first value `v`.
fn new_group(labels: Arc<Labels>, op: AggOp, v: f64, si: usize, drop_name: bool) -> Group {
    let mut g = Group {
        labels,
        v,
        c: 0.0,
        mean: v,
        count: 1.0,
        incremental: false,
        vals: if op == AggOp::Quantile {
            vec![si]
        } else {
            Vec::new()
        },
        drop_name,
    };
    if op == AggOp::Group {
        g.v = 1.0;
    }
    if matches!(op, AggOp::Stddev | AggOp::Stdvar) {
        g.v = if v.is_finite() { 0.0 } else { f64::NAN };
    }
    g
}

/// The final value of a group (not for quantile).
#[inline]
fn finish(g: &Group, op: AggOp) -> f64 {
    match op {
        AggOp::Sum => g.v + g.c,
        AggOp::Avg => {
            if g.incremental {
                g.mean + g.c
            } else {
                g.v / g.count + g.c / g.count
            }
        }
        AggOp::Count => g.count,
        AggOp::Min | AggOp::Max | AggOp::Group => g.v,
        AggOp::Stdvar => g.v / g.count,
        AggOp::Stddev => (g.v / g.count).sqrt(),
        _ => f64::NAN,
    }
}

fn group_key(l: &Labels, grouping: &[String], without: bool) -> u64 {
    if without {
        l.hash_without_labels(grouping)
    } else {
        l.hash_for_labels(grouping)
    }
}

/// Prometheus's `labels.Hash` (xxhash64 of name\xffvalue\xff...), used by `limit_ratio`.
fn prom_hash(l: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(128);
    for x in l.iter() {
        buf.extend_from_slice(x.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(x.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

pub(crate) fn eval_aggregate(ev: &mut Ev<'_>, e: &Expr, t: i64) -> Result<Val, QueryError> {
    let Expr::Aggregate {
        op,
        expr,
        param,
        grouping,
        without,
        ..
    } = e
    else {
        return err("BUG: not an aggregation");
    };
    let op = *op;
    let mut pnum = f64::NAN;
    let mut pstr = String::new();
    if let Some(p) = param {
        match ev.eval(p, t)? {
            Val::Scalar(v) => pnum = v,
            Val::Str(s) => pstr = s,
            _ => return err("BUG: bad aggregation parameter"),
        }
    }
    if matches!(
        op,
        AggOp::Sum
            | AggOp::Avg
            | AggOp::Count
            | AggOp::Min
            | AggOp::Max
            | AggOp::Group
            | AggOp::Stddev
            | AggOp::Stdvar
    ) {
        if let Expr::VectorSelector(vs) = unparen(expr) {
            if let Some(v) = block_aggregate(ev, e, op, vs, grouping, *without, t)? {
                return Ok(Val::Vector(v));
            }
            if let Some(v) = grid_aggregate(ev, e, op, vs, grouping, *without, t)? {
                return Ok(Val::Vector(v));
            }
        }
        if let Some(v) = block_aggregate_input(ev, e, op, unparen(expr), grouping, *without, t)? {
            return Ok(Val::Vector(v));
        }
    }
    let input = ev.eval_vector(expr, t)?;
    match op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk => {
            if pnum.is_nan() {
                return err("Parameter value is NaN");
            }
        }
        AggOp::LimitRatio => {
            if pnum.is_nan() {
                return err("Ratio value is NaN");
            }
        }
        AggOp::Quantile => {
            if !(0.0..=1.0).contains(&pnum) {
                let pp = param.as_ref().map(|p| p.pos()).unwrap_or_default();
                ev.warn(
                    &format!(
                        "quantile value should be between 0 and 1, got {}",
                        crate::functions::fmt_g(pnum)
                    ),
                    pp,
                );
            }
        }
        AggOp::CountValues => {
            if pstr.is_empty() || pstr.contains('\0') {
                return err(format!("invalid label name {}", crate::ast::quote(&pstr)));
            }
        }
        _ => {}
    }
    if input.is_empty() {
        return Ok(Val::Vector(Vec::new()));
    }
    match op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio => {
            return Ok(Val::Vector(select_k(
                ev, op, pnum, input, grouping, *without, e,
            )?));
        }
        AggOp::CountValues => {
            return Ok(Val::Vector(count_values(&pstr, input, grouping, *without)))
        }
        _ => {}
    }
    let mut idx: FastMap<u64, usize> = FastMap::default();
    let mut groups: Vec<Group> = Vec::new();
    for (si, s) in input.iter().enumerate() {
        // Input label sets are mostly shared between steps: remember their
        // group key by pointer (the cache holds the Arc, so the pointer
        // cannot be reused for another label set).
        let node = e as *const Expr as usize;
        let pk = (node, Arc::as_ptr(&s.l) as usize);
        let k = match ev.key_cache.get(&pk) {
            Some((_, k)) => *k,
            None => {
                let k = group_key(&s.l, grouping, *without);
                if ev.key_cache.len() < 2_000_000 {
                    ev.key_cache.insert(pk, (s.l.clone(), k));
                }
                k
            }
        };
        let gi = match idx.get(&k) {
            Some(&g) => g,
            None => {
                // Group label sets are shared between steps (cheaper
                // range-query assembly and no per-step allocation).
                let ck = (e as *const Expr as usize, k);
                let labels = match ev.group_cache.get(&ck) {
                    Some(l) => l.clone(),
                    None => {
                        let l = Arc::new(group_labels(&s.l, grouping, *without));
                        if ev.group_cache.len() < 1_000_000 {
                            ev.group_cache.insert(ck, l.clone());
                        }
                        l
                    }
                };
                groups.push(new_group(labels, op, s.v, si, s.drop_name));
                idx.insert(k, groups.len() - 1);
                continue;
            }
        };
        let g = &mut groups[gi];
        g.drop_name |= s.drop_name;
        if op == AggOp::Quantile {
            g.count += 1.0;
            g.vals.push(si);
        } else {
            accumulate(g, op, s.v);
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let v = match op {
            AggOp::Quantile => {
                let mut vals: Vec<f64> = g.vals.iter().map(|&i| input[i].v).collect();
                quantile(pnum, &mut vals)
            }
            _ => finish(&g, op),
        };
        let dn = g.drop_name && !*without && grouping.iter().any(|x| x == METRIC_NAME);
        out.push(Smp {
            l: g.labels,
            v,
            t,
            drop_name: dn,
        });
    }
    Ok(Val::Vector(out))
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren { expr, .. } => unparen(expr),
        e => e,
    }
}

/// Largest number of (group, step) accumulators of one block aggregation.
const MAX_BLOCK_GROUP_CELLS: usize = 1_000_000;

/// A simple aggregation of an instant selector at a step of a range query,
/// computed for the whole block at once series by series: each series is
/// decoded once, its value at every step goes straight into that step's
/// group accumulator, and no raw samples or step grid are kept. Within a
/// (group, step) values arrive in series order, as in the step-by-step
/// path, so results are identical. None when it does not apply.
fn block_aggregate(
    ev: &mut Ev<'_>,
    e: &Expr,
    op: AggOp,
    vs: &VectorSelector,
    grouping: &[String],
    without: bool,
    t: i64,
) -> Result<Option<Vector>, QueryError> {
    let node = e as *const Expr as usize;
    let Some(k) = ev.block_step(node, t) else {
        return Ok(None);
    };
    let bv = match ev.block_vecs.get(&node) {
        Some(b) => b.clone(),
        None => {
            let b = build_block_aggregate(ev, node, op, vs, grouping, without)?.map(Rc::new);
            ev.block_vecs.insert(node, b.clone());
            b
        }
    };
    match bv {
        Some(bv) => Ok(Some(ev.block_row(&bv, k, t)?)),
        None => Ok(None),
    }
}

/// A simple aggregation of a range function's whole-block result (see
/// `functions::block_input`), aggregated for the whole block at once: the
/// same groups, order and values as the step path, without per-step
/// vectors or group-key lookups.
fn block_aggregate_input(
    ev: &mut Ev<'_>,
    e: &Expr,
    op: AggOp,
    input: &Expr,
    grouping: &[String],
    without: bool,
    t: i64,
) -> Result<Option<Vector>, QueryError> {
    let node = e as *const Expr as usize;
    let Some(k) = ev.block_step(node, t) else {
        return Ok(None);
    };
    if let Some(b) = ev.block_vecs.get(&node) {
        return match b.clone() {
            Some(bv) => Ok(Some(ev.block_row(&bv, k, t)?)),
            None => Ok(None),
        };
    }
    let Some((inb, _)) = crate::functions::block_input(ev, input, t)? else {
        ev.block_vecs.insert(node, None);
        return Ok(None);
    };
    let mut idx: FastMap<u64, u32> = FastMap::default();
    let mut labels: Vec<Arc<Labels>> = Vec::new();
    let mut group_of = Vec::with_capacity(inb.labels.len());
    for l in &inb.labels {
        let key = group_key(l, grouping, without);
        let g = match idx.get(&key) {
            Some(&g) => g,
            None => {
                let ck = (node, key);
                let gl = match ev.group_cache.get(&ck) {
                    Some(gl) => gl.clone(),
                    None => {
                        let gl = Arc::new(group_labels(l, grouping, without));
                        if ev.group_cache.len() < 1_000_000 {
                            ev.group_cache.insert(ck, gl.clone());
                        }
                        gl
                    }
                };
                labels.push(gl);
                let g = (labels.len() - 1) as u32;
                idx.insert(key, g);
                g
            }
        };
        group_of.push(g);
    }
    let ns = inb.offs.len() - 1;
    let dummy = Arc::new(Labels::empty());
    let mut slot = vec![u32::MAX; labels.len()];
    let mut groups: Vec<(u32, Group)> = Vec::new();
    let mut cells = Vec::new();
    let mut offs = Vec::with_capacity(ns + 1);
    for kk in 0..ns {
        offs.push(cells.len());
        groups.clear();
        for &(i, v) in &inb.cells[inb.offs[kk]..inb.offs[kk + 1]] {
            let g = group_of[i as usize];
            match slot[g as usize] {
                u32::MAX => {
                    slot[g as usize] = groups.len() as u32;
                    groups.push((g, new_group(dummy.clone(), op, v, 0, inb.drop_name)));
                }
                si => accumulate(&mut groups[si as usize].1, op, v),
            }
        }
        for (g, grp) in &groups {
            slot[*g as usize] = u32::MAX;
            cells.push((*g, finish(grp, op)));
        }
    }
    offs.push(cells.len());
    let bv = Rc::new(BlockVec {
        labels,
        cells,
        offs,
        samples: inb.samples.clone(),
        infos: inb.infos.clone(),
        drop_name: inb.drop_name && !without && grouping.iter().any(|x| x == METRIC_NAME),
    });
    ev.block_vecs.insert(node, Some(bv.clone()));
    Ok(Some(ev.block_row(&bv, k, t)?))
}

fn build_block_aggregate(
    ev: &mut Ev<'_>,
    node: usize,
    op: AggOp,
    vs: &VectorSelector,
    grouping: &[String],
    without: bool,
) -> Result<Option<BlockVec>, QueryError> {
    let tes = ev.block_times(&vs.at, vs.offset);
    let ns = tes.len();
    let lookback = ev.lookback;
    let mut idx: FastMap<u64, u32> = FastMap::default();
    let mut keys: Vec<u64> = Vec::new();
    let mut glabels: Vec<Labels> = Vec::new();
    // acc[g * ns + k]: (first series, accumulator) of group g at step k.
    let mut acc: Vec<Option<(u32, Group)>> = Vec::new();
    let mut samples = vec![0usize; ns];
    let dummy = Arc::new(Labels::empty());
    let mut si = 0u32;
    let mut too_big = false;
    // The value of one series at every step where it has one.
    let values = |_: &Labels, pts: &[(i64, f64)], _: bool| -> Vec<(u32, f64)> {
        let mut out = Vec::with_capacity(ns);
        let mut c = 0usize;
        for (k, &te) in tes.iter().enumerate() {
            if c > 0 && pts[c - 1].0 > te {
                c = pts.partition_point(|p| p.0 <= te);
            }
            while c < pts.len() && pts[c].0 <= te {
                c += 1;
            }
            if c == 0 {
                continue;
            }
            let (st, v) = pts[c - 1];
            if st <= te.saturating_sub(lookback) || is_stale_nan(v) {
                continue;
            }
            out.push((k as u32, v));
        }
        out
    };
    ev.stream_map(vs, 0, &values, &mut |l, vals| {
        let key = group_key(l, grouping, without);
        let g = match idx.get(&key) {
            Some(&g) => g,
            None => {
                if (keys.len() + 1) * ns > MAX_BLOCK_GROUP_CELLS {
                    too_big = true;
                    return false;
                }
                keys.push(key);
                glabels.push(group_labels(l, grouping, without));
                acc.resize_with(keys.len() * ns, || None);
                let g = (keys.len() - 1) as u32;
                idx.insert(key, g);
                g
            }
        };
        let cells = &mut acc[g as usize * ns..(g as usize + 1) * ns];
        for (k, v) in vals {
            samples[k as usize] += 1;
            match &mut cells[k as usize] {
                Some((_, grp)) => accumulate(grp, op, v),
                slot => *slot = Some((si, new_group(dummy.clone(), op, v, 0, false))),
            }
        }
        si += 1;
        true
    })?;
    if too_big {
        return Ok(None);
    }
    let mut labels = Vec::with_capacity(keys.len());
    for (key, l) in keys.iter().zip(glabels) {
        let ck = (node, *key);
        let l = match ev.group_cache.get(&ck) {
            Some(l) => l.clone(),
            None => {
                let l = Arc::new(l);
                if ev.group_cache.len() < 1_000_000 {
                    ev.group_cache.insert(ck, l.clone());
                }
                l
            }
        };
        labels.push(l);
    }
    let ng = keys.len();
    let mut cells = Vec::new();
    let mut offs = Vec::with_capacity(ns + 1);
    let mut row: Vec<(u32, u32, f64)> = Vec::new();
    for k in 0..ns {
        offs.push(cells.len());
        row.clear();
        for g in 0..ng {
            if let Some((first, grp)) = &acc[g * ns + k] {
                row.push((*first, g as u32, finish(grp, op)));
            }
        }
        // Groups in order of their first series, as the step path.
        row.sort_unstable_by_key(|x| x.0);
        cells.extend(row.iter().map(|&(_, g, v)| (g, v)));
    }
    offs.push(cells.len());
    Ok(Some(BlockVec {
        labels,
        cells,
        offs,
        samples,
        infos: Vec::new(),
        drop_name: false,
    }))
}

/// Which group each series of a selector falls in, and the groups' label
/// sets (shared with the general path through `group_cache`).
pub(crate) struct AggMap {
    group_of: Vec<u32>,
    labels: Vec<Arc<Labels>>,
}

/// A simple aggregation of an instant selector read straight from the
/// selector's step grid: no per-step sample vector, no hashing. Gives the
/// same values and group order as the general path. None when no grid
/// applies at `t`.
fn grid_aggregate(
    ev: &mut Ev<'_>,
    e: &Expr,
    op: AggOp,
    vs: &VectorSelector,
    grouping: &[String],
    without: bool,
    t: i64,
) -> Result<Option<Vector>, QueryError> {
    let Some((data, grid, k)) = ev.grid_row(vs, t)? else {
        return Ok(None);
    };
    let node = e as *const Expr as usize;
    let map = match ev.agg_maps.get(&node) {
        Some(m) => m.clone(),
        None => {
            let mut idx: FastMap<u64, u32> = FastMap::default();
            let mut map = AggMap {
                group_of: Vec::with_capacity(data.len()),
                labels: Vec::new(),
            };
            for s in data.iter() {
                let k = group_key(&s.l, grouping, without);
                let gi = match idx.get(&k) {
                    Some(&g) => g,
                    None => {
                        let ck = (node, k);
                        let labels = match ev.group_cache.get(&ck) {
                            Some(l) => l.clone(),
                            None => {
                                let l = Arc::new(group_labels(&s.l, grouping, without));
                                if ev.group_cache.len() < 1_000_000 {
                                    ev.group_cache.insert(ck, l.clone());
                                }
                                l
                            }
                        };
                        map.labels.push(labels);
                        let g = (map.labels.len() - 1) as u32;
                        idx.insert(k, g);
                        g
                    }
                };
                map.group_of.push(gi);
            }
            let m = Rc::new(map);
            ev.agg_maps.insert(node, m.clone());
            m
        }
    };
    let row = grid.row(k);
    let mut slot = vec![u32::MAX; map.labels.len()];
    let mut groups: Vec<Group> = Vec::new();
    let mut n = 0;
    for (i, c) in row.iter().enumerate() {
        if c.0 == i64::MIN {
            continue;
        }
        n += 1;
        let gi = map.group_of[i] as usize;
        match slot[gi] {
            u32::MAX => {
                slot[gi] = groups.len() as u32;
                groups.push(new_group(map.labels[gi].clone(), op, c.1, i, false));
            }
            s => accumulate(&mut groups[s as usize], op, c.1),
        }
    }
    ev.add_samples(n)?;
    Ok(Some(
        groups
            .iter()
            .map(|g| Smp {
                l: g.labels.clone(),
                v: finish(g, op),
                t,
                drop_name: false,
            })
            .collect(),
    ))
}

fn count_values(label: &str, input: Vector, grouping: &[String], without: bool) -> Vector {
    let mut idx: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vector = Vec::new();
    for s in input {
        let base = group_labels(&s.l, grouping, without);
        let mut v: Vec<Label> = base.into_vec();
        v.retain(|x| x.name != label);
        v.push(Label::new(label, crate::ast::format_number(s.v)));
        let l = Labels::from_vec(v);
        match idx.get(&l) {
            Some(&i) => out[i].v += 1.0,
            None => {
                idx.insert(l.clone(), out.len());
                out.push(Smp {
                    l: Arc::new(l),
                    v: 1.0,
                    t: s.t,
                    drop_name: false,
                });
            }
        }
    }
    out
}

fn select_k(
    ev: &mut Ev<'_>,
    op: AggOp,
    p: f64,
    input: Vector,
    grouping: &[String],
    without: bool,
    e: &Expr,
) -> Result<Vector, QueryError> {
    let mut idx: FastMap<u64, usize> = FastMap::default();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, s) in input.iter().enumerate() {
        let k = group_key(&s.l, grouping, without);
        match idx.get(&k) {
            Some(&g) => groups[g].push(i),
            None => {
                idx.insert(k, groups.len());
                groups.push(vec![i]);
            }
        }
    }
    let mut out = Vec::new();
    match op {
        AggOp::LimitRatio => {
            let mut r = p;
            if !(-1.0..=1.0).contains(&r) {
                let capped = r.clamp(-1.0, 1.0);
                let pp = match e {
                    Expr::Aggregate { param: Some(p), .. } => p.pos(),
                    _ => e.pos(),
                };
                ev.warn(
                    &format!(
                        "ratio value should be between -1 and 1, got {}, capping to {}",
                        crate::functions::fmt_g(r),
                        crate::functions::fmt_g(capped)
                    ),
                    pp,
                );
                r = capped;
            }
            for g in groups {
                for i in g {
                    let off = prom_hash(&input[i].l) as f64 / u64::MAX as f64;
                    let keep = if r >= 0.0 { off < r } else { off >= 1.0 + r };
                    if keep {
                        out.push(input[i].clone());
                    }
                }
            }
        }
        _ => {
            if p < 1.0 {
                return Ok(Vec::new());
            }
            let k = if p >= input.len() as f64 {
                input.len()
            } else {
                p as usize
            };
            for mut g in groups {
                match op {
                    AggOp::Topk => {
                        g.sort_by(|&a, &b| {
                            let (x, y) = (input[a].v, input[b].v);
                            // Larger first; NaN last.
                            match (x.is_nan(), y.is_nan()) {
                                (true, true) => std::cmp::Ordering::Equal,
                                (true, false) => std::cmp::Ordering::Greater,
                                (false, true) => std::cmp::Ordering::Less,
                                _ => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                            }
                        });
                    }
                    AggOp::Bottomk => {
                        g.sort_by(|&a, &b| {
                            let (x, y) = (input[a].v, input[b].v);
                            match (x.is_nan(), y.is_nan()) {
                                (true, true) => std::cmp::Ordering::Equal,
                                (true, false) => std::cmp::Ordering::Greater,
                                (false, true) => std::cmp::Ordering::Less,
                                _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                            }
                        });
                    }
                    _ => {}
                }
                for &i in g.iter().take(k) {
                    out.push(input[i].clone());
                }
            }
        }
    }
    Ok(out)
}
