// @ts-check
/**
 * Basic numbers from `/metrics` (Prometheus text), refreshed every few seconds: endpoint
 * requests, errors and p99 latency (estimated from the histogram buckets), realtime subscribers,
 * trigger deliveries, dead letters and the outbox. The server's metrics carry no app label, so
 * these are for the whole instance.
 * @module views/metrics
 */
import { request } from '../api.js';
import { buckets, bucketDelta, parsePrometheus, quantile, total } from '../metrics.js';
import { absoluteTime, errorPanel, formatDuration, formatNumber, h } from '../ui.js';

const REFRESH_MS = 5000;
const HISTORY = 60;

/**
 * A metric tile of fixed size.
 * @param {string} id
 * @param {string} label
 * @param {string} help
 */
function tile(id, label, help) {
  const value = h('span', { class: 'stat-value', id: `metric-${id}` }, h('span', { class: 'skeleton stat-skeleton' }));
  const note = h('span', { class: 'stat-note', text: '\u00a0' });
  const element = h('div', { class: 'stat', title: help }, h('span', { class: 'stat-label', text: label }), value, note);
  return {
    element,
    /** @param {string} text @param {string} [detail] @param {string} [tone] */
    set(text, detail = '\u00a0', tone = '') {
      value.textContent = text;
      note.textContent = detail;
      element.classList.remove('tone-bad', 'tone-warn', 'tone-good');
      if (tone) element.classList.add(`tone-${tone}`);
    },
  };
}

/**
 * @param {import('../metrics.js').Quantile | null} q
 */
function formatQuantile(q) {
  if (!q) return '—';
  return q.aboveLargestBucket ? `> ${formatDuration(q.value)}` : formatDuration(q.value);
}

/**
 * A sparkline of recent values (an SVG polyline; decorative, the numbers are in the tiles).
 * @param {number[]} values
 */
