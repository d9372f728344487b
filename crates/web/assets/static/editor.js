// The PromQL expression editor: a textarea under a highlighted copy of its
// text (so the browser keeps native editing, selection and undo), an
// autocomplete list at the caret and the parse error marked at its position.

import { el, clear } from './util.js';
import { api, cached } from './api.js';
import { AGGREGATIONS, DURATIONS, FUNCTIONS, KEYWORDS, classify, contextAt, tokenize } from './promql.js';

const MAX_ITEMS = 80;

/** Suggestions for an autocomplete context (see promql.contextAt). */
async function suggestions(ctx) {
  const p = ctx.prefix.toLowerCase();
  switch (ctx.kind) {
    case 'metric': {
      const [names, meta] = await Promise.all([
        cached('metricNames', 30000, () => api('label/__name__/values')),
        cached('metadata', 60000, () => api('metadata').catch(() => ({}))),
      ]);
      const items = [];
      for (const [name, [sig, help]] of Object.entries(AGGREGATIONS)) items.push({ label: name, kind: 'agg', detail: sig, help, insert: `${name}()`, back: 1 });
      for (const [name, [sig, help]] of Object.entries(FUNCTIONS)) items.push({ label: name, kind: 'fn', detail: sig, help, insert: `${name}()`, back: 1 });
      for (const [name, help] of Object.entries(KEYWORDS)) items.push({ label: name, kind: 'kw', detail: 'keyword', help, insert: name });
      for (const name of names) {
        const m = meta[name] && meta[name][0];
        items.push({ label: name, kind: 'metric', detail: m ? m.type : 'metric', help: m ? m.help : '', insert: name });
      }
      return rank(items, p);
    }
    case 'labelName': {
      const key = `labels:${ctx.metric}`;
      const names = await cached(key, 30000, () => api('labels', ctx.metric ? { 'match[]': ctx.metric } : {}));
      return rank(names.filter((n) => n !== '__name__').map((n) => ({ label: n, kind: 'label', detail: 'label', insert: n })), p);
    }
    case 'labelValue': {
      const key = `values:${ctx.label}:${ctx.metric}`;
      const values = await cached(key, 30000, () => api(`label/${encodeURIComponent(ctx.label)}/values`, ctx.metric ? { 'match[]': ctx.metric } : {}));
      const q = ctx.quote || '"';
      return rank(values.map((v) => ({
        label: v,
        kind: 'value',
        detail: ctx.label,
        insert: q + (q === '`' ? v : JSON.stringify(v).slice(1, -1)) + q,
      })), p);
    }
    case 'duration':
      return rank(DURATIONS.map((d) => ({ label: d, kind: 'dur', detail: 'duration', insert: d })), p);
    default:
      return [];
  }
}

/** Prefix matches first (shortest first), then substring matches. */
function rank(items, p) {
  if (!p) return items.slice(0, MAX_ITEMS);
  const pre = [];
  const sub = [];
  for (const it of items) {
    const l = it.label.toLowerCase();
    if (l.startsWith(p)) pre.push(it);
    else if (l.includes(p)) sub.push(it);
  }
  pre.sort((a, b) => a.label.length - b.label.length || a.label.localeCompare(b.label));
  return pre.concat(sub).slice(0, MAX_ITEMS);
}

