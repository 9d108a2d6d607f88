// @ts-check
/**
 * Small DOM helpers shared by the views: element building, formatting, tables that update in
 * place, pagers, the confirmation dialog, notices and error panels. No inline styles anywhere
 * (the page's Content-Security-Policy forbids them): appearance comes from classes in app.css.
 * @module ui
 */
import { ApiError } from './api.js';

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, any>} Attributes
 */

/**
 * Builds an element. `class`, `text`, `on<event>` (functions), `dataset`, booleans and strings.
 * @param {string} tag
 * @param {Attributes | null} [attributes]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (name === 'text') element.textContent = String(value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

/** @param {Node} parent @param {(Child | Child[])[]} children */
function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** SVG icons drawn with strokes in currentColor (decorative: aria-hidden). */
const ICONS = {
  globe: 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18M3 12h18M12 3c2.5 2.6 3.8 5.6 3.8 9s-1.3 6.4-3.8 9c-2.5-2.6-3.8-5.6-3.8-9s1.3-6.4 3.8-9',
  lock: 'M6 11h12v10H6zM8.5 11V7.5a3.5 3.5 0 0 1 7 0V11',
  refresh: 'M20 11a8 8 0 1 0-2.3 5.7M20 4v7h-7',
  alert: 'M12 3l10 18H2zM12 10v5M12 18v.01',
};

/**
 * @param {keyof typeof ICONS} name
 * @returns {SVGSVGElement}
 */
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.appendChild(path);
  return svg;
}

// MARK: formatting

/**
 * A Date from an ISO string, epoch seconds (files) or epoch milliseconds.
 * @param {string | number | null | undefined} value
 */
