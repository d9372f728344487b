// The query page: several panels, each an expression with a Table and a
// Graph view. The page state lives in the URL query string in Prometheus's
// format (g0.expr, g0.tab, g0.range_input, ...), so links reproduce it.

import { el, clear, seriesNameNode, formatDuration, parseDuration, formatTime, parseTime, humanSeconds, debounce } from './util.js';
import { api } from './api.js';
import { Editor } from './editor.js';
import { errorPosition } from './promql.js';
import { Graph } from './graph.js';
import { toCSV, toJSON, download, fileName } from './export.js';

const RANGE_STEPS = [60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 604800, 1209600, 2419200, 7257600, 31536000];
const MAX_TABLE_ROWS = 10000;

/** Panel options as stored in the URL. */
function defaults() {
  return { expr: '', tab: 'table', range: 3600, end: null, moment: null, step: null, stacked: false };
}

/** Reads panels g0, g1, ... from a query string. */
export function parseState(search) {
  const params = new URLSearchParams(search);
  const panels = [];
  for (let i = 0; params.has(`g${i}.expr`) || params.has(`g${i}.tab`) || params.has(`g${i}.range_input`); i++) {
    const g = (k) => params.get(`g${i}.${k}`);
    const p = defaults();
    p.expr = g('expr') || '';
    const tab = g('tab');
    // Prometheus's links use 0 for the graph and 1 for the table.
    p.tab = tab === '0' || tab === 'graph' ? 'graph' : 'table';
    const r = parseDuration(g('range_input'));
    if (r > 0) p.range = r;
    const end = parseTime(g('end_input'));
    if (isFinite(end)) p.end = end;
    const moment = parseTime(g('moment_input'));
    if (isFinite(moment)) p.moment = moment;
    const step = parseDuration(g('step_input'));
    if (step > 0) p.step = step;
    p.stacked = g('stacked') === '1';
    panels.push(p);
  }
  return panels;
}

/** Writes panels as a query string (without '?'). */
export function formatState(panels) {
  const params = new URLSearchParams();
  panels.forEach((p, i) => {
    params.set(`g${i}.expr`, p.expr);
    params.set(`g${i}.tab`, p.tab === 'graph' ? '0' : '1');
    params.set(`g${i}.stacked`, p.stacked ? '1' : '0');
    params.set(`g${i}.range_input`, formatDuration(p.range));
    if (p.end !== null) params.set(`g${i}.end_input`, formatTime(p.end));
    if (p.moment !== null) params.set(`g${i}.moment_input`, formatTime(p.moment));
    if (p.step !== null) params.set(`g${i}.step_input`, String(p.step));
  });
  return params.toString();
}

/** Prometheus's default resolution: range / 250, at least 1s. */
function autoStep(range) {
  return Math.max(Math.floor(range / 250), 1);
}

class Panel {
  constructor(page, state) {
    this.page = page;
    this.s = state;
    this.result = null; // {kind: 'table'|'graph', data, expr}
    this.graph = null;
    this.abort = null;
    this.editor = new Editor({
      value: state.expr,
      onExecute: () => this.execute(),
      onChange: (v) => {
        this.s.expr = v;
        this.page.saveSoon();
        this.lintSoon();
      },
    });
    this.lintSoon = debounce(() => this.lint(), 500);
    this.lintId = 0;
    this.error = el('div', { class: 'error', hidden: true, role: 'alert' });
    this.warnings = el('div', { class: 'warning', hidden: true });
    this.stats = el('span', { class: 'stats muted' });
    this.tabs = {
      table: el('button', { class: 'tab', type: 'button', onclick: () => this.setTab('table') }, 'Table'),
      graph: el('button', { class: 'tab', type: 'button', onclick: () => this.setTab('graph') }, 'Graph'),
    };
    this.body = el('div', { class: 'panel-body' });
    this.root = el('section', { class: 'panel card' },
      el('div', { class: 'editor-row' },
        this.editor.root,
        el('button', { class: 'primary execute', type: 'button', onclick: () => this.execute() }, 'Execute'),
        el('button', { class: 'format', type: 'button', title: 'Format the expression', onclick: () => this.format() }, 'Format'),
        el('button', { class: 'icon remove', type: 'button', title: 'Remove panel', 'aria-label': 'Remove panel', onclick: () => this.page.remove(this) }, '×')),
      this.error,
      this.warnings,
      el('div', { class: 'tab-row' },
        el('div', { class: 'tabs', role: 'tablist' }, this.tabs.table, this.tabs.graph),
        this.stats,
        el('div', { class: 'export' },
          el('button', { type: 'button', class: 'export-csv', title: 'Download the result as CSV', onclick: () => this.export('csv') }, 'CSV'),
          el('button', { type: 'button', class: 'export-json', title: 'Download the result as JSON', onclick: () => this.export('json') }, 'JSON'))),
      this.body);
    this.renderBody();
  }