function sparkline(values) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${HISTORY - 1} 40`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('aria-hidden', 'true');
  const max = Math.max(1, ...values);
  const start = HISTORY - values.length;
  const points = values.map((value, index) => `${start + index},${(38 - (value / max) * 36).toFixed(2)}`).join(' ');
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', points);
  svg.appendChild(line);
  return svg;
}

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @returns {HTMLElement} what to focus
 */
export function render(root, context) {
  const heading = h('h1', { tabindex: '-1', text: 'Metrics' });
  const updated = h('span', { class: 'muted', id: 'metrics-updated', 'aria-live': 'off', text: 'Loading…' });
  const autoRefresh = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'metrics-refresh', checked: true }));
  const tiles = {
    requests: tile('requests', 'Endpoint invocations', 'picloud_endpoint_requests_total'),
    errors: tile('errors', 'Endpoint errors', 'picloud_endpoint_errors_total: requests whose handler failed'),
    p99: tile('p99', 'Endpoint p99', 'picloud_endpoint_duration_seconds: the 99th percentile, from the histogram buckets'),
    subscribers: tile('subscribers', 'Realtime subscribers', 'picloud_realtime_subscribers: open SSE subscriptions'),
    deliveries: tile('deliveries', 'Trigger deliveries', 'picloud_trigger_deliveries_total: handler runs that succeeded'),
    triggerP99: tile('trigger-p99', 'Trigger handler p99', 'picloud_trigger_handler_duration_seconds'),
    dead: tile('dead', 'Dead letters', 'picloud_dead_letters_total: deliveries that used up their attempts'),
    outbox: tile('outbox', 'Outbox depth', 'picloud_outbox_depth: events waiting'),
  };
  const chart = h('div', { class: 'chart' }, h('span', { class: 'muted', text: 'Invocations per second: the chart starts with the next refresh.' }));
  const problem = h('div');
  root.replaceChildren(
    h('div', { class: 'page-head' }, heading,
      h('p', { class: 'muted', text: 'For the whole instance (PiCloud’s /metrics has no per-app labels). Rates and p99 cover the time since the previous refresh; totals count since the server started.' })),
    h('div', { class: 'toolbar' },
      h('div', { class: 'field field-check' }, autoRefresh, h('label', { for: 'metrics-refresh', text: `Refresh every ${REFRESH_MS / 1000} s` })),
      updated),
    problem,
    h('div', { class: 'stats stats-metrics' }, Object.values(tiles).map((t) => t.element)),
    h('div', { class: 'panel' }, chart));

  /** @type {{at: number, metrics: Map<string, import('../metrics.js').Sample[]>} | null} */
  let previous = null;
  /** @type {number[]} */
  const rates = [];

  async function load() {
    let text;
    try {
      text = await request('/metrics', { signal: context.signal, headers: { Accept: 'text/plain' } });
    } catch (error) {
      if (!context.signal.aborted) problem.replaceChildren(errorPanel(error, load));
      return;
    }
    problem.replaceChildren();
    const now = Date.now();
    const metrics = parsePrometheus(String(text));
    const seconds = previous ? (now - previous.at) / 1000 : 0;
    /** @param {string} name */
    const delta = (name) => (previous ? Math.max(0, (total(metrics, name) ?? 0) - (total(previous.metrics, name) ?? 0)) : null);

    const requests = total(metrics, 'picloud_endpoint_requests_total') ?? 0;
    const newRequests = delta('picloud_endpoint_requests_total');
    const rate = newRequests !== null && seconds > 0 ? newRequests / seconds : null;
    tiles.requests.set(formatNumber(requests), rate === null ? 'since start' : `${formatNumber(rate)}/s now`);
    if (rate !== null) {
      rates.push(rate);
      if (rates.length > HISTORY) rates.shift();
      chart.replaceChildren(h('span', { class: 'muted', text: `Invocations per second, last ${Math.round((rates.length * REFRESH_MS) / 60000) || 1} min (max ${formatNumber(Math.max(...rates))}/s)` }), sparkline(rates));
    }

    const errors = total(metrics, 'picloud_endpoint_errors_total') ?? 0;
    const share = requests > 0 ? (errors / requests) * 100 : 0;
    const newErrors = delta('picloud_endpoint_errors_total');
    tiles.errors.set(formatNumber(errors), requests > 0 ? `${share.toFixed(share < 1 ? 2 : 1)}% of invocations${newErrors ? ` · +${newErrors} now` : ''}` : 'none yet', newErrors ? 'bad' : errors ? 'warn' : 'good');

    const endpointBuckets = buckets(metrics, 'picloud_endpoint_duration_seconds');
    const recentEndpoint = previous ? quantile(0.99, bucketDelta(endpointBuckets, buckets(previous.metrics, 'picloud_endpoint_duration_seconds'))) : null;
    const allEndpoint = quantile(0.99, endpointBuckets);
    tiles.p99.set(formatQuantile(recentEndpoint ?? allEndpoint),
      recentEndpoint ? `last ${Math.round(seconds)} s · ${formatNumber(recentEndpoint.count)} calls` : allEndpoint ? `since start · ${formatNumber(allEndpoint.count)} calls` : 'no calls yet');

    const subscribers = total(metrics, 'picloud_realtime_subscribers') ?? 0;
    const channels = total(metrics, 'picloud_realtime_channels') ?? 0;
    tiles.subscribers.set(formatNumber(subscribers), `on ${formatNumber(channels)} topic${channels === 1 ? '' : 's'}`);

    const deliveries = total(metrics, 'picloud_trigger_deliveries_total') ?? 0;
    const failures = total(metrics, 'picloud_trigger_failures_total') ?? 0;
    const retries = total(metrics, 'picloud_trigger_retries_total') ?? 0;
    tiles.deliveries.set(formatNumber(deliveries), `${formatNumber(failures)} failed runs · ${formatNumber(retries)} retries`, failures ? 'warn' : '');

    const handlerBuckets = buckets(metrics, 'picloud_trigger_handler_duration_seconds');
    const recentHandler = previous ? quantile(0.99, bucketDelta(handlerBuckets, buckets(previous.metrics, 'picloud_trigger_handler_duration_seconds'))) : null;
    const allHandler = quantile(0.99, handlerBuckets);
    tiles.triggerP99.set(formatQuantile(recentHandler ?? allHandler), recentHandler ? `last ${Math.round(seconds)} s` : allHandler ? 'since start' : 'no runs yet');

    const dead = total(metrics, 'picloud_dead_letters_total') ?? 0;
    tiles.dead.set(formatNumber(dead), 'since start', dead ? 'bad' : 'good');
    const depth = total(metrics, 'picloud_outbox_depth') ?? 0;
    tiles.outbox.set(formatNumber(depth), 'events waiting', depth > 100 ? 'warn' : '');

    updated.textContent = `Updated ${absoluteTime(new Date(now)).slice(11)}`;
    previous = { at: now, metrics };
  }
  load();
  context.every(REFRESH_MS, () => (autoRefresh.checked ? load() : undefined));
  return heading;
}
