// @ts-check
/**
 * An app at a glance: the deployment serving now, the deployment history, waiting and failed
 * deliveries, and the latest error lines of its log.
 * @module views/overview
 */
import { api, appPath, ApiError, query } from '../api.js';
import { absoluteTime, errorPanel, h, liveTable, relativeTime, sectionHead, skeleton, timeElement, toDate } from '../ui.js';

/**
 * A stat tile of fixed height: its value fills in when loaded.
 * @param {string} label
 * @param {string} [href]
 */
function tile(label, href) {
  const value = h('span', { class: 'stat-value' }, h('span', { class: 'skeleton stat-skeleton' }));
  const note = h('span', { class: 'stat-note', text: '\u00a0' });
  const body = [h('span', { class: 'stat-label', text: label }), value, note];
  const element = href ? h('a', { class: 'stat stat-link', href }, body) : h('div', { class: 'stat' }, body);
  return {
    element,
    /** @param {string | Node} text @param {string | Node} [detail] @param {string} [tone] */
    set(text, detail = '\u00a0', tone = '') {
      value.replaceChildren(text);
      note.replaceChildren(detail);
      element.classList.remove('tone-bad', 'tone-warn', 'tone-good');
      if (tone) element.classList.add(`tone-${tone}`);
    },
  };
}

/**
 * A log line's message: its first line, and the rest (a traceback) behind a disclosure.
 * @param {string} message
 */
function errorMessage(message) {
  const [first, ...rest] = message.split('\n');
  if (rest.length === 0) return h('pre', { class: 'error-message', text: first });
  return h('details', { class: 'value-details' }, h('summary', null, h('span', { class: 'error-message', text: first })),
    h('pre', { class: 'code-block', text: rest.join('\n') }));
}

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {import('./app.js').SectionContext} section
 */
