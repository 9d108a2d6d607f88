// @ts-check
/**
 * The endpoints the current deployment serves.
 * @module views/endpoints
 */
import { api, appPath } from '../api.js';
import { errorPanel, h, liveTable, sectionHead } from '../ui.js';

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {import('./app.js').SectionContext} section
 */
export function render(root, context, section) {
  const table = liveTable({
    caption: 'Endpoints of the current deployment',
    captionHidden: true,
    key: (/** @type {any} */ item) => `${item.method} ${item.path}`,
    empty: 'This deployment declares no endpoints.',
    columns: [
      { label: 'Method', render: (item) => h('span', { class: `method method-${item.method.toLowerCase()}`, text: item.method }) },
      { label: 'Path', render: (item) => h('code', { text: item.path }) },
      {
        label: 'URL',
        render: (item) => (item.method === 'GET' && !/[:*]/.test(item.path)
          ? h('a', { href: item.url, target: '_blank', rel: 'noopener', text: item.url })
          : h('code', { text: item.url })),
      },
      { label: 'Handler', render: (item) => h('code', { text: item.handler }) },
      { label: 'Access', render: (item) => h('span', { class: `badge ${item.auth === 'public' ? 'badge-neutral' : 'badge-key'}`, text: item.auth === 'public' ? 'public' : 'key (invoke)' }) },
    ],
  });
  const body = h('div', { class: 'panel flush' }, table.element);
  root.replaceChildren(sectionHead('Endpoints'), h('p', { class: 'muted', text: 'What the serving deployment maps, in manifest order. Endpoints marked “key” need a key with the invoke scope.' }), body);
  table.loading();

  async function load() {
    try {
      const { items } = await api.get(appPath(section.app, 'endpoints'), { signal: context.signal });
      body.replaceChildren(table.element);
      table.update(items);
    } catch (error) {
      if (!context.signal.aborted) body.replaceChildren(errorPanel(error, load));
    }
  }
  load();
}
