// @ts-check
/**
 * One app: its name and current version, the section links, and the chosen section.
 * @module views/app
 */
import { api, appPath } from '../api.js';
import { h } from '../ui.js';
import * as overview from './overview.js';
import * as endpoints from './endpoints.js';
import * as triggers from './triggers.js';
import * as topics from './topics.js';
import * as deliveries from './deliveries.js';
import * as logs from './logs.js';
import * as data from './data.js';

/**
 * @typedef {object} SectionContext
 * @property {string} app
 * @property {string[]} rest the route segments after the section name
 * @property {(version: number | null) => void} setVersion updates the version badge of the header
 */

/**
 * @typedef {object} Section
 * @property {string} label
 * @property {(root: HTMLElement, context: import('../app.js').ViewContext, section: SectionContext) => void} render
 */

/** @type {Record<string, Section>} */
const SECTIONS = {
  overview: { label: 'Overview', render: overview.render },
  endpoints: { label: 'Endpoints', render: endpoints.render },
  triggers: { label: 'Triggers', render: triggers.render },
  topics: { label: 'Topics', render: topics.render },
  deliveries: { label: 'Outbox & dead letters', render: deliveries.render },
  logs: { label: 'Logs', render: logs.render },
  data: { label: 'Data', render: data.render },
};

/** Versions seen, so the header shows one at once when moving between sections. @type {Map<string, number | null>} */
const knownVersions = new Map();

/**
 * @param {HTMLElement} root
 * @param {import('../app.js').ViewContext} context
 * @param {boolean} sameApp the previous view was a section of this app (focus the section heading)
 * @returns {HTMLElement} what to focus
 */
export function render(root, context, sameApp) {
  const app = context.parts[1];
  const name = SECTIONS[context.parts[2] ?? 'overview'] ? (context.parts[2] ?? 'overview') : null;
  const version = h('span', { class: 'badge badge-version app-version', id: 'app-version', 'aria-live': 'polite' });
  /** @param {number | null | undefined} value */
  const setVersion = (value) => {
    if (value === undefined) { version.textContent = '…'; return; }
    knownVersions.set(app, value);
    version.textContent = value === null ? 'not deployed' : `v${value}`;
    version.setAttribute('title', value === null ? 'No deployment yet' : `Deployment version ${value} is serving`);
  };
  setVersion(knownVersions.get(app));

  const heading = h('h1', { tabindex: '-1', class: 'app-title' }, h('span', { class: 'visually-hidden', text: 'App ' }), app);
  const tabs = h('nav', { class: 'tabs', 'aria-label': `Sections of ${app}` },
    h('ul', null, Object.entries(SECTIONS).map(([key, section]) => h('li', null,
      h('a', { href: `#/apps/${encodeURIComponent(app)}/${key}`, 'aria-current': key === name ? 'page' : null, dataset: { section: key }, text: section.label })))));
  const content = h('section', { class: 'section', 'aria-labelledby': 'section-title' });
  root.replaceChildren(
    h('div', { class: 'page-head' },
      h('p', { class: 'crumbs' }, h('a', { href: '#/apps', text: 'Apps' }), ' / '),
      h('div', { class: 'title-row' }, heading, version)),
    tabs,
    content);

  if (!name) {
    content.append(h('h2', { id: 'section-title', tabindex: '-1', text: 'No such section' }),
      h('p', null, h('a', { href: `#/apps/${encodeURIComponent(app)}`, text: 'Go to the overview' })));
  } else {
    SECTIONS[name].render(content, context, { app, rest: context.parts.slice(3), setVersion });
  }

  api.get(appPath(app), { signal: context.signal })
    .then((info) => setVersion(info.current_version ?? null))
    .catch(() => { if (!knownVersions.has(app)) version.textContent = '?'; });

  const sectionHeading = content.querySelector('h2');
  return sameApp && sectionHeading instanceof HTMLElement ? sectionHeading : heading;
}