export function render(root, context, section) {
  const { app } = section;
  const base = `#/apps/${encodeURIComponent(app)}`;
  const deployment = tile('Deployment');
  const endpoints = tile('Endpoints', `${base}/endpoints`);
  const dead = tile('Dead letters', `${base}/deliveries`);
  const outbox = tile('Outbox', `${base}/deliveries`);

  const history = liveTable({
    caption: 'Deployment history, newest first',
    captionHidden: true,
    key: (/** @type {any} */ item) => String(item.version),
    empty: 'No deployment yet.',
    columns: [
      { label: 'Version', render: (item) => h('span', { class: 'badge badge-version', text: `v${item.version}` }) },
      { label: 'Deployed', render: (item) => timeElement(item.created_at, { absolute: true }) },
      { label: 'By', render: (item) => (item.created_by ? h('code', { text: item.created_by }) : h('span', { class: 'muted', text: 'server start (--deploy)' })) },
      { label: 'Manifest', render: (item) => h('details', { class: 'inline-details' }, h('summary', { text: 'Show' }), h('pre', { class: 'code-block', text: item.manifest })) },
    ],
  });
  history.loading();

  const errors = h('div', { class: 'error-lines', 'aria-live': 'polite' }, skeleton(4, 'Loading errors'));
  const files = h('div', { class: 'files-of-deployment' });

  root.replaceChildren(
    sectionHead('Overview'),
    h('div', { class: 'stats' }, deployment.element, endpoints.element, dead.element, outbox.element),
    h('div', { class: 'columns' },
      h('div', { class: 'panel' }, h('h3', { text: 'Recent errors' }), errors,
        h('p', { class: 'panel-foot' }, h('a', { href: `${base}/logs`, text: 'Open the live log' }))),
      h('div', { class: 'panel' }, h('h3', { text: 'Deployment history' }), history.element, files)));

  async function loadDeployment() {
    try {
      const current = await api.get(appPath(app, 'deployment'), { signal: context.signal });
      const date = toDate(current.created_at);
      deployment.set(h('span', { class: 'deployment-version', id: 'current-version', text: `v${current.version}` }),
        date ? h('span', { title: absoluteTime(date), text: `deployed ${relativeTime(date)}` }) : '', 'good');
      section.setVersion(current.version);
      const names = Object.keys(current.files ?? {}).sort();
      files.replaceChildren(h('details', { class: 'inline-details' },
        h('summary', { text: `Files of v${current.version} (${names.length})` }),
        h('ul', { class: 'file-sources' }, names.map((name) => h('li', null,
          h('details', null, h('summary', null, h('code', { text: name })), h('pre', { class: 'code-block', text: current.files[name] })))))));
    } catch (error) {
      if (context.signal.aborted) return;
      if (error instanceof ApiError && error.status === 404) {
        deployment.set('none', 'not deployed yet', 'warn');
        section.setVersion(null);
      } else {
        deployment.set('?', 'could not load', 'bad');
        files.replaceChildren(errorPanel(error, loadDeployment));
      }
    }
    try {
      const { items } = await api.get(appPath(app, 'deployments'), { signal: context.signal });
      history.update(items);
    } catch (error) {
      if (!context.signal.aborted) history.element.replaceChildren(errorPanel(error));
    }
  }

  async function loadCounts() {
    /** @type {(promise: Promise<any>) => Promise<{value?: any, error?: unknown}>} */
    const settle = (promise) => promise.then((value) => ({ value }), (error) => ({ error }));
    const [info, letters, waiting] = await Promise.all([
      settle(api.get(appPath(app), { signal: context.signal })),
      settle(api.get(appPath(app, 'dead-letters') + query({ limit: 100 }), { signal: context.signal })),
      settle(api.get(appPath(app, 'outbox') + query({ limit: 100 }), { signal: context.signal })),
    ]);
    if (context.signal.aborted) return;
    if (info.value) endpoints.set(String(info.value.endpoints ?? 0), 'serving now');
    else endpoints.set('?', 'could not load', 'bad');
    if (letters.value) {
      const count = letters.value.items.length;
      dead.set(count >= 100 ? '100+' : String(count), count ? 'need attention' : 'none failed', count ? 'bad' : 'good');
    } else dead.set('?', letters.error instanceof ApiError && letters.error.status === 403 ? 'no permission' : 'could not load', 'bad');
    if (waiting.value) {
      const count = waiting.value.items.length;
      const retrying = waiting.value.items.filter((/** @type {any} */ row) => row.status === 'waiting_retry').length;
      outbox.set(count >= 100 ? '100+' : String(count), retrying ? `${retrying} waiting to retry` : 'events waiting', retrying ? 'warn' : '');
    } else outbox.set('?', 'could not load', 'bad');
  }

  /** @type {string | null} */
  let shownErrors = null;
  async function loadErrors() {
    try {
      const { items } = await api.get(appPath(app, 'logs') + query({ level: 'error', limit: 20 }), { signal: context.signal });
      const signature = items.map((/** @type {any} */ line) => line.id).join(',');
      if (signature === shownErrors) return; // unchanged: keep what is open
      shownErrors = signature;
      if (items.length === 0) {
        errors.replaceChildren(h('p', { class: 'muted empty-note', text: 'No errors logged. 🎉' }));
        return;
      }
      errors.replaceChildren(h('ol', { class: 'error-list', reversed: true }, items.slice().reverse().map((/** @type {any} */ line) => h('li', null,
        h('div', { class: 'error-meta' }, timeElement(line.at), line.request_id ? h('code', { class: 'muted', text: line.request_id }) : null),
        errorMessage(line.message)))));
    } catch (error) {
      if (!context.signal.aborted) {
        shownErrors = null;
        errors.replaceChildren(errorPanel(error, loadErrors));
      }
    }
  }

  loadDeployment();
  loadCounts();
  loadErrors();
  context.every(10000, () => Promise.all([loadCounts(), loadErrors()]));
}
