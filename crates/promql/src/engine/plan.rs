//! Planning before evaluation: which subtrees are step-invariant, which sit
//! under a subquery, and the time range each selector must load. Called
//! once per query (and per range-query block) by [`super::Engine::exec`]
//! and the block evaluator; pure functions of the syntax tree.

use super::{FastMap, FastSet, TIME_DEPENDENT};
use crate::ast::{AtModifier, Expr, VectorSelector};

/// Returns (step invariant, contains a selector); records the largest
/// invariant subtrees that read data into `out`.
pub(super) fn mark_invariant(e: &Expr, out: &mut FastSet<usize>) -> (bool, bool) {
    let (inv, sel) = match e {
        Expr::Number { .. } | Expr::String { .. } => (true, false),
        Expr::VectorSelector(vs) | Expr::MatrixSelector { vs, .. } => (vs.at.is_some(), true),
        Expr::Subquery { expr, at, .. } => {
            let (_, s) = mark_invariant(expr, out);
            (at.is_some(), s)
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => mark_invariant(expr, out),
        Expr::Binary { lhs, rhs, .. } => {
            let (a, b) = (mark_invariant(lhs, out), mark_invariant(rhs, out));
            (a.0 && b.0, a.1 || b.1)
        }
        Expr::Call { func, args, .. } => {
            let mut inv = !TIME_DEPENDENT.contains(&func.name)
                && !matches!(func.name, "step" | "range" | "start" | "end");
            let mut sel = false;
            for a in args {
                let (i, s) = mark_invariant(a, out);
                inv &= i;
                sel |= s;
            }
            (inv, sel)
        }
        Expr::Aggregate { expr, param, .. } => {
            let mut r = mark_invariant(expr, out);
            if let Some(p) = param {
                let q = mark_invariant(p, out);
                r = (r.0 && q.0, r.1 || q.1);
            }
            r
        }
    };
    if inv
        && sel
        && !matches!(
            e,
            Expr::VectorSelector(_) | Expr::MatrixSelector { .. } | Expr::Paren { .. }
        )
    {
        // Children are covered by this node's cache.
        out.insert(e as *const Expr as usize);
    }
    (inv, sel)
}

/// Records the addresses of the nodes under a subquery into `out`.
pub(super) fn mark_in_subquery(e: &Expr, under: bool, out: &mut FastSet<usize>) {
    if under {
        out.insert(e as *const Expr as usize);
    }
    match e {
        Expr::Subquery { expr, .. } => mark_in_subquery(expr, true, out),
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => mark_in_subquery(expr, under, out),
        Expr::Binary { lhs, rhs, .. } => {
            mark_in_subquery(lhs, under, out);
            mark_in_subquery(rhs, under, out);
        }
        Expr::Call { args, .. } => {
            for a in args {
                mark_in_subquery(a, under, out);
            }
        }
        Expr::Aggregate { expr, param, .. } => {
            mark_in_subquery(expr, under, out);
            if let Some(p) = param {
                mark_in_subquery(p, under, out);
            }
        }
        _ => {}
    }
}

/// Computes the closed time range `[mint, maxt]` the query reads.
/// Time ranges read by the whole query and by each selector (keyed by node address).
pub(super) struct MinMax {
    pub(super) all: (i64, i64),
    pub(super) per: FastMap<usize, (i64, i64)>,
}

/// Time ranges to select for evaluation steps in `[start, end]` of a query
/// spanning `[qs, qe]` (`@ start()`/`@ end()` resolve against the query).
pub(super) fn find_min_max(
    e: &Expr,
    start: i64,
    end: i64,
    qs: i64,
    qe: i64,
    lookback: i64,
) -> MinMax {
    let mut mm = MinMax {
        all: (i64::MAX, i64::MIN),
        per: FastMap::default(),
    };
    walk_times(e, start, end, qs, qe, lookback, &mut mm);
    if mm.all.0 > mm.all.1 {
        mm.all = (start, end);
    }
    mm
}

pub(super) fn at_time(at: &Option<AtModifier>, qs: i64, qe: i64) -> Option<i64> {
    match at {
        Some(AtModifier::Timestamp(t)) => Some(*t),
        Some(AtModifier::Start) => Some(qs),
        Some(AtModifier::End) => Some(qe),
        None => None,
    }
}

fn walk_times(e: &Expr, lo: i64, hi: i64, qs: i64, qe: i64, lookback: i64, mm: &mut MinMax) {
    let sel = |vs: &VectorSelector, range: i64, mm: &mut MinMax| {
        let (a, b) = match at_time(&vs.at, qs, qe) {
            Some(t) => (t, t),
            None => (lo, hi),
        };
        let w = if range > 0 { range } else { lookback };
        let lo = a.saturating_sub(vs.offset).saturating_sub(w);
        let hi = b.saturating_sub(vs.offset);
        mm.all.0 = mm.all.0.min(lo);
        mm.all.1 = mm.all.1.max(hi);
        let e = mm
            .per
            .entry(vs as *const VectorSelector as usize)
            .or_insert((i64::MAX, i64::MIN));
        e.0 = e.0.min(lo);
        e.1 = e.1.max(hi);
    };
    match e {
        Expr::VectorSelector(vs) => sel(vs, 0, mm),
        Expr::MatrixSelector { vs, range, .. } => sel(vs, *range, mm),
        Expr::Subquery {
            expr,
            range,
            offset,
            at,
            ..
        } => {
            let (a, b) = match at_time(at, qs, qe) {
                Some(t) => (t, t),
                None => (lo, hi),
            };
            walk_times(
                expr,
                a.saturating_sub(*offset).saturating_sub(*range),
                b.saturating_sub(*offset),
                qs,
                qe,
                lookback,
                mm,
            )
        }
        Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => {
            walk_times(expr, lo, hi, qs, qe, lookback, mm)
        }
        Expr::Binary { lhs, rhs, .. } => {
            walk_times(lhs, lo, hi, qs, qe, lookback, mm);
            walk_times(rhs, lo, hi, qs, qe, lookback, mm);
        }
        Expr::Call { args, .. } => {
            for a in args {
                walk_times(a, lo, hi, qs, qe, lookback, mm);
            }
        }
        Expr::Aggregate { expr, param, .. } => {
            walk_times(expr, lo, hi, qs, qe, lookback, mm);
            if let Some(p) = param {
                walk_times(p, lo, hi, qs, qe, lookback, mm);
            }
        }
        Expr::Number { .. } | Expr::String { .. } => {}
    }
}
