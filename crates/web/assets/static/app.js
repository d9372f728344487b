// Entry point: the navigation bar and hash-based routing (#/targets, ...).
// Hash routes keep every URL relative, so the UI works under any prefix.

import { el, clear } from './util.js';
import { QueryPage } from './query.js';
import { renderTargets, renderServiceDiscovery, renderAlerts, renderRules, renderStatus } from './pages.js';

const PAGES = [
  { hash: '#/query', title: 'Query' },
  { hash: '#/alerts', title: 'Alerts', render: renderAlerts },
  { hash: '#/rules', title: 'Rules', render: renderRules },
  { hash: '#/targets', title: 'Targets', render: renderTargets },
  { hash: '#/service-discovery', title: 'Service discovery', render: renderServiceDiscovery },
  { hash: '#/status', title: 'Status', render: renderStatus },
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let queryPage = null;
const other = el('div', { class: 'page' });

for (const p of PAGES) nav.append(el('a', { href: p.hash, dataset: { hash: p.hash } }, p.title));

function route() {
  const hash = location.hash.split('?')[0] || '#/query';
  const page = PAGES.find((p) => p.hash === hash) || PAGES[0];
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.hash === page.hash);
  document.title = `${page.title} - Koban`;
  if (!page.render) {
    if (!queryPage) queryPage = new QueryPage();
    other.remove();
    if (!queryPage.root.isConnected) main.append(queryPage.root);
    queryPage.root.hidden = false;
    return;
  }
  if (queryPage) queryPage.root.hidden = true;
  if (!other.isConnected) main.append(other);
  clear(other);
  page.render(other);
}

window.addEventListener('hashchange', route);
// Graphs read the theme's colours when drawn: redraw when the system theme flips.
window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  if (queryPage) queryPage.retheme();
});
route();
