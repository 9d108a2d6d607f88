// The React hooks through createHooks(React), with a small hand-written stand-in for React's
// hooks (no npm here): one component, re-rendered when its state or store changes, effects run
// after each render, cleaned up on unmount.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createClient } from '../src/index.js'
import { createHooks } from '../src/react.js'
import { waitFor } from './helpers/server.js'

// Components left mounted by a failing test would keep connections open: unmounted at the end.
const views = []
after(() => {
  for (const view of views) view.unmount()
})

const sameDeps = (a, b) => a != null && b != null && a.length === b.length && a.every((item, i) => Object.is(item, b[i]))

/** Mounts `component(props)` with a fake React; returns { React, result(), renders, setProps, unmount }. */
function mount(component, initialProps) {
  let slots = []
  let index = 0
  let effects = []
  let scheduled = false
  let mounted = true
  let props = initialProps
  let result
  const harness = { renders: 0, result: () => result }

  const schedule = () => {
    if (scheduled || !mounted) return
    scheduled = true
    queueMicrotask(() => {
      scheduled = false
      if (mounted) render()
    })
  }
  const slot = (make) => {
    const i = index++
    if (!(i in slots)) slots[i] = make()
    return slots[i]
  }
  const React = {
    useRef: (initial) => slot(() => ({ current: initial })),
    useState(initial) {
      const state = slot(() => ({ value: typeof initial === 'function' ? initial() : initial }))
      state.set ??= (next) => {
        const value = typeof next === 'function' ? next(state.value) : next
        if (!Object.is(value, state.value)) {
          state.value = value
          schedule()
        }
      }
      return [state.value, state.set]
    },
    useCallback(fn, deps) {
      const memo = slot(() => ({ fn, deps }))
      if (!sameDeps(memo.deps, deps)) Object.assign(memo, { fn, deps })
      return memo.fn
    },
    useEffect(effect, deps) {
      const state = slot(() => ({ deps: null, cleanup: null }))
      if (deps && sameDeps(state.deps, deps)) return
      state.deps = deps
      effects.push(() => {
        state.cleanup?.()
        const cleanup = effect()
        state.cleanup = typeof cleanup === 'function' ? cleanup : null
      })
    },
    useSyncExternalStore(subscribe, getSnapshot) {
      const state = slot(() => ({ subscribe: null, unsubscribe: null }))
      state.getSnapshot = getSnapshot
      state.value = getSnapshot()
      if (state.subscribe !== subscribe) {
        effects.push(() => {
          state.unsubscribe?.()
          state.subscribe = subscribe
          state.unsubscribe = subscribe(() => {
            if (!Object.is(state.getSnapshot(), state.value)) schedule()
          })
          state.cleanup = () => state.unsubscribe?.()
        })
      }
      return state.value
    },
  }
  function render() {
    index = 0
    harness.renders++
    result = component(props)
    const run = effects
    effects = []
    for (const effect of run) effect()
  }
  harness.React = React
  harness.setProps = (next) => {
    props = { ...props, ...next }
    render()
  }
  harness.unmount = () => {
    mounted = false
    for (const state of slots) state?.cleanup?.()
    slots = []
  }
  harness.start = () => render()
  views.push(harness)
  return harness
}

/** A fetch serving event streams the test writes to. */
function streamingFetch() {
  const streams = []
  const fetch = async (url, init) => {
    let controller
    const body = new ReadableStream({ start: (c) => (controller = c) })
    init.signal?.addEventListener('abort', () => {
      try {
        controller.error(new DOMException('aborted', 'AbortError'))
      } catch {}
    })
    const stream = {
      url: String(url),
      signal: init.signal,
      send: (id, message) => controller.enqueue(new TextEncoder().encode(`id: ${id}\ndata: ${JSON.stringify({ id: String(id), topic: 't', message, published_at: 1 })}\n\n`)),
    }
    streams.push(stream)
    return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
  }
  return { fetch, streams }
}

