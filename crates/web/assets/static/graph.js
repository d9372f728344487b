// Range-query results drawn with uPlot (vendored, global `uPlot`): one line
// per series, a legend that follows the cursor, a tooltip for the nearest
// series, click-to-isolate and stacking.

import { el, clear, seriesName, seriesNameNode, formatValue, parseValue } from './util.js';

/** Above this many series the plot does not dim the others around the nearest one. */
const FOCUS_MAX_SERIES = 20;

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

/** A stable, distinct colour for series `i`. */
export function color(i) {
  if (i < PALETTE.length) return PALETTE[i];
  const hue = (i * 137.508) % 360;
  return `hsl(${hue.toFixed(1)}, 62%, 50%)`;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/**
 * Turns a matrix result into uPlot columns on the step grid [start, end].
 * Returns {xs, ys: Array<Array<number|null>>} where a missing point is null.
 */
export function toColumns(result, start, end, step) {
  const n = Math.floor((end - start) / step + 1e-9) + 1;
  const xs = new Array(n);
  for (let i = 0; i < n; i++) xs[i] = start + i * step;
  const ys = result.map((s) => {
    const col = new Array(n).fill(null);
    for (const [t, v] of s.values || []) {
      const i = Math.round((t - start) / step);
      if (i >= 0 && i < n) {
        const f = parseValue(v);
        col[i] = isFinite(f) ? f : null;
      }
    }
    return col;
  });
  return { xs, ys };
}

/** Cumulative sums of the shown series (hidden ones contribute nothing). */
function stackColumns(ys, shown) {
  const out = [];
  let acc = null;
  ys.forEach((col, i) => {
    if (!shown[i]) {
      out.push(col.map(() => null));
      return;
    }
    const next = col.map((v, j) => (v === null ? (acc ? acc[j] : null) : v + (acc && acc[j] !== null ? acc[j] : 0)));
    out.push(next);
    acc = next;
  });
  return out;
}

export class Graph {
  /**
   * @param {HTMLElement} host where the chart and legend go
   * @param {object} data {result, start, end, step}
   * @param {object} opts {stacked: boolean}
   */
  constructor(host, data, opts) {
    this.host = host;
    this.data = data;
    this.stacked = !!opts.stacked;
    this.series = data.result;
    const { xs, ys } = toColumns(this.series, data.start, data.end, data.step);
    this.xs = xs;
    this.ys = ys;
    this.shown = this.series.map(() => true);
    this.nearest = -1;
    this.hoverIdx = -1;
    this.tt = null;
    this.chartEl = el('div', { class: 'chart' });
    this.tooltip = el('div', { class: 'chart-tooltip', hidden: true });
    this.legend = el('div', { class: 'legend' });
    clear(host).append(el('div', { class: 'chart-wrap' }, this.chartEl, this.tooltip), this.legend);
    this.buildLegend();
    this.build();
    this.resizeObs = new ResizeObserver(() => this.resize());
    this.resizeObs.observe(this.chartEl);
  }

  columns() {
    return [this.xs, ...(this.stacked ? stackColumns(this.ys, this.shown) : this.ys)];
  }

  build() {
    if (this.plot) this.plot.destroy();
    const axis = cssVar('--fg-muted');
    const grid = cssVar('--grid');
    const font = `12px ${cssVar('--font-sans')}`;
    const series = [{}];
    const bands = [];
    let prev = 0;
    this.series.forEach((s, i) => {
      const c = color(i);
      series.push({
        label: seriesName(s.metric),
        stroke: c,
        width: 1.25,
        show: this.shown[i],
        points: { show: false },
        spanGaps: false,
        fill: this.stacked ? withAlpha(c, 0.35) : undefined,
      });
      if (this.stacked && this.shown[i]) {
        if (prev) bands.push({ series: [i + 1, prev], fill: withAlpha(c, 0.35) });
        prev = i + 1;
      }
    });
    const width = Math.max(this.chartEl.clientWidth, 300);
    const opts = {
      width,
      height: 320,
      series,
      bands,
      legend: { show: false },
      scales: {
        x: { time: true },
        // Stacked areas start at zero.
        y: this.stacked ? { range: (u, min, max) => uPlot.rangeNum(Math.min(0, min), max, 0.1, true) } : {},
      },
      // Highlighting the nearest series redraws every series: only worth it for a few.
      cursor: { focus: { prox: this.series.length <= FOCUS_MAX_SERIES ? 24 : -1 }, points: { show: false }, drag: { x: true, y: false } },
      focus: { alpha: 0.35 },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font, size: 60, values: (u, vals) => vals.map(shortNumber) },
      ],
      hooks: {
        setCursor: [(u) => this.onCursor(u)],
        setSelect: [(u) => this.onSelect(u)],
      },
    };
    // eslint-disable-next-line no-undef
    this.plot = new uPlot(opts, this.columns(), this.chartEl);
    // A click (not a drag) on the plot isolates the series nearest the cursor.
    this.plot.over.addEventListener('click', () => {
      if (!this.plot) return;
      if (this.nearest >= 0 && this.plot.select.width < 5) this.isolate(this.nearest, false);
    });
  }

  resize() {
    if (!this.plot) return;
    const w = Math.max(this.chartEl.clientWidth, 300);
    if (w !== this.plot.width) this.plot.setSize({ width: w, height: 320 });
  }

  /** Redraws with the current theme's colours. */
  retheme() {
    this.build();
  }

  setStacked(stacked) {
    this.stacked = stacked;
    this.build();
  }

  /** Zooming by drag tells the panel, which re-queries the new window. */
  onSelect(u) {
    if (u.select.width < 5) return;
    const from = u.posToVal(u.select.left, 'x');
    const to = u.posToVal(u.select.left + u.select.width, 'x');
    u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
    if (this.onZoom) this.onZoom(from, to);
  }

  buildLegend() {
    clear(this.legend);
    this.legendRows = this.series.map((s, i) => {
      const value = el('span', { class: 'legend-value' });
      const row = el('div', { class: 'legend-row', title: 'Click to show only this series; Ctrl/Cmd+click to toggle it', dataset: { i: String(i) } },
        el('span', { class: 'swatch', style: `background:${color(i)}` }),
        seriesNameNode(s.metric),
        value);
      row.addEventListener('click', (e) => this.isolate(i, e.ctrlKey || e.metaKey));
      this.legend.append(row);
      return { row, value };
    });
    if (!this.series.length) this.legend.append(el('div', { class: 'muted' }, 'No data points in this time range.'));
  }

  /** Shows only series `i` (or all again when it already was alone); `toggle` flips just `i`. */
  isolate(i, toggle) {
    if (toggle) this.shown[i] = !this.shown[i];
    else {
      const alone = this.shown[i] && this.shown.every((s, j) => j === i || !s);
      this.shown = this.shown.map((_, j) => alone || j === i);
    }
    this.legendRows.forEach((r, j) => r.row.classList.toggle('hidden', !this.shown[j]));
    if (this.stacked) {
      this.build();
      return;
    }
    this.plot.batch(() => {
      this.shown.forEach((s, j) => {
        if (this.plot.series[j + 1].show !== s) this.plot.setSeries(j + 1, { show: s });
      });
    });
  }

  onCursor(u) {
    const idx = u.cursor.idx;
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.updateHover(u, idx);
    });
  }

  updateHover(u, idx) {
    if (idx === null || idx === undefined || u.cursor.left < 0) {
      if (this.nearest >= 0) this.legendRows[this.nearest].row.classList.remove('focus');
      this.nearest = -1;
      this.tooltip.hidden = true;
      if (this.hoverIdx !== -1) this.legendRows.forEach((r) => setText(r.value, ''));
      this.hoverIdx = -1;
      return;
    }
    let best = -1;
    let bestDist = Infinity;
    const top = u.cursor.top;
    const cols = u.data;
    const changed = idx !== this.hoverIdx;
    this.hoverIdx = idx;
    for (let i = 0; i < this.legendRows.length; i++) {
      const raw = this.ys[i][idx];
      if (changed) setText(this.legendRows[i].value, raw === null ? '' : formatValue(raw));
      if (!this.shown[i]) continue;
      const v = cols[i + 1][idx];
      if (v === null || v === undefined) continue;
      const d = Math.abs(u.valToPos(v, 'y') - top);
      if (d < bestDist) {
        bestDist = d;
        best = i;
      }
    }
    if (this.nearest !== best) {
      if (this.nearest >= 0) this.legendRows[this.nearest].row.classList.remove('focus');
      if (best >= 0) this.legendRows[best].row.classList.add('focus');
    }
    this.nearest = best;
    if (best < 0) {
      this.tooltip.hidden = true;
      return;
    }
    const tt = this.tt || this.buildTooltip();
    if (tt.series !== best) {
      tt.series = best;
      tt.swatch.style.background = color(best);
      clear(tt.name).append(seriesNameNode(this.series[best].metric));
      tt.width = -1;
    }
    if (tt.time !== this.xs[idx]) {
      tt.time = this.xs[idx];
      tt.timeEl.textContent = TIME_FORMAT.format(new Date(this.xs[idx] * 1000));
    }
    setText(tt.value, formatValue(this.ys[best][idx]));
    this.tooltip.hidden = false;
    // Measuring forces a layout: only when the content's width may have changed.
    if (tt.width < 0) tt.width = this.tooltip.offsetWidth;
    const x = u.cursor.left + u.over.offsetLeft;
    const y = u.cursor.top + u.over.offsetTop;
    const left = x + 16 + tt.width > this.chartEl.clientWidth ? x - 16 - tt.width : x + 16;
    this.tooltip.style.transform = `translate(${Math.max(left, 0)}px, ${y + 12}px)`;
  }

  buildTooltip() {
    const swatch = el('span', { class: 'swatch' });
    const name = el('span');
    const timeEl = el('div', { class: 'tt-time' });
    const value = el('b');
    clear(this.tooltip).append(timeEl, el('div', { class: 'tt-series' }, swatch, name), el('div', { class: 'tt-value' }, 'value: ', value));
    this.tt = { swatch, name, timeEl, value, series: -1, time: null, width: -1 };
    return this.tt;
  }

  destroy() {
    if (this.resizeObs) this.resizeObs.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}

const TIME_FORMAT = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function withAlpha(c, a) {
  if (c.startsWith('#')) {
    const n = parseInt(c.slice(1), 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }
  return c.replace('hsl(', 'hsla(').replace(')', `, ${a})`);
}

/** Axis labels: 1.2k, 3.4M, 0.001. */
function shortNumber(v) {
  if (v === null || v === undefined) return '';
  const a = Math.abs(v);
  const units = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [n, u] of units) if (a >= n) return `${+(v / n).toFixed(2)}${u}`;
  if (a !== 0 && a < 1e-3) return v.toExponential(1);
  return String(+v.toFixed(6));
}
