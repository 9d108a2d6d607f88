// @ts-check
/**
 * @picloud/client: call a PiCloud app's endpoints and follow its topics (Server-Sent Events),
 * in browsers and in Node 18+.
 *
 * One self-contained ES module without imports: PiCloud serves this exact file at
 * `/client/picloud.js`. The types are in `../index.d.ts`; README.md explains the behaviour.
 */

export const VERSION = '0.1.0'

/**
 * The one error type of the client. `code` is the server's error code (`not_found`,
 * `invalid_input`, an app's own code ...), `http_<status>` when the answer had none, or one of the
 * client's: `network_error`, `aborted`, `invalid_response`, `invalid_request`, `token_error`,
 * `token_expired`, `connection_failed`, `unsupported`.
 */
export class PiCloudError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ status?: number, details?: unknown, requestId?: string | null, cause?: unknown }} [options]
   */
  constructor(code, message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'PiCloudError'
    /** @type {string} */
    this.code = code
    /** HTTP status, 0 when there was no answer. @type {number} */
    this.status = options.status ?? 0
    /** The server's whole `error` object (it may carry more fields, such as `fields`). @type {unknown} */
    this.details = options.details
    /** @type {string | null} */
    this.requestId = options.requestId ?? null
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** @param {unknown} error @param {AbortSignal | null | undefined} signal */
function networkError(error, signal) {
  if (error instanceof PiCloudError) return error
  const name = /** @type {{ name?: unknown }} */ (error)?.name
  if (signal?.aborted || name === 'AbortError') {
    return new PiCloudError('aborted', 'the request was aborted', { cause: error })
  }
  const message = error instanceof Error ? error.message : String(error)
  return new PiCloudError('network_error', `network error: ${message}`, { cause: error })
}

/** @param {string | null} contentType */
function isJSON(contentType) {
  return contentType != null && /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType.trim())
}

/**
 * The error for a non-2xx answer: the server's `{"error":{"code","message"}}` when it sent one,
 * else `http_<status>` and the text.
 * @param {Response} response
 * @param {string} text
 */
function errorFromResponse(response, text) {
  let code = `http_${response.status}`
  let message = text.trim().slice(0, 500) || response.statusText || `HTTP ${response.status}`
  /** @type {unknown} */
  let details
  let requestId = response.headers.get('x-request-id')
  try {
    const parsed = JSON.parse(text)
    const error = parsed && typeof parsed === 'object' ? parsed.error : undefined
    if (error && typeof error === 'object') {
      details = error
      if (typeof error.code === 'string' && error.code) code = error.code
      if (typeof error.message === 'string') message = error.message
      if (!requestId && typeof error.request_id === 'string') requestId = error.request_id
    }
  } catch {
    // not JSON: keep the text
  }
  return new PiCloudError(code, message, { status: response.status, details, requestId })
}

/**
 * Whether a body goes to fetch as it is (not JSON-encoded).
 * @param {unknown} body
 */
function isRawBody(body) {
  return (
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    (typeof Blob !== 'undefined' && body instanceof Blob) ||
    (typeof FormData !== 'undefined' && body instanceof FormData) ||
    (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams)
  )
}

/**
 * `'POST /messages/:id'` → method and path segments.
 * @param {string} route
 */
function parseRoute(route) {
  const match = typeof route === 'string' ? /^\s*(?:([A-Za-z]+)\s+)?(\/\S*)\s*$/.exec(route) : null
  if (!match) throw new TypeError(`invalid route ${JSON.stringify(route)}: use 'METHOD /path', e.g. 'POST /messages/:id'`)
  return { route: route.trim(), method: (match[1] || 'GET').toUpperCase(), segments: match[2].split('/').slice(1) }
}

/**
 * Fills `:name` and `*name` segments from params, URI-encoded (`*name` keeps its slashes).
 * @param {{ route: string, segments: string[] }} parsed
 * @param {Record<string, unknown> | undefined} params
 */
function buildPath(parsed, params) {
  const parts = parsed.segments.map((segment) => {
    const kind = segment[0]
    if (kind !== ':' && kind !== '*') return segment
    const name = segment.slice(1)
    const value = params?.[name]
    if (value === undefined || value === null || (kind === ':' && value === '')) {
      throw new PiCloudError('invalid_request', `missing route parameter '${name}' for '${parsed.route}'`)
    }
    if (kind === ':') return encodeURIComponent(String(value))
    const pieces = Array.isArray(value) ? value.map(String) : String(value).split('/')
    return pieces.map((piece) => encodeURIComponent(piece)).join('/')
  })
  return '/' + parts.join('/')
}

