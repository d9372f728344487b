// Small DOM and formatting helpers shared by every page.

/**
 * Creates an element: el('div', {class: 'x', onclick: f}, child, 'text', ...).
 * Attributes starting with "on" become listeners; null/false children are skipped.
 */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** Formats a series' labels as PromQL: name{a="b", ...}. */
export function seriesName(metric) {
  const name = metric.__name__ || '';
  const pairs = Object.keys(metric)
    .filter((k) => k !== '__name__')
    .sort()
    .map((k) => `${k}=${JSON.stringify(metric[k])}`);
  if (!pairs.length) return name || '{}';
  return `${name}{${pairs.join(', ')}}`;
}

/** Labels as DOM: metric name bold, label values highlighted. */
export function seriesNameNode(metric) {
  const n = el('span', { class: 'series-name' });
  if (metric.__name__) n.append(el('b', {}, metric.__name__));
  const keys = Object.keys(metric).filter((k) => k !== '__name__').sort();
  if (!keys.length && metric.__name__) return n;
  n.append('{');
  keys.forEach((k, i) => {
    if (i) n.append(', ');
    n.append(el('span', { class: 'lk' }, k), '=', el('span', { class: 'lv' }, JSON.stringify(metric[k])));
  });
  n.append('}');
  return n;
}

const UNITS = [
  ['y', 365 * 24 * 3600],
  ['w', 7 * 24 * 3600],
  ['d', 24 * 3600],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];

/** Parses a Prometheus duration such as "1h30m" or "90s" into seconds; NaN if invalid. */
export function parseDuration(s) {
  s = String(s || '').trim();
  if (!s) return NaN;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+)(ms|y|w|d|h|m|s)/gy;
  let total = 0;
  let m;
  let pos = 0;
  while ((m = re.exec(s))) {
    total += m[2] === 'ms' ? Number(m[1]) / 1000 : Number(m[1]) * UNITS.find((u) => u[0] === m[2])[1];
    pos = re.lastIndex;
  }
  return pos === s.length && pos > 0 ? total : NaN;
}

/** Formats seconds as a Prometheus duration ("1h30m"). */
export function formatDuration(sec) {
  if (!(sec > 0)) return '0s';
  if (sec < 1) return `${Math.round(sec * 1000)}ms`;
  let out = '';
  let rest = Math.round(sec);
  for (const [u, n] of UNITS) {
    if (rest >= n) {
      out += `${Math.floor(rest / n)}${u}`;
      rest %= n;
    }
  }
  return out;
}

/** Seconds formatted for humans: "1.23s", "45ms", "3m 2s". */
export function humanSeconds(sec) {
  if (!isFinite(sec)) return String(sec);
  if (sec < 1e-3) return `${(sec * 1e6).toFixed(0)}µs`;
  if (sec < 1) return `${(sec * 1e3).toFixed(1)}ms`;
  if (sec < 60) return `${sec.toFixed(3)}s`;
  return formatDuration(sec);
}

/** "12.3s ago" for an RFC 3339 time; "never" for the zero time. */
export function ago(rfc3339, now = Date.now()) {
  const t = Date.parse(rfc3339);
  if (!isFinite(t) || t <= 0 || rfc3339.startsWith('0001-')) return 'never';
  const d = Math.max(0, (now - t) / 1000);
  return `${d < 60 ? d.toFixed(1) + 's' : formatDuration(d)} ago`;
}

/** UTC date-time "YYYY-MM-DD HH:mm:ss" (the format of Prometheus's end_input). */
export function formatTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}

/** Parses "YYYY-MM-DD HH:mm[:ss]" (UTC), an RFC 3339 time or Unix seconds; NaN if invalid. */
export function parseTime(s) {
  s = String(s || '').trim();
  if (!s) return NaN;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d)(?::(\d\d)(?:\.\d+)?)?$/.exec(s);
  if (m) return Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  return Date.parse(s);
}

/** Formats a sample value the way Prometheus prints it. */
export function formatValue(v) {
  if (typeof v === 'string') return v;
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Parses a sample value string from the API ("+Inf", "NaN", "1.5"). */
export function parseValue(s) {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

export function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
