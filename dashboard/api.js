// @ts-check
/**
 * A tiny client for the PiCloud admin API: the key kept for this browser tab, JSON requests
 * with `Authorization: Bearer`, errors as {@link ApiError}, and event streams read with fetch
 * (EventSource cannot send an Authorization header).
 * @module api
 */

const STORAGE_KEY = 'picloud.adminKey';

/** An error answer of the API (`{"error":{"code","message"}}`), or a network failure (status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the server could not be reached)
   * @param {string} code the error code, e.g. `forbidden`
   * @param {string} message what the server said
   */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    const scope = /'([a-z]+(?::[a-z]+)?)' scope/.exec(message);
    /** The scope a 403 says the key lacks, when it names one. @type {string | null} */
    this.scope = status === 403 && scope ? scope[1] : null;
  }
}

/** The admin key of this tab (sessionStorage: gone when the tab closes). */
export const session = {
  /** @returns {string | null} */
  get key() {
    try { return sessionStorage.getItem(STORAGE_KEY); } catch { return null; }
  },
  /** @param {string} key */
  set(key) { sessionStorage.setItem(STORAGE_KEY, key); },
  clear() { try { sessionStorage.removeItem(STORAGE_KEY); } catch { /* storage unavailable */ } },
};

/** @type {((error: ApiError) => void) | null} */
let unauthorizedHandler = null;

/**
 * Called when a request with the stored key answers 401 (the key was revoked or is wrong).
 * @param {(error: ApiError) => void} handler
 */
export function onUnauthorized(handler) { unauthorizedHandler = handler; }

/**
 * A query string from the non-empty values of `params` ('' when there are none).
 * @param {Record<string, string | number | boolean | null | undefined>} params
 */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * The admin path of an app, with each further segment URL-encoded: `appPath('chat', 'topics', 'room:a')`.
 * @param {string} app
 * @param {...string} segments
 */
export function appPath(app, ...segments) {
  return ['/admin/apps', app, ...segments].map((part, index) => (index === 0 ? part : encodeURIComponent(part))).join('/');
}

/** @param {Response} response */
async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch { /* not JSON */ }
  return new ApiError(response.status, code, message);
}

/**
 * @typedef {object} RequestOptions
 * @property {string} [method]
 * @property {unknown} [body] sent as JSON
 * @property {AbortSignal} [signal]
 * @property {string} [key] use this key instead of the stored one (and do not sign out on 401)
 * @property {boolean} [raw] resolve with the Response instead of its parsed body
 * @property {Record<string, string>} [headers]
 */

/**
 * One API call. Resolves with the parsed JSON (or text, or null for 204); rejects with an ApiError.
 * @param {string} path
 * @param {RequestOptions} [options]
 * @returns {Promise<any>}
 */
export async function request(path, options = {}) {
  const key = options.key ?? session.key;
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json', ...options.headers };
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, { method: options.method ?? 'GET', headers, body, signal: options.signal, cache: 'no-store' });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new ApiError(0, 'network', 'The server could not be reached. Is PiCloud running?');
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (error.status === 401 && options.key === undefined) unauthorizedHandler?.(error);
    throw error;
  }
  if (options.raw) return response;
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') ?? '';
  return type.includes('json') ? response.json() : response.text();
}

export const api = {
  /** @param {string} path @param {RequestOptions} [options] */
  get: (path, options) => request(path, options),
  /** @param {string} path @param {unknown} [body] @param {RequestOptions} [options] */
  post: (path, body, options) => request(path, { ...options, method: 'POST', body }),
  /** @param {string} path @param {unknown} body @param {RequestOptions} [options] */
  patch: (path, body, options) => request(path, { ...options, method: 'PATCH', body }),
  /** @param {string} path @param {RequestOptions} [options] */
  del: (path, options) => request(path, { ...options, method: 'DELETE' }),
};

/**
 * @typedef {object} StreamEvent
 * @property {string} event the `event:` field (`message` when absent)
 * @property {string} data the `data:` lines joined by newlines
 * @property {string | null} id the last `id:` seen
 */

/**
 * Reads Server-Sent Events from a response body until it ends or `signal` aborts.
 * @param {Response} response
 * @param {(event: StreamEvent) => void} onEvent
 * @param {AbortSignal} [signal]
 */
export async function readEvents(response, onEvent, signal) {
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const cancel = () => { reader.cancel().catch(() => {}); };
  signal?.addEventListener('abort', cancel, { once: true });
  let buffer = '';
  /** @type {string[]} */
  let data = [];
  let event = '';
  /** @type {string | null} */
  let id = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        let line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id });
          data = [];
          event = '';
          continue;
        }
        if (line.startsWith(':')) continue; // a comment (heartbeat)
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'data') data.push(text);
        else if (field === 'event') event = text;
        else if (field === 'id') id = text;
      }
    }
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}