test('createHooks refuses something that is not React 18', () => {
  assert.throws(() => createHooks({}), TypeError)
})

test('useTopic: connects on mount, re-renders on events, reconnects for a new topic, closes on unmount', async () => {
  const server = streamingFetch()
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const received = []
  let hooks
  const view = mount(({ topic, tag }) => {
    const state = hooks.useTopic(client, topic, { keep: 2, onEvent: (e) => received.push(`${tag}:${e.id}`) })
    return state
  }, { topic: 'alpha', tag: 'first' })
  hooks = createHooks(view.React)
  view.start()
  assert.equal(view.result().status, 'connecting')
  await waitFor(() => view.result().status === 'open')
  assert.equal(server.streams.length, 1)
  assert.match(server.streams[0].url, /\/realtime\/alpha$/)

  server.streams[0].send(1, 'one')
  server.streams[0].send(2, 'two')
  server.streams[0].send(3, 'three')
  await waitFor(() => view.result().last?.id === '3')
  assert.deepEqual(
    view.result().events.map((e) => e.message),
    ['two', 'three'],
  )

  // A re-render with a new callback: the latest one is called, on the same connection.
  view.setProps({ tag: 'second' })
  server.streams[0].send(4, 'four')
  await waitFor(() => view.result().last?.id === '4')
  assert.deepEqual(received, ['first:1', 'first:2', 'first:3', 'second:4'])
  assert.equal(server.streams.length, 1)

  // Another topic: the old connection closes, a new one opens.
  view.setProps({ topic: 'beta' })
  await waitFor(() => server.streams.length === 2)
  assert.equal(server.streams[0].signal.aborted, true)
  assert.match(server.streams[1].url, /\/realtime\/beta$/)
  await waitFor(() => view.result().status === 'open')
  assert.equal(view.result().last, null, 'a new topic starts empty')

  view.unmount()
  assert.equal(server.streams[1].signal.aborted, true)
})

test('useTopic: a token that arrives later connects with it; a rotated token is used at the next expiry without reconnecting', async () => {
  const requests = []
  const streams = []
  const fetch = async (url, init) => {
    const authorization = new Headers(init.headers).get('authorization')
    requests.push(authorization)
    if (!authorization) return new Response('{"error":{"code":"unauthorized","message":"no"}}', { status: 401 })
    let controller
    const body = new ReadableStream({ start: (c) => (controller = c) })
    init.signal?.addEventListener('abort', () => {
      try {
        controller.error(new DOMException('aborted', 'AbortError'))
      } catch {}
    })
    streams.push({ send: (text) => controller.enqueue(new TextEncoder().encode(text)), signal: init.signal })
    return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
  }
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch })
  let hooks
  const view = mount(({ token }) => hooks.useTopic(client, 'room', { token, minDelayMs: 5 }), { token: undefined })
  hooks = createHooks(view.React)
  view.start()
  await waitFor(() => view.result().status === 'closed', { message: 'a 401 without a token to stop' })
  assert.equal(view.result().error.status, 401)

  view.setProps({ token: 'pct_1' })
  await waitFor(() => view.result().status === 'open')
  assert.deepEqual(requests, [null, 'Bearer pct_1'])

  view.setProps({ token: 'pct_2' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(requests.length, 2, 'a new token alone does not reconnect')
  streams[0].send('id: 1\ndata: {"id":"1","topic":"room","message":"a","published_at":1}\n\nevent: expired\ndata: {"reason":"token_expired"}\n\n')
  await waitFor(() => requests.length === 3)
  assert.equal(requests[2], 'Bearer pct_2')
  await waitFor(() => view.result().status === 'open')
  assert.equal(view.result().last.id, '1')
  view.unmount()
  assert.ok(streams[1].signal.aborted)
})