/**
 * `?a=1&b=x%20y`. Spaces become %20, not '+': PiCloud decodes endpoint queries by percent-decoding
 * only, so a '+' would reach the handler as a '+'.
 * @param {unknown} query
 */
function buildQuery(query) {
  if (query == null) return ''
  /** @type {[string, string][]} */
  const pairs = []
  if (query instanceof URLSearchParams) {
    for (const [name, value] of query) pairs.push([name, value])
  } else {
    for (const [name, value] of Object.entries(/** @type {Record<string, unknown>} */ (query))) {
      if (value === undefined || value === null) continue
      if (Array.isArray(value)) for (const item of value) pairs.push([name, String(item)])
      else pairs.push([name, String(value)])
    }
  }
  if (pairs.length === 0) return ''
  return '?' + pairs.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&')
}

/**
 * Numeric event ids compared without losing precision: -1, 0 or 1; null when either is not a number.
 * @param {string} a @param {string} b
 */
function compareIds(a, b) {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return null
  const x = a.replace(/^0+(?=\d)/, '')
  const y = b.replace(/^0+(?=\d)/, '')
  if (x.length !== y.length) return x.length < y.length ? -1 : 1
  return x < y ? -1 : x > y ? 1 : 0
}

/**
 * Calls a user callback. An exception it throws does not break the subscription: it is reported
 * like an uncaught error (`reportError` in browsers; an uncaught exception in Node, as from an
 * EventTarget listener).
 * @param {Function | undefined} fn @param {unknown[]} args
 */