  setTab(tab) {
    if (this.s.tab === tab) return;
    this.s.tab = tab;
    this.page.save();
    this.renderBody();
    if (this.s.expr.trim()) this.execute();
  }

  /** Builds the controls of the current tab; keeps the result area. */
  renderBody() {
    for (const [k, b] of Object.entries(this.tabs)) b.classList.toggle('active', k === this.s.tab);
    this.destroyGraph();
    this.out = el('div', { class: 'result' });
    clear(this.body).append(this.s.tab === 'graph' ? this.graphControls() : this.tableControls(), this.out);
    if (this.result && this.result.kind === this.s.tab) this.show();
    else if (!this.s.expr.trim()) this.out.append(el('div', { class: 'muted empty' }, 'No data queried yet.'));
  }

  tableControls() {
    const input = el('input', { type: 'text', class: 'time-input', placeholder: 'Evaluation time (now)', value: this.s.moment === null ? '' : formatTime(this.s.moment), title: 'UTC, YYYY-MM-DD HH:mm:ss' });
    const set = (ms) => {
      this.s.moment = ms;
      input.value = ms === null ? '' : formatTime(ms);
      this.page.save();
      this.execute();
    };
    input.addEventListener('change', () => {
      const t = parseTime(input.value);
      set(isFinite(t) ? t : null);
    });
    const shift = (dir) => set((this.s.moment ?? Date.now()) + dir * this.s.range * 1000);
    return el('div', { class: 'controls' },
      el('button', { type: 'button', title: 'Back by the graph range', onclick: () => shift(-1) }, '‹'),
      input,
      el('button', { type: 'button', title: 'Forward by the graph range', onclick: () => shift(1) }, '›'),
      el('button', { type: 'button', title: 'Evaluate at the current time', onclick: () => set(null) }, 'now'));
  }

  graphControls() {
    const range = el('input', { type: 'text', class: 'range-input', value: formatDuration(this.s.range), title: 'Range, e.g. 1h, 30m, 2d', 'aria-label': 'Range' });
    const setRange = (sec) => {
      this.s.range = sec;
      range.value = formatDuration(sec);
      step.placeholder = `Res. (${autoStep(sec)}s)`;
      this.page.save();
      this.execute();
    };
    range.addEventListener('change', () => {
      const r = parseDuration(range.value);
      if (r > 0) setRange(r);
      else range.value = formatDuration(this.s.range);
    });
    const zoom = (dir) => {
      const i = RANGE_STEPS.findIndex((r) => r >= this.s.range);
      const j = dir < 0 ? (RANGE_STEPS[i] === this.s.range ? i - 1 : i - 1) : RANGE_STEPS[i] === this.s.range ? i + 1 : i;
      setRange(RANGE_STEPS[Math.min(Math.max(j, 0), RANGE_STEPS.length - 1)]);
    };
    const end = el('input', { type: 'text', class: 'time-input', placeholder: 'End time (now)', value: this.s.end === null ? '' : formatTime(this.s.end), title: 'UTC, YYYY-MM-DD HH:mm:ss', 'aria-label': 'End time' });
    const setEnd = (ms) => {
      this.s.end = ms;
      end.value = ms === null ? '' : formatTime(ms);
      this.page.save();
      this.execute();
    };
    end.addEventListener('change', () => {
      const t = parseTime(end.value);
      setEnd(isFinite(t) ? t : null);
    });
    const shiftEnd = (dir) => setEnd((this.s.end ?? Date.now()) + dir * this.s.range * 500);
    const step = el('input', { type: 'text', class: 'step-input', placeholder: `Res. (${autoStep(this.s.range)}s)`, value: this.s.step === null ? '' : String(this.s.step), title: 'Resolution: query step in seconds or as a duration; empty for automatic', 'aria-label': 'Resolution' });
    step.addEventListener('change', () => {
      const v = parseDuration(step.value);
      this.s.step = v > 0 ? v : null;
      if (!(v > 0)) step.value = '';
      this.page.save();
      this.execute();
    });
    const unstacked = el('button', { type: 'button', class: 'seg', onclick: () => this.setStacked(false) }, 'Unstacked');
    const stacked = el('button', { type: 'button', class: 'seg', onclick: () => this.setStacked(true) }, 'Stacked');
    this.stackButtons = { unstacked, stacked };
    this.markStacked();
    return el('div', { class: 'controls' },
      el('span', { class: 'group' },
        el('button', { type: 'button', title: 'Shrink the range', onclick: () => zoom(-1) }, '−'),
        range,
        el('button', { type: 'button', title: 'Grow the range', onclick: () => zoom(1) }, '+')),
      el('span', { class: 'group' },
        el('button', { type: 'button', title: 'Back by half the range', onclick: () => shiftEnd(-1) }, '‹'),
        end,
        el('button', { type: 'button', title: 'Forward by half the range', onclick: () => shiftEnd(1) }, '›'),
        el('button', { type: 'button', title: 'End at the current time', onclick: () => setEnd(null) }, 'now')),
      step,
      el('span', { class: 'group segmented' }, unstacked, stacked));
  }