export class Editor {
  /**
   * @param {object} o
   * @param {string} o.value initial expression
   * @param {() => void} o.onExecute Enter without Shift
   * @param {(v: string) => void} [o.onChange]
   */
  constructor({ value = '', onExecute, onChange }) {
    this.onExecute = onExecute;
    this.onChange = onChange || (() => {});
    this.errorOffset = null;
    this.items = [];
    this.sel = 0;
    this.ctx = null;
    this.reqId = 0;
    this.hl = el('pre', { class: 'editor-hl', 'aria-hidden': 'true' });
    this.input = el('textarea', {
      class: 'editor-input',
      rows: 1,
      spellcheck: 'false',
      autocomplete: 'off',
      autocapitalize: 'off',
      placeholder: 'Expression (press Shift+Enter for newlines)',
      'aria-label': 'PromQL expression',
    });
    this.input.value = value;
    this.list = el('ul', { class: 'ac-list', role: 'listbox', hidden: true });
    this.help = el('div', { class: 'ac-help', hidden: true });
    this.popup = el('div', { class: 'ac-popup', hidden: true }, this.list, this.help);
    this.root = el('div', { class: 'editor' }, this.hl, this.input, this.popup);

    this.input.addEventListener('input', () => {
      this.errorOffset = null;
      this.render();
      this.onChange(this.value);
      this.complete(false);
    });
    this.input.addEventListener('scroll', () => { this.hl.scrollTop = this.input.scrollTop; this.hl.scrollLeft = this.input.scrollLeft; });
    this.input.addEventListener('keydown', (e) => this.keydown(e));
    this.input.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    this.input.addEventListener('click', () => this.close());
    this.list.addEventListener('mousedown', (e) => {
      const li = e.target.closest('li');
      if (!li) return;
      e.preventDefault();
      this.accept(Number(li.dataset.i));
    });
    this.render();
  }

  get value() {
    return this.input.value;
  }

  set value(v) {
    this.input.value = v;
    this.errorOffset = null;
    this.render();
  }

  focus() {
    this.input.focus();
  }

  /** Marks the character at `offset` as the error position (null clears); `message` becomes the tooltip. */
  setError(offset, message = '') {
    this.errorOffset = offset;
    this.input.title = message;
    this.input.setAttribute('aria-invalid', offset === null ? 'false' : 'true');
    this.render();
  }

  /** Redraws the highlighted copy and sizes the textarea to its content. */
  render() {
    const src = this.input.value;
    clear(this.hl);
    const toks = classify(tokenize(src));
    const err = this.errorOffset;
    for (const t of toks) {
      if (err !== null && err >= t.s && err < t.e) {
        // Split the token around the error character.
        if (err > t.s) this.hl.append(span(t.c, src.slice(t.s, err)));
        this.hl.append(span(`${t.c} err-pos`, src.slice(err, err + 1)));
        if (err + 1 < t.e) this.hl.append(span(t.c, src.slice(err + 1, t.e)));
      } else {
        this.hl.append(t.c ? span(t.c, t.v) : document.createTextNode(t.v));
      }
    }
    if (err !== null && err >= src.length) this.hl.append(span('err-pos err-end', ' '));
    // A trailing newline needs a character after it to take up a line.
    this.hl.append('\u200b');
    const lines = src.split('\n').length;
    this.input.rows = Math.min(Math.max(lines, 1), 12);
  }

