// PromQL knowledge for the editor: a tokenizer for highlighting, the function
// and keyword catalogue with signatures and help, and the analysis of what
// the user is typing at the caret (for autocomplete).

/** name -> [signature, help]. Help is one short line. */
export const FUNCTIONS = {
  abs: ['abs(v instant-vector)', 'Absolute value of every sample.'],
  absent: ['absent(v instant-vector)', '1-element vector with value 1 if the input is empty, else empty.'],
  absent_over_time: ['absent_over_time(v range-vector)', '1 if the range has no samples, else empty.'],
  acos: ['acos(v instant-vector)', 'Arc cosine of every sample.'],
  acosh: ['acosh(v instant-vector)', 'Inverse hyperbolic cosine of every sample.'],
  asin: ['asin(v instant-vector)', 'Arc sine of every sample.'],
  asinh: ['asinh(v instant-vector)', 'Inverse hyperbolic sine of every sample.'],
  atan: ['atan(v instant-vector)', 'Arc tangent of every sample.'],
  atanh: ['atanh(v instant-vector)', 'Inverse hyperbolic tangent of every sample.'],
  avg_over_time: ['avg_over_time(v range-vector)', 'Average of the samples in the range, per series.'],
  ceil: ['ceil(v instant-vector)', 'Rounds every sample up to the nearest integer.'],
  changes: ['changes(v range-vector)', 'How often the value changed within the range.'],
  clamp: ['clamp(v instant-vector, min scalar, max scalar)', 'Limits every sample to [min, max].'],
  clamp_max: ['clamp_max(v instant-vector, max scalar)', 'Limits every sample to at most max.'],
  clamp_min: ['clamp_min(v instant-vector, min scalar)', 'Limits every sample to at least min.'],
  cos: ['cos(v instant-vector)', 'Cosine of every sample (radians).'],
  cosh: ['cosh(v instant-vector)', 'Hyperbolic cosine of every sample.'],
  count_over_time: ['count_over_time(v range-vector)', 'Number of samples in the range, per series.'],
  day_of_month: ['day_of_month(v=vector(time()) instant-vector)', 'Day of the month (1-31) in UTC.'],
  day_of_week: ['day_of_week(v=vector(time()) instant-vector)', 'Day of the week (0=Sunday) in UTC.'],
  day_of_year: ['day_of_year(v=vector(time()) instant-vector)', 'Day of the year (1-366) in UTC.'],
  days_in_month: ['days_in_month(v=vector(time()) instant-vector)', 'Number of days in the month in UTC.'],
  deg: ['deg(v instant-vector)', 'Converts radians to degrees.'],
  delta: ['delta(v range-vector)', 'Difference between first and last value of a gauge over the range, extrapolated.'],
  deriv: ['deriv(v range-vector)', 'Per-second derivative of a gauge by simple linear regression.'],
  double_exponential_smoothing: ['double_exponential_smoothing(v range-vector, sf scalar, tf scalar)', 'Smoothed value of a gauge (smoothing factor sf, trend factor tf).'],
  exp: ['exp(v instant-vector)', 'e raised to every sample.'],
  floor: ['floor(v instant-vector)', 'Rounds every sample down to the nearest integer.'],
  histogram_avg: ['histogram_avg(v instant-vector)', 'Arithmetic average of native histogram observations.'],
  histogram_count: ['histogram_count(v instant-vector)', 'Observation count of native histograms.'],
  histogram_fraction: ['histogram_fraction(lower scalar, upper scalar, v instant-vector)', 'Estimated fraction of observations between lower and upper.'],
  histogram_quantile: ['histogram_quantile(φ scalar, b instant-vector)', 'φ-quantile (0 ≤ φ ≤ 1) from histogram buckets (le label) or native histograms.'],
  histogram_stddev: ['histogram_stddev(v instant-vector)', 'Estimated standard deviation of native histogram observations.'],
  histogram_stdvar: ['histogram_stdvar(v instant-vector)', 'Estimated variance of native histogram observations.'],
  histogram_sum: ['histogram_sum(v instant-vector)', 'Sum of native histogram observations.'],
  holt_winters: ['holt_winters(v range-vector, sf scalar, tf scalar)', 'Old name of double_exponential_smoothing.'],
  hour: ['hour(v=vector(time()) instant-vector)', 'Hour of the day (0-23) in UTC.'],
  idelta: ['idelta(v range-vector)', 'Difference between the last two samples in the range.'],
  increase: ['increase(v range-vector)', 'Increase of a counter over the range, extrapolated, adjusting for resets.'],
  irate: ['irate(v range-vector)', 'Per-second rate from the last two samples of a counter.'],
  label_join: ['label_join(v instant-vector, dst string, separator string, src_1 string, ...)', 'Joins the values of the src labels into dst.'],
  label_replace: ['label_replace(v instant-vector, dst string, replacement string, src string, regex string)', 'Sets dst to replacement when regex matches the value of src.'],
  last_over_time: ['last_over_time(v range-vector)', 'Most recent sample in the range, per series.'],
  ln: ['ln(v instant-vector)', 'Natural logarithm of every sample.'],
  log10: ['log10(v instant-vector)', 'Decimal logarithm of every sample.'],
  log2: ['log2(v instant-vector)', 'Binary logarithm of every sample.'],
  mad_over_time: ['mad_over_time(v range-vector)', 'Median absolute deviation of the samples in the range.'],
  max_over_time: ['max_over_time(v range-vector)', 'Maximum sample in the range, per series.'],
  min_over_time: ['min_over_time(v range-vector)', 'Minimum sample in the range, per series.'],
  minute: ['minute(v=vector(time()) instant-vector)', 'Minute of the hour (0-59) in UTC.'],
  month: ['month(v=vector(time()) instant-vector)', 'Month of the year (1-12) in UTC.'],
  pi: ['pi()', 'The number π.'],
  predict_linear: ['predict_linear(v range-vector, t scalar)', 'Value of a gauge t seconds from now, by linear regression.'],
  present_over_time: ['present_over_time(v range-vector)', '1 for every series with a sample in the range.'],
  quantile_over_time: ['quantile_over_time(φ scalar, v range-vector)', 'φ-quantile of the samples in the range.'],
  rad: ['rad(v instant-vector)', 'Converts degrees to radians.'],
  rate: ['rate(v range-vector)', 'Per-second average rate of increase of a counter over the range.'],
  resets: ['resets(v range-vector)', 'Number of counter resets within the range.'],
  round: ['round(v instant-vector, to_nearest=1 scalar)', 'Rounds every sample to the nearest multiple of to_nearest.'],
  scalar: ['scalar(v instant-vector)', 'The sample of a one-element vector as a scalar, else NaN.'],
  sgn: ['sgn(v instant-vector)', 'Sign of every sample: 1, -1 or 0.'],
  sin: ['sin(v instant-vector)', 'Sine of every sample (radians).'],
  sinh: ['sinh(v instant-vector)', 'Hyperbolic sine of every sample.'],
  sort: ['sort(v instant-vector)', 'Sorts by sample value, ascending.'],
  sort_by_label: ['sort_by_label(v instant-vector, label string, ...)', 'Sorts by the given label values, ascending.'],
  sort_by_label_desc: ['sort_by_label_desc(v instant-vector, label string, ...)', 'Sorts by the given label values, descending.'],
  sort_desc: ['sort_desc(v instant-vector)', 'Sorts by sample value, descending.'],
  sqrt: ['sqrt(v instant-vector)', 'Square root of every sample.'],
  stddev_over_time: ['stddev_over_time(v range-vector)', 'Population standard deviation of the samples in the range.'],
  stdvar_over_time: ['stdvar_over_time(v range-vector)', 'Population variance of the samples in the range.'],
  sum_over_time: ['sum_over_time(v range-vector)', 'Sum of the samples in the range, per series.'],
  tan: ['tan(v instant-vector)', 'Tangent of every sample (radians).'],
  tanh: ['tanh(v instant-vector)', 'Hyperbolic tangent of every sample.'],
  time: ['time()', 'Evaluation time as seconds since the Unix epoch.'],
  timestamp: ['timestamp(v instant-vector)', 'Timestamp of every sample, in seconds.'],
  vector: ['vector(s scalar)', 'The scalar as a vector without labels.'],
  year: ['year(v=vector(time()) instant-vector)', 'Year in UTC.'],
};

