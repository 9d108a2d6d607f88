// subscribe() against a scripted fetch: canned streams and answers, to pin down each rule
// (gaps, expiry, 401/404, closed, heartbeat timeout, close(), backoff) without a server.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createClient, PiCloudError } from '../src/index.js'
import { delay, waitFor } from './helpers/server.js'

const encoder = new TextEncoder()

/**
 * A fetch whose answers come from `script(call, index)`: `{ status, body }` for an error answer,
 * `{ reject: error }` for a network failure, or `{ chunks: [...], end: true|false }` for an event
 * stream (the test can push more through `streams[i]`).
 */
function scriptedFetch(script) {
  const calls = []
  const streams = []
  async function fetch(url, init = {}) {
    const call = { url: String(url), headers: Object.fromEntries(new Headers(init.headers).entries()), signal: init.signal }
    calls.push(call)
    const spec = (await script(call, calls.length - 1)) ?? { chunks: [] }
    if (spec.reject) throw spec.reject
    if (spec.status && spec.status !== 200) {
      return new Response(spec.body ?? '', { status: spec.status, headers: { 'content-type': 'application/json' } })
    }
    let controller
    let cancelled = false
    const body = new ReadableStream({
      start(c) {
        controller = c
      },
      cancel() {
        cancelled = true
      },
    })
    const stream = {
      call,
      push(text) {
        try {
          controller.enqueue(encoder.encode(text))
        } catch {
          // cancelled or aborted: nobody reads any more
        }
      },
      end() {
        if (!cancelled) controller.close()
      },
      get cancelled() {
        return cancelled
      },
    }
    init.signal?.addEventListener('abort', () => {
      try {
        controller.error(new DOMException('aborted', 'AbortError'))
      } catch {}
    })
    streams.push(stream)
    for (const chunk of spec.chunks ?? []) stream.push(chunk)
    if (spec.end) stream.end()
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } })
  }
  return { fetch, calls, streams }
}

// Subscriptions left open by a failing test would keep the process alive: closed at the end.
const subscriptions = []
after(() => {
  for (const subscription of subscriptions) subscription.close()
})

const event = (id, message, topic = 'news') => `id: ${id}\ndata: ${JSON.stringify({ id: String(id), topic, message, published_at: 1000 + Number(id) })}\n\n`

/** Subscribes with callbacks that record into `log`. */
function record(client, topic, options = {}) {
  const log = { events: [], gaps: [], errors: [], opens: 0, closes: [], disconnects: [] }
  const subscription = client.subscribe(topic, {
    minDelayMs: 5,
    maxDelayMs: 40,
    ...options,
    onEvent: (e) => log.events.push(e),
    onGap: (g) => log.gaps.push(g),
    onError: (e) => log.errors.push(e),
    onOpen: () => log.opens++,
    onClose: (info) => log.closes.push(info),
    onDisconnect: (info) => log.disconnects.push(info),
  })
  subscriptions.push(subscription)
  return { log, subscription }
}

test('events become onEvent({ id, topic, message, publishedAt }); the request asks for an event stream', async () => {
  const server = scriptedFetch(() => ({ chunks: ['retry: 2000\n\n', event(1, { a: 1 }), ': heartbeat\n\n', event(2, 'two')] }))
  const client = createClient({ url: 'http://x.test/', app: 'demo', fetch: server.fetch })
  const { log, subscription } = record(client, 'room:lobby/1')
  await waitFor(() => log.events.length === 2)
  assert.equal(server.calls[0].url, 'http://x.test/apps/demo/realtime/room%3Alobby%2F1')
  assert.equal(server.calls[0].headers.accept, 'text/event-stream')
  assert.equal(server.calls[0].headers['last-event-id'], undefined)
  assert.equal(server.calls[0].headers.authorization, undefined)
  assert.deepEqual(log.events, [
    { id: '1', topic: 'news', message: { a: 1 }, publishedAt: 1001 },
    { id: '2', topic: 'news', message: 'two', publishedAt: 1002 },
  ])
  assert.equal(log.opens, 1)
  assert.equal(subscription.lastEventId, '2')
  subscription.close()
})

