// @ts-check
/**
 * The app's triggers (from the manifest and added through the API) and what each matches.
 * @module views/triggers
 */
import { api, appPath } from '../api.js';
import { errorPanel, h, liveTable, sectionHead, timeElement } from '../ui.js';

/**
 * What a trigger reacts to, in words.
 * @param {any} trigger
 */
export function describeMatch(trigger) {
  const ops = trigger.ops ? ` (${trigger.ops.join(', ')})` : '';
  switch (trigger.kind) {
    case 'kv': return trigger.key ? `keys matching ${trigger.key}${ops}` : `keys starting with “${trigger.prefix ?? ''}”${ops}`;
    case 'docs': return `collection ${trigger.collection}${ops}`;
    case 'files': return `files under “${trigger.prefix ?? ''}”${ops}`;
    case 'topic': return `topic ${trigger.topic}`;
    case 'cron': return `schedule ${trigger.schedule}`;
    case 'dead_letter': {
      const parts = [trigger.on_trigger && `trigger ${trigger.on_trigger}`, trigger.on_handler && `handler ${trigger.on_handler}`, trigger.on_kind && `kind ${trigger.on_kind}`].filter(Boolean);
      return parts.length ? `dead letters of ${parts.join(', ')}` : 'every dead letter';
    }
    default: return '';
  }
}

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {import('./app.js').SectionContext} section
 */
export function render(root, context, section) {
  const base = `#/apps/${encodeURIComponent(section.app)}/deliveries`;
  const table = liveTable({
    caption: 'Triggers',
    captionHidden: true,
    key: (/** @type {any} */ item) => item.id,
    empty: 'No triggers: this app only answers requests.',
    columns: [
      { label: 'Kind', render: (item) => h('span', { class: 'badge badge-kind', text: item.kind }) },
      { label: 'Reacts to', render: (item) => [h('span', { text: describeMatch(item) }), item.next_run_at ? h('span', { class: 'muted block' }, 'next ', timeElement(item.next_run_at)) : null] },
      { label: 'Handler', render: (item) => h('code', { text: item.handler }) },
      { label: 'Retries', render: (item) => h('span', { title: `backoff ${item.backoff_base_ms} ms doubling up to ${item.backoff_cap_ms} ms`, text: `${item.max_attempts} attempt${item.max_attempts === 1 ? '' : 's'}` }) },
      { label: 'Id', render: (item) => [h('code', { text: item.id }), h('span', { class: 'muted block', text: item.source === 'api' ? 'added via API' : 'manifest' })] },
      { label: 'Dead letters', render: (item) => h('a', { href: `${base}?trigger=${encodeURIComponent(item.id)}`, text: 'Show', 'aria-label': `Dead letters of ${item.id}` }) },
    ],
  });
  const body = h('div', { class: 'panel flush' }, table.element);
  root.replaceChildren(sectionHead('Triggers'),
    h('p', { class: 'muted', text: 'Handlers that run when data changes, on topics, on schedules and on dead letters. A failed run is retried with backoff; after the last attempt the event becomes a dead letter.' }),
    body);
  table.loading();

  async function load() {
    try {
      const { items } = await api.get(appPath(section.app, 'triggers'), { signal: context.signal });
      body.replaceChildren(table.element);
      table.update(items);
    } catch (error) {
      if (!context.signal.aborted) body.replaceChildren(errorPanel(error, load));
    }
  }
  load();
}
