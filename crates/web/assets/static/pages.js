// The read-only pages: Targets, Service discovery, Alerts, Rules and Status.
// Each `render*` fills a container from the API and returns nothing.

import { el, clear, ago, humanSeconds, formatTime, formatDuration } from './util.js';
import { api } from './api.js';

function labelChips(labels) {
  return el('div', { class: 'chips' }, Object.keys(labels).sort().map((k) => el('span', { class: 'chip' }, `${k}="${labels[k]}"`)));
}

function loading(root) {
  clear(root).append(el('div', { class: 'muted' }, 'Loading…'));
}

function failed(root, e) {
  clear(root).append(el('div', { class: 'error' }, el('b', {}, 'Error: '), e.message));
}

function header(title, ...extra) {
  return el('div', { class: 'page-header' }, el('h1', {}, title), ...extra);
}

/** Groups items by their scrapePool, pools sorted by name. */
function byPool(items) {
  const m = new Map();
  for (const t of items) {
    if (!m.has(t.scrapePool)) m.set(t.scrapePool, []);
    m.get(t.scrapePool).push(t);
  }
  return [...m.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

const HEALTHS = ['up', 'down', 'unknown'];

export async function renderTargets(root) {
  loading(root);
  let data;
  try {
    data = await api('targets', { state: 'active' });
  } catch (e) {
    return failed(root, e);
  }
  const targets = data.activeTargets || [];
  const show = { up: true, down: true, unknown: true };
  const search = el('input', { type: 'search', class: 'filter', placeholder: 'Filter by endpoint or labels', 'aria-label': 'Filter targets' });
  const boxes = HEALTHS.map((h) => {
    const cb = el('input', { type: 'checkbox', checked: true, onchange: () => { show[h] = cb.checked; draw(); } });
    return el('label', { class: `health-filter ${h}` }, cb, ` ${h}`);
  });
  const counts = el('span', { class: 'muted' });
  const list = el('div', { class: 'pools' });
  search.addEventListener('input', () => draw());
  clear(root).append(header('Targets', el('div', { class: 'filters' }, ...boxes, search, counts)), list);

  function matches(t, q) {
    if (!show[t.health] && !(t.health !== 'up' && t.health !== 'down' && show.unknown)) return false;
    if (!q) return true;
    const hay = [t.scrapeUrl, t.lastError, ...Object.entries(t.labels).map(([k, v]) => `${k}="${v}"`)].join(' ').toLowerCase();
    return q.split(/\s+/).every((w) => hay.includes(w));
  }

  function draw() {
    const q = search.value.trim().toLowerCase();
    clear(list);
    const now = Date.now();
    let shown = 0;
    for (const [pool, ts] of byPool(targets)) {
      const visible = ts.filter((t) => matches(t, q));
      if (!visible.length) continue;
      shown += visible.length;
      const up = ts.filter((t) => t.health === 'up').length;
      const tbody = el('tbody');
      for (const t of visible) {
        tbody.append(el('tr', { class: `target ${t.health}` },
          el('td', {}, el('a', { href: t.scrapeUrl, target: '_blank', rel: 'noopener' }, t.scrapeUrl)),
          el('td', {}, el('span', { class: `badge ${t.health}` }, t.health.toUpperCase())),
          el('td', {}, labelChips(t.labels)),
          el('td', { title: t.lastScrape }, ago(t.lastScrape, now)),
          el('td', { class: 'num' }, humanSeconds(t.lastScrapeDuration)),
          el('td', { class: 'target-error' }, t.lastError ? el('span', { class: 'error-text' }, t.lastError) : '')));
      }
      const details = el('details', { class: 'pool card', open: true },
        el('summary', {}, el('span', { class: 'pool-name' }, pool), el('span', { class: `pool-count ${up === ts.length ? 'ok' : 'bad'}` }, `${up}/${ts.length} up`)),
        el('table', { class: 'data' },
          el('thead', {}, el('tr', {}, ['Endpoint', 'State', 'Labels', 'Last scrape', 'Scrape duration', 'Error'].map((h) => el('th', {}, h)))),
          tbody));
      list.append(details);
    }
    counts.textContent = `${shown} of ${targets.length} targets`;
    if (!targets.length) list.append(el('div', { class: 'muted empty' }, 'No targets yet: they appear after service discovery reports them.'));
    else if (!shown) list.append(el('div', { class: 'muted empty' }, 'No target matches the filter.'));
  }
  draw();
}

export async function renderServiceDiscovery(root) {
  loading(root);
  let data;
  try {
    data = await api('targets');
  } catch (e) {
    return failed(root, e);
  }
  const all = [...(data.activeTargets || []).map((t) => ({ ...t, dropped: false })), ...(data.droppedTargets || []).map((t) => ({ ...t, dropped: true }))];
  const pools = byPool(all);
  const nav = el('ul', { class: 'sd-index' }, pools.map(([pool, ts]) => el('li', {}, el('a', { href: `#/service-discovery`, onclick: (e) => { e.preventDefault(); document.getElementById(`sd-${pool}`)?.scrollIntoView(); } }, pool), ` (${ts.filter((t) => !t.dropped).length} active / ${ts.length} discovered)`)));
  const body = el('div');
  clear(root).append(header('Service discovery'), nav, body);
  for (const [pool, ts] of pools) {
    const tbody = el('tbody');
    for (const t of ts) {
      tbody.append(el('tr', { class: t.dropped ? 'dropped' : '' },
        el('td', {}, labelChips(t.discoveredLabels)),
        el('td', {}, t.dropped ? el('span', { class: 'badge dropped' }, 'Dropped') : labelChips(t.labels))));
    }
    body.append(el('details', { class: 'pool card', open: true, id: `sd-${pool}` },
      el('summary', {}, el('span', { class: 'pool-name' }, pool)),
      el('table', { class: 'data sd' }, el('thead', {}, el('tr', {}, el('th', {}, 'Discovered labels'), el('th', {}, 'Target labels'))), tbody)));
  }
  if (!pools.length) body.append(el('div', { class: 'muted empty' }, 'Nothing discovered yet.'));
}

const ALERT_STATES = ['inactive', 'pending', 'firing'];

function kvList(obj, cls) {
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return '';
  return el('dl', { class: cls }, keys.flatMap((k) => [el('dt', {}, k), el('dd', {}, obj[k])]));
}

function durationLine(key, sec) {
  return sec ? `\n${key}: ${formatDuration(sec)}` : '';
}

function labelsYaml(key, obj) {
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return '';
  return `\n${key}:\n` + keys.map((k) => `  ${k}: ${JSON.stringify(obj[k])}`).join('\n');
}

/** An alerting rule as its rule file would say it. */
function alertRuleText(r) {
  return `alert: ${r.name}\nexpr: ${r.query}${durationLine('for', r.duration)}${durationLine('keep_firing_for', r.keepFiringFor)}${labelsYaml('labels', r.labels)}${labelsYaml('annotations', r.annotations)}`;
}

function healthBadge(h) {
  const health = h || 'unknown';
  return el('span', { class: `badge health ${health}` }, health);
}

export async function renderAlerts(root) {
  loading(root);
  let data;
  try {
    data = await api('rules', { type: 'alert' });
  } catch (e) {
    return failed(root, e);
  }
  const groups = (data.groups || []).filter((g) => g.rules && g.rules.length);
  const show = { inactive: true, pending: true, firing: true };
  const all = groups.flatMap((g) => g.rules);
  const count = (st) => all.filter((r) => r.state === st).length;
  const boxes = ALERT_STATES.map((st) => {
    const cb = el('input', { type: 'checkbox', checked: true, onchange: () => { show[st] = cb.checked; draw(); } });
    return el('label', { class: `state-filter ${st}` }, cb, ` ${st[0].toUpperCase()}${st.slice(1)} (${count(st)})`);
  });
  const search = el('input', { type: 'search', class: 'filter', placeholder: 'Filter by name or labels', 'aria-label': 'Filter alerts' });
  search.addEventListener('input', () => draw());
  const list = el('div');
  clear(root).append(header('Alerts', el('div', { class: 'filters' }, ...boxes, search)), list);
  if (!groups.length) {
    list.append(el('div', { class: 'card empty-state' }, el('h2', {}, 'No alerting rules'), el('p', { class: 'muted' }, 'No alerting rules are configured. Alerts defined in rule files listed under rule_files in the configuration show up here.')));
    return;
  }
  function matches(r, q) {
    if (!show[r.state]) return false;
    if (!q) return true;
    const hay = [r.name, ...(r.alerts || []).flatMap((a) => Object.entries(a.labels).map(([k, v]) => `${k}="${v}"`))].join(' ').toLowerCase();
    return q.split(/\s+/).every((w) => hay.includes(w));
  }
  function draw() {
    const q = search.value.trim().toLowerCase();
    clear(list);
    const now = Date.now();
    let shown = 0;
    for (const g of groups) {
      const rules = g.rules.filter((r) => matches(r, q));
      if (!rules.length) continue;
      shown += rules.length;
      list.append(el('section', { class: 'card alert-group' }, el('h2', {}, `${g.file} › ${g.name}`),
        rules.map((r) => {
          const alerts = r.alerts || [];
          const tbody = el('tbody', {}, alerts.map((a) => el('tr', { class: `alert-instance ${a.state}` },
            el('td', {}, labelChips(a.labels)),
            el('td', {}, el('span', { class: `badge ${a.state}` }, a.state.toUpperCase())),
            el('td', { title: a.activeAt || '' }, a.activeAt ? ago(a.activeAt, now) : ''),
            el('td', { class: 'num' }, a.value),
            el('td', {}, kvList(a.annotations, 'annotations')))));
          return el('details', { class: `alert-rule ${r.state}`, open: r.state !== 'inactive' },
            el('summary', {}, el('span', { class: `badge ${r.state}` }, r.state.toUpperCase()), ' ', el('span', { class: 'rule-name' }, r.name), el('span', { class: 'muted' }, ` (${alerts.length} active)`),
              r.health === 'err' ? el('span', { class: 'error-text' }, ` ${r.lastError || ''}`) : ''),
            el('pre', { class: 'rule' }, alertRuleText(r)),
            alerts.length ? el('table', { class: 'data alerts' },
              el('thead', {}, el('tr', {}, ['Labels', 'State', 'Active since', 'Value', 'Annotations'].map((h) => el('th', {}, h)))), tbody) : '');
        })));
    }
    if (!shown) list.append(el('div', { class: 'muted empty' }, 'No alerting rule matches the filter.'));
  }
  draw();
}

/** The worst health of a group's rules: err, then unknown, then ok. */
function groupHealth(g) {
  const hs = (g.rules || []).map((r) => r.health);
  return hs.includes('err') ? 'err' : hs.includes('unknown') ? 'unknown' : 'ok';
}

export async function renderRules(root) {
  loading(root);
  let data;
  try {
    data = await api('rules');
  } catch (e) {
    return failed(root, e);
  }
  const groups = data.groups || [];
  clear(root).append(header('Rules'));
  if (!groups.length) {
    root.append(el('div', { class: 'card empty-state' }, el('h2', {}, 'No rule groups'), el('p', { class: 'muted' }, 'No recording or alerting rules are loaded.')));
    return;
  }
  const now = Date.now();
  for (const g of groups) {
    const tbody = el('tbody');
    for (const r of g.rules || []) {
      const text = r.type === 'alerting' ? alertRuleText(r) : `record: ${r.name}\nexpr: ${r.query}${labelsYaml('labels', r.labels)}`;
      tbody.append(el('tr', { class: `rule-row ${r.health || 'unknown'}` },
        el('td', {}, el('pre', { class: 'rule' }, text)),
        el('td', {}, healthBadge(r.health)),
        el('td', { class: 'error-text' }, r.lastError || ''),
        el('td', { title: r.lastEvaluation || '' }, r.lastEvaluation ? ago(r.lastEvaluation, now) : ''),
        el('td', { class: 'num' }, r.evaluationTime !== undefined ? humanSeconds(r.evaluationTime) : '')));
    }
    const health = groupHealth(g);
    root.append(el('section', { class: `card rule-group ${health}` },
      el('div', { class: 'page-header' }, el('h2', {}, `${g.file} › ${g.name}`),
        el('span', { class: 'group-meta muted' }, healthBadge(health),
          ` interval ${formatDuration(g.interval)}`, g.limit ? `, limit ${g.limit}` : '',
          `, last evaluation ${ago(g.lastEvaluation, now)}, took ${humanSeconds(g.evaluationTime)}`)),
      el('table', { class: 'data' }, el('thead', {}, el('tr', {}, ['Rule', 'Health', 'Error', 'Last evaluation', 'Evaluation time'].map((h) => el('th', {}, h)))), tbody)));
  }
}

function kvTable(obj, fmt = (k, v) => v) {
  return el('table', { class: 'data kv' }, el('tbody', {}, Object.keys(obj).map((k) => el('tr', {}, el('th', {}, k), el('td', {}, String(fmt(k, obj[k]) ?? ''))))));
}

function topTable(title, rows, col) {
  return el('div', { class: 'top' }, el('h3', {}, title),
    rows && rows.length
      ? el('table', { class: 'data' }, el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', { class: 'num' }, col))),
        el('tbody', {}, rows.map((r) => el('tr', {}, el('td', {}, r.name), el('td', { class: 'num' }, String(r.value))))))
      : el('div', { class: 'muted' }, 'None'));
}

/** Bytes for humans, in binary units: "512 B", "41.2 MiB". */
function humanBytes(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** Build information under readable names (goVersion holds the Rust compiler's version). */
function buildRows(b) {
  return {
    Version: b.version,
    Revision: b.revision,
    Branch: b.branch,
    'Build user': b.buildUser,
    'Build date': b.buildDate,
    'Rust version': b.goVersion,
  };
}

/**
 * Koban's runtime figures. The JSON also carries Prometheus's Go runtime
 * fields (goroutineCount, GOGC, GODEBUG, GOMEMLIMIT) for API clients; they
 * mean nothing for Koban and are not shown.
 */
function runtimeRows(r) {
  const num = (v) => (typeof v === 'number' ? v : null);
  const files = num(r.openFiles) === null ? '' : num(r.maxOpenFiles) === null ? String(r.openFiles) : `${r.openFiles} of ${r.maxOpenFiles}`;
  return {
    'Start time': r.startTime,
    Uptime: num(r.uptimeSeconds) === null ? '' : formatDuration(r.uptimeSeconds),
    'Working directory': r.CWD,
    'Configuration reload': r.reloadConfigSuccess === undefined ? '' : r.reloadConfigSuccess ? 'Successful' : 'Unsuccessful',
    'Last successful configuration reload': r.lastConfigTime,
    Threads: r.threads,
    'Open files': files,
    'Resident memory': humanBytes(r.rssBytes),
    CPUs: r.GOMAXPROCS,
    'Storage path': r.storagePath,
    'Storage retention': r.storageRetention,
  };
}

export async function renderStatus(root) {
  loading(root);
  let build, runtime, flags, config, tsdb;
  try {
    [build, runtime, flags, config, tsdb] = await Promise.all([
      api('status/buildinfo'), api('status/runtimeinfo'), api('status/flags'), api('status/config'), api('status/tsdb'),
    ]);
  } catch (e) {
    return failed(root, e);
  }
  const flagFilter = el('input', { type: 'search', class: 'filter', placeholder: 'Filter flags', 'aria-label': 'Filter flags' });
  const flagBody = el('div');
  const drawFlags = () => {
    const q = flagFilter.value.trim().toLowerCase();
    const shown = Object.fromEntries(Object.entries(flags).filter(([k, v]) => !q || k.toLowerCase().includes(q) || String(v).toLowerCase().includes(q)).sort(([a], [b]) => a.localeCompare(b)));
    clear(flagBody).append(kvTable(shown));
  };
  flagFilter.addEventListener('input', drawFlags);
  drawFlags();
  const head = tsdb.headStats || {};
  const headRows = {
    'Number of series': head.numSeries,
    'Number of label pairs': head.numLabelPairs,
    'Number of chunks': head.chunkCount,
    'Min time': head.minTime ? `${formatTime(head.minTime)} (${head.minTime})` : '',
    'Max time': head.maxTime ? `${formatTime(head.maxTime)} (${head.maxTime})` : '',
  };
  const copy = el('button', { type: 'button', onclick: () => navigator.clipboard && navigator.clipboard.writeText(config.yaml) }, 'Copy');
  clear(root).append(
    header('Status'),
    el('nav', { class: 'toc' }, ['Build', 'Runtime', 'TSDB', 'Flags', 'Configuration'].map((s) => el('a', { href: '#/status', onclick: (e) => { e.preventDefault(); document.getElementById(`st-${s}`)?.scrollIntoView(); } }, s))),
    el('div', { class: 'grid2' },
      el('section', { class: 'card', id: 'st-Build' }, el('h2', {}, 'Build information'), kvTable(buildRows(build))),
      el('section', { class: 'card', id: 'st-Runtime' }, el('h2', {}, 'Runtime information'), kvTable(runtimeRows(runtime)))),
    el('section', { class: 'card', id: 'st-TSDB' }, el('h2', {}, 'TSDB status'), el('h3', {}, 'Head'), kvTable(headRows),
      el('div', { class: 'grid2' },
        topTable('Top series count by metric name', tsdb.seriesCountByMetricName, 'Series'),
        topTable('Top label value count by label name', tsdb.labelValueCountByLabelName, 'Values'),
        topTable('Top memory usage by label name (bytes)', tsdb.memoryInBytesByLabelName, 'Bytes'),
        topTable('Top series count by label pair', tsdb.seriesCountByLabelValuePair, 'Series'))),
    el('section', { class: 'card', id: 'st-Flags' }, el('div', { class: 'page-header' }, el('h2', {}, 'Command-line flags'), flagFilter), flagBody),
    el('section', { class: 'card', id: 'st-Configuration' }, el('div', { class: 'page-header' }, el('h2', {}, 'Configuration'), copy), el('pre', { class: 'config' }, config.yaml)));
}
