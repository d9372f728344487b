//! PromQL functions.

use crate::ast::{Expr, ValueType};
use crate::engine::{err, BlockVec, Ev, QueryError, Smp, Val, Vector};
use koban_model::{is_stale_nan, Labels, MatchType, METRIC_NAME};
use std::rc::Rc;
use std::sync::Arc;

/// Neumaier-compensated summation step: returns (sum, compensation).
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `%g`-like formatting used in annotation messages.
pub(crate) fn fmt_g(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Prometheus's quantile over values (sorts `vals`).
pub(crate) fn quantile(q: f64, vals: &mut [f64]) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vals.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = vals.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let w = rank - rank.floor();
    vals[lower as usize] * (1.0 - w) + vals[upper as usize] * w
}

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn linear_regression(pts: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in pts.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

fn extrapolated_rate(
    pts: &[(i64, f64)],
    rs: i64,
    re: i64,
    range: i64,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (ft, fv) = pts[0];
    let (lt, lv) = pts[pts.len() - 1];
    let mut result = lv - fv;
    if counter {
        let mut prev = fv;
        for &(_, v) in &pts[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut to_start = (ft - rs) as f64 / 1000.0;
    let mut to_end = (re - lt) as f64 / 1000.0;
    let sampled = (lt - ft) as f64 / 1000.0;
    let avg = sampled / (pts.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter && result > 0.0 && fv >= 0.0 {
        let to_zero = sampled * (fv / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if rate {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

fn stdvar(pts: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in pts {
        count += 1.0;
        let delta = v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

fn avg(pts: &[(i64, f64)]) -> f64 {
    let (mut sum, mut mean, mut count, mut c) = (0.0, 0.0, 0.0, 0.0);
    let mut inc = false;
    for &(_, v) in pts {
        count += 1.0;
        if !inc {
            let (ns, nc) = kahan_inc(v, sum, c);
            if count == 1.0 || !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            inc = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    if inc {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn is_counter_name(n: &str) -> bool {
    n.ends_with("_total") || n.ends_with("_sum") || n.ends_with("_count") || n.ends_with("_bucket")
}

/// Evaluates a function call at step `t`.
pub(crate) fn eval_call(ev: &mut Ev<'_>, e: &Expr, t: i64) -> Result<Val, QueryError> {
    let Expr::Call { func, args, pos } = e else {
        return err("BUG: not a call");
    };
    let name = func.name;
    // Functions over range vectors.
    if func.arg_types.contains(&ValueType::Matrix) {
        return range_fn(ev, e as *const Expr as usize, name, args, t);
    }
    match name {
        "time" => return Ok(Val::Scalar(t as f64 / 1000.0)),
        "pi" => return Ok(Val::Scalar(std::f64::consts::PI)),
        "step" => return Ok(Val::Scalar(ev.interval as f64 / 1000.0)),
        "range" => return Ok(Val::Scalar((ev.end - ev.start) as f64 / 1000.0)),
        "start" => return Ok(Val::Scalar(ev.start as f64 / 1000.0)),
        "end" => return Ok(Val::Scalar(ev.end as f64 / 1000.0)),
        "min_of" | "max_of" => {
            let a = ev.eval_scalar(&args[0], t)?;
            let b = ev.eval_scalar(&args[1], t)?;
            return Ok(Val::Scalar(if name == "min_of" {
                nan_min(a, b)
            } else {
                nan_max(a, b)
            }));
        }
        "vector" => {
            let v = ev.eval_scalar(&args[0], t)?;
            return Ok(Val::Vector(vec![Smp {
                l: Arc::new(Labels::empty()),
                v,
                t,
                drop_name: false,
            }]));
        }
        "scalar" => {
            let v = ev.eval_vector(&args[0], t)?;
            return Ok(Val::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }));
        }
        "timestamp" => {
            let mut v = ev.eval_vector(&args[0], t)?;
            let direct = matches!(unparen(&args[0]), Expr::VectorSelector(_));
            for s in v.iter_mut() {
                s.v = if direct {
                    s.t as f64 / 1000.0
                } else {
                    t as f64 / 1000.0
                };
                s.drop_name = true;
            }
            return Ok(Val::Vector(v));
        }
        "absent" => {
            let v = ev.eval_vector(&args[0], t)?;
            if !v.is_empty() {
                return Ok(Val::Vector(Vec::new()));
            }
            return Ok(Val::Vector(vec![Smp {
                l: Arc::new(absent_labels(&args[0])),
                v: 1.0,
                t,
                drop_name: false,
            }]));
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let mut v = if args.is_empty() {
                vec![Smp {
                    l: Arc::new(Labels::empty()),
                    v: t as f64 / 1000.0,
                    t,
                    drop_name: false,
                }]
            } else {
                ev.eval_vector(&args[0], t)?
            };
            for s in v.iter_mut() {
                s.v = time_fn(name, s.v);
                s.drop_name = true;
            }
            return Ok(Val::Vector(v));
        }
        "label_replace" => return label_replace(ev, args, t),
        "label_join" => return label_join(ev, args, t),
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            if ev.range_query {
                ev.warn("sort is ineffective for range queries since results are always ordered by labels", *pos);
            }
            let mut v = ev.eval_vector(&args[0], t)?;
            match name {
                "sort" => v.sort_by(|a, b| cmp_nan_last(a.v, b.v)),
                "sort_desc" => v.sort_by(|a, b| cmp_nan_last(-a.v, -b.v)),
                _ => {
                    let mut labels = Vec::new();
                    for a in &args[1..] {
                        if let Val::Str(s) = ev.eval(a, t)? {
                            labels.push(s);
                        }
                    }
                    let desc = name == "sort_by_label_desc";
                    v.sort_by(|a, b| {
                        for l in &labels {
                            let o = natural_cmp(a.l.get(l), b.l.get(l));
                            if o != std::cmp::Ordering::Equal {
                                return if desc { o.reverse() } else { o };
                            }
                        }
                        let o = a.l.cmp(&b.l);
                        if desc {
                            o.reverse()
                        } else {
                            o
                        }
                    });
                }
            }
            return Ok(Val::Vector(v));
        }
        "histogram_quantile" => return histogram_quantile(ev, args, t),
        "histogram_avg" | "histogram_count" | "histogram_sum" | "histogram_stddev"
        | "histogram_stdvar" | "histogram_fraction" => {
            // Float samples are ignored by histogram functions.
            for a in args {
                ev.eval(a, t)?;
            }
            return Ok(Val::Vector(Vec::new()));
        }
        "info" => {
            let v = ev.eval_vector(&args[0], t)?;
            return Ok(Val::Vector(v));
        }
        _ => {}
    }
    // Simple element-wise functions.
    let mut scalars = [0.0f64; 2];
    for (i, a) in args.iter().enumerate().skip(1) {
        if i <= 2 {
            scalars[i - 1] = ev.eval_scalar(a, t)?;
        }
    }
    let mut v = ev.eval_vector(&args[0], t)?;
    if name == "clamp" && scalars[1] < scalars[0] {
        return Ok(Val::Vector(Vec::new()));
    }
    let to_nearest = if name == "round" && args.len() > 1 {
        scalars[0]
    } else {
        1.0
    };
    let f: fn(f64, &[f64; 2], f64) -> f64 = match name {
        "abs" => |x, _, _| x.abs(),
        "ceil" => |x, _, _| x.ceil(),
        "floor" => |x, _, _| x.floor(),
        "exp" => |x, _, _| x.exp(),
        "sqrt" => |x, _, _| x.sqrt(),
        "ln" => |x, _, _| x.ln(),
        "log2" => |x, _, _| x.log2(),
        "log10" => |x, _, _| x.log10(),
        "sgn" => |x, _, _| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        },
        "acos" => |x, _, _| x.acos(),
        "acosh" => |x, _, _| x.acosh(),
        "asin" => |x, _, _| x.asin(),
        "asinh" => |x, _, _| x.asinh(),
        "atan" => |x, _, _| x.atan(),
        "atanh" => |x, _, _| x.atanh(),
        "cos" => |x, _, _| x.cos(),
        "cosh" => |x, _, _| x.cosh(),
        "sin" => |x, _, _| x.sin(),
        "sinh" => |x, _, _| x.sinh(),
        "tan" => |x, _, _| x.tan(),
        "tanh" => |x, _, _| x.tanh(),
        "deg" => |x, _, _| x * 180.0 / std::f64::consts::PI,
        "rad" => |x, _, _| x * std::f64::consts::PI / 180.0,
        "clamp" => |x, s, _| nan_max(s[0], nan_min(s[1], x)),
        "clamp_min" => |x, s, _| nan_max(s[0], x),
        "clamp_max" => |x, s, _| nan_min(s[0], x),
        "round" => |x, _, n| {
            let inv = 1.0 / n;
            (x * inv + 0.5).floor() / inv
        },
        _ => return err(format!("function \"{name}\" is not implemented")),
    };
    for s in v.iter_mut() {
        s.v = f(s.v, &scalars, to_nearest);
        s.drop_name = true;
    }
    Ok(Val::Vector(v))
}

fn cmp_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Natural ordering: digit runs compare numerically.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then(na.cmp(nb));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        } else {
            let o = ab[i].cmp(&bb[j]);
            if o != std::cmp::Ordering::Equal {
                return o;
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren { expr, .. } => unparen(expr),
        e => e,
    }
}

/// Labels for `absent`/`absent_over_time`: the equality matchers of the selector.
fn absent_labels(e: &Expr) -> Labels {
    let ms = match unparen(e) {
        Expr::VectorSelector(vs) => &vs.matchers,
        Expr::MatrixSelector { vs, .. } => &vs.matchers,
        _ => return Labels::empty(),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut dup: Vec<String> = Vec::new();
    for m in ms {
        if m.name == METRIC_NAME {
            continue;
        }
        if ms.iter().filter(|x| x.name == m.name).count() > 1 {
            dup.push(m.name.clone());
        }
        if m.kind == MatchType::Equal {
            pairs.push((m.name.clone(), m.value.clone()));
        }
    }
    pairs.retain(|(n, _)| !dup.contains(n));
    Labels::from_pairs(pairs)
}

fn time_fn(name: &str, secs: f64) -> f64 {
    if secs.is_nan() || secs.is_infinite() {
        return secs;
    }
    let s = secs.floor() as i64;
    let days = s.div_euclid(86400);
    let sod = s.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "minute" => ((sod / 60) % 60) as f64,
        "hour" => (sod / 3600) as f64,
        "day_of_week" => ((days + 4).rem_euclid(7)) as f64,
        "day_of_month" => d as f64,
        "day_of_year" => (days - days_from_civil(y, 1, 1) + 1) as f64,
        "month" => m as f64,
        "year" => y as f64,
        "days_in_month" => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as f64
        }
        _ => f64::NAN,
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn str_arg(ev: &mut Ev<'_>, e: &Expr, t: i64) -> Result<String, QueryError> {
    match ev.eval(e, t)? {
        Val::Str(s) => Ok(s),
        _ => err("BUG: expected string argument"),
    }
}

fn check_dups(v: &Vector) -> Result<(), QueryError> {
    let mut seen = std::collections::HashSet::new();
    for s in v {
        let l = if s.drop_name {
            s.l.without_metric_name()
        } else {
            (*s.l).clone()
        };
        if !seen.insert(l) {
            return err("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(())
}

/// UTF-8 label names are allowed; invalid UTF-8 from escapes shows as U+FFFD.
fn valid_label_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('\u{FFFD}')
}

fn label_replace(ev: &mut Ev<'_>, args: &[Expr], t: i64) -> Result<Val, QueryError> {
    let dst = str_arg(ev, &args[1], t)?;
    let repl = str_arg(ev, &args[2], t)?;
    let src = str_arg(ev, &args[3], t)?;
    let re_s = str_arg(ev, &args[4], t)?;
    let re = match ev.regex_cache.get(&re_s) {
        Some(r) => r.clone(),
        None => {
            let r = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| {
                QueryError::Execution(format!(
                    "invalid regular expression in label_replace(): {re_s}: {e}"
                ))
            })?;
            ev.regex_cache.insert(re_s.clone(), r.clone());
            r
        }
    };
    if !valid_label_name(&dst) {
        return err(format!(
            "invalid destination label name in label_replace(): {dst}"
        ));
    }
    let mut v = ev.eval_vector(&args[0], t)?;
    for s in v.iter_mut() {
        let sv = s.l.get(&src);
        if let Some(caps) = re.captures(sv) {
            let mut res = String::new();
            caps.expand(&repl, &mut res);
            let mut b = s.l.builder();
            b.set(&dst, &res);
            s.l = Arc::new(b.into_labels());
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    check_dups(&v)?;
    Ok(Val::Vector(v))
}

fn label_join(ev: &mut Ev<'_>, args: &[Expr], t: i64) -> Result<Val, QueryError> {
    let dst = str_arg(ev, &args[1], t)?;
    let sep = str_arg(ev, &args[2], t)?;
    let mut srcs = Vec::new();
    for a in &args[3..] {
        srcs.push(str_arg(ev, a, t)?);
    }
    if !valid_label_name(&dst) {
        return err(format!(
            "invalid destination label name in label_join(): {dst}"
        ));
    }
    let mut v = ev.eval_vector(&args[0], t)?;
    for s in v.iter_mut() {
        let joined = srcs
            .iter()
            .map(|n| s.l.get(n))
            .collect::<Vec<_>>()
            .join(&sep);
        let mut b = s.l.builder();
        b.set(&dst, &joined);
        s.l = Arc::new(b.into_labels());
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    check_dups(&v)?;
    Ok(Val::Vector(v))
}

fn histogram_quantile(ev: &mut Ev<'_>, args: &[Expr], t: i64) -> Result<Val, QueryError> {
    let q = ev.eval_scalar(&args[0], t)?;
    let v = ev.eval_vector(&args[1], t)?;
    if !(0.0..=1.0).contains(&q) {
        ev.warn(
            &format!("quantile value should be between 0 and 1, got {}", fmt_g(q)),
            args[0].pos(),
        );
    }
    let mut idx: std::collections::HashMap<Labels, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(Labels, Vec<(f64, f64)>, String)> = Vec::new();
    for s in &v {
        let le = s.l.get("le");
        let ub: Option<f64> = match le {
            "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
            "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
            x => x.parse::<f64>().ok(),
        };
        let Some(ub) = ub else {
            let name = s.l.metric_name().to_string();
            ev.warn(
                &format!("bucket label \"le\" is missing or has a malformed value of \"{le}\" for metric name \"{name}\""),
                args[1].pos(),
            );
            continue;
        };
        let mut b = s.l.builder();
        b.del("le");
        b.del(METRIC_NAME);
        let key = b.into_labels();
        let i = match idx.get(&key) {
            Some(&i) => i,
            None => {
                groups.push((key.clone(), Vec::new(), s.l.metric_name().to_string()));
                idx.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        groups[i].1.push((ub, s.v));
    }
    let mut out = Vec::new();
    for (l, mut buckets, name) in groups {
        let (v, forced) = bucket_quantile(q, &mut buckets);
        if forced {
            ev.info(
                &format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name \"{name}\""),
                args[1].pos(),
            );
        }
        out.push(Smp {
            l: Arc::new(l),
            v,
            t,
            drop_name: false,
        });
    }
    Ok(Val::Vector(out))
}

fn bucket_quantile(q: f64, b: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    if b.last().is_none_or(|x| x.0 != f64::INFINITY) {
        return (f64::NAN, false);
    }
    // Coalesce equal bounds.
    let mut c: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for &x in b.iter() {
        match c.last_mut() {
            Some(l) if l.0 == x.0 => l.1 += x.1,
            _ => c.push(x),
        }
    }
    let mut forced = false;
    let mut prev = c[0].1;
    for x in c.iter_mut().skip(1) {
        let cur = x.1;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) {
            x.1 = prev;
            continue;
        }
        if cur < prev {
            x.1 = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    if c.len() < 2 {
        return (f64::NAN, forced);
    }
    let obs = c[c.len() - 1].1;
    if obs == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * obs;
    let n = c.len() - 1;
    let bi = c[..n].partition_point(|x| x.1 < rank);
    if bi == n {
        return (c[n - 1].0, forced);
    }
    if bi == 0 && c[0].0 <= 0.0 {
        return (c[0].0, forced);
    }
    let mut start = 0.0;
    let end = c[bi].0;
    let mut count = c[bi].1;
    if bi > 0 {
        start = c[bi - 1].0;
        count -= c[bi - 1].1;
        rank -= c[bi - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Relative float comparison as Prometheus's `almost.Equal`.
pub fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    let diff = (a - b).abs();
    let min_normal = f64::from_bits(0x0010000000000000);
    if a == 0.0 || b == 0.0 || diff < min_normal {
        return diff < eps * min_normal;
    }
    diff / (a.abs() + b.abs()).min(f64::MAX) < eps
}

/// The range-vector functions, resolved once per call instead of by name
/// for every series and step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RF {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Deriv,
    PredictLinear,
    DoubleExponentialSmoothing,
    HoltWinters,
    Resets,
    Changes,
    AvgOverTime,
    SumOverTime,
    CountOverTime,
    MinOverTime,
    MaxOverTime,
    LastOverTime,
    FirstOverTime,
    TsOfLastOverTime,
    TsOfFirstOverTime,
    TsOfMaxOverTime,
    TsOfMinOverTime,
    PresentOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    MadOverTime,
    AbsentOverTime,
}

impl RF {
    pub(crate) fn from_name(name: &str) -> Option<RF> {
        Some(match name {
            "rate" => RF::Rate,
            "increase" => RF::Increase,
            "delta" => RF::Delta,
            "irate" => RF::Irate,
            "idelta" => RF::Idelta,
            "deriv" => RF::Deriv,
            "predict_linear" => RF::PredictLinear,
            "double_exponential_smoothing" => RF::DoubleExponentialSmoothing,
            "holt_winters" => RF::HoltWinters,
            "resets" => RF::Resets,
            "changes" => RF::Changes,
            "avg_over_time" => RF::AvgOverTime,
            "sum_over_time" => RF::SumOverTime,
            "count_over_time" => RF::CountOverTime,
            "min_over_time" => RF::MinOverTime,
            "max_over_time" => RF::MaxOverTime,
            "last_over_time" => RF::LastOverTime,
            "first_over_time" => RF::FirstOverTime,
            "ts_of_last_over_time" => RF::TsOfLastOverTime,
            "ts_of_first_over_time" => RF::TsOfFirstOverTime,
            "ts_of_max_over_time" => RF::TsOfMaxOverTime,
            "ts_of_min_over_time" => RF::TsOfMinOverTime,
            "present_over_time" => RF::PresentOverTime,
            "stddev_over_time" => RF::StddevOverTime,
            "stdvar_over_time" => RF::StdvarOverTime,
            "quantile_over_time" => RF::QuantileOverTime,
            "mad_over_time" => RF::MadOverTime,
            "absent_over_time" => RF::AbsentOverTime,
            _ => return None,
        })
    }
}

/// The value of range function `kind` over the window `w` (non-empty, no
/// stale markers) of `(rs, re]` evaluated at `t`; `sc` holds the scalar
/// arguments. None: no output for this series.
pub(crate) fn range_value(
    kind: RF,
    w: &[(i64, f64)],
    rs: i64,
    re: i64,
    range: i64,
    sc: &[f64],
    t: i64,
) -> Option<f64> {
    match kind {
        RF::Rate => extrapolated_rate(w, rs, re, range, true, true),
        RF::Increase => extrapolated_rate(w, rs, re, range, true, false),
        RF::Delta => extrapolated_rate(w, rs, re, range, false, false),
        RF::Irate | RF::Idelta => {
            if w.len() < 2 {
                None
            } else {
                let (lt, lv) = w[w.len() - 1];
                let (pt, pv) = w[w.len() - 2];
                let is_rate = kind == RF::Irate;
                let mut r = if is_rate && lv < pv { lv } else { lv - pv };
                let dt = lt - pt;
                if dt == 0 {
                    None
                } else {
                    if is_rate {
                        r /= dt as f64 / 1000.0;
                    }
                    Some(r)
                }
            }
        }
        RF::Deriv => {
            if w.len() < 2 {
                None
            } else {
                Some(linear_regression(w, w[0].0).0)
            }
        }
        RF::PredictLinear => {
            if w.len() < 2 {
                None
            } else {
                let (s, i) = linear_regression(w, t);
                Some(s * sc[0] + i)
            }
        }
        RF::DoubleExponentialSmoothing | RF::HoltWinters => {
            if w.len() < 2 {
                None
            } else {
                let (sf, tf) = (sc[0], sc[1]);
                let mut s0 = 0.0;
                let mut s1 = w[0].1;
                let mut b = w[1].1 - w[0].1;
                for (i, p) in w.iter().enumerate().skip(1) {
                    let x = sf * p.1;
                    if i > 1 {
                        b = tf * (s1 - s0) + (1.0 - tf) * b;
                    }
                    let y = (1.0 - sf) * (s1 + b);
                    s0 = s1;
                    s1 = x + y;
                }
                Some(s1)
            }
        }
        RF::Resets => {
            let mut n = 0.0;
            for p in w.windows(2) {
                if p[1].1 < p[0].1 {
                    n += 1.0;
                }
            }
            Some(n)
        }
        RF::Changes => {
            let mut n = 0.0;
            for p in w.windows(2) {
                let (a, b) = (p[0].1, p[1].1);
                if !(a == b || (a.is_nan() && b.is_nan())) {
                    n += 1.0;
                }
            }
            Some(n)
        }
        RF::AvgOverTime => Some(avg(w)),
        RF::SumOverTime => {
            let (mut s, mut c) = (0.0, 0.0);
            for p in w {
                (s, c) = kahan_inc(p.1, s, c);
            }
            Some(if s.is_infinite() { s } else { s + c })
        }
        RF::CountOverTime => Some(w.len() as f64),
        RF::MinOverTime => {
            let mut m = w[0].1;
            for p in &w[1..] {
                if p.1 < m || m.is_nan() {
                    m = p.1;
                }
            }
            Some(m)
        }
        RF::MaxOverTime => {
            let mut m = w[0].1;
            for p in &w[1..] {
                if p.1 > m || m.is_nan() {
                    m = p.1;
                }
            }
            Some(m)
        }
        RF::LastOverTime => Some(w[w.len() - 1].1),
        RF::FirstOverTime => Some(w[0].1),
        RF::TsOfLastOverTime => Some(w[w.len() - 1].0 as f64 / 1000.0),
        RF::TsOfFirstOverTime => Some(w[0].0 as f64 / 1000.0),
        RF::TsOfMaxOverTime | RF::TsOfMinOverTime => {
            let max = kind == RF::TsOfMaxOverTime;
            let (mut bt, mut bv) = w[0];
            for &(pt, pv) in &w[1..] {
                let better = if max {
                    pv >= bv || bv.is_nan()
                } else {
                    pv <= bv || bv.is_nan()
                };
                if better && !pv.is_nan() {
                    bt = pt;
                    bv = pv;
                }
            }
            Some(bt as f64 / 1000.0)
        }
        RF::PresentOverTime => Some(1.0),
        RF::StddevOverTime => Some(stdvar(w).sqrt()),
        RF::StdvarOverTime => Some(stdvar(w)),
        RF::QuantileOverTime => {
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            Some(quantile(sc[0], &mut vals))
        }
        RF::MadOverTime => {
            if w.iter().any(|p| p.1.is_nan()) {
                Some(f64::NAN)
            } else {
                let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
                let med = quantile(0.5, &mut vals);
                let mut dev: Vec<f64> = vals.iter().map(|x| (x - med).abs()).collect();
                Some(quantile(0.5, &mut dev))
            }
        }
        RF::AbsentOverTime => None,
    }
}

/// Largest number of (series, step) results of one block range function.
const MAX_BLOCK_FN_CELLS: usize = 4_000_000;

/// A range function over a matrix selector at every step of the current
/// block, series by series: each series is decoded once into a scratch
/// buffer and its windows slide forward over it. Gives the same values,
/// order, sample counts and annotations as the step-by-step path.
#[allow(clippy::too_many_arguments)]
fn build_block_range_fn(
    ev: &mut Ev<'_>,
    kind: RF,
    vs: &crate::ast::VectorSelector,
    range: i64,
    sc: &[f64],
    check_counter: bool,
    drop_name: bool,
    mpos: crate::ast::PosRange,
) -> Result<Option<BlockVec>, QueryError> {
    let tes = ev.block_times(&vs.at, vs.offset);
    let ns = tes.len();
    let Some((bs, _)) = ev.block_bounds() else {
        return Ok(None);
    };
    let interval = ev.interval;
    let mut labels: Vec<Arc<Labels>> = Vec::new();
    // vals[i * ns + k]: output of series i at step k.
    let mut vals: Vec<Option<f64>> = Vec::new();
    let mut samples = vec![0usize; ns];
    // (first step with a window, series, metric name) of non-counters.
    let mut noncounter: Vec<(usize, usize, String)> = Vec::new();
    let mut too_big = false;
    // Per series: (step, window samples, value) for every step with a raw
    // window, and the first step with a window left after stale filtering.
    type Out = (Vec<(u32, u32, Option<f64>)>, Option<usize>);
    let windows = |_: &Labels, pts: &[(i64, f64)], has_stale: bool| -> Out {
        let mut out = Vec::with_capacity(ns);
        let mut buf: Vec<(i64, f64)> = Vec::new();
        let (mut lo, mut hi) = (0usize, 0usize);
        let mut first: Option<usize> = None;
        for (k, &te) in tes.iter().enumerate() {
            let ts = te.saturating_sub(range);
            if lo > 0 && pts[lo - 1].0 > ts {
                lo = pts.partition_point(|p| p.0 <= ts);
            }
            while lo < pts.len() && pts[lo].0 <= ts {
                lo += 1;
            }
            if hi > 0 && pts[hi - 1].0 > te {
                hi = pts.partition_point(|p| p.0 <= te);
            }
            hi = hi.max(lo);
            while hi < pts.len() && pts[hi].0 <= te {
                hi += 1;
            }
            if lo >= hi {
                continue;
            }
            let mut w = &pts[lo..hi];
            let n = w.len() as u32;
            if has_stale && w.iter().any(|p| is_stale_nan(p.1)) {
                buf.clear();
                buf.extend(w.iter().filter(|p| !is_stale_nan(p.1)));
                if buf.is_empty() {
                    out.push((k as u32, n, None));
                    continue;
                }
                w = &buf;
            }
            first.get_or_insert(k);
            let v = range_value(kind, w, ts, te, range, sc, bs + k as i64 * interval);
            out.push((k as u32, n, v));
        }
        (out, first)
    };
    ev.stream_map(vs, range, &windows, &mut |l, (out, first)| {
        if (labels.len() + 1) * ns > MAX_BLOCK_FN_CELLS {
            too_big = true;
            return false;
        }
        let i = labels.len();
        labels.push(l.clone());
        vals.resize(vals.len() + ns, None);
        let row = &mut vals[i * ns..];
        for (k, n, v) in out {
            samples[k as usize] += n as usize;
            row[k as usize] = v;
        }
        if check_counter {
            if let Some(k) = first {
                let n = l.metric_name();
                if !n.is_empty() && !is_counter_name(n) {
                    noncounter.push((k, i, n.to_string()));
                }
            }
        }
        true
    })?;
    if too_big {
        return Ok(None);
    }
    let n = labels.len();
    let mut cells = Vec::new();
    let mut offs = Vec::with_capacity(ns + 1);
    for k in 0..ns {
        offs.push(cells.len());
        for i in 0..n {
            if let Some(v) = vals[i * ns + k] {
                cells.push((i as u32, v));
            }
        }
    }
    offs.push(cells.len());
    noncounter.sort_by_key(|x| (x.0, x.1));
    let infos = noncounter
        .into_iter()
        .map(|(k, _, n)| {
            (
                k,
                format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"{n}\""),
                mpos,
            )
        })
        .collect();
    Ok(Some(BlockVec {
        labels,
        cells,
        offs,
        samples,
        infos,
        drop_name,
    }))
}

/// Evaluates the scalar arguments of a range function at `t` (with their
/// warnings and errors) and finds its range argument.
fn range_args<'e>(
    ev: &mut Ev<'_>,
    name: &str,
    args: &'e [Expr],
    t: i64,
) -> Result<(Vec<f64>, &'e Expr), QueryError> {
    // Scalar parameters first (they may precede the matrix).
    let mut sc: Vec<f64> = Vec::new();
    let mut mat: Option<&Expr> = None;
    for a in args {
        if a.value_type() == ValueType::Matrix {
            mat = Some(a);
        } else {
            sc.push(ev.eval_scalar(a, t)?);
        }
    }
    let Some(m) = mat else {
        return err("BUG: no range argument");
    };
    if name == "quantile_over_time" && !(0.0..=1.0).contains(&sc[0]) {
        ev.warn(
            &format!(
                "quantile value should be between 0 and 1, got {}",
                fmt_g(sc[0])
            ),
            args[0].pos(),
        );
    }
    if name == "double_exponential_smoothing" || name == "holt_winters" {
        if !(sc[0] > 0.0 && sc[0] < 1.0) {
            return err(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
                fmt_g(sc[0])
            ));
        }
        if !(sc[1] > 0.0 && sc[1] < 1.0) {
            return err(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {}",
                fmt_g(sc[1])
            ));
        }
    }
    Ok((sc, m))
}

/// The whole-block result of a range function over a matrix selector and
/// the step index of `t`, when the block path applies.
#[allow(clippy::too_many_arguments)]
fn block_range(
    ev: &mut Ev<'_>,
    node: usize,
    kind: RF,
    name: &str,
    args: &[Expr],
    sc: &[f64],
    m: &Expr,
    t: i64,
) -> Result<Option<(Rc<BlockVec>, usize)>, QueryError> {
    let check_counter = matches!(name, "rate" | "increase");
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    if kind == RF::AbsentOverTime
        || !args.iter().all(|a| {
            a.value_type() == ValueType::Matrix || matches!(unparen(a), Expr::Number { .. })
        })
    {
        return Ok(None);
    }
    let Expr::MatrixSelector { vs, range, .. } = unparen(m) else {
        return Ok(None);
    };
    let Some(k) = ev.block_step(node, t) else {
        return Ok(None);
    };
    let bv = match ev.block_vecs.get(&node) {
        Some(b) => b.clone(),
        None => {
            let b =
                build_block_range_fn(ev, kind, vs, *range, sc, check_counter, !keep_name, m.pos())?
                    .map(Rc::new);
            ev.block_vecs.insert(node, b.clone());
            b
        }
    };
    Ok(bv.map(|b| (b, k)))
}

/// For a range function call over a matrix selector at a step of a range
/// query: its whole-block result and the step index of `t` (scalar
/// arguments are checked as the step path does). None otherwise.
pub(crate) fn block_input(
    ev: &mut Ev<'_>,
    e: &Expr,
    t: i64,
) -> Result<Option<(Rc<BlockVec>, usize)>, QueryError> {
    let Expr::Call { func, args, .. } = e else {
        return Ok(None);
    };
    if !func.arg_types.contains(&ValueType::Matrix) {
        return Ok(None);
    }
    let Some(kind) = RF::from_name(func.name) else {
        return Ok(None);
    };
    if ev.block_step(e as *const Expr as usize, t).is_none() {
        return Ok(None);
    }
    let (sc, m) = range_args(ev, func.name, args, t)?;
    block_range(
        ev,
        e as *const Expr as usize,
        kind,
        func.name,
        args,
        &sc,
        m,
        t,
    )
}

fn range_fn(
    ev: &mut Ev<'_>,
    node: usize,
    name: &str,
    args: &[Expr],
    t: i64,
) -> Result<Val, QueryError> {
    let Some(kind) = RF::from_name(name) else {
        return err(format!("BUG: unknown range function {name}"));
    };
    let (sc, m) = range_args(ev, name, args, t)?;
    if let Some((bv, k)) = block_range(ev, node, kind, name, args, &sc, m, t)? {
        return Ok(Val::Vector(ev.block_row(&bv, k, t)?));
    }
    let check_counter = matches!(name, "rate" | "increase");
    let keep_name = matches!(name, "last_over_time" | "first_over_time");
    let mut any = false;
    let mut noncounter: Vec<String> = Vec::new();
    let mpos = m.pos();
    let (rs, re, range) = ev.window_bounds(m, t)?;
    let sc2 = sc.clone();
    let mut results: Vector = Vec::new();
    ev.for_each_window(m, t, &mut |_, l, dn, w| {
        any = true;
        if check_counter {
            let n = l.metric_name();
            if !n.is_empty() && !is_counter_name(n) && !noncounter.iter().any(|x| x == n) {
                noncounter.push(n.to_string());
            }
        }
        let v = range_value(kind, w, rs, re, range, &sc2, t);
        if let Some(v) = v {
            results.push(Smp {
                l: l.clone(),
                v,
                t,
                drop_name: dn || !keep_name,
            });
        }
        Ok(())
    })?;
    for n in noncounter {
        ev.info(&format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"{n}\""), mpos);
    }
    if name == "absent_over_time" {
        if any {
            return Ok(Val::Vector(Vec::new()));
        }
        return Ok(Val::Vector(vec![Smp {
            l: Arc::new(absent_labels(m)),
            v: 1.0,
            t,
            drop_name: false,
        }]));
    }
    Ok(Val::Vector(results))
}
