// @ts-check
/**
 * Browsing an app's data a page at a time: kv entries (by key prefix), document collections and
 * files (by path prefix). Read-only.
 * @module views/data
 */
import { api, appPath, query, request } from '../api.js';
import { errorPanel, formatBytes, h, jsonPreview, liveTable, notifyError, pager, sectionHead, skeleton, timeElement } from '../ui.js';

const PAGE = 25;

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {import('./app.js').SectionContext} section
 */
export function render(root, context, section) {
  const { app } = section;
  const kind = ['kv', 'docs', 'files'].includes(section.rest[0]) ? section.rest[0] : 'kv';
  const base = `#/apps/${encodeURIComponent(app)}/data`;
  const labels = { kv: 'Key-value', docs: 'Documents', files: 'Files' };
  const subnav = h('nav', { class: 'subtabs', 'aria-label': 'Kind of data' },
    h('ul', null, Object.entries(labels).map(([key, label]) => h('li', null,
      h('a', { href: `${base}/${key}`, 'aria-current': key === kind ? 'page' : null, text: label })))));
  const body = h('div', { class: 'data-body' });
  root.replaceChildren(sectionHead('Data'), subnav, body);
  if (kind === 'kv') kvBrowser(body, context, app);
  else if (kind === 'docs') docsBrowser(body, context, app, section.rest[1] ?? null, `${base}/docs`);
  else filesBrowser(body, context, app);
}

/**
 * A prefix filter form.
 * @param {string} id
 * @param {string} label
 * @param {string} value
 * @param {(prefix: string) => void} apply
 */
function prefixForm(id, label, value, apply) {
  const input = /** @type {HTMLInputElement} */ (h('input', { id, type: 'search', value, autocomplete: 'off', spellcheck: 'false' }));
  const form = h('form', { class: 'toolbar', role: 'search', 'aria-label': label },
    h('div', { class: 'field grow' }, h('label', { for: id, text: label }), input),
    h('div', { class: 'field field-button' }, h('button', { type: 'submit', class: 'button', text: 'Filter' })));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apply(input.value);
  });
  return form;
}

/** @param {HTMLElement} root @param {import('../app.js').ViewContext} context @param {string} app */
function kvBrowser(root, context, app) {
  let prefix = context.query.get('prefix') ?? '';
  const table = liveTable({
    caption: 'Key-value entries, by key',
    captionHidden: true,
    key: (/** @type {any} */ item) => item.key,
    empty: 'No keys here.',
    columns: [
      { label: 'Key', render: (item) => h('code', { class: 'break', text: item.key }) },
      { label: 'Value', class: 'col-wide', render: (item) => jsonPreview(item.value, 100) },
      { label: 'Updated', render: (item) => timeElement(item.updated_at) },
      { label: 'Expires', render: (item) => (item.expires_at ? timeElement(item.expires_at) : h('span', { class: 'muted', text: 'never' })) },
    ],
  });
  table.loading();
  const body = h('div', { class: 'panel flush' }, table.element);
  const pages = pager('Keys', async (cursor) => {
    try {
      const page = await api.get(appPath(app, 'kv') + query({ prefix, after: cursor, limit: PAGE }), { signal: context.signal });
      body.replaceChildren(table.element);
      table.update(page.items);
      return page.next ?? null;
    } catch (error) {
      if (!context.signal.aborted) body.replaceChildren(errorPanel(error, () => pages.reload()));
      return null;
    }
  });
  root.replaceChildren(prefixForm('kv-prefix', 'Keys starting with', prefix, (value) => {
    prefix = value;
    context.replaceQuery({ prefix });
    table.loading();
    pages.reset();
  }), body, pages.element);
  pages.reset();
}

/**
 * @param {HTMLElement} root @param {import('../app.js').ViewContext} context @param {string} app
 * @param {string | null} collection @param {string} base
 */
