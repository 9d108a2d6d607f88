// @ts-check
/**
 * Dead letters (deliveries that used up their attempts: replay or purge them) and the outbox
 * (events waiting for delivery), filtered by trigger or handler, refreshed every few seconds.
 * @module views/deliveries
 */
import { api, appPath, query } from '../api.js';
import { confirmDialog, errorPanel, h, jsonPreview, liveTable, notify, notifyError, pager, sectionHead, timeElement } from '../ui.js';

const PAGE = 50;
const REFRESH_MS = 3000;

/** @param {string} status */
function statusBadge(status) {
  const labels = /** @type {Record<string, string>} */ ({ due: 'due', running: 'running', waiting_retry: 'waiting to retry' });
  return h('span', { class: `badge status-${status}`, text: labels[status] ?? status });
}

/** @param {string | null | undefined} text */
function errorText(text) {
  if (!text) return h('span', { class: 'muted', text: '—' });
  const firstLine = text.split('\n')[0];
  if (firstLine.length <= 160 && firstLine === text) return h('pre', { class: 'error-text', text });
  return h('details', { class: 'value-details' }, h('summary', null, h('span', { class: 'error-text', text: firstLine.length > 160 ? `${firstLine.slice(0, 160)}…` : firstLine })),
    h('pre', { class: 'code-block', text }));
}

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {import('./app.js').SectionContext} section
 */
