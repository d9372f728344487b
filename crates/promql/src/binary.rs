//! Binary operators: scalar/scalar, vector/scalar and vector/vector with
//! `on`/`ignoring`/`group_left`/`group_right` matching and set operators.

use crate::ast::{BinOp, Card, Expr, VectorMatching};
use crate::engine::{err, Ev, FastMap, FastSet, QueryError, Smp, Val, Vector};
use koban_model::{Labels, LabelsBuilder, METRIC_NAME};

use std::sync::Arc;

/// Applies an arithmetic or comparison operator. Returns the value and, for
/// comparisons, whether the comparison held.
#[inline]
pub(crate) fn apply(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Mod => (l % r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eql => (l, l == r),
        BinOp::Neq => (l, l != r),
        BinOp::Gtr => (l, l > r),
        BinOp::Lss => (l, l < r),
        BinOp::Gte => (l, l >= r),
        BinOp::Lte => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
    }
}

pub(crate) fn eval_binary(ev: &mut Ev<'_>, e: &Expr, t: i64) -> Result<Val, QueryError> {
    let Expr::Binary {
        op,
        lhs,
        rhs,
        return_bool,
        matching,
        ..
    } = e
    else {
        return err("BUG: not a binary expression");
    };
    let (op, rb) = (*op, *return_bool);
    let node = e as *const Expr as usize;
    let l = ev.eval(lhs, t)?;
    // Short-circuit set operators on an empty side.
    if let Val::Vector(lv) = &l {
        if lv.is_empty() && matches!(op, BinOp::And | BinOp::Unless) {
            return Ok(Val::Vector(Vec::new()));
        }
    }
    let r = ev.eval(rhs, t)?;
    match (l, r) {
        (Val::Scalar(a), Val::Scalar(b)) => {
            let (v, keep) = apply(op, a, b);
            if op.is_comparison() {
                Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }))
            } else {
                Ok(Val::Scalar(v))
            }
        }
        (Val::Vector(v), Val::Scalar(s)) => Ok(Val::Vector(vector_scalar(op, rb, v, s, false))),
        (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(vector_scalar(op, rb, v, s, true))),
        (Val::Vector(a), Val::Vector(b)) => {
            let m = matching.clone().unwrap_or(VectorMatching {
                card: Card::OneToOne,
                on: false,
                labels: vec![],
                include: vec![],
            });
            match op {
                BinOp::And => Ok(Val::Vector(and(ev, node, a, b, &m))),
                BinOp::Or => Ok(Val::Vector(or(ev, node, a, b, &m))),
                BinOp::Unless => Ok(Val::Vector(unless(ev, node, a, b, &m))),
                _ => Ok(Val::Vector(vector_vector(ev, node, op, rb, a, b, &m)?)),
            }
        }
        _ => err("BUG: invalid operand types for binary expression"),
    }
}

fn vector_scalar(op: BinOp, rb: bool, v: Vector, s: f64, swap: bool) -> Vector {
    let mut out = Vec::with_capacity(v.len());
    for mut smp in v {
        let (a, b) = if swap { (s, smp.v) } else { (smp.v, s) };
        let (mut val, keep) = apply(op, a, b);
        if op.is_comparison() && swap {
            val = b;
        }
        if rb {
            val = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        if rb || !op.is_comparison() {
            smp.drop_name = true;
        }
        smp.v = val;
        out.push(smp);
    }
    out
}

/// Signature of a sample's labels for matching.
fn sig(l: &Labels, m: &VectorMatching) -> u64 {
    if m.on {
        l.hash_for_labels(&m.labels)
    } else {
        l.hash_without_labels(&m.labels)
    }
}

/// [`sig`] remembered per binary node and label-set pointer (label sets
/// are mostly shared between steps; the cache holds the Arc, so a pointer
/// cannot be reused for another label set).
fn sig_cached(ev: &mut Ev<'_>, node: usize, l: &Arc<Labels>, m: &VectorMatching) -> u64 {
    let pk = (node, Arc::as_ptr(l) as usize);
    if let Some((_, k)) = ev.key_cache.get(&pk) {
        return *k;
    }
    let k = sig(l, m);
    if ev.key_cache.len() < 2_000_000 {
        ev.key_cache.insert(pk, (l.clone(), k));
    }
    k
}

fn and(ev: &mut Ev<'_>, node: usize, l: Vector, r: Vector, m: &VectorMatching) -> Vector {
    let rs: FastSet<u64> = r.iter().map(|s| sig_cached(ev, node, &s.l, m)).collect();
    l.into_iter()
        .filter(|s| rs.contains(&sig_cached(ev, node, &s.l, m)))
        .collect()
}

fn or(ev: &mut Ev<'_>, node: usize, l: Vector, r: Vector, m: &VectorMatching) -> Vector {
    let ls: FastSet<u64> = l.iter().map(|s| sig_cached(ev, node, &s.l, m)).collect();
    let mut out = l;
    out.extend(
        r.into_iter()
            .filter(|s| !ls.contains(&sig_cached(ev, node, &s.l, m))),
    );
    out
}

fn unless(ev: &mut Ev<'_>, node: usize, l: Vector, r: Vector, m: &VectorMatching) -> Vector {
    let rs: FastSet<u64> = r.iter().map(|s| sig_cached(ev, node, &s.l, m)).collect();
    l.into_iter()
        .filter(|s| !rs.contains(&sig_cached(ev, node, &s.l, m)))
        .collect()
}

/// Labels the matching is done on, for error messages.
fn match_labels(l: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        Labels::from_sorted_unchecked(
            l.iter()
                .filter(|x| m.labels.contains(&x.name))
                .cloned()
                .collect(),
        )
    } else {
        Labels::from_sorted_unchecked(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !m.labels.contains(&x.name))
                .cloned()
                .collect(),
        )
    }
}

