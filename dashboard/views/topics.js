// @ts-check
/**
 * Registered topics. Whether browsers may subscribe (“external”) is the setting that matters
 * most, so it is a large badge, and changing it always asks first.
 * @module views/topics
 */
import { api, appPath, query } from '../api.js';
import { confirmDialog, errorPanel, formatNumber, h, icon, jsonPreview, notify, notifyError, sectionHead, skeleton, timeElement } from '../ui.js';

/** @param {any} topic */
function accessBadge(topic) {
  return topic.external_subscribable
    ? h('span', { class: 'access-badge external', 'data-state': 'external' }, icon('globe'), h('span', { text: 'External' }))
    : h('span', { class: 'access-badge internal', 'data-state': 'internal' }, icon('lock'), h('span', { text: 'Internal' }));
}

/** @param {any} topic */
function accessSummary(topic) {
  if (!topic.external_subscribable) return 'Only the app itself publishes and reacts to it; browsers cannot subscribe.';
  return topic.auth_mode === 'public'
    ? 'Anyone who can reach this server may subscribe, without a token.'
    : 'Browsers may subscribe with a subscriber token from pubsub.subscriber_token.';
}

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {import('./app.js').SectionContext} section
 */
export function render(root, context, section) {
  const { app } = section;
  const list = h('div', { class: 'topic-list' }, skeleton(5, 'Loading topics'));
  root.replaceChildren(sectionHead('Topics'),
    h('p', { class: 'muted', text: 'Topics keep a history for subscribers that reconnect. External topics can be followed by browsers over Server-Sent Events; the flag changes only here (or with picloud topics external), never as a side effect of a deployment.' }),
    list);

  /** @param {any} topic */
  function card(topic) {
    const events = h('div', { class: 'topic-events' });
    const turnOn = !topic.external_subscribable;
    const id = `topic-${topic.name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
    const toggle = h('button', {
      type: 'button',
      class: turnOn ? 'button' : 'button danger-outline',
      dataset: { action: 'toggle-external', topic: topic.name },
      'aria-describedby': `${id}-summary`,
      text: turnOn ? 'Make external…' : 'Make internal…',
      onclick: () => flip(topic),
    });
    const showEvents = h('button', {
      type: 'button', class: 'button', 'aria-expanded': 'false', 'aria-controls': `${id}-events`, text: 'Recent events',
      onclick: async () => {
        const open = showEvents.getAttribute('aria-expanded') === 'true';
        showEvents.setAttribute('aria-expanded', String(!open));
        if (open) { events.replaceChildren(); return; }
        events.replaceChildren(skeleton(2, 'Loading events'));
        try {
          const last = Number(topic.last_event_id) || 0;
          const page = await api.get(appPath(app, 'topics', topic.name, 'events') + query({ after: Math.max(0, last - 10), limit: 10 }), { signal: context.signal });
          events.replaceChildren(page.items.length === 0
            ? h('p', { class: 'muted', text: 'The history keeps no events.' })
            : h('ol', { class: 'event-list' }, page.items.slice().reverse().map((/** @type {any} */ event) => h('li', null,
              h('span', { class: 'event-id', text: `#${event.id}` }), timeElement(event.published_at), jsonPreview(event.message, 90)))));
        } catch (error) {
          events.replaceChildren(errorPanel(error));
        }
      },
    });
    events.id = `${id}-events`;
    return h('article', { class: ['panel', 'topic-card', topic.external_subscribable && 'is-external'], dataset: { topic: topic.name }, 'aria-labelledby': `${id}-name` },
      h('div', { class: 'topic-head' },
        h('h3', { id: `${id}-name`, class: 'topic-name' }, h('code', { text: topic.name })),
        accessBadge(topic)),
      h('p', { id: `${id}-summary`, class: 'topic-summary', text: accessSummary(topic) }),
      h('dl', { class: 'facts facts-inline' },
        h('div', null, h('dt', { text: 'Auth' }), h('dd', { text: topic.auth_mode === 'public' ? 'public (no token)' : 'token' })),
        h('div', null, h('dt', { text: 'Last event' }), h('dd', { text: `#${topic.last_event_id}` })),
        h('div', null, h('dt', { text: 'History' }), h('dd', { text: `${formatNumber(topic.history_events)} events, ${formatNumber(topic.history_seconds / 3600)} h` })),
        h('div', null, h('dt', { text: 'Declared in' }), h('dd', { text: topic.source === 'api' ? 'API' : 'manifest' })),
        topic.external_subscribable ? h('div', { class: 'wide' }, h('dt', { text: 'Subscribe at' }), h('dd', null, h('code', { text: topic.subscribe_path }))) : null),
      h('div', { class: 'actions' }, toggle, showEvents),
      events);
  }

  /** @param {any} topic */
  async function flip(topic) {
    const turnOn = !topic.external_subscribable;
    const name = topic.name;
    const confirmed = await confirmDialog(turnOn ? {
      title: `Make “${name}” external?`,
      body: [
        `Browsers will be able to subscribe to it at ${topic.subscribe_path}.`,
        topic.auth_mode === 'public'
          ? h('p', { class: 'dialog-warning' }, icon('alert'), h('strong', { text: 'Its auth mode is public: anyone who can reach this server can read every event, without a token.' }))
          : 'Its auth mode is token: subscribers need a token that an endpoint of the app hands out.',
      ],
      confirm: 'Make external',
      danger: topic.auth_mode === 'public',
    } : {
      title: `Make “${name}” internal?`,
      body: [
        'Browsers will no longer be able to subscribe to it.',
        'Open streams end now (event: closed, reason topic_not_subscribable). Publishing and topic triggers keep working.',
      ],
      confirm: 'Make internal',
      danger: true,
    });
    if (!confirmed) return;
    try {
      const updated = await api.patch(appPath(app, 'topics', name, 'external'), { external_subscribable: turnOn }, { signal: context.signal });
      notify(`“${name}” is ${updated.external_subscribable ? 'now external: browsers may subscribe' : 'now internal: browsers cannot subscribe'}.`, 'success');
      await load();
      const button = list.querySelector(`[data-action="toggle-external"][data-topic="${CSS.escape(name)}"]`);
      if (button instanceof HTMLElement) button.focus();
    } catch (error) {
      if (!context.signal.aborted) notifyError(error, `Could not change “${name}”`);
    }
  }

  async function load() {
    try {
      const { items } = await api.get(appPath(app, 'topics'), { signal: context.signal });
      if (items.length === 0) {
        list.replaceChildren(h('div', { class: 'panel empty' }, h('p', { text: 'No registered topics.' }),
          h('p', { class: 'muted' }, 'Declare one with ', h('code', { text: '[[topics]]' }), ' in picloud.toml.')));
        return;
      }
      const external = items.filter((/** @type {any} */ topic) => topic.external_subscribable).length;
      list.replaceChildren(
        h('p', { class: 'topic-count', text: `${items.length} topic${items.length === 1 ? '' : 's'}, ${external} external` }),
        h('div', { class: 'topic-grid' }, items.map(card)));
    } catch (error) {
      if (!context.signal.aborted) list.replaceChildren(errorPanel(error, load));
    }
  }
  load();
}
