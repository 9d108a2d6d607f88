// @ts-check
/**
 * The apps the key may see, with their current deployment.
 * @module views/apps
 */
import { api } from '../api.js';
import { errorPanel, h, skeleton, timeElement } from '../ui.js';

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @returns {HTMLElement} what to focus
 */
export function render(root, context) {
  const heading = h('h1', { tabindex: '-1', text: 'Apps' });
  const list = h('div', { class: 'app-grid', 'aria-live': 'polite' }, skeleton(4, 'Loading apps'));
  root.replaceChildren(h('div', { class: 'page-head' }, heading), list);

  async function load() {
    try {
      const { items } = await api.get('/admin/apps', { signal: context.signal });
      if (items.length === 0) {
        list.replaceChildren(h('div', { class: 'panel empty' },
          h('p', { text: 'No apps yet.' }),
          h('p', { class: 'muted' }, 'Deploy one with ', h('code', { text: 'picloud deploy DIR' }), ', or start the server with ', h('code', { text: '--deploy DIR' }), '.')));
        return;
      }
      list.replaceChildren(h('ul', { class: 'cards', 'aria-label': 'Apps' }, items.map((/** @type {any} */ app) => h('li', { class: 'card app-card' },
        h('h2', { class: 'card-title' }, h('a', { href: `#/apps/${encodeURIComponent(app.name)}`, class: 'stretched', text: app.name })),
        h('dl', { class: 'facts' },
          h('div', null, h('dt', { text: 'Deployment' }), h('dd', null, app.current_version == null ? h('span', { class: 'muted', text: 'none yet' }) : h('span', { class: 'badge badge-version', text: `v${app.current_version}` }))),
          h('div', null, h('dt', { text: 'Endpoints' }), h('dd', { text: String(app.endpoints ?? 0) })),
          h('div', null, h('dt', { text: 'Created' }), h('dd', null, timeElement(app.created_at))))))));
    } catch (error) {
      if (!context.signal.aborted) list.replaceChildren(errorPanel(error, load));
    }
  }
  load();
  return heading;
}
