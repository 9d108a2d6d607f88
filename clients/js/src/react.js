// @ts-check
/**
 * React hooks for @picloud/client. React is a peer dependency and is never imported here: pass
 * it in once.
 *
 *   import * as React from 'react'
 *   import { createHooks } from '@picloud/client/react'
 *   export const { useTopic, useEndpoint } = createHooks(React)
 *
 * Needs React 18 or newer (useSyncExternalStore).
 */
import { topicStore } from './index.js'

/**
 * @typedef {{
 *   useSyncExternalStore: <S>(subscribe: (onChange: () => void) => () => void, getSnapshot: () => S, getServerSnapshot?: () => S) => S,
 *   useState: <S>(initial: S | (() => S)) => [S, (next: S | ((previous: S) => S)) => void],
 *   useEffect: (effect: () => void | (() => void), deps?: readonly unknown[]) => void,
 *   useRef: <T>(initial: T) => { current: T },
 *   useCallback: <F extends (...args: any[]) => any>(callback: F, deps: readonly unknown[]) => F,
 * }} ReactLike
 */

/**
 * A key for an input object: what decides whether useEndpoint calls again (signal left out).
 * @param {unknown} value
 * @returns {string}
 */
function inputKey(value) {
  if (value === undefined) return 'undefined'
  return JSON.stringify(value, (key, item) => {
    if (key === 'signal') return undefined
    if (item instanceof URLSearchParams) return item.toString()
    if (typeof Headers !== 'undefined' && item instanceof Headers) return [...item.entries()]
    if (item && typeof item === 'object' && !Array.isArray(item)) {
      // Sorted keys: { a, b } and { b, a } are the same input.
      return Object.fromEntries(Object.keys(item).sort().map((name) => [name, item[name]]))
    }
    return item
  })
}

/**
 * @param {ReactLike} React
 */
export function createHooks(React) {
  if (!React || typeof React.useSyncExternalStore !== 'function') {
    throw new TypeError('createHooks(React): React 18 or newer is needed (useSyncExternalStore)')
  }

  /**
   * The live state of a topic: `{ events, last, gap, status, error }`. Connects while the
   * component is mounted; a new client, topic, `keep` or transport makes a new connection.
   * Callbacks in `options` (getToken, onEvent, ...) may change between renders freely; so may
   * `token` (the newest is used whenever the connection needs one), and a `token` that was
   * null and arrives later connects with it.
   *
   * @param {ReturnType<typeof import('./index.js').createClient>} client
   * @param {string} topic
   * @param {Parameters<typeof topicStore>[2]} [options]
   */
  function useTopic(client, topic, options = {}) {
    const latest = React.useRef(options)
    latest.current = options
    /** @type {{ current: { store: ReturnType<typeof topicStore>, key: unknown[] } | null }} */
    const holder = React.useRef(null)
    const renews = typeof options.getToken === 'function' || typeof options.onTokenExpired === 'function'
    // A token that arrives later (it was loading) makes a new connection; a token that changes
    // does not: it is used the next time the connection needs one (after a 401 or an expiry).
    const hasToken = options.token != null || renews
    const key = [client, topic, options.keep, options.transport, hasToken, options.heartbeatTimeoutMs, options.minDelayMs, options.maxDelayMs]
    if (!holder.current || holder.current.key.some((item, i) => !Object.is(item, key[i]))) {
      /** @type {any} */
      const forwarded = { ...options }
      // Callbacks are read when called, so the latest render's functions run.
      for (const name of ['getToken', 'onTokenExpired', 'onEvent', 'onGap', 'onError', 'onOpen', 'onClose', 'onDisconnect']) {
        if (typeof (/** @type {any} */ (options)[name]) === 'function') {
          forwarded[name] = (/** @type {unknown[]} */ ...args) => /** @type {any} */ (latest.current)[name]?.(...args)
        }
      }
      if (options.token != null && !renews) forwarded.getToken = () => latest.current.token
      holder.current = { store: topicStore(client, topic, forwarded), key }
    }
    const store = holder.current.store
    return React.useSyncExternalStore(store.subscribe, store.get, store.get)
  }

  /**
   * Calls an endpoint when the component mounts and whenever the input changes (or `deps`,
   * when given, change); aborts the call in flight on changes and on unmount. `input = null`
   * skips the call (for calls that wait for something). `route` is a route string or a function
   * from `client.endpoint(route, { validate })`.
   *
   * @param {ReturnType<typeof import('./index.js').createClient>} client
   * @param {string | ((input?: any) => Promise<unknown>)} route
   * @param {import('./index.js').EndpointInput | null} [input]
   * @param {readonly unknown[]} [deps]
   */
  function useEndpoint(client, route, input, deps) {
    const [state, setState] = React.useState(() => ({
      data: /** @type {unknown} */ (undefined),
      error: /** @type {import('./index.js').PiCloudError | null} */ (null),
      loading: input !== null,
    }))
    const [nonce, setNonce] = React.useState(0)
    const latestInput = React.useRef(input)
    latestInput.current = input
    const skip = input === null
    const watched = deps ?? [inputKey(input)]

    React.useEffect(() => {
      const current = latestInput.current
      if (current === null) {
        setState((previous) => (previous.loading ? { ...previous, loading: false } : previous))
        return
      }
      const controller = new AbortController()
      let active = true
      setState((previous) => (previous.loading && previous.error === null ? previous : { ...previous, loading: true, error: null }))
      const call = typeof route === 'function' ? route : client.endpoint(route)
      call({ ...(current ?? {}), signal: controller.signal }).then(
        (data) => {
          if (active) setState({ data, error: null, loading: false })
        },
        (error) => {
          if (!active || error?.code === 'aborted') return
          setState((previous) => ({ data: previous.data, error, loading: false }))
        },
      )
      return () => {
        active = false
        controller.abort()
      }
      // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [client, route, skip, nonce, ...watched])

    const refetch = React.useCallback(() => setNonce((n) => n + 1), [])
    return { data: state.data, error: state.error, loading: state.loading, refetch }
  }

  return { useTopic, useEndpoint }
}