function docsBrowser(root, context, app, collection, base) {
  const collections = h('nav', { class: 'collections', 'aria-label': 'Collections' }, skeleton(3, 'Loading collections'));
  const documents = h('div', { class: 'documents' });
  root.replaceChildren(h('div', { class: 'split' }, collections, documents));

  (async () => {
    try {
      const { items } = await api.get(appPath(app, 'docs'), { signal: context.signal });
      if (items.length === 0) {
        collections.replaceChildren(h('p', { class: 'muted', text: 'No collections yet.' }));
        return;
      }
      collections.replaceChildren(h('h3', { text: 'Collections' }), h('ul', null, items.map((/** @type {any} */ item) => h('li', null,
        h('a', { href: `${base}/${encodeURIComponent(item.name)}`, 'aria-current': item.name === collection ? 'page' : null },
          h('span', { text: item.name }), h('span', { class: 'count', text: String(item.count), 'aria-label': `${item.count} documents` }))))));
    } catch (error) {
      if (!context.signal.aborted) collections.replaceChildren(errorPanel(error));
    }
  })();

  if (!collection) {
    documents.replaceChildren(h('p', { class: 'muted empty-note', text: 'Choose a collection to browse its documents.' }));
    return;
  }
  const table = liveTable({
    caption: `Documents of ${collection}`,
    key: (/** @type {any} */ item) => String(item.id ?? item._id ?? json(item)),
    empty: 'This collection is empty.',
    columns: [
      { label: 'Id', render: (item) => h('code', { class: 'break', text: String(item.id ?? '—') }) },
      { label: 'Document', class: 'col-wide', render: (item) => jsonPreview(item, 140) },
    ],
  });
  table.loading();
  const body = h('div', { class: 'panel flush' }, table.element);
  const pages = pager('Documents', async (cursor) => {
    try {
      const page = await api.get(appPath(app, 'docs', collection) + query({ after: cursor, limit: PAGE }), { signal: context.signal });
      body.replaceChildren(table.element);
      table.update(page.items);
      return page.next ?? null;
    } catch (error) {
      if (!context.signal.aborted) body.replaceChildren(errorPanel(error, () => pages.reload()));
      return null;
    }
  });
  documents.replaceChildren(body, pages.element);
  pages.reset();
}

/** @param {unknown} value */
function json(value) {
  return JSON.stringify(value);
}

/** @param {HTMLElement} root @param {import('../app.js').ViewContext} context @param {string} app */
function filesBrowser(root, context, app) {
  let prefix = context.query.get('prefix') ?? '';
  const table = liveTable({
    caption: 'Files, by path',
    captionHidden: true,
    key: (/** @type {any} */ item) => item.path,
    empty: 'No files here.',
    columns: [
      { label: 'Path', class: 'col-wide', render: (item) => h('code', { class: 'break', text: item.path }) },
      { label: 'Size', render: (item) => formatBytes(item.size) },
      { label: 'Type', render: (item) => h('code', { text: item.content_type }) },
      { label: 'Updated', render: (item) => timeElement(item.updated_at) },
      { label: 'Download', render: (item) => h('button', { type: 'button', class: 'button small', 'aria-label': `Download ${item.path}`, text: 'Download', onclick: () => download(item.path) }) },
    ],
  });
  table.loading();
  const body = h('div', { class: 'panel flush' }, table.element);
  const pages = pager('Files', async (cursor) => {
    try {
      const { items } = await api.get(appPath(app, 'files') + query({ prefix, after: cursor, limit: PAGE }), { signal: context.signal });
      body.replaceChildren(table.element);
      table.update(items);
      return items.length === PAGE ? items[items.length - 1].path : null;
    } catch (error) {
      if (!context.signal.aborted) body.replaceChildren(errorPanel(error, () => pages.reload()));
      return null;
    }
  });

  /**
   * The admin API needs the key in a header, so the file is fetched and saved from a blob.
   * @param {string} path
   */
  async function download(path) {
    try {
      const encoded = path.split('/').map(encodeURIComponent).join('/');
      const response = await request(`${appPath(app, 'files')}/${encoded}`, { raw: true, signal: context.signal, headers: { Accept: '*/*' } });
      const url = URL.createObjectURL(await response.blob());
      const link = h('a', { href: url, download: path.split('/').pop() || 'file', class: 'visually-hidden' });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      if (!context.signal.aborted) notifyError(error, `Could not download ${path}`);
    }
  }

  root.replaceChildren(prefixForm('files-prefix', 'Paths starting with', prefix, (value) => {
    prefix = value;
    context.replaceQuery({ prefix });
    table.loading();
    pages.reset();
  }), body, pages.element);
  pages.reset();
}