function invoke(fn, ...args) {
  if (typeof fn !== 'function') return
  try {
    fn(...args)
  } catch (error) {
    const report = /** @type {{ reportError?: (error: unknown) => void }} */ (globalThis).reportError
    if (typeof report === 'function') {
      report(error)
    } else {
      setTimeout(() => {
        throw error
      }, 0)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events parsing (https://html.spec.whatwg.org/multipage/server-sent-events.html)

/**
 * An incremental SSE parser. Feed it text in chunks split anywhere (`push`); lines may end in
 * CRLF, LF or CR. It calls `onEvent({ type, data, id })` for each event with data (type
 * `'message'` when the stream names none; `id` is the last event id in force, or null),
 * `onComment(text)` for comment lines (`: heartbeat`), `onRetry(ms)` for `retry:`, and
 * `onId(id)` for a block with an `id:` but no data (a position without an event).
 * `lastEventId` follows `id:` fields even on events without data, as browsers do.
 *
 * @param {{
 *   onEvent?: (event: { type: string, data: string, id: string | null }) => void,
 *   onComment?: (text: string) => void,
 *   onRetry?: (ms: number) => void,
 *   onId?: (id: string | null) => void,
 *   lastEventId?: string | null,
 * }} handlers
 */
export function createSSEParser(handlers = {}) {
  let buffer = ''
  let started = false
  let skipLF = false // the previous chunk ended with CR: a leading LF belongs to it
  let data = ''
  let hasData = false
  let type = ''
  let lastEventId = handlers.lastEventId ?? null
  let pendingId = lastEventId
  let sawId = false

  /** @param {string} line */
  function processLine(line) {
    if (line === '') {
      const idOnly = !hasData && sawId
      sawId = false
      lastEventId = pendingId
      if (idOnly) handlers.onId?.(lastEventId)
      if (hasData) {
        const event = { type: type || 'message', data, id: lastEventId }
        data = ''
        hasData = false
        type = ''
        handlers.onEvent?.(event)
      } else {
        type = ''
      }
      return
    }
    if (line[0] === ':') {
      handlers.onComment?.(line.slice(1).replace(/^ /, ''))
      return
    }
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value[0] === ' ') value = value.slice(1)
    switch (field) {
      case 'data':
        data = hasData ? `${data}\n${value}` : value
        hasData = true
        break
      case 'event':
        type = value
        break
      case 'id':
        if (!value.includes('\0')) {
          pendingId = value
          sawId = true
        }
        break
      case 'retry':
        if (/^\d+$/.test(value)) handlers.onRetry?.(Number(value))
        break
      default:
        break // unknown fields are ignored
    }
  }

  return {
    /** @param {string} text */
    push(text) {
      if (!started && text.length > 0) {
        started = true
        if (text[0] === '\uFEFF') text = text.slice(1)
      }
      if (skipLF && text[0] === '\n') text = text.slice(1)
      skipLF = false
      buffer += text
      let start = 0
      for (;;) {
        let end = -1
        for (let i = start; i < buffer.length; i++) {
          const c = buffer.charCodeAt(i)
          if (c === 10 || c === 13) {
            end = i
            break
          }
        }
        if (end === -1) break
        const line = buffer.slice(start, end)
        if (buffer.charCodeAt(end) === 13) {
          if (end + 1 < buffer.length) {
            start = buffer.charCodeAt(end + 1) === 10 ? end + 2 : end + 1
          } else {
            start = end + 1
            skipLF = true
          }
        } else {
          start = end + 1
        }
        processLine(line)
      }
      buffer = buffer.slice(start)
    },
    /** The stream ended: an unfinished event is dropped (as the standard says). */
    end() {
      buffer = ''
      data = ''
      hasData = false
      type = ''
    },
    get lastEventId() {
      return lastEventId
    },
  }
}

// ---------------------------------------------------------------------------------------------
// The client

/**
 * @typedef {{
 *   params?: Record<string, unknown>,
 *   query?: Record<string, unknown> | URLSearchParams,
 *   body?: unknown,
 *   headers?: HeadersInit,
 *   signal?: AbortSignal,
 * }} EndpointInput
 * @typedef {((data: unknown) => unknown) | { parse(data: unknown): unknown }} Validator
 * @typedef {{ id: string, topic: string, message: unknown, publishedAt: number }} TopicEvent
 * @typedef {{ from: string | null, to: string, missed: number | null, reason: string }} GapEvent
 * @typedef {{ reason: string, delayMs: number | null, detail?: string }} DisconnectInfo
 * @typedef {{
 *   token?: string | null,
 *   getToken?: () => unknown,
 *   onTokenExpired?: () => unknown,
 *   onEvent: (event: TopicEvent) => void,
 *   onGap?: (gap: GapEvent) => void,
 *   onError?: (error: PiCloudError) => void,
 *   onOpen?: () => void,
 *   onClose?: (info: { reason: string, error?: PiCloudError }) => void,
 *   onDisconnect?: (info: DisconnectInfo) => void,
 *   lastEventId?: string | number | null,
 *   transport?: 'fetch' | 'eventsource',
 *   heartbeatTimeoutMs?: number,
 *   minDelayMs?: number,
 *   maxDelayMs?: number,
 *   EventSource?: any,
 * }} SubscribeOptions
 * @typedef {{ close(): void, readonly lastEventId: string | null, readonly topic: string }} Subscription
 */

/**
 * A client for one app of one PiCloud server.
 *
 * @param {{ url?: string, app: string, token?: string | null, fetch?: typeof fetch }} options
 */
export function createClient(options) {
  if (!options || typeof options !== 'object') throw new TypeError('createClient: options { url, app } are required')
  const app = options.app
  if (typeof app !== 'string' || app === '') throw new TypeError('createClient: `app` (the app name) is required')
  let base = options.url
  if (base == null) base = typeof location !== 'undefined' && location.origin ? location.origin : ''
  base = String(base).replace(/\/+$/, '')
  let token = options.token ?? null
  const customFetch = options.fetch
  const appBase = `${base}/apps/${encodeURIComponent(app)}`

  /** @param {string} url @param {RequestInit} init @returns {Promise<Response>} */
  function doFetch(url, init) {
    if (customFetch) return customFetch(url, init)
    if (typeof globalThis.fetch !== 'function') {
      return Promise.reject(new PiCloudError('unsupported', 'fetch is not available here: pass `fetch` to createClient'))
    }
    return globalThis.fetch(url, init)
  }

  /**
   * @param {{ route: string, method: string, segments: string[] }} parsed
   * @param {EndpointInput | undefined} input
   * @param {Validator | undefined} validate
   */
  async function call(parsed, input, validate) {
    const given = input ?? {}
    const url = `${appBase}/api${buildPath(parsed, given.params)}${buildQuery(given.query)}`
    const headers = new Headers(given.headers)
    if (!headers.has('accept')) headers.set('accept', 'application/json, text/plain;q=0.9, */*;q=0.8')
    if (token && !headers.has('authorization')) headers.set('authorization', `Bearer ${token}`)
    /** @type {BodyInit | undefined} */
    let body
    if (given.body !== undefined) {
      if (isRawBody(given.body)) {
        body = /** @type {BodyInit} */ (given.body)
      } else {
        body = JSON.stringify(given.body)
        if (!headers.has('content-type')) headers.set('content-type', 'application/json')
      }
    }
    /** @type {Response} */
    let response
    let text = ''
    try {
      response = await doFetch(url, { method: parsed.method, headers, body, signal: given.signal })
      const empty = response.status === 204 || response.status === 205 || parsed.method === 'HEAD'
      text = empty ? '' : await response.text()
    } catch (error) {
      throw networkError(error, given.signal)
    }
    if (!response.ok) throw errorFromResponse(response, text)
    const requestId = response.headers.get('x-request-id')
    /** @type {unknown} */
    let data = text
    if (response.status === 204 || response.status === 205 || parsed.method === 'HEAD') {
      data = undefined
    } else if (isJSON(response.headers.get('content-type'))) {
      if (text === '') {
        data = undefined
      } else {
        try {
          data = JSON.parse(text)
        } catch (error) {
          throw new PiCloudError('invalid_response', `${parsed.route}: the answer is not valid JSON`, { status: response.status, cause: error, requestId })
        }
      }
    }
    if (validate) {
      try {
        data = typeof validate === 'function' ? await validate(data) : await validate.parse(data)
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error)
        const issues = /** @type {{ issues?: unknown }} */ (error)?.issues
        throw new PiCloudError('invalid_response', `${parsed.route}: the answer did not pass validation: ${reason}`, {
          status: response.status,
          cause: error,
          details: issues,
          requestId,
        })
      }
    }
    return data
  }

  const client = {
    /** The server's base URL, without a trailing slash ('' for the page's own origin). */
    url: base,
    app,
    /** The app key sent with endpoint calls, or null. */
    get token() {
      return token
    },
    /** @param {string | null | undefined} next */
    setToken(next) {
      token = next ?? null
    },
    /**
     * Calls an endpoint once: `client.request('GET /notes/:id', { params: { id } })`.
     * @param {string} route
     * @param {EndpointInput} [input]
     */
    request(route, input) {
      return call(parseRoute(route), input, undefined)
    },
    /**
     * A function that calls one endpoint.
     * @param {string} route  'METHOD /path', with `:name` and `*name` parameters
     * @param {{ validate?: Validator }} [endpointOptions]
     */
    endpoint(route, endpointOptions = {}) {
      const parsed = parseRoute(route)
      const validate = endpointOptions.validate
      if (validate != null && typeof validate !== 'function' && typeof validate.parse !== 'function') {
        throw new TypeError('endpoint: `validate` must be a function or have a parse method')
      }
      /** @param {EndpointInput} [input] */
      const endpoint = (input) => call(parsed, input, validate)
      Object.defineProperty(endpoint, 'route', { value: parsed.route })
      return endpoint
    },
    /**
     * Follows a topic. See README.md for reconnection, resume and token refresh.
     * @param {string} topic
     * @param {SubscribeOptions} subscribeOptions
     * @returns {Subscription}
     */
    subscribe(topic, subscribeOptions) {
      return subscribe(topic, subscribeOptions)
    },
  }

  /**
   * @param {string} topic
   * @param {SubscribeOptions} opts
   * @returns {Subscription}
   */
  function subscribe(topic, opts) {
    if (typeof topic !== 'string' || topic === '') throw new TypeError('subscribe: a topic name is required')
    if (!opts || typeof opts.onEvent !== 'function') throw new TypeError('subscribe: options.onEvent is required')
    const transport = opts.transport ?? 'fetch'
    if (transport !== 'fetch' && transport !== 'eventsource') throw new TypeError(`subscribe: unknown transport '${transport}'`)
    const getToken = opts.getToken ?? opts.onTokenExpired
    const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 45000
    const maxDelayMs = opts.maxDelayMs ?? 30000
    const streamURL = `${appBase}/realtime/${encodeURIComponent(topic)}`

    let closed = false
    /** @type {string | null} */
    let lastEventId = opts.lastEventId == null ? null : String(opts.lastEventId)
    /** @type {string | null} */
    let subscriberToken = opts.token ?? null
    let attempt = 0
    /** @type {number | null} */
    let serverRetry = null
    let unauthorizedInARow = 0
    /** Expiries with nothing delivered in between (a server that keeps saying so must not be hammered). */
    let expiredInARow = 0
    /** @type {AbortController | null} */
    let controller = null
    /** @type {ReturnType<typeof setTimeout> | null} */
    let sleepTimer = null
    /** @type {(() => void) | null} */
    let wake = null
    /** @type {any} */
    let eventSource = null
    /**
     * Cancels the stream being read: close() must stop even a fetch that ignores its signal.
     * @type {(() => void) | null}
     */
    let cancelRead = null

    /** @param {PiCloudError} error */
    const reportError = (error) => {
      if (!closed) invoke(opts.onError, error)
    }
    /** @param {DisconnectInfo} info */
    const reportDisconnect = (info) => {
      if (!closed) invoke(opts.onDisconnect, info)
    }
    /**
     * Stops for good on our own (never after close()).
     * @param {string} reason
     * @param {PiCloudError} [error]
     */
    const stop = (reason, error) => {
      if (closed) return
      if (error) reportError(error)
      closed = true
      invoke(opts.onClose, error ? { reason, error } : { reason })
      cleanup()
    }
    const cleanup = () => {
      controller?.abort()
      controller = null
      cancelRead?.()
      cancelRead = null
      if (sleepTimer) clearTimeout(sleepTimer)
      sleepTimer = null
      wake?.()
      wake = null
      if (eventSource) eventSource.close()
      eventSource = null
    }

    /** A connection delivered something (an event, a gap, a heartbeat): the backoff starts over. */
    const delivered = () => {
      attempt = 0
      expiredInARow = 0
    }

    /** The next delay: exponential from the base, capped, with full jitter. */
    const backoff = () => {
      const base = opts.minDelayMs ?? Math.max(1000, serverRetry ?? 0)
      const cap = Math.min(maxDelayMs, base * 2 ** Math.min(attempt, 30))
      attempt++
      return Math.round(Math.random() * cap)
    }

    /** @param {number} ms */
    const sleep = (ms) =>
      new Promise((resolve) => {
        if (closed || ms <= 0) return resolve(undefined)
        wake = () => resolve(undefined)
        sleepTimer = setTimeout(() => {
          sleepTimer = null
          wake = null
          resolve(undefined)
        }, ms)
      })

    /** Fetches a token when none is at hand and getToken can give one; false when it failed. */
    const ensureToken = async () => {
      if (subscriberToken != null || typeof getToken !== 'function') return true
      try {
        const result = await getToken()
        const value = typeof result === 'string' ? result : /** @type {{ token?: unknown }} */ (result)?.token
        if (typeof value !== 'string' || value === '') throw new PiCloudError('token_error', 'getToken returned no token')
        if (!closed) subscriberToken = value
        return true
      } catch (error) {
        const failure =
          error instanceof PiCloudError ? error : new PiCloudError('token_error', `getToken failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
        reportError(failure)
        return false
      }
    }

    /**
     * Routes one parsed SSE event; returns 'expired' or 'closed' (with the reason) when the
     * server ends the stream on purpose.
     * @param {string} type @param {string} data @param {string | null} id
     * @returns {{ control: 'expired' | 'closed', reason: string } | null}
     */
    const route = (type, data, id) => {
      /** @type {any} */
      let parsed
      try {
        parsed = JSON.parse(data)
      } catch {
        parsed = undefined
      }
      if (id === '') id = null
      if (type === 'message') {
        if (id != null && lastEventId != null && (compareIds(id, lastEventId) ?? 1) <= 0) return null // seen before
        if (id != null) lastEventId = id
        if (!parsed || typeof parsed !== 'object') {
          reportError(new PiCloudError('invalid_response', `an event of '${topic}' is not JSON: ${data.slice(0, 200)}`))
          return null
        }
        invoke(opts.onEvent, {
          id: parsed.id != null ? String(parsed.id) : id ?? '',
          topic: typeof parsed.topic === 'string' ? parsed.topic : topic,
          message: parsed.message,
          publishedAt: parsed.published_at,
        })
      } else if (type === 'gap') {
        const to = parsed?.to != null ? String(parsed.to) : id
        if (to != null) lastEventId = to
        invoke(opts.onGap, {
          from: parsed?.from != null ? String(parsed.from) : null,
          to: to ?? '',
          missed: typeof parsed?.missed === 'number' ? parsed.missed : null,
          reason: typeof parsed?.reason === 'string' ? parsed.reason : 'unknown',
        })
      } else if (type === 'expired' || type === 'closed') {
        return { control: type, reason: typeof parsed?.reason === 'string' ? parsed.reason : type }
      }
      return null // other event types: ignored (forward compatible)
    }

    // -- fetch transport ------------------------------------------------------------------

    /**
     * One connection, from request to end.
     * @returns {Promise<{ kind: 'retry' | 'unauthorized' | 'expired' | 'fatal', reason: string, error?: PiCloudError, detail?: string }>}
     */
    const connectOnce = async () => {
      const abort = new AbortController()
      controller = abort
      /** @type {Record<string, string>} */
      const headers = { accept: 'text/event-stream' }
      if (subscriberToken) headers.authorization = `Bearer ${subscriberToken}`
      if (lastEventId != null) headers['last-event-id'] = lastEventId
      // The watchdog: no bytes (answer, events or heartbeat comments) for heartbeatTimeoutMs
      // means the connection is dead even if nobody closed it.
      let timedOut = false
      /** @type {ReturnType<typeof setTimeout> | null} */
      let watchdog = null
      const arm = () => {
        if (watchdog) clearTimeout(watchdog)
        if (heartbeatTimeoutMs > 0 && Number.isFinite(heartbeatTimeoutMs)) {
          watchdog = setTimeout(() => {
            timedOut = true
            abort.abort()
            reader?.cancel().catch(() => {})
          }, heartbeatTimeoutMs)
        }
      }
      const timeoutOutcome = () => ({
        kind: /** @type {const} */ ('retry'),
        reason: 'heartbeat_timeout',
        error: new PiCloudError('network_error', `no data from the server for ${heartbeatTimeoutMs} ms`),
      })
      /** @type {ReadableStreamDefaultReader<Uint8Array> | null} */
      let reader = null
      /** @type {Response} */
      let response
      arm()
      try {
        response = await doFetch(streamURL, { method: 'GET', headers, signal: abort.signal })
      } catch (error) {
        if (watchdog) clearTimeout(watchdog)
        if (timedOut) return timeoutOutcome()
        return { kind: 'retry', reason: 'network_error', error: networkError(error, abort.signal) }
      }
      const contentType = response.headers.get('content-type') ?? ''
      if (!response.ok || !/^text\/event-stream/i.test(contentType) || !response.body) {
        let text = ''
        try {
          text = await response.text()
        } catch {
          // the body is of no use anyway
        }
        if (watchdog) clearTimeout(watchdog)
        if (response.ok) {
          const error = new PiCloudError('invalid_response', `expected an event stream, got ${contentType || 'no content type'}`, { status: response.status })
          return { kind: 'retry', reason: 'invalid_response', error }
        }
        const error = errorFromResponse(response, text)
        const status = response.status
        if (status === 401) return { kind: 'unauthorized', reason: 'unauthorized', error }
        if (status === 404 || status === 408 || status === 425 || status === 429 || status >= 500) {
          return { kind: 'retry', reason: status === 404 ? 'not_found' : 'http_error', error }
        }
        return { kind: 'fatal', reason: 'refused', error }
      }

      unauthorizedInARow = 0
      invoke(opts.onOpen)
      /** @type {{ control: 'expired' | 'closed', reason: string } | null} */
      let control = null
      const parser = createSSEParser({
        lastEventId,
        onEvent: (event) => {
          if (control || closed) return
          if (event.type !== 'expired' && event.type !== 'closed') delivered()
          control = route(event.type, event.data, event.id)
        },
        onComment: () => delivered(),
        onRetry: (ms) => {
          serverRetry = ms
        },
        // A position without an event (`id: n` alone): where to resume from if the connection
        // drops before the first event. Only ever moves forward.
        onId: (id) => {
          if (id && (lastEventId == null || (compareIds(id, lastEventId) ?? 0) > 0)) lastEventId = id
        },
      })
      const streamReader = response.body.getReader()
      reader = streamReader
      cancelRead = () => streamReader.cancel().catch(() => {})
      const decoder = new TextDecoder()
      arm()
      try {
        while (!control && !closed && !timedOut) {
          const { value, done } = await streamReader.read()
          if (done) break
          arm()
          parser.push(decoder.decode(value, { stream: true }))
        }
        if (timedOut && !closed) return timeoutOutcome()
      } catch (error) {
        if (timedOut) return timeoutOutcome()
        return { kind: 'retry', reason: 'network_error', error: networkError(error, null) }
      } finally {
        if (watchdog) clearTimeout(watchdog)
        parser.end()
        cancelRead = null
        streamReader.cancel().catch(() => {})
        abort.abort()
      }
      // (set by the parser's callback, which TypeScript does not follow)
      const ended = /** @type {{ control: 'expired' | 'closed', reason: string } | null} */ (control)
      if (ended?.control === 'expired') return { kind: 'expired', reason: 'expired', detail: ended.reason }
      if (ended?.control === 'closed') return { kind: 'retry', reason: 'closed', detail: ended.reason }
      return { kind: 'retry', reason: 'ended' }
    }

    const runFetch = async () => {
      while (!closed) {
        if (!(await ensureToken())) {
          const delayMs = backoff()
          reportDisconnect({ reason: 'token_error', delayMs })
          await sleep(delayMs)
          continue
        }
        if (closed) return
        const outcome = await connectOnce()
        if (closed) return
        /** @type {number} */
        let delayMs
        if (outcome.kind === 'unauthorized' || outcome.kind === 'expired') {
          if (typeof getToken !== 'function') {
            const error =
              outcome.kind === 'expired'
                ? new PiCloudError('token_expired', `the subscriber token for '${topic}' expired and there is no getToken to renew it`, { status: 0 })
                : /** @type {PiCloudError} */ (outcome.error)
            stop(outcome.kind, error)
            return
          }
          subscriberToken = null // fetch a new one before the next attempt
          if (outcome.kind === 'unauthorized') {
            unauthorizedInARow++
            // The first refusal after a working token: renew it and retry at once. A fresh token
            // refused again means something else is wrong: say so and slow down.
            if (unauthorizedInARow > 1 && outcome.error) reportError(outcome.error)
            delayMs = unauthorizedInARow > 1 ? backoff() : 0
          } else {
            // At once after a stream that delivered something, else with the backoff.
            expiredInARow++
            delayMs = expiredInARow > 1 ? backoff() : 0
          }
        } else if (outcome.kind === 'fatal') {
          stop(outcome.reason, outcome.error)
          return
        } else {
          if (outcome.error) reportError(outcome.error)
          delayMs = backoff()
        }
        /** @type {DisconnectInfo} */
        const info = { reason: outcome.reason, delayMs }
        if (outcome.detail) info.detail = outcome.detail
        reportDisconnect(info)
        await sleep(delayMs)
      }
    }

    // -- EventSource transport --------------------------------------------------------------

    const runEventSource = async () => {
      const EventSourceClass = opts.EventSource ?? /** @type {any} */ (globalThis).EventSource
      if (typeof EventSourceClass !== 'function') {
        stop('unsupported', new PiCloudError('unsupported', "EventSource is not available here: use transport 'fetch'"))
        return
      }
      /** @param {number} delayMs @param {string} reason @param {string} [detail] */
      const reconnect = async (delayMs, reason, detail) => {
        if (eventSource) eventSource.close()
        eventSource = null
        if (closed) return
        /** @type {DisconnectInfo} */
        const info = { reason, delayMs }
        if (detail) info.detail = detail
        reportDisconnect(info)
        await sleep(delayMs)
        if (!closed) await open()
      }
      /** @param {unknown} error */
      const fail = (error) => stop('internal_error', error instanceof PiCloudError ? error : new PiCloudError('internal_error', String(error), { cause: error }))
      const open = async () => {
        if (!(await ensureToken())) {
          reconnect(backoff(), 'token_error').catch(fail)
          return
        }
        if (closed) return
        const query = new URLSearchParams()
        if (subscriberToken) query.set('token', subscriberToken)
        if (lastEventId != null) query.set('last_event_id', lastEventId)
        const search = query.toString()
        const source = new EventSourceClass(search ? `${streamURL}?${search}` : streamURL)
        eventSource = source
        let opened = false
        /** @param {string} type */
        const listener = (type) => (/** @type {MessageEvent} */ event) => {
          if (closed || eventSource !== source) return
          if (type !== 'expired' && type !== 'closed') delivered()
          const id = typeof event.lastEventId === 'string' && event.lastEventId !== '' ? event.lastEventId : null
          const control = route(type, String(event.data ?? ''), id)
          if (control?.control === 'expired') {
            if (typeof getToken !== 'function') {
              stop('expired', new PiCloudError('token_expired', `the subscriber token for '${topic}' expired and there is no getToken to renew it`))
              return
            }
            subscriberToken = null
            expiredInARow++
            reconnect(expiredInARow > 1 ? backoff() : 0, 'expired', control.reason).catch(fail)
          } else if (control?.control === 'closed') {
            reconnect(backoff(), 'closed', control.reason).catch(fail)
          }
        }
        source.onopen = () => {
          if (closed || eventSource !== source) return
          opened = true
          invoke(opts.onOpen)
        }
        source.onmessage = listener('message')
        for (const type of ['gap', 'expired', 'closed']) source.addEventListener(type, listener(type))
        source.onerror = () => {
          if (closed || eventSource !== source) return
          if (source.readyState === 2) {
            // Refused (401, 404, ...): EventSource does not say which. Renew the token if we can.
            reportError(new PiCloudError('connection_failed', `the event stream of '${topic}' was refused or failed (EventSource does not tell the status)`))
            if (typeof getToken === 'function') subscriberToken = null
            reconnect(backoff(), 'error').catch(fail)
          } else if (opened) {
            // The browser reconnects by itself and sends Last-Event-ID.
            opened = false
            reportDisconnect({ reason: 'network_error', delayMs: null })
          }
        }
      }
      await open()
    }

    ;(transport === 'eventsource' ? runEventSource() : runFetch()).catch((error) => {
      // A bug: say so rather than fail silently.
      stop('internal_error', error instanceof PiCloudError ? error : new PiCloudError('internal_error', String(error), { cause: error }))
    })

    return {
      close() {
        if (closed) return
        closed = true
        cleanup()
      },
      get lastEventId() {
        return lastEventId
      },
      get topic() {
        return topic
      },
    }
  }

  return client
}

// ---------------------------------------------------------------------------------------------
// A Svelte-compatible store of a topic's recent events

/**
 * A store (Svelte's contract: `subscribe(run) → unsubscribe`, `run` is called at once) whose
 * value is `{ events, last, gap, status, error }`. It connects when the first subscriber comes,
 * disconnects after the last one leaves, and resumes from the last event it saw when it is
 * subscribed to again. `status` is 'connecting' until a connection opens, 'closed' after the last
 * subscriber left or when the subscription stopped for good, 'error' after a failure while it retries.
 *
 * @param {ReturnType<typeof createClient>} client
 * @param {string} topic
 * @param {Omit<Partial<SubscribeOptions>, 'onEvent'> & { keep?: number, onEvent?: (event: TopicEvent) => void }} [options]
 */
export function topicStore(client, topic, options = {}) {
  const keep = Math.max(0, options.keep ?? 100)
  /** @typedef {{ events: TopicEvent[], last: TopicEvent | null, gap: GapEvent | null, status: 'connecting' | 'open' | 'closed' | 'error', error: PiCloudError | null }} State */
  /** @type {State} */
  // 'connecting' from the start: the store exists to be subscribed, and a first render (React
  // reads the value before it subscribes) should not show 'closed'.
  let value = Object.freeze({ events: [], last: null, gap: null, status: 'connecting', error: null })
  /** @type {Set<(value: State) => void>} */
  const runs = new Set()
  /** @type {Subscription | null} */
  let subscription = null
  /** @type {string | null} */
  let lastEventId = options.lastEventId == null ? null : String(options.lastEventId)

  /** @param {Partial<State>} patch */
  function set(patch) {
    value = Object.freeze({ ...value, ...patch })
    for (const run of [...runs]) if (runs.has(run)) run(value)
  }

  function start() {
    value = Object.freeze({ ...value, status: 'connecting', error: null })
    const { keep: _keep, ...rest } = options
    /** @type {Subscription | null} */
    let current = null
    current = client.subscribe(topic, {
      ...rest,
      lastEventId,
      onOpen() {
        set({ status: 'open', error: null })
        invoke(options.onOpen)
      },
      onEvent(event) {
        lastEventId = current?.lastEventId ?? event.id
        const events = keep === 0 ? [] : value.events.length >= keep ? [...value.events.slice(value.events.length - keep + 1), event] : [...value.events, event]
        set({ events, last: event })
        invoke(options.onEvent, event)
      },
      onGap(gap) {
        lastEventId = current?.lastEventId ?? gap.to
        set({ gap })
        invoke(options.onGap, gap)
      },
      onError(error) {
        set({ status: 'error', error })
        invoke(options.onError, error)
      },
      onDisconnect(info) {
        if (value.status === 'open') set({ status: 'connecting' })
        invoke(options.onDisconnect, info)
      },
      onClose(info) {
        if (subscription === current || current === null) subscription = null
        set({ status: 'closed' })
        invoke(options.onClose, info)
      },
    })
    // A subscription that stopped at once (no EventSource here) has already said so.
    if (value.status !== 'closed') subscription = current
  }

  function stop() {
    if (subscription) {
      lastEventId = subscription.lastEventId ?? lastEventId
      subscription.close()
      subscription = null
    }
    value = Object.freeze({ ...value, status: 'closed' })
  }

  return {
    /**
     * @param {(value: State) => void} run
     * @param {(value?: State) => void} [_invalidate]
     */
    subscribe(run, _invalidate) {
      if (typeof run !== 'function') throw new TypeError('topicStore.subscribe: a function is required')
      const first = runs.size === 0
      // A distinct wrapper per subscription, so the same function may subscribe twice.
      /** @param {State} state */
      const entry = (state) => run(state)
      if (first) start()
      runs.add(entry)
      run(value)
      let done = false
      return () => {
        if (done) return
        done = true
        runs.delete(entry)
        if (runs.size === 0) stop()
      }
    },
    /** The current value. */
    get() {
      return value
    },
  }
}