export const AGGREGATIONS = {
  sum: ['sum [by|without (labels)] (v)', 'Sum over dimensions.'],
  min: ['min [by|without (labels)] (v)', 'Minimum over dimensions.'],
  max: ['max [by|without (labels)] (v)', 'Maximum over dimensions.'],
  avg: ['avg [by|without (labels)] (v)', 'Average over dimensions.'],
  group: ['group [by|without (labels)] (v)', 'All values 1: one series per group.'],
  stddev: ['stddev [by|without (labels)] (v)', 'Population standard deviation over dimensions.'],
  stdvar: ['stdvar [by|without (labels)] (v)', 'Population variance over dimensions.'],
  count: ['count [by|without (labels)] (v)', 'Number of elements in the vector.'],
  count_values: ['count_values [by|without (labels)] (label string, v)', 'Number of elements with the same value, value in a new label.'],
  bottomk: ['bottomk [by|without (labels)] (k scalar, v)', 'Smallest k elements by sample value.'],
  topk: ['topk [by|without (labels)] (k scalar, v)', 'Largest k elements by sample value.'],
  quantile: ['quantile [by|without (labels)] (φ scalar, v)', 'φ-quantile (0 ≤ φ ≤ 1) over dimensions.'],
  limitk: ['limitk [by|without (labels)] (k scalar, v)', 'Any k elements (experimental).'],
  limit_ratio: ['limit_ratio [by|without (labels)] (ratio scalar, v)', 'A deterministic share of the elements (experimental).'],
};