fn result_labels(ls: &Labels, rs: &Labels, m: &VectorMatching) -> Labels {
    if m.card == Card::OneToOne {
        if m.on {
            return Labels::from_sorted_unchecked(
                ls.iter()
                    .filter(|x| m.labels.contains(&x.name))
                    .cloned()
                    .collect(),
            );
        }
        if m.labels.is_empty() {
            return ls.clone();
        }
        return Labels::from_sorted_unchecked(
            ls.iter()
                .filter(|x| !m.labels.contains(&x.name))
                .cloned()
                .collect(),
        );
    }
    if m.include.is_empty() {
        return ls.clone();
    }
    let mut b: LabelsBuilder = ls.builder();
    for n in &m.include {
        let v = rs.get(n);
        if v.is_empty() {
            b.del(n);
        } else {
            b.set(n, v);
        }
    }
    b.into_labels()
}

fn vector_vector(
    ev: &mut Ev<'_>,
    node: usize,
    op: BinOp,
    rb: bool,
    lhs: Vector,
    rhs: Vector,
    m: &VectorMatching,
) -> Result<Vector, QueryError> {
    let (lhs, rhs) = if m.card == Card::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    let mut right: FastMap<u64, usize> = FastMap::default();
    right.reserve(rhs.len());
    for (i, s) in rhs.iter().enumerate() {
        let g = sig_cached(ev, node, &s.l, m);
        if let Some(&j) = right.get(&g) {
            let side = if m.card == Card::OneToMany {
                "left"
            } else {
                "right"
            };
            let (a, b) = if rhs[j].l <= s.l {
                (&rhs[j].l, &s.l)
            } else {
                (&s.l, &rhs[j].l)
            };
            return err(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                match_labels(&s.l, m),
                a,
                b
            ));
        }
        right.insert(g, i);
    }
    let mut out = Vec::with_capacity(lhs.len().min(rhs.len()));
    let mut matched: FastMap<u64, FastSet<u64>> = FastMap::default();
    let drop = rb || !op.is_comparison();
    for ls in lhs.iter() {
        let g = sig_cached(ev, node, &ls.l, m);
        let Some(&ri) = right.get(&g) else { continue };
        let rs = &rhs[ri];
        if m.card == Card::OneToOne {
            if matched.contains_key(&g) {
                return err("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
            }
            matched.insert(g, FastSet::default());
        }
        let (vl, vr) = if m.card == Card::OneToMany {
            (rs.v, ls.v)
        } else {
            (ls.v, rs.v)
        };
        let (mut val, keep) = apply(op, vl, vr);
        if rb {
            val = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        // Result label sets are shared between steps (by operand pointers):
        // no per-step allocation, and range assembly finds them by pointer.
        let lk = (
            node,
            Arc::as_ptr(&ls.l) as usize,
            Arc::as_ptr(&rs.l) as usize,
        );
        let labels = match ev.bin_labels.get(&lk) {
            Some((_, _, r)) => r.clone(),
            None => {
                let r = if m.card == Card::OneToOne && !m.on && m.labels.is_empty() {
                    ls.l.clone()
                } else {
                    Arc::new(result_labels(&ls.l, &rs.l, m))
                };
                if ev.bin_labels.len() < 1_000_000 {
                    ev.bin_labels
                        .insert(lk, (ls.l.clone(), rs.l.clone(), r.clone()));
                }
                r
            }
        };
        if m.card != Card::OneToOne {
            let h = labels.hash();
            let set = matched.entry(g).or_default();
            if !set.insert(h) {
                return err(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                );
            }
        }
        out.push(Smp {
            l: labels,
            v: val,
            t: ls.t,
            drop_name: drop || ls.drop_name,
        });
    }
    Ok(out)
}