export function render(root, context, section) {
  const { app } = section;
  const filter = { trigger: context.query.get('trigger') ?? '', handler: context.query.get('handler') ?? '' };

  // Filters
  const triggerSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'filter-trigger', name: 'trigger' }, h('option', { value: '', text: 'Any trigger' })));
  const handlerSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'filter-handler', name: 'handler' }, h('option', { value: '', text: 'Any handler' })));
  const autoRefresh = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'auto-refresh', checked: true }));
  const filterForm = h('form', { class: 'toolbar', 'aria-label': 'Filter deliveries' },
    h('div', { class: 'field' }, h('label', { for: 'filter-trigger', text: 'Trigger' }), triggerSelect),
    h('div', { class: 'field' }, h('label', { for: 'filter-handler', text: 'Handler' }), handlerSelect),
    h('div', { class: 'field field-check' }, autoRefresh, h('label', { for: 'auto-refresh', text: `Refresh every ${REFRESH_MS / 1000} s` })));
  filterForm.addEventListener('submit', (event) => event.preventDefault());

  /** @param {HTMLSelectElement} select @param {{value: string, label: string}[]} options @param {string} chosen */
  function fillSelect(select, options, chosen) {
    const keep = select.options[0];
    const seen = new Set(options.map((option) => option.value));
    if (chosen && !seen.has(chosen)) options.push({ value: chosen, label: chosen });
    select.replaceChildren(keep, ...options.map((option) => h('option', { value: option.value, text: option.label })));
    select.value = chosen;
  }
  fillSelect(triggerSelect, [], filter.trigger);
  fillSelect(handlerSelect, [], filter.handler);

  // Dead letters
  const purgeAll = h('button', { type: 'button', class: 'button danger-outline', id: 'purge-matching', text: 'Purge all…' });
  const deadStatus = h('p', { class: 'muted table-note', 'aria-live': 'polite', text: '\u00a0' });
  const deadTable = liveTable({
    caption: 'Dead letters, newest first',
    captionHidden: true,
    key: (/** @type {any} */ item) => item.id,
    empty: 'No dead letters. Every delivery succeeded or is still being retried.',
    rowClass: () => 'dead-letter-row',
    columns: [
      { label: 'Failed', render: (item) => [timeElement(item.failed_at), h('code', { class: 'muted block small id', text: item.id })] },
      { label: 'Handler', render: (item) => [h('code', { text: item.handler }), h('span', { class: 'muted block small' }, `${item.kind} · `, h('code', { class: 'id', text: item.trigger_id }))] },
      { label: 'Attempts', render: (item) => String(item.attempts) },
      { label: 'Last error', class: 'col-wide', render: (item) => errorText(item.error) },
      { label: 'Event', class: 'col-wide', render: (item) => jsonPreview(item.event, 60) },
      {
        label: 'Actions',
        render: (item) => h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'button small', dataset: { action: 'replay', id: item.id }, 'aria-label': `Replay ${item.id}`, text: 'Replay', onclick: () => replay(item) }),
          h('button', { type: 'button', class: 'button small danger-outline', dataset: { action: 'purge', id: item.id }, 'aria-label': `Purge ${item.id}`, text: 'Purge…', onclick: () => purgeOne(item) })),
      },
    ],
  });
  deadTable.loading();
  const deadBody = h('div', null, deadTable.element);
  /** @type {any[]} */
  let shownLetters = [];
  const deadPager = pager('Dead letters', async (cursor) => {
    try {
      const { items, next } = await api.get(appPath(app, 'dead-letters') + query({ trigger: filter.trigger, handler: filter.handler, before: cursor, limit: PAGE }), { signal: context.signal });
      shownLetters = items;
      deadBody.replaceChildren(deadTable.element);
      deadTable.update(items);
      deadStatus.textContent = items.length === 0 ? '\u00a0' : `${items.length}${items.length === PAGE ? '+' : ''} dead letter${items.length === 1 ? '' : 's'}${describeFilter() ? ` ${describeFilter()}` : ''}`;
      return next ?? null;
    } catch (error) {
      if (!context.signal.aborted) deadBody.replaceChildren(errorPanel(error, () => deadPager.reload()));
      return null;
    }
  });

  // Outbox
  const outboxTable = liveTable({
    caption: 'Outbox: events waiting for delivery',
    captionHidden: true,
    key: (/** @type {any} */ item) => String(item.id),
    empty: 'The outbox is empty: nothing is waiting.',
    columns: [
      { label: 'Row', render: (item) => h('code', { text: `#${item.id}` }) },
      { label: 'Status', render: (item) => statusBadge(item.status) },
      { label: 'Handler', render: (item) => [h('code', { text: item.handler }), h('span', { class: 'muted block small' }, `${item.kind} · `, h('code', { text: item.trigger_id }))] },
      { label: 'Attempts', render: (item) => `${item.attempts} of ${item.max_attempts}` },
      { label: 'Due', render: (item) => timeElement(item.due_at) },
      { label: 'Last error', class: 'col-wide', render: (item) => errorText(item.last_error) },
    ],
  });
  outboxTable.loading();
  const outboxBody = h('div', null, outboxTable.element);
  const outboxPager = pager('Outbox', async (cursor) => {
    try {
      const { items } = await api.get(appPath(app, 'outbox') + query({ after: cursor, limit: PAGE }), { signal: context.signal });
      const shown = items.filter((/** @type {any} */ row) => (!filter.trigger || row.trigger_id === filter.trigger) && (!filter.handler || row.handler === filter.handler));
      outboxBody.replaceChildren(outboxTable.element);
      outboxTable.update(shown);
      return items.length === PAGE ? String(items[items.length - 1].id) : null;
    } catch (error) {
      if (!context.signal.aborted) outboxBody.replaceChildren(errorPanel(error, () => outboxPager.reload()));
      return null;
    }
  });

  root.replaceChildren(
    sectionHead('Outbox & dead letters'),
    filterForm,
    h('section', { class: 'panel', 'aria-labelledby': 'dead-title' },
      h('div', { class: 'panel-head' }, h('h3', { id: 'dead-title', text: 'Dead letters' }), purgeAll),
      h('p', { class: 'muted', text: 'Events whose handler failed every attempt. Fix the handler and deploy, then replay: the event goes back to its trigger with its attempts reset.' }),
      deadStatus, deadBody, deadPager.element),
    h('section', { class: 'panel', 'aria-labelledby': 'outbox-title' },
      h('div', { class: 'panel-head' }, h('h3', { id: 'outbox-title', text: 'Outbox' })),
      h('p', { class: 'muted', text: 'Events waiting for their trigger handler: due now, running, or waiting to retry after a failure.' }),
      outboxBody, outboxPager.element));

  function describeFilter() {
    return [filter.trigger && `of trigger ${filter.trigger}`, filter.handler && `of handler ${filter.handler}`].filter(Boolean).join(' and ');
  }

  function updatePurgeLabel() {
    purgeAll.textContent = filter.trigger || filter.handler ? 'Purge matching…' : 'Purge all…';
  }
  updatePurgeLabel();

  function applyFilter() {
    filter.trigger = triggerSelect.value;
    filter.handler = handlerSelect.value;
    context.replaceQuery({ trigger: filter.trigger, handler: filter.handler });
    updatePurgeLabel();
    deadTable.loading();
    deadPager.reset();
    outboxPager.reset();
  }
  triggerSelect.addEventListener('change', applyFilter);
  handlerSelect.addEventListener('change', applyFilter);

  function refresh() {
    return Promise.all([deadPager.reload(), outboxPager.reload()]);
  }

  /** @param {any} letter */
  async function replay(letter) {
    try {
      const result = await api.post(appPath(app, 'dead-letters', letter.id, 'replay'), undefined, { signal: context.signal });
      notify(`Replayed ${letter.id}: the event is back in the outbox for ${result.handler}.`, 'success');
      await refresh();
      focusAfterRemoval();
    } catch (error) {
      if (!context.signal.aborted) notifyError(error, `Could not replay ${letter.id}`);
    }
  }

  /** @param {any} letter */
  async function purgeOne(letter) {
    const confirmed = await confirmDialog({
      title: `Purge dead letter ${letter.id}?`,
      body: [`Its event (for ${letter.handler}) is deleted for good and will not run again.`],
      confirm: 'Purge',
      danger: true,
    });
    if (!confirmed) return;
    try {
      await api.del(appPath(app, 'dead-letters', letter.id), { signal: context.signal });
      notify(`Purged ${letter.id}.`, 'success');
      await refresh();
      focusAfterRemoval();
    } catch (error) {
      if (!context.signal.aborted) notifyError(error, `Could not purge ${letter.id}`);
    }
  }

  purgeAll.addEventListener('click', async () => {
    const scope = describeFilter();
    const count = shownLetters.length;
    const confirmed = await confirmDialog({
      title: scope ? 'Purge the matching dead letters?' : 'Purge every dead letter of this app?',
      body: [
        scope ? `Every dead letter ${scope} is deleted for good (${count}${count === PAGE ? ' or more' : ''} shown).` : `All of ${app}'s dead letters are deleted for good (${count}${count === PAGE ? ' or more' : ''} shown).`,
        'Their events will not run again. This cannot be undone.',
      ],
      confirm: scope ? 'Purge matching' : 'Purge all',
      danger: true,
    });
    if (!confirmed) return;
    try {
      const result = await api.del(appPath(app, 'dead-letters') + query({ trigger: filter.trigger, handler: filter.handler }), { signal: context.signal });
      notify(`Purged ${result?.purged ?? 0} dead letter${result?.purged === 1 ? '' : 's'}.`, 'success');
      await refresh();
    } catch (error) {
      if (!context.signal.aborted) notifyError(error, 'Could not purge');
    }
  });

  /** After a row left the table, keep focus inside it (or on its heading). */
  function focusAfterRemoval() {
    if (document.activeElement && document.activeElement !== document.body && document.activeElement.isConnected) return;
    const next = deadBody.querySelector('button[data-action="replay"]');
    const heading = document.getElementById('dead-title');
    if (next instanceof HTMLElement) next.focus();
    else if (heading) { heading.setAttribute('tabindex', '-1'); heading.focus(); }
  }

  async function loadFilters() {
    try {
      const { items } = await api.get(appPath(app, 'triggers'), { signal: context.signal });
      fillSelect(triggerSelect, items.map((/** @type {any} */ t) => ({ value: t.id, label: `${t.id} (${t.kind} → ${t.handler})` })), filter.trigger);
      const handlers = [...new Set(items.map((/** @type {any} */ t) => t.handler))].sort();
      fillSelect(handlerSelect, handlers.map((handler) => ({ value: handler, label: handler })), filter.handler);
    } catch { /* the filters stay free of suggestions; the tables show the error */ }
  }

  loadFilters();
  deadPager.reset();
  outboxPager.reset();
  context.every(REFRESH_MS, () => (autoRefresh.checked ? refresh() : undefined));
}