export const KEYWORDS = {
  by: 'Aggregate keeping only these labels.',
  without: 'Aggregate dropping these labels.',
  on: 'Match vector elements on these labels only.',
  ignoring: 'Match vector elements ignoring these labels.',
  group_left: 'Many-to-one matching: keep the left side\'s labels.',
  group_right: 'One-to-many matching: keep the right side\'s labels.',
  offset: 'Shift the evaluation time back by a duration.',
  bool: 'Comparison returns 0/1 instead of filtering.',
  and: 'Intersection of two vectors.',
  or: 'Union of two vectors.',
  unless: 'Complement: left elements without a match on the right.',
  atan2: 'Binary arc tangent operator.',
};

export const DURATIONS = ['1m', '5m', '10m', '30m', '1h', '6h', '12h', '1d', '1w', '30s', '15s'];

const OPS = ['=~', '!~', '!=', '==', '>=', '<=', '=', '>', '<', '+', '-', '*', '/', '%', '^', '@', ':'];

/**
 * Splits text into tokens {t: type, s: start, e: end, v: text}. Types: ws,
 * comment, str, num, ident, op, '{', '}', '(', ')', '[', ']', ',', err.
 * Never throws; an unterminated string runs to the end with `open: true`.
 */
export function tokenize(src) {
  const out = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    const s = i;
    if (/\s/.test(c)) {
      while (i < n && /\s/.test(src[i])) i++;
      out.push({ t: 'ws', s, e: i });
    } else if (c === '#') {
      while (i < n && src[i] !== '\n') i++;
      out.push({ t: 'comment', s, e: i });
    } else if (c === '"' || c === "'" || c === '`') {
      i++;
      let closed = false;
      while (i < n) {
        if (src[i] === '\\' && c !== '`') i += 2;
        else if (src[i] === c) {
          i++;
          closed = true;
          break;
        } else i++;
      }
      i = Math.min(i, n);
      out.push({ t: 'str', s, e: i, open: !closed });
    } else if (/[0-9.]/.test(c) && /[0-9.]/.test(src[i + 1] || '') || /[0-9]/.test(c)) {
      const m = /^(0x[0-9a-fA-F]+|(?:\d+(?:ms|[smhdwy]))+|\d*\.?\d+(?:[eE][+-]?\d+)?)/.exec(src.slice(i));
      i += m ? m[0].length : 1;
      out.push({ t: 'num', s, e: i });
    } else if (/[a-zA-Z_:]/.test(c) && !(c === ':' && out.length && out[out.length - 1].t === '[' )) {
      while (i < n && /[a-zA-Z0-9_:]/.test(src[i])) i++;
      // Inf and NaN are numbers.
      const v = src.slice(s, i);
      out.push({ t: /^(inf|nan)$/i.test(v) ? 'num' : 'ident', s, e: i });
    } else if ('{}()[],'.includes(c)) {
      i++;
      out.push({ t: c, s, e: i });
    } else {
      const op = OPS.find((o) => src.startsWith(o, i));
      i += op ? op.length : 1;
      out.push({ t: op ? 'op' : 'err', s, e: i });
    }
  }
  for (const t of out) t.v = src.slice(t.s, t.e);
  return out;
}