export function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number') return new Date(value < 1e11 ? value * 1000 : value);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** @param {Date} date */
export function absoluteTime(date) {
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** @param {Date} date @param {Date} [now] */
export function relativeTime(date, now = new Date()) {
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  let text;
  if (s < 5) return 'just now';
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
  else text = `${Math.floor(s / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

/**
 * A `<time>` showing a relative time, with the exact local time as its title.
 * @param {string | number | null | undefined} value
 * @param {{absolute?: boolean}} [options] show the exact time as the text
 */
export function timeElement(value, options = {}) {
  const date = toDate(value);
  if (!date) return h('span', { class: 'muted', text: '—' });
  return h('time', { datetime: date.toISOString(), title: absoluteTime(date), text: options.absolute ? absoluteTime(date) : relativeTime(date) });
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** @param {number} value */
export function formatNumber(value) {
  return new Intl.NumberFormat('en', { maximumFractionDigits: 1 }).format(value);
}

/** @param {number} seconds */
export function formatDuration(seconds) {
  if (seconds < 0.001) return `${(seconds * 1e6).toFixed(0)} µs`;
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
  return `${seconds.toFixed(2)} s`;
}

/** @param {unknown} value @param {number} [indent] */
export function json(value, indent) {
  try { return JSON.stringify(value, null, indent) ?? 'null'; } catch { return String(value); }
}

/**
 * A value as code; long ones are cut, with the whole value in an expandable block.
 * @param {unknown} value
 * @param {number} [limit]
 */
export function jsonPreview(value, limit = 120) {
  const compact = json(value);
  if (compact.length <= limit) return h('code', { class: 'value', text: compact });
  return h('details', { class: 'value-details' },
    h('summary', null, h('code', { class: 'value', text: `${compact.slice(0, limit)}…` })),
    h('pre', { class: 'code-block', text: json(value, 2) }));
}

// MARK: notices and errors

/**
 * A short notice at the bottom of the page, read by screen readers.
 * @param {string} message
 * @param {'info' | 'success' | 'error'} [kind]
 */
export function notify(message, kind = 'info') {
  const region = document.getElementById(kind === 'error' ? 'alerts' : 'notices');
  if (!region) return;
  const item = h('div', { class: `toast toast-${kind}` }, h('span', { text: message }),
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', text: '×', onclick: () => item.remove() }));
  region.appendChild(item);
  while (region.children.length > 3) region.firstElementChild?.remove();
  setTimeout(() => item.remove(), kind === 'error' ? 12000 : 5000);
}

/**
 * What to tell a person about an error (a 403 names the missing scope).
 * @param {unknown} error
 * @returns {{title: string, detail: string}}
 */
export function describeError(error) {
  if (error instanceof ApiError) {
    if (error.status === 403) {
      return {
        title: error.scope ? `Missing permission: this key lacks the “${error.scope}” scope` : 'Missing permission',
        detail: `${error.message}. Sign in with a key that has it.`,
      };
    }
    if (error.status === 0) return { title: 'Server unreachable', detail: error.message };
    if (error.status === 404) return { title: 'Not found', detail: error.message };
    return { title: `Error ${error.status} (${error.code})`, detail: error.message };
  }
  return { title: 'Something went wrong', detail: error instanceof Error ? error.message : String(error) };
}

/**
 * An error panel (role=alert) with an optional retry button.
 * @param {unknown} error
 * @param {() => void} [retry]
 */
export function errorPanel(error, retry) {
  const { title, detail } = describeError(error);
  return h('div', { class: 'panel error-panel', role: 'alert' },
    h('p', { class: 'error-title' }, icon('alert'), h('strong', { text: title })),
    h('p', { class: 'error-detail', text: detail }),
    retry ? h('button', { type: 'button', class: 'button', onclick: retry, text: 'Try again' }) : null);
}

/**
 * Tells about a failed action in a notice.
 * @param {unknown} error
 * @param {string} what e.g. "Replay failed"
 */
export function notifyError(error, what) {
  const { title, detail } = describeError(error);
  notify(`${what}: ${title}. ${detail}`, 'error');
}

// MARK: loading states

/**
 * Placeholder lines of fixed height while something loads.
 * @param {number} lines
 * @param {string} [label]
 */
export function skeleton(lines = 3, label = 'Loading…') {
  return h('div', { class: 'skeleton-block', role: 'status', 'aria-label': label },
    Array.from({ length: lines }, (_, index) => h('span', { class: ['skeleton', index % 3 === 2 && 'short'] })));
}

// MARK: tables

/**
 * @template T
 * @typedef {object} Column
 * @property {string} label
 * @property {(item: T) => Child | Child[]} render
 * @property {string} [class]
 */

/**
 * @template T
 * @typedef {object} LiveTable
 * @property {HTMLElement} element the wrapper to insert
 * @property {(items: T[]) => void} update show these rows (rows with the same key and content stay as they are)
 * @property {() => void} loading show placeholder rows
 */

/**
 * A table whose rows are kept by key, so a refresh does not lose focus, open details or scroll.
 * On narrow screens each row becomes a card (labels from `data-label`).
 * @template T
 * @param {{caption: string, columns: Column<T>[], key: (item: T) => string, empty: string, rowClass?: (item: T) => string, captionHidden?: boolean}} spec
 * @returns {LiveTable<T>}
 */
export function liveTable(spec) {
  const tbody = h('tbody');
  const table = h('table', { class: 'table' },
    h('caption', { class: spec.captionHidden ? 'visually-hidden' : '', text: spec.caption }),
    h('thead', null, h('tr', null, spec.columns.map((column) => h('th', { scope: 'col', class: column.class, text: column.label })))),
    tbody);
  /** @type {Map<string, HTMLElement>} */
  const rows = new Map();
  const element = h('div', { class: 'table-wrap' }, table);

  /** @param {T} item */
  function buildRow(item) {
    return h('tr', { class: spec.rowClass?.(item), dataset: { key: spec.key(item) } },
      spec.columns.map((column) => h('td', { class: column.class, dataset: { label: column.label } }, h('div', { class: 'cell' }, column.render(item)))));
  }

  return {
    element,
    loading() {
      rows.clear();
      tbody.replaceChildren(...Array.from({ length: 3 }, () => h('tr', { class: 'skeleton-row', 'aria-hidden': 'true' },
        spec.columns.map((column) => h('td', { dataset: { label: column.label } }, h('span', { class: 'skeleton' }))))));
      table.setAttribute('aria-busy', 'true');
    },
    update(items) {
      table.removeAttribute('aria-busy');
      if (items.length === 0) {
        rows.clear();
        tbody.replaceChildren(h('tr', { class: 'empty-row' }, h('td', { colspan: spec.columns.length, text: spec.empty })));
        return;
      }
      for (const child of [...tbody.children]) {
        if (!(child instanceof HTMLElement) || !child.dataset.key) child.remove();
      }
      /** @type {Map<string, HTMLElement>} */
      const next = new Map();
      for (const item of items) {
        const key = spec.key(item);
        const signature = json(item);
        let row = rows.get(key);
        if (!row || row.dataset.signature !== signature) {
          const fresh = buildRow(item);
          fresh.dataset.signature = signature;
          if (row) row.replaceWith(fresh);
          row = fresh;
        }
        next.set(key, row);
      }
      let cursor = tbody.firstElementChild;
      for (const row of next.values()) {
        if (row === cursor) cursor = cursor.nextElementSibling;
        else tbody.insertBefore(row, cursor);
      }
      for (const [key, row] of rows) if (!next.has(key) && row.parentNode) row.remove();
      rows.clear();
      for (const [key, row] of next) rows.set(key, row);
    },
  };
}

// MARK: pagers

/**
 * Previous/next over cursor pages. `load(cursor)` shows a page and resolves with the cursor of
 * the next one (null on the last page). Buttons stay enabled while a page loads (disabling a
 * focused button would drop focus); a click during a load is ignored.
 * @param {string} label what is paged, e.g. "Keys"
 * @param {(cursor: string | null) => Promise<string | null>} load
 */
export function pager(label, load) {
  /** @type {(string | null)[]} */
  const cursors = [null];
  let index = 0;
  /** @type {string | null} */
  let nextCursor = null;
  let busy = false;
  const previous = h('button', { type: 'button', class: 'button', text: '← Previous', disabled: true });
  const next = h('button', { type: 'button', class: 'button', text: 'Next →', disabled: true });
  const status = h('span', { class: 'pager-status', 'aria-live': 'polite', text: 'Page 1' });
  const element = h('nav', { class: 'pager', 'aria-label': `${label} pages` }, previous, status, next);

  async function show() {
    busy = true;
    const hadFocus = document.activeElement;
    try {
      nextCursor = await load(cursors[index]);
    } catch {
      nextCursor = null;
    } finally {
      busy = false;
      status.textContent = `Page ${index + 1}`;
      previous.toggleAttribute('disabled', index === 0);
      next.toggleAttribute('disabled', nextCursor === null);
      if (hadFocus === next && next.hasAttribute('disabled') && index > 0) previous.focus();
      if (hadFocus === previous && previous.hasAttribute('disabled') && nextCursor !== null) next.focus();
    }
  }
  previous.addEventListener('click', () => {
    if (busy || index === 0) return;
    index -= 1;
    show();
  });
  next.addEventListener('click', () => {
    if (busy || nextCursor === null) return;
    cursors.length = index + 1;
    cursors.push(nextCursor);
    index += 1;
    show();
  });
  return {
    element,
    /** Back to the first page (after a filter changed). */
    reset() { cursors.length = 1; index = 0; return show(); },
    /** The same page again (a periodic refresh); skipped while a page loads. */
    reload() { return busy ? Promise.resolve() : show(); },
  };
}

// MARK: confirmation dialog

/**
 * Asks for confirmation in the page's modal `<dialog>`. Focus starts on Cancel and returns to
 * where it was; Escape cancels.
 * @param {{title: string, body: Child | Child[], confirm: string, danger?: boolean}} options
 * @returns {Promise<boolean>}
 */
export function confirmDialog(options) {
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('confirm-dialog'));
  const title = /** @type {HTMLElement} */ (document.getElementById('confirm-title'));
  const body = /** @type {HTMLElement} */ (document.getElementById('confirm-body'));
  const ok = /** @type {HTMLButtonElement} */ (document.getElementById('confirm-ok'));
  const cancel = /** @type {HTMLButtonElement} */ (document.getElementById('confirm-cancel'));
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  title.textContent = options.title;
  body.replaceChildren();
  append(body, [options.body].flat().map((part) => (typeof part === 'string' ? h('p', { text: part }) : part)));
  ok.textContent = options.confirm;
  ok.className = options.danger ? 'button danger' : 'button primary';
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm');
      if (opener && opener.isConnected) opener.focus();
    }, { once: true });
    dialog.showModal();
    cancel.focus();
  });
}

/**
 * The heading a section of an app starts with (focused when moving between sections), with
 * optional actions on the same line.
 * @param {string} text
 * @param {...Child} extra
 */
export function sectionHead(text, ...extra) {
  return h('div', { class: 'section-head' }, h('h2', { id: 'section-title', tabindex: '-1', text }), ...extra);
}