  markStacked() {
    if (!this.stackButtons) return;
    this.stackButtons.stacked.classList.toggle('active', this.s.stacked);
    this.stackButtons.unstacked.classList.toggle('active', !this.s.stacked);
  }

  setStacked(v) {
    this.s.stacked = v;
    this.markStacked();
    this.page.save();
    if (this.graph) this.graph.setStacked(v);
  }

  /** Runs the expression for the current tab and shows the answer. */
  async execute() {
    const expr = this.editor.value;
    this.s.expr = expr;
    this.page.save();
    if (!expr.trim()) return;
    if (this.abort) this.abort.abort();
    const abort = new AbortController();
    this.abort = abort;
    this.error.hidden = true;
    this.lintId++;
    this.editor.setError(null, '');
    this.root.classList.add('loading');
    const started = performance.now();
    const tab = this.s.tab;
    try {
      let data;
      if (tab === 'graph') {
        const endMs = this.s.end ?? Date.now();
        const end = Math.floor(endMs / 1000);
        const step = this.s.step ?? autoStep(this.s.range);
        const start = end - this.s.range;
        data = await api('query_range', { query: expr, start, end, step }, { signal: abort.signal });
        this.result = { kind: 'graph', data, expr, start, end, step };
      } else {
        const time = this.s.moment === null ? Date.now() / 1000 : this.s.moment / 1000;
        data = await api('query', { query: expr, time: time.toFixed(3) }, { signal: abort.signal });
        this.result = { kind: 'table', data, expr, time };
      }
      this.result.elapsed = (performance.now() - started) / 1000;
      if (this.s.tab === tab) this.show();
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.showError(e.message, expr);
    } finally {
      if (this.abort === abort) {
        this.abort = null;
        this.root.classList.remove('loading');
      }
    }
  }

  /** Checks the expression as it is typed and marks a syntax error's position. */
  async lint() {
    const expr = this.editor.value;
    const id = ++this.lintId;
    if (!expr.trim()) return;
    try {
      await api('parse_query', { query: expr });
      if (id === this.lintId && this.editor.value === expr) this.editor.setError(null, '');
    } catch (e) {
      if (id !== this.lintId || this.editor.value !== expr) return;
      const pos = errorPosition(e.message, expr);
      if (pos) this.editor.setError(pos.offset, `${pos.line}:${pos.col}: ${pos.message}`);
    }
  }

  /** Replaces the expression by the server's canonical formatting of it. */
  async format() {
    const expr = this.editor.value;
    if (!expr.trim()) return;
    try {
      const out = await api('format_query', { query: expr });
      this.error.hidden = true;
      this.editor.value = out;
      this.s.expr = out;
      this.page.save();
    } catch (e) {
      this.showError(e.message, expr);
    }
  }

  showError(message, expr) {
    this.lintId++;
    const pos = errorPosition(message, expr);
    clear(this.error);
    if (pos) {
      this.editor.setError(pos.offset, `${pos.line}:${pos.col}: ${pos.message}`);
      const line = expr.split('\n')[pos.line - 1] ?? '';
      this.error.append(
        el('div', {}, el('b', {}, 'Error: '), message),
        el('pre', { class: 'error-context' }, line, '\n', ' '.repeat(Math.max(pos.col - 1, 0)), '^'));
    } else {
      this.error.append(el('b', {}, 'Error: '), message);
    }
    this.error.hidden = false;
  }