const LABEL_LIST_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

/**
 * Assigns a highlighting class to every token: metric, fn, agg, kw, label,
 * str, num, dur, op, brace, comment, or '' (whitespace).
 */
export function classify(tokens) {
  const stack = []; // open brackets: {t, kw} where kw is the keyword before '('
  let prevSig = null;
  const next = (i) => {
    for (let j = i + 1; j < tokens.length; j++) if (tokens[j].t !== 'ws' && tokens[j].t !== 'comment') return tokens[j];
    return null;
  };
  tokens.forEach((tok, i) => {
    const top = stack[stack.length - 1];
    let cls = '';
    switch (tok.t) {
      case 'ws': break;
      case 'comment': cls = 'comment'; break;
      case 'str': cls = 'str'; break;
      case 'num':
        cls = top && top.t === '[' || prevSig && prevSig.t === 'ident' && prevSig.v.toLowerCase() === 'offset' || /[smhdwy]$/.test(tok.v) && !/^0x/i.test(tok.v) ? 'dur' : 'num';
        break;
      case 'ident': {
        const lower = tok.v.toLowerCase();
        const nx = next(i);
        if (top && (top.t === '{' || top.t === '(' && top.labels)) cls = 'label';
        else if (nx && nx.t === '(' && FUNCTIONS[tok.v]) cls = 'fn';
        else if (AGGREGATIONS[lower] && nx && (nx.t === '(' || nx.t === 'ident' && LABEL_LIST_KEYWORDS.has(nx.v.toLowerCase()))) cls = 'agg';
        else if (KEYWORDS[lower]) cls = 'kw';
        else cls = 'metric';
        break;
      }
      case '{': case '[': stack.push({ t: tok.t }); cls = 'brace'; break;
      case '(':
        stack.push({ t: '(', labels: prevSig && prevSig.t === 'ident' && LABEL_LIST_KEYWORDS.has(prevSig.v.toLowerCase()) });
        cls = 'brace';
        break;
      case '}': case ']': case ')': stack.pop(); cls = 'brace'; break;
      case ',': cls = 'op'; break;
      case 'op': cls = 'op'; break;
      default: cls = 'err';
    }
    tok.c = cls;
    if (tok.t !== 'ws' && tok.t !== 'comment') prevSig = tok;
  });
  return tokens;
}

