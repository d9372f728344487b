//! Where an expression can have output: the evaluation times at which a
//! subquery's inner expression may return a non-empty vector, derived from
//! the sample timestamps of its selectors. A subquery then evaluates only
//! the inner steps inside those spans, so its work and memory follow the
//! samples it reads instead of its step count (`x[1y:1s]` over a few
//! minutes of data evaluates a few hundred steps, not 31 million).
//!
//! The spans over-approximate: a step inside them may still give an empty
//! vector, but a step outside them always does. Expressions that produce
//! output without data (`vector()`, `absent()`, `time()`-only expressions,
//! `@`-pinned selectors, ...) have no spans ("everywhere") and are stepped
//! in full, bounded by `--query.max-samples` and the timeout.

use crate::ast::{BinOp, Expr, ValueType, VectorSelector};
use crate::engine::{Ev, QueryError};
use koban_model::is_stale_nan;
use std::rc::Rc;

/// Sorted, disjoint, non-adjacent closed spans `[a, b]` of evaluation
/// times; `None` means "anywhere".
pub(crate) type Spans = Option<Rc<Vec<(i64, i64)>>>;

/// Sorts and merges overlapping or adjacent spans in place.
fn merge(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn union(a: Spans, b: Spans) -> Spans {
    let (a, b) = (a?, b?);
    let mut v = Vec::with_capacity(a.len() + b.len());
    v.extend_from_slice(&a);
    v.extend_from_slice(&b);
    Some(Rc::new(merge(v)))
}

impl Ev<'_> {
    /// The spans of evaluation times at which `e` (an instant-vector or
    /// range-vector expression) may be non-empty, within the data loaded
    /// for the current query (or block). Loads the selectors it reads
    /// (into the same cache evaluation uses); computed once per node and
    /// block.
    pub(crate) fn support(&mut self, e: &Expr) -> Result<Spans, QueryError> {
        let key = e as *const Expr as usize;
        if let Some(s) = self.support_cache.get(&key) {
            return Ok(s.clone());
        }
        let s = self.support_of(e)?;
        self.support_cache.insert(key, s.clone());
        Ok(s)
    }

    fn support_of(&mut self, e: &Expr) -> Result<Spans, QueryError> {
        let is_vec = |e: &Expr| matches!(e.value_type(), ValueType::Vector | ValueType::Matrix);
        Ok(match e {
            Expr::VectorSelector(vs) => self.selector_support(vs, 0)?,
            Expr::MatrixSelector { vs, range, .. } => self.selector_support(vs, *range)?,
            Expr::Subquery {
                expr,
                range,
                offset,
                at,
                ..
            } => {
                if at.is_some() || expr.value_type() != ValueType::Vector {
                    return Ok(None);
                }
                // The subquery at `t` holds the inner steps in
                // (t - offset - range, t - offset].
                self.support(expr)?.map(|sp| {
                    Rc::new(merge(
                        sp.iter()
                            .map(|&(a, b)| {
                                (
                                    a.saturating_add(*offset),
                                    b.saturating_add(*range - 1).saturating_add(*offset),
                                )
                            })
                            .collect(),
                    ))
                })
            }
            Expr::Paren { expr, .. } | Expr::Unary { expr, .. } => self.support(expr)?,
            Expr::Binary { op, lhs, rhs, .. } => match (is_vec(lhs), is_vec(rhs)) {
                (true, true) if *op == BinOp::Unless => self.support(lhs)?,
                (true, true) => {
                    let l = self.support(lhs)?;
                    if l.is_none() {
                        return Ok(None);
                    }
                    union(l, self.support(rhs)?)
                }
                (true, false) => self.support(lhs)?,
                (false, true) => self.support(rhs)?,
                (false, false) => None,
            },
            Expr::Call { func, args, .. } => {
                if matches!(func.name, "absent" | "absent_over_time") {
                    return Ok(None);
                }
                let mut acc: Option<Spans> = None;
                for a in args.iter().filter(|a| is_vec(a)) {
                    let s = self.support(a)?;
                    if s.is_none() {
                        return Ok(None);
                    }
                    acc = Some(match acc {
                        None => s,
                        Some(p) => union(p, s),
                    });
                }
                // No vector argument (`vector(1)`, `hour()`): anywhere.
                acc.flatten()
            }
            Expr::Aggregate { expr, .. } => self.support(expr)?,
            Expr::Number { .. } | Expr::String { .. } => None,
        })
    }

    /// A selector outside `@` is non-empty at `t` only if a sample lies in
    /// its window ending at `t - offset`: `(t - offset - w, t - offset]`,
    /// `w` being its range or the lookback delta.
    fn selector_support(&mut self, vs: &VectorSelector, range: i64) -> Result<Spans, QueryError> {
        if vs.at.is_some() {
            return Ok(None);
        }
        let w = if range > 0 { range } else { self.lookback };
        let data = self.load(vs, range)?;
        let mut spans: Vec<(i64, i64)> = Vec::new();
        if w <= 0 {
            return Ok(Some(Rc::new(spans)));
        }
        for s in data.iter() {
            let mut cur: Option<(i64, i64)> = None;
            for &(t, v) in &s.pts {
                if is_stale_nan(v) {
                    continue;
                }
                let a = t.saturating_add(vs.offset);
                let b = a.saturating_add(w - 1);
                match &mut cur {
                    Some(c) if a <= c.1.saturating_add(1) => c.1 = c.1.max(b),
                    _ => {
                        if let Some(c) = cur {
                            spans.push(c);
                        }
                        cur = Some((a, b));
                    }
                }
            }
            if let Some(c) = cur {
                spans.push(c);
            }
        }
        Ok(Some(Rc::new(merge(spans))))
    }
}