  show() {
    const r = this.result;
    const data = r.data;
    const warnings = data.__warnings || [];
    this.warnings.hidden = !warnings.length;
    clear(this.warnings).append(...warnings.map((w) => el('div', {}, `Warning: ${w}`)));
    const count = Array.isArray(data.result) ? data.result.length : 1;
    this.stats.textContent = `Load time: ${humanSeconds(r.elapsed)} · Result series: ${count}`;
    clear(this.out);
    this.destroyGraph();
    if (r.kind === 'graph') {
      if (data.resultType !== 'matrix') {
        this.out.append(el('div', { class: 'error' }, `Cannot graph a result of type ${data.resultType}.`));
        return;
      }
      if (!data.result.length) {
        this.out.append(el('div', { class: 'muted empty' }, 'Empty query result: no data points in this time range.'));
        return;
      }
      const host = el('div', { class: 'graph' });
      this.out.append(host);
      this.graph = new Graph(host, { result: data.result, start: r.start, end: r.end, step: r.step }, { stacked: this.s.stacked });
      this.graph.onZoom = (from, to) => {
        this.s.end = Math.round(to * 1000);
        this.s.range = Math.max(Math.round(to - from), 1);
        this.renderBody();
        this.page.save();
        this.execute();
      };
    } else {
      this.out.append(renderTable(data));
    }
  }

  destroyGraph() {
    if (this.graph) this.graph.destroy();
    this.graph = null;
  }

  export(kind) {
    const r = this.result;
    if (!r) {
      this.showError('Execute a query first, then export its result.', '');
      return;
    }
    if (kind === 'csv') download(fileName(r.expr, 'csv'), toCSV(r.data), 'text/csv');
    else download(fileName(r.expr, 'json'), toJSON(r.data), 'application/json');
  }

  retheme() {
    if (this.graph) this.graph.retheme();
  }
}

/** The Table view of an instant query result. */
function renderTable(data) {
  const { resultType, result } = data;
  if (resultType === 'scalar' || resultType === 'string') {
    return el('table', { class: 'data' }, el('tbody', {}, el('tr', {}, el('td', {}, resultType), el('td', { class: 'num' }, String(result[1])))));
  }
  if (!result.length) return el('div', { class: 'muted empty' }, 'Empty query result');
  const tbody = el('tbody');
  result.slice(0, MAX_TABLE_ROWS).forEach((s) => {
    const value = resultType === 'vector'
      ? String(s.value[1])
      : (s.values || []).map(([t, v]) => `${v} @${t}`).join('\n');
    tbody.append(el('tr', {}, el('td', { class: 'labels' }, seriesNameNode(s.metric)), el('td', { class: 'num' }, value)));
  });
  const out = el('div', { class: 'table-wrap' });
  if (result.length > MAX_TABLE_ROWS) out.append(el('div', { class: 'warning' }, `Showing ${MAX_TABLE_ROWS} of ${result.length} series; export to get all of them.`));
  out.append(el('table', { class: 'data' }, el('thead', {}, el('tr', {}, el('th', {}, 'Series'), el('th', { class: 'num' }, 'Value'))), tbody));
  return out;
}

export class QueryPage {
  constructor() {
    this.root = el('div', { class: 'query-page' });
    this.list = el('div', { class: 'panels' });
    this.root.append(this.list, el('button', { type: 'button', class: 'add-panel', onclick: () => this.add(defaults(), true) }, '+ Add panel'));
    const states = parseState(location.search);
    this.panels = [];
    (states.length ? states : [defaults()]).forEach((s) => this.add(s, false));
    this.saveSoon = debounce(() => this.save(), 400);
    // Run what a link asked for.
    for (const p of this.panels) if (p.s.expr.trim()) p.execute();
  }

  add(state, focus) {
    const p = new Panel(this, state);
    this.panels.push(p);
    this.list.append(p.root);
    if (focus) p.editor.focus();
    this.save();
    return p;
  }

  remove(panel) {
    panel.destroyGraph();
    panel.root.remove();
    this.panels = this.panels.filter((p) => p !== panel);
    if (!this.panels.length) this.add(defaults(), true);
    this.save();
  }

  /** Writes the page state into the URL (without adding history entries). */
  save() {
    if (!this.panels) return;
    const qs = formatState(this.panels.map((p) => p.s));
    const url = `?${qs}${location.hash}`;
    if (`?${qs}` !== location.search) history.replaceState(null, '', url);
  }

  retheme() {
    this.panels.forEach((p) => p.retheme());
  }
}