test('a stream that ends is resumed with Last-Event-ID; repeated ids are dropped', async () => {
  const server = scriptedFetch((call, index) =>
    index === 0 ? { chunks: [event(1, 'a'), event(2, 'b')], end: true } : { chunks: [event(2, 'b again'), event(3, 'c')] },
  )
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log, subscription } = record(client, 'news', { token: 'pct_abc', lastEventId: 0 })
  await waitFor(() => log.events.length === 3)
  assert.equal(server.calls[0].headers['last-event-id'], '0')
  assert.equal(server.calls[0].headers.authorization, 'Bearer pct_abc')
  assert.equal(server.calls[1].headers['last-event-id'], '2')
  assert.deepEqual(
    log.events.map((e) => e.message),
    ['a', 'b', 'c'],
  )
  assert.equal(log.disconnects[0].reason, 'ended')
  assert.equal(log.errors.length, 0)
  subscription.close()
})

test('an id-only block (a position without an event) is where a dropped connection resumes from', async () => {
  const server = scriptedFetch((call, index) => (index === 0 ? { chunks: ['retry: 2000\nid: 12\n\n'], end: true } : { chunks: [event(13, 'missed while away')] }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log, subscription } = record(client, 'news')
  await waitFor(() => log.events.length === 1)
  assert.equal(server.calls[0].headers['last-event-id'], undefined)
  assert.equal(server.calls[1].headers['last-event-id'], '12')
  subscription.close()
})

test('event: gap reaches onGap and moves lastEventId; an unknown_event_id gap resets it lower', async () => {
  const server = scriptedFetch(() => ({
    chunks: [
      'id: 7\nevent: gap\ndata: {"from":"3","missed":5,"to":"7","reason":"history_exceeded"}\n\n',
      event(8, 'eight'),
      'id: 2\nevent: gap\ndata: {"to":"2","reason":"unknown_event_id"}\n\n',
      event(3, 'three after the reset'),
    ],
  }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log, subscription } = record(client, 'news', { lastEventId: '2' })
  await waitFor(() => log.events.length === 2)
  assert.deepEqual(log.gaps, [
    { from: '3', to: '7', missed: 5, reason: 'history_exceeded' },
    { from: null, to: '2', missed: null, reason: 'unknown_event_id' },
  ])
  assert.deepEqual(
    log.events.map((e) => e.id),
    ['8', '3'],
  )
  assert.equal(subscription.lastEventId, '3')
  subscription.close()
})

test('event: expired calls getToken and reconnects at once with the new token and the last id', async () => {
  let issued = 0
  const server = scriptedFetch((call, index) =>
    index === 0 ? { chunks: [event(1, 'a'), 'event: expired\ndata: {"reason":"token_expired"}\n\n'] } : { chunks: [event(2, 'b')] },
  )
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log, subscription } = record(client, 'news', {
    minDelayMs: 60000, // a backoff would stall the test: expiry must not wait
    getToken: async () => ({ token: `pct_${++issued}`, expires_at: 0 }),
  })
  await waitFor(() => log.events.length === 2)
  assert.equal(issued, 2, 'one token to start, one after expiry')
  assert.equal(server.calls[0].headers.authorization, 'Bearer pct_1')
  assert.equal(server.calls[1].headers.authorization, 'Bearer pct_2')
  assert.equal(server.calls[1].headers['last-event-id'], '1')
  assert.deepEqual(log.disconnects[0], { reason: 'expired', delayMs: 0, detail: 'token_expired' })
  assert.equal(log.errors.length, 0)
  subscription.close()
})

test('a stream that says expired before anything else is not reconnected in a tight loop', async () => {
  const random = Math.random
  Math.random = () => 0.999999
  try {
    const server = scriptedFetch(() => ({ chunks: ['event: expired\ndata: {"reason":"token_expired"}\n\n'] }))
    const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
    const { log, subscription } = record(client, 'news', { minDelayMs: 10, maxDelayMs: 1000, getToken: () => 'pct_x' })
    await waitFor(() => log.disconnects.length >= 4)
    subscription.close()
    assert.deepEqual(
      log.disconnects.slice(0, 4).map((d) => d.delayMs),
      [0, 10, 20, 40],
    )
  } finally {
    Math.random = random
  }
})

test('event: expired without getToken reports token_expired and stops', async () => {
  const server = scriptedFetch(() => ({ chunks: ['event: expired\ndata: {"reason":"token_expired"}\n\n'] }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log } = record(client, 'news', { token: 'pct_old' })
  await waitFor(() => log.closes.length === 1)
  await delay(50)
  assert.equal(server.calls.length, 1)
  assert.equal(log.errors[0].code, 'token_expired')
  assert.equal(log.closes[0].reason, 'expired')
})

test('401 calls getToken (or onTokenExpired) and reconnects at once; a fresh token refused again is reported and backs off', async () => {
  const unauthorized = { status: 401, body: '{"error":{"code":"unauthorized","message":"a valid subscriber token for this topic is needed"}}' }
  const server = scriptedFetch((call, index) => (index < 3 ? unauthorized : { chunks: [event(1, 'finally')] }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  let issued = 0
  const { log, subscription } = record(client, 'news', { token: 'pct_stale', onTokenExpired: () => `pct_${++issued}` })
  await waitFor(() => log.events.length === 1)
  assert.deepEqual(
    server.calls.map((c) => c.headers.authorization),
    ['Bearer pct_stale', 'Bearer pct_1', 'Bearer pct_2', 'Bearer pct_3'],
  )
  assert.equal(log.disconnects[0].delayMs, 0, 'the first refusal retries at once')
  assert.equal(log.errors.length, 2, 'refusals of fresh tokens are reported')
  assert.ok(log.errors.every((e) => e instanceof PiCloudError && e.status === 401 && e.code === 'unauthorized'))
  subscription.close()
})

test('401 without a way to renew the token is reported and stops', async () => {
  const server = scriptedFetch(() => ({ status: 401, body: '{"error":{"code":"unauthorized","message":"no"}}' }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log } = record(client, 'news', { token: 'pct_bad' })
  await waitFor(() => log.closes.length === 1)
  await delay(50)
  assert.equal(server.calls.length, 1)
  assert.equal(log.errors.length, 1)
  assert.equal(log.errors[0].status, 401)
  assert.deepEqual(log.closes[0], { reason: 'unauthorized', error: log.errors[0] })
})

test('404 is reported and retried with backoff until the topic exists', async () => {
  const notFound = { status: 404, body: '{"error":{"code":"not_found","message":"no such topic"}}' }
  const server = scriptedFetch((call, index) => (index < 3 ? notFound : { chunks: [event(1, 'here')] }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log, subscription } = record(client, 'news')
  await waitFor(() => log.events.length === 1)
  assert.equal(log.errors.length, 3)
  assert.ok(log.errors.every((e) => e.code === 'not_found' && e.status === 404))
  assert.deepEqual(
    log.disconnects.map((d) => d.reason),
    ['not_found', 'not_found', 'not_found'],
  )
  assert.equal(log.closes.length, 0)
  subscription.close()
})

test('other 4xx answers stop the subscription; 5xx and network failures are retried', async () => {
  const server = scriptedFetch((call, index) =>
    [
      { reject: new TypeError('fetch failed') },
      { status: 503, body: 'busy' },
      { status: 400, body: '{"error":{"code":"invalid_input","message":"Last-Event-ID must be a number"}}' },
    ][index],
  )
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log } = record(client, 'news')
  await waitFor(() => log.closes.length === 1)
  assert.deepEqual(
    log.errors.map((e) => [e.code, e.status]),
    [
      ['network_error', 0],
      ['http_503', 503],
      ['invalid_input', 400],
    ],
  )
  assert.equal(log.errors[1].message, 'busy')
  assert.equal(log.closes[0].reason, 'refused')
})

test('event: closed reconnects after a backoff and reports the reason', async () => {
  const server = scriptedFetch((call, index) =>
    index === 0 ? { chunks: [event(4, 'x'), 'event: closed\ndata: {"reason":"topic_deleted"}\n\n'] } : { chunks: [event(5, 'y')] },
  )
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log, subscription } = record(client, 'news')
  await waitFor(() => log.events.length === 2)
  assert.equal(log.disconnects[0].reason, 'closed')
  assert.equal(log.disconnects[0].detail, 'topic_deleted')
  assert.equal(server.calls[1].headers['last-event-id'], '4')
  subscription.close()
})

test('no bytes for heartbeatTimeoutMs aborts the connection and reconnects; heartbeats keep it open', async () => {
  // A stream that says nothing at all: dead.
  const silent = scriptedFetch(() => ({ chunks: [] }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: silent.fetch })
  const { log, subscription } = record(client, 'news', { heartbeatTimeoutMs: 100 })
  await waitFor(() => silent.calls.length >= 2)
  assert.equal(log.disconnects[0].reason, 'heartbeat_timeout')
  assert.equal(log.errors[0].code, 'network_error')
  assert.ok(silent.streams[0].cancelled || silent.calls[0].signal.aborted)
  subscription.close()

  // Comments every 20 ms with a 500 ms timeout: no reconnect for 1.5 s (well past the timeout).
  const chatty = scriptedFetch(() => ({ chunks: ['retry: 2000\n\n'] }))
  const other = createClient({ url: 'http://x.test', app: 'demo', fetch: chatty.fetch })
  const second = record(other, 'news', { heartbeatTimeoutMs: 500 })
  await waitFor(() => chatty.streams.length === 1)
  const ticker = setInterval(() => chatty.streams[0].push(': heartbeat\n\n'), 20)
  await delay(1500)
  clearInterval(ticker)
  assert.equal(chatty.calls.length, 1)
  assert.equal(second.log.disconnects.length, 0)
  second.subscription.close()
})

test('close() stops everything: no callbacks afterwards, the stream is cancelled, no reconnect', async () => {
  const server = scriptedFetch(() => ({ chunks: [event(1, 'a')] }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const { log, subscription } = record(client, 'news')
  await waitFor(() => log.events.length === 1)
  subscription.close()
  server.streams[0].push(event(2, 'after close'))
  await delay(100)
  assert.equal(log.events.length, 1)
  assert.equal(server.calls.length, 1)
  assert.ok(server.calls[0].signal.aborted)
  assert.deepEqual([log.errors.length, log.closes.length, log.disconnects.length], [0, 0, 0])

  // Closed while waiting to reconnect: the wait ends and nothing else happens. Full jitter draws
  // the wait from [0, 10 s]; the draw is fixed at 150 ms, long enough to close within it and short
  // enough that a reconnect the close failed to cancel shows up below.
  const random = Math.random
  Math.random = () => 0.015
  try {
    const failing = scriptedFetch(() => ({ status: 503, body: 'down' }))
    const other = createClient({ url: 'http://x.test', app: 'demo', fetch: failing.fetch })
    const second = record(other, 'news', { minDelayMs: 10000, maxDelayMs: 10000 })
    await waitFor(() => second.log.disconnects.length === 1)
    assert.equal(second.log.disconnects[0].delayMs, 150)
    second.subscription.close()
    await delay(400)
    assert.equal(failing.calls.length, 1)
  } finally {
    Math.random = random
  }
})

test('backoff: full jitter under an exponential cap from minDelayMs to maxDelayMs, reset after a delivering connection', async () => {
  const random = Math.random
  Math.random = () => 0.999999 // the top of each jitter range
  try {
    const failures = 6
    const server = scriptedFetch((call, index) =>
      index < failures ? { status: 503, body: 'down' } : index === failures ? { chunks: [event(1, 'ok')], end: true } : { status: 503, body: 'down' },
    )
    const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
    const { log, subscription } = record(client, 'news', { minDelayMs: 2, maxDelayMs: 20 })
    await waitFor(() => log.disconnects.length >= failures + 2)
    subscription.close()
    const delays = log.disconnects.map((d) => d.delayMs)
    assert.deepEqual(delays.slice(0, failures), [2, 4, 8, 16, 20, 20])
    assert.equal(delays[failures], 2, 'after a connection that delivered an event the backoff starts over')
  } finally {
    Math.random = random
  }
})

test('a callback that throws does not break the subscription', async () => {
  const server = scriptedFetch(() => ({ chunks: [event(1, 'a'), event(2, 'b')] }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch: server.fetch })
  const seen = []
  const thrown = []
  // Where browsers report it; Node has no reportError, and gets an uncaught exception instead.
  globalThis.reportError = (error) => thrown.push(error)
  try {
    const subscription = client.subscribe('news', {
      onEvent: (e) => {
        seen.push(e.id)
        throw new Error(`boom ${e.id}`)
      },
    })
    await waitFor(() => seen.length === 2 && thrown.length === 2)
    assert.deepEqual(
      thrown.map((e) => e.message),
      ['boom 1', 'boom 2'],
    )
    subscription.close()
  } finally {
    delete globalThis.reportError
  }
})

test('an event stream answer of the wrong type is retried as invalid_response', async () => {
  let n = 0
  const fetch = async () => (n++ === 0 ? new Response('<html>proxy</html>', { status: 200, headers: { 'content-type': 'text/html' } }) : new Response(new ReadableStream(), { headers: { 'content-type': 'text/event-stream' } }))
  const client = createClient({ url: 'http://x.test', app: 'demo', fetch })
  const { log, subscription } = record(client, 'news')
  await waitFor(() => log.opens === 1)
  assert.equal(log.errors[0].code, 'invalid_response')
  subscription.close()
})