/**
 * What is being typed at `caret` in `src`. Returns one of:
 *  {kind: 'metric', prefix, from}            metric names, functions, keywords
 *  {kind: 'labelName', prefix, from, metric} label names (metric may be '')
 *  {kind: 'labelValue', prefix, from, metric, label, quote} label values
 *  {kind: 'duration', prefix, from}
 *  null when nothing fits (inside a string elsewhere, after a number...).
 * `from` is where the replaced text starts; `metric` is the selector's name.
 */
export function contextAt(src, caret) {
  const toks = tokenize(src.slice(0, caret));
  const stack = [];
  let prevSig = null;
  const sig = [];
  for (const tok of toks) {
    if (tok.t === 'ws' || tok.t === 'comment') continue;
    if (tok.t === '{' || tok.t === '[') stack.push({ t: tok.t, metric: tok.t === '{' && prevSig && prevSig.t === 'ident' ? prevSig.v : '' });
    else if (tok.t === '(') stack.push({ t: '(', labels: !!(prevSig && prevSig.t === 'ident' && LABEL_LIST_KEYWORDS.has(prevSig.v.toLowerCase())) });
    else if (tok.t === '}' || tok.t === ']' || tok.t === ')') stack.pop();
    sig.push(tok);
    prevSig = tok;
  }
  const last = toks[toks.length - 1];
  const top = stack[stack.length - 1];
  const atEnd = last && last.e === caret && last.t !== 'ws';
  if (top && top.t === '{') {
    // Inside a selector's braces.
    if (last && last.t === 'str') {
      if (!last.open) return null;
      const op = sig[sig.length - 2];
      const name = sig[sig.length - 3];
      if (op && op.t === 'op' && name && name.t === 'ident') {
        return { kind: 'labelValue', prefix: last.v.slice(1), from: last.s, metric: top.metric, label: name.v, quote: last.v[0] };
      }
      return null;
    }
    const lastSig = sig[sig.length - 1];
    if (lastSig && lastSig.t === 'op' && ['=', '!=', '=~', '!~'].includes(lastSig.v)) {
      const name = sig[sig.length - 2];
      if (name && name.t === 'ident') return { kind: 'labelValue', prefix: '', from: caret, metric: top.metric, label: name.v, quote: '' };
      return null;
    }
    if (atEnd && last.t === 'ident') return { kind: 'labelName', prefix: last.v, from: last.s, metric: top.metric };
    if (!lastSig || lastSig.t === '{' || lastSig.t === ',') return { kind: 'labelName', prefix: '', from: caret, metric: top.metric };
    return null;
  }
  if (last && last.t === 'str') return null;
  if (top && top.t === '(' && top.labels) {
    if (atEnd && last.t === 'ident') return { kind: 'labelName', prefix: last.v, from: last.s, metric: '' };
    const lastSig = sig[sig.length - 1];
    if (lastSig && (lastSig.t === '(' || lastSig.t === ',')) return { kind: 'labelName', prefix: '', from: caret, metric: '' };
    return null;
  }
  if (top && top.t === '[') {
    if (atEnd && last.t === 'num') return { kind: 'duration', prefix: last.v, from: last.s };
    if (sig[sig.length - 1] && sig[sig.length - 1].t === '[') return { kind: 'duration', prefix: '', from: caret };
    return null;
  }
  if (atEnd && last.t === 'ident') return { kind: 'metric', prefix: last.v, from: last.s };
  return null;
}

/**
 * Parses an API error like "1:5: parse error: unexpected end of input" into
 * {line, col, offset, message}; offset is into `src` (clamped), or null when
 * the message has no position.
 */
export function errorPosition(message, src) {
  // The position may follow a prefix such as 'invalid parameter "query": '.
  const m = /(?:^|: )(\d+):(\d+): (.*)$/s.exec(message || '');
  if (!m) return null;
  const line = Number(m[1]);
  const col = Number(m[2]);
  const lines = src.split('\n');
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  // Columns count characters, 1-based.
  offset = Math.min(offset + Math.max(col - 1, 0), src.length);
  return { line, col, offset, message: m[3] };
}
