// @ts-check
/**
 * The dashboard's entry: a router over `location.hash` that shows one view at a time.
 *
 * Routes: `#/login`, `#/apps`, `#/apps/{app}` (overview), `#/apps/{app}/{tab}[/...]`, `#/metrics`.
 * Each view gets a {@link ViewContext}; leaving it aborts its signal, which ends its requests,
 * streams and timers.
 * @module app
 */
import { onUnauthorized, session } from './api.js';
import { h, notify } from './ui.js';
import * as loginView from './views/login.js';
import * as appsView from './views/apps.js';
import * as appView from './views/app.js';
import * as metricsView from './views/metrics.js';

/**
 * @typedef {object} ViewContext
 * @property {string[]} parts the route's path segments, decoded
 * @property {URLSearchParams} query the route's query (after `?` in the hash)
 * @property {AbortSignal} signal aborted when the view is left
 * @property {(milliseconds: number, tick: () => unknown) => void} every runs `tick` periodically while the view is shown and the page is visible
 * @property {(params: Record<string, string>) => void} replaceQuery updates the hash query without showing the view again
 * @property {(hash: string) => void} navigate
 */

const RETURN_KEY = 'picloud.returnTo';
/** @type {AbortController | null} */
let active = null;
let previousParts = /** @type {string[]} */ ([]);
let firstRender = true;

/** @returns {{parts: string[], query: URLSearchParams}} */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const mark = raw.indexOf('?');
  const path = mark < 0 ? raw : raw.slice(0, mark);
  const parts = path.split('/').filter(Boolean).map((part) => {
    try { return decodeURIComponent(part); } catch { return part; }
  });
  return { parts, query: new URLSearchParams(mark < 0 ? '' : raw.slice(mark + 1)) };
}

/** @param {string} hash */
function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/**
 * Shows the session chrome (navigation, sign-out) when signed in.
 * @param {string[]} parts
 */
function updateChrome(parts) {
  const key = session.key;
  const signedIn = Boolean(key) && parts[0] !== 'login';
  for (const id of ['main-nav', 'session']) document.getElementById(id)?.toggleAttribute('hidden', !signedIn);
  const label = document.getElementById('session-key');
  if (label) label.textContent = key ? `Key ${key.slice(0, 8)}…` : '';
  for (const link of document.querySelectorAll('#main-nav a')) {
    const current = link instanceof HTMLElement && link.dataset.section === (parts[0] ?? 'apps');
    if (current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
}

function route() {
  active?.abort();
  const controller = new AbortController();
  active = controller;
  const { parts, query } = parseHash();

  if (!session.key && parts[0] !== 'login') {
    if (location.hash && location.hash !== '#/' && location.hash !== '#/login') sessionStorage.setItem(RETURN_KEY, location.hash);
    location.replace('#/login');
    return;
  }
  if (parts.length === 0) {
    location.replace('#/apps');
    return;
  }
  updateChrome(parts);

  /** @type {ViewContext} */
  const context = {
    parts,
    query,
    signal: controller.signal,
    navigate,
    every(milliseconds, tick) {
      const timer = setInterval(() => {
        if (!document.hidden) Promise.resolve().then(tick).catch(() => {});
      }, milliseconds);
      controller.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
    },
    replaceQuery(params) {
      const search = new URLSearchParams(Object.entries(params).filter(([, value]) => value !== ''));
      const path = location.hash.split('?')[0];
      const text = search.toString();
      history.replaceState(null, '', text ? `${path}?${text}` : path);
    },
  };

  const view = /** @type {HTMLElement} */ (document.getElementById('view'));
  const sameApp = parts[0] === 'apps' && previousParts[0] === 'apps' && parts[1] !== undefined && parts[1] === previousParts[1];
  previousParts = parts;
  /** @type {HTMLElement | null} */
  let focusTarget = null;
  switch (parts[0]) {
    case 'login':
      focusTarget = loginView.render(view, context, () => {
        const back = sessionStorage.getItem(RETURN_KEY);
        sessionStorage.removeItem(RETURN_KEY);
        navigate(back && !back.startsWith('#/login') ? back : '#/apps');
      });
      break;
    case 'apps':
      focusTarget = parts.length === 1 ? appsView.render(view, context) : appView.render(view, context, sameApp);
      break;
    case 'metrics':
      focusTarget = metricsView.render(view, context);
      break;
    default:
      view.replaceChildren(h('h1', { tabindex: '-1', text: 'Page not found' }),
        h('p', null, 'Nothing lives at this address. ', h('a', { href: '#/apps', text: 'Back to the apps' })));
      focusTarget = view.querySelector('h1');
  }
  if (!firstRender && focusTarget) focusTarget.focus();
  firstRender = false;
}

function signOut() {
  active?.abort();
  session.clear();
  navigate('#/login');
}

function start() {
  onUnauthorized((error) => {
    if (!session.key) return;
    session.clear();
    if (location.hash && !location.hash.startsWith('#/login')) sessionStorage.setItem(RETURN_KEY, location.hash);
    notify(`Signed out: ${error.message}.`, 'error');
    navigate('#/login');
  });
  document.getElementById('logout')?.addEventListener('click', () => {
    signOut();
    notify('Signed out. The key is forgotten in this tab.', 'info');
  });
  document.getElementById('skip-link')?.addEventListener('click', (event) => {
    event.preventDefault();
    const heading = document.querySelector('#view h1');
    (heading instanceof HTMLElement ? heading : document.getElementById('main'))?.focus();
  });
  window.addEventListener('hashchange', route);
  route();
}

start();