/** A fetch whose answers the test settles: `pending[i].resolve(json)` / `.fail(status, json)`. */
function deferredFetch() {
  const pending = []
  const fetch = (url, init) =>
    new Promise((resolve, reject) => {
      const call = {
        url: String(url),
        body: init.body,
        signal: init.signal,
        resolve: (json) => resolve(new Response(JSON.stringify(json), { headers: { 'content-type': 'application/json' } })),
        fail: (status, json) => resolve(new Response(JSON.stringify(json), { status, headers: { 'content-type': 'application/json' } })),
      }
      init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')))
      pending.push(call)
    })
  return { fetch, pending }
}

test('useEndpoint: loading → data; a new input aborts the call in flight; errors; refetch; null skips; unmount aborts', async () => {
  const server = deferredFetch()
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  let hooks
  const view = mount(({ id }) => hooks.useEndpoint(client, 'GET /notes/:id', id === null ? null : { params: { id } }), { id: '1' })
  hooks = createHooks(view.React)
  view.start()
  assert.equal(view.result().loading, true)
  assert.equal(view.result().data, undefined)
  await waitFor(() => server.pending.length === 1)
  assert.equal(server.pending[0].url, 'http://x.test/apps/demo/api/notes/1')
  server.pending[0].resolve({ id: '1', title: 'first' })
  await waitFor(() => view.result().loading === false)
  assert.deepEqual(view.result().data, { id: '1', title: 'first' })
  assert.equal(view.result().error, null)

  // Re-rendering with an equal input calls nothing.
  view.setProps({ id: '1' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(server.pending.length, 1)

  // A new input: a new call; another before it answers aborts it, and its answer is ignored.
  view.setProps({ id: '2' })
  await waitFor(() => server.pending.length === 2)
  assert.equal(view.result().loading, true)
  assert.deepEqual(view.result().data, { id: '1', title: 'first' }, 'the last data stays while loading')
  view.setProps({ id: '3' })
  await waitFor(() => server.pending.length === 3)
  assert.equal(server.pending[1].signal.aborted, true)
  server.pending[2].fail(404, { error: { code: 'not_found', message: 'no note 3' } })
  await waitFor(() => view.result().loading === false)
  assert.equal(view.result().error.code, 'not_found')
  assert.equal(view.result().error.status, 404)

  // refetch calls again with the same input.
  view.result().refetch()
  await waitFor(() => server.pending.length === 4)
  assert.equal(server.pending[3].url, 'http://x.test/apps/demo/api/notes/3')
  server.pending[3].resolve({ id: '3', title: 'third' })
  await waitFor(() => view.result().data?.id === '3')
  assert.equal(view.result().error, null)

  // null input: no call.
  view.setProps({ id: null })
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(server.pending.length, 4)
  assert.equal(view.result().loading, false)

  view.setProps({ id: '5' })
  await waitFor(() => server.pending.length === 5)
  view.unmount()
  assert.equal(server.pending[4].signal.aborted, true)
})

test('useEndpoint: explicit deps decide when to call; an endpoint function (with validate) is accepted', async () => {
  const server = deferredFetch()
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const search = client.endpoint('POST /search', { validate: (data) => data.items })
  let hooks
  const view = mount(({ text, version }) => hooks.useEndpoint(client, search, { body: { text } }, [version]), { text: 'a', version: 1 })
  hooks = createHooks(view.React)
  view.start()
  await waitFor(() => server.pending.length === 1)
  assert.equal(server.pending[0].body, '{"text":"a"}')
  server.pending[0].resolve({ items: ['x'] })
  await waitFor(() => view.result().loading === false)
  assert.deepEqual(view.result().data, ['x'])

  view.setProps({ text: 'b' }) // deps unchanged: no call
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(server.pending.length, 1)
  view.setProps({ version: 2 }) // deps changed: calls with the latest input
  await waitFor(() => server.pending.length === 2)
  assert.equal(server.pending[1].body, '{"text":"b"}')
  view.unmount()
})