  keydown(e) {
    const open = !this.popup.hidden && this.items.length > 0;
    if (open) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        this.select(this.sel + (e.key === 'ArrowDown' ? 1 : -1));
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        this.accept(this.sel);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        this.close();
        return;
      }
    }
    if (e.key === ' ' && e.ctrlKey) {
      e.preventDefault();
      this.complete(true);
      return;
    }
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      this.close();
      this.onExecute();
    }
  }

  /** Looks up suggestions for the caret; `explicit` also opens on empty prefixes. */
  async complete(explicit) {
    const caret = this.input.selectionStart;
    if (caret !== this.input.selectionEnd) return this.close();
    const ctx = contextAt(this.input.value, caret);
    if (!ctx || (!explicit && ctx.kind === 'metric' && ctx.prefix.length < 1)) return this.close();
    const id = ++this.reqId;
    let items;
    try {
      items = await suggestions(ctx);
    } catch (e) {
      items = [];
    }
    if (id !== this.reqId || document.activeElement !== this.input) return;
    // Nothing to offer when the only match is already typed out.
    if (!items.length || (items.length === 1 && items[0].label === ctx.prefix && ctx.kind !== 'labelValue')) return this.close();
    this.ctx = ctx;
    this.items = items;
    this.show();
  }

  show() {
    clear(this.list);
    this.items.forEach((it, i) => {
      this.list.append(el('li', { role: 'option', dataset: { i: String(i) }, class: `ac-${it.kind}` },
        el('span', { class: 'ac-kind', title: it.kind }, KIND_LABELS[it.kind] || it.kind),
        el('span', { class: 'ac-label' }, it.label),
        el('span', { class: 'ac-detail' }, it.kind === 'fn' || it.kind === 'agg' ? '' : it.detail || '')));
    });
    this.popup.hidden = false;
    this.list.hidden = false;
    this.position();
    this.select(0);
  }

  /** Places the popup under the caret, using a marker in the highlighted copy. */
  position() {
    const caret = this.input.selectionStart;
    const src = this.input.value;
    const probe = el('pre', { class: 'editor-hl editor-probe' }, src.slice(0, caret), el('span', { class: 'caret-mark' }, '\u200b'));
    this.root.append(probe);
    const mark = probe.querySelector('.caret-mark');
    const left = Math.min(mark.offsetLeft, Math.max(this.root.clientWidth - 420, 0));
    const top = mark.offsetTop + mark.offsetHeight - this.input.scrollTop;
    probe.remove();
    this.popup.style.left = `${left}px`;
    this.popup.style.top = `${top + 4}px`;
  }

  select(i) {
    const n = this.items.length;
    if (!n) return;
    this.sel = (i + n) % n;
    [...this.list.children].forEach((li, j) => li.classList.toggle('selected', j === this.sel));
    const li = this.list.children[this.sel];
    if (li) li.scrollIntoView({ block: 'nearest' });
    const it = this.items[this.sel];
    const help = it.kind === 'fn' || it.kind === 'agg' ? [el('code', {}, it.detail), ' ', it.help] : it.help ? [it.help] : [];
    clear(this.help).append(...help);
    this.help.hidden = !help.length;
  }

  /** Replaces the typed prefix with item `i` and places the caret. */
  accept(i) {
    const it = this.items[i];
    const ctx = this.ctx;
    if (!it || !ctx) return;
    const src = this.input.value;
    const caret = this.input.selectionStart;
    let end = caret;
    // Replace the rest of the word under the caret too.
    while (end < src.length && /[a-zA-Z0-9_:]/.test(src[end]) && ctx.kind !== 'labelValue') end++;
    if (ctx.kind === 'labelValue' && ctx.quote) {
      while (end < src.length && src[end] !== ctx.quote && src[end] !== '\n') end++;
      if (src[end] === ctx.quote) end++;
    }
    let insert = it.insert;
    let back = it.back || 0;
    if ((it.kind === 'fn' || it.kind === 'agg') && src[end] === '(') {
      insert = it.label;
      back = 0;
    }
    this.input.focus();
    this.input.setSelectionRange(ctx.from, end);
    // execCommand keeps the browser's undo history; fall back to setRangeText.
    if (!document.execCommand || !document.execCommand('insertText', false, insert)) {
      this.input.setRangeText(insert, ctx.from, end, 'end');
      this.input.dispatchEvent(new Event('input'));
    }
    const pos = ctx.from + insert.length - back;
    this.input.setSelectionRange(pos, pos);
    this.close();
    this.render();
    this.onChange(this.value);
  }

  close() {
    this.reqId++;
    this.popup.hidden = true;
    this.items = [];
  }
}

const KIND_LABELS = { metric: 'M', fn: 'ƒ', agg: 'Σ', kw: 'K', label: 'L', value: 'V', dur: 'D' };

function span(cls, text) {
  const classes = cls.split(' ').filter(Boolean).map((c) => (c.startsWith('err-') ? c : `t-${c}`));
  return el('span', { class: classes.join(' ') }, text);
}