/// The runs `(from, to)` of steps `first, first + step, ... <= last` that
/// fall inside `spans` (one run of all of them when `spans` is None), in
/// order; `from` and `to` are steps.
pub(crate) fn step_runs(
    first: i64,
    last: i64,
    step: i64,
    spans: Option<&[(i64, i64)]>,
    out: &mut Vec<(i64, i64)>,
) {
    if first > last || step <= 0 {
        return;
    }
    // The last step <= `x`, and the first step >= `x`, as i128 (no overflow).
    let (f, s) = (first as i128, step as i128);
    let floor = |x: i64| f + (x as i128 - f).div_euclid(s) * s;
    let ceil = |x: i64| f + (x as i128 - f + s - 1).div_euclid(s) * s;
    let last_step = floor(last) as i64;
    let Some(spans) = spans else {
        out.push((first, last_step));
        return;
    };
    let i = spans.partition_point(|sp| sp.1 < first);
    for &(a, b) in &spans[i..] {
        if a > last {
            break;
        }
        let from = ceil(a.max(first));
        let to = floor(b.min(last));
        if from <= to {
            out.push((from as i64, to as i64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_follow_spans() {
        let mut out = Vec::new();
        step_runs(10, 100, 10, None, &mut out);
        assert_eq!(out, vec![(10, 100)]);
        out.clear();
        step_runs(
            10,
            95,
            10,
            Some(&[(0, 5), (11, 29), (30, 30), (41, 49), (90, 200)]),
            &mut out,
        );
        assert_eq!(out, vec![(20, 20), (30, 30), (90, 90)]);
        out.clear();
        step_runs(-25, 5, 10, Some(&[(-30, -6), (0, 3)]), &mut out);
        assert_eq!(out, vec![(-25, -15)]);
        out.clear();
        step_runs(
            i64::MIN + 1,
            i64::MAX,
            i64::MAX / 2,
            Some(&[(0, i64::MAX)]),
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn merge_joins_adjacent() {
        assert_eq!(
            merge(vec![(5, 9), (0, 3), (4, 4), (20, 30), (25, 26)]),
            vec![(0, 9), (20, 30)]
        );
    }
}
