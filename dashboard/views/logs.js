// @ts-check
/**
 * The live log tail: `GET .../logs?follow=1` read as Server-Sent Events through fetch (so the
 * key travels in the Authorization header), reconnecting after the last line seen. It scrolls
 * along while you are at the bottom and stops as soon as you scroll up.
 * @module views/logs
 */
import { ApiError, appPath, query, readEvents, request } from '../api.js';
import { absoluteTime, errorPanel, h, sectionHead } from '../ui.js';

const MAX_LINES = 1000;
const BACKLOG = 200;
const LEVELS = ['debug', 'info', 'warn', 'error'];

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {import('./app.js').SectionContext} section
 */
export function render(root, context, section) {
  const { app } = section;
  let level = LEVELS.includes(context.query.get('level') ?? '') ? /** @type {string} */ (context.query.get('level')) : 'debug';
  let lastID = 0;
  let following = true;
  let unseen = 0;
  let search = '';
  /** @type {AbortController | null} */
  let stream = null;

  const levelSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'log-level' },
    LEVELS.map((name) => h('option', { value: name, text: name === 'debug' ? 'debug and above (all)' : name === 'error' ? 'error only' : `${name} and above` }))));
  levelSelect.value = level;
  const searchInput = /** @type {HTMLInputElement} */ (h('input', { id: 'log-search', type: 'search', placeholder: 'text in the line', autocomplete: 'off' }));
  const clear = h('button', { type: 'button', class: 'button', text: 'Clear view' });
  const state = h('span', { class: 'stream-state', id: 'log-state', role: 'status', 'data-state': 'connecting', text: 'Connecting…' });
  const lines = h('div', { class: 'log', id: 'log-lines', role: 'log', 'aria-live': 'off', 'aria-label': `Log of ${app}`, tabindex: '0' });
  const empty = h('p', { class: 'log-empty', text: 'Waiting for log lines…' });
  lines.append(empty);
  const jump = h('button', { type: 'button', class: 'button primary jump', id: 'log-jump', hidden: true, text: 'Paused · jump to latest ↓' });
  const problem = h('div', { class: 'log-problem' });

  root.replaceChildren(
    sectionHead('Logs', state),
    h('form', { class: 'toolbar', 'aria-label': 'Log filters' },
      h('div', { class: 'field' }, h('label', { for: 'log-level', text: 'Level' }), levelSelect),
      h('div', { class: 'field grow' }, h('label', { for: 'log-search', text: 'Show lines containing' }), searchInput),
      h('div', { class: 'field field-button' }, clear)),
    problem,
    h('div', { class: 'log-frame' }, lines, jump),
    h('p', { class: 'hint', text: `Shows the last ${BACKLOG} lines, then new ones as they are written (at most ${MAX_LINES} kept here). Scroll up to pause following.` }));

  /** @param {HTMLElement} line */
  function matches(line) {
    return !search || (line.textContent ?? '').toLowerCase().includes(search);
  }

  /** @param {any} entry */
  function add(entry) {
    if (typeof entry.id === 'number') {
      if (entry.id <= lastID) return;
      lastID = entry.id;
    }
    empty.remove();
    const at = new Date(entry.at);
    const time = Number.isNaN(at.getTime()) ? entry.at : `${absoluteTime(at)}.${String(at.getMilliseconds()).padStart(3, '0')}`;
    const line = h('div', { class: `log-line level-${entry.level}`, dataset: { id: String(entry.id) } },
      h('time', { datetime: entry.at, text: time }),
      h('span', { class: 'log-level', text: entry.level.toUpperCase() }),
      h('span', { class: 'log-message', text: entry.message }));
    if (!matches(line)) line.hidden = true;
    lines.append(line);
    while (lines.childElementCount > MAX_LINES) lines.firstElementChild?.remove();
    if (following) lines.scrollTop = lines.scrollHeight;
    else if (!line.hidden) {
      unseen += 1;
      jump.textContent = `Paused · ${unseen} new line${unseen === 1 ? '' : 's'} ↓`;
    }
  }

  function atBottom() {
    return lines.scrollHeight - lines.scrollTop - lines.clientHeight < 24;
  }
  lines.addEventListener('scroll', () => {
    const bottom = atBottom();
    if (bottom === following) return;
    following = bottom;
    if (following) unseen = 0;
    jump.hidden = following;
    jump.textContent = 'Paused · jump to latest ↓';
  });
  jump.addEventListener('click', () => {
    following = true;
    unseen = 0;
    jump.hidden = true;
    lines.scrollTop = lines.scrollHeight;
    lines.focus();
  });
  clear.addEventListener('click', () => {
    lines.replaceChildren(empty);
    empty.textContent = 'Cleared. New lines appear here.';
  });
  searchInput.addEventListener('input', () => {
    search = searchInput.value.trim().toLowerCase();
    for (const line of lines.querySelectorAll('.log-line')) if (line instanceof HTMLElement) line.hidden = !matches(line);
    if (following) lines.scrollTop = lines.scrollHeight;
  });
  levelSelect.addEventListener('change', () => {
    level = levelSelect.value;
    context.replaceQuery({ level: level === 'debug' ? '' : level });
    lastID = 0;
    lines.replaceChildren(empty);
    empty.textContent = 'Waiting for log lines…';
    connect();
  });

  /** @param {string} name @param {string} text */
  function setState(name, text) {
    state.dataset.state = name;
    state.textContent = text;
  }

  async function connect() {
    stream?.abort();
    const controller = new AbortController();
    stream = controller;
    const stop = () => controller.abort();
    context.signal.addEventListener('abort', stop, { once: true });
    let delay = 2000;
    while (!controller.signal.aborted) {
      setState('connecting', lastID ? 'Reconnecting…' : 'Connecting…');
      try {
        const response = await request(appPath(app, 'logs') + query({ follow: 1, level, limit: BACKLOG, after: lastID || null }), {
          raw: true, signal: controller.signal, headers: { Accept: 'text/event-stream' },
        });
        problem.replaceChildren();
        setState('live', 'Live');
        delay = 2000;
        await readEvents(response, (event) => {
          if (event.event !== 'log') return;
          try { add(JSON.parse(event.data)); } catch { /* not a log line */ }
        }, controller.signal);
      } catch (error) {
        if (controller.signal.aborted) break;
        if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 404)) {
          setState('stopped', 'Stopped');
          problem.replaceChildren(errorPanel(error, () => connect()));
          break;
        }
      }
      if (controller.signal.aborted) break;
      setState('retrying', `Disconnected · retrying in ${delay / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
    context.signal.removeEventListener('abort', stop);
  }
  connect();
}
