// Subscriptions against a real `picloud serve`: restart and resume without loss, token renewal
// (401 and `event: expired`), gaps, closed topics and 404s, the heartbeat, the EventSource transport.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createClient, createSSEParser, PiCloudError } from '../src/index.js'
import { controlledFetch, delay, startServer, waitFor } from './helpers/server.js'

// Heartbeats every second (the watchdog test), token lifetimes down to 1 s (the expiry test).
const env = { PICLOUD_REALTIME_HEARTBEAT_SEC: '1', PICLOUD_SUBSCRIBER_TOKEN_TTL_MIN_SEC: '1' }
let server

before(async () => {
  server = await startServer({ env })
})

// Subscriptions left open by a failing test would keep the process alive: closed at the end.
const subscriptions = []
after(async () => {
  for (const subscription of subscriptions) subscription.close()
  await server?.stop()
})

/** Subscribes, recording every callback. */
function record(client, topic, options = {}) {
  const log = { events: [], gaps: [], errors: [], opens: 0, closes: [], disconnects: [] }
  const subscription = client.subscribe(topic, {
    minDelayMs: 50,
    maxDelayMs: 500,
    ...options,
    onEvent: (e) => log.events.push(e),
    onGap: (g) => log.gaps.push(g),
    onError: (e) => {
      log.errors.push(e)
      options.onError?.(e)
    },
    onOpen: () => log.opens++,
    onClose: (info) => log.closes.push(info),
    onDisconnect: (info) => log.disconnects.push(info),
  })
  subscriptions.push(subscription)
  return { log, subscription }
}

const ids = (events) => events.map((e) => e.id)
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i))

test('events of a public topic arrive as published, with message and publishedAt', async () => {
  const client = createClient({ url: server.url, app: 'jsclient' })
  const { log, subscription } = record(client, 'chat/général')
  await waitFor(() => log.opens === 1, { message: 'the stream to open' })
  await server.publish('chat/général', 2, { text: 'bonjour' })
  await waitFor(() => log.events.length === 2, { message: 'two events' })
  assert.deepEqual(ids(log.events), ['1', '2'])
  assert.equal(log.events[0].topic, 'chat/général')
  assert.deepEqual(log.events[1].message, { i: 2, text: 'bonjour' })
  assert.ok(Math.abs(log.events[0].publishedAt - Date.now()) < 60000)
  assert.equal(subscription.lastEventId, '2')
  subscription.close()
})

test('after a server restart on the same port the subscription resumes: every event exactly once, in order', async () => {
  const gate = controlledFetch()
  const client = createClient({ url: server.url, app: 'jsclient', fetch: gate.fetch })
  const { log, subscription } = record(client, 'restart', {
    onError: (error) => {
      // The client found the server gone: hold its next attempt until the test says so.
      if (error.code === 'network_error') gate.hold()
    },
  })
  await waitFor(() => log.opens === 1, { message: 'the first stream' })

  // Before the outage.
  await server.publish('restart', 3, { phase: 'before' })
  await waitFor(() => log.events.length === 3, { message: 'events before the restart' })

  // The outage: SIGTERM ends the stream; the client retries against a closed port.
  const port = server.port
  const status = await server.stop('SIGTERM')
  assert.equal(status.code, 0, 'a graceful stop')
  await waitFor(() => gate.holding, { message: 'a refused reconnection attempt' })
  assert.ok(log.errors.some((e) => e.code === 'network_error' && e.status === 0))

  // Back on the same port and data directory; events published before the client is back.
  server = await startServer({ port, dataDir: server.dataDir, env })
  assert.equal(server.port, port)
  await server.publish('restart', 3, { phase: 'outage' })
  assert.equal(log.events.length, 3, 'the client has not reconnected yet')

  gate.release()
  await waitFor(() => log.events.length === 6, { message: 'the events published during the outage' })
  const resumed = gate.realtimeCalls().at(-1)
  assert.equal(resumed.headers['last-event-id'], '3', 'resumed after the last event seen')

  // After the reconnection.
  await server.publish('restart', 3, { phase: 'after' })
  await waitFor(() => log.events.length === 9, { message: 'the events published after' })
  await delay(300) // nothing more may come
  assert.deepEqual(ids(log.events), range(1, 9))
  assert.deepEqual(
    log.events.map((e) => `${e.message.phase}${e.message.i}`),
    ['before1', 'before2', 'before3', 'outage1', 'outage2', 'outage3', 'after1', 'after2', 'after3'],
  )
  assert.equal(log.gaps.length, 0)
  assert.equal(log.opens, 2)
  assert.equal(log.closes.length, 0)
  subscription.close()
})

test('a 401 (bad token) calls getToken and the subscription carries on with the new token', async () => {
  const key = await server.createKey(['invoke'])
  const api = createClient({ url: server.url, app: 'jsclient', token: key })
  const issueToken = api.endpoint('POST /token')
  let issued = 0
  const gate = controlledFetch()
  const client = createClient({ url: server.url, app: 'jsclient', fetch: gate.fetch })
  const { log, subscription } = record(client, 'room', {
    token: 'pct_not.a.valid.token',
    lastEventId: 0,
    getToken: async () => {
      issued++
      return issueToken({ body: { topics: ['room'], ttl: 3600 } }) // { token, expires_at }
    },
  })
  await waitFor(() => log.opens === 1, { message: 'the stream to open with a renewed token' })
  assert.equal(issued, 1)
  const attempts = gate.realtimeCalls()
  assert.equal(attempts[0].status, 401)
  assert.equal(attempts[0].headers.authorization, 'Bearer pct_not.a.valid.token')
  assert.match(attempts[1].headers.authorization, /^Bearer pct_/)
  assert.equal(attempts[1].status, 200)
  assert.equal(log.errors.length, 0, 'a single 401 renewed at once is not an error')
  await server.publish('room', 2)
  await waitFor(() => log.events.length === 2)
  assert.deepEqual(ids(log.events), ['1', '2'])
  subscription.close()
})

test('a short-lived token: event: expired (or a 401) leads to getToken and continued delivery, nothing lost', async () => {
  const key = await server.createKey(['invoke'])
  const api = createClient({ url: server.url, app: 'jsclient', token: key })
  const issueToken = api.endpoint('POST /token')
  const tokens = []
  const client = createClient({ url: server.url, app: 'jsclient' })
  const { log, subscription } = record(client, 'room', {
    getToken: async () => {
      const answer = await issueToken({ body: { topics: ['room'], ttl: tokens.length === 0 ? 1 : 3600 } })
      tokens.push(answer)
      return answer.token
    },
  })
  await waitFor(() => log.opens === 1)
  // Publish through the token's expiry (1 s plus the server's 5 s clock-skew allowance).
  const published = []
  const publisher = (async () => {
    for (let round = 0; round < 15 && tokens.length < 2; round++) {
      published.push(...(await server.publish('room', 1, { round })))
      await delay(1000)
    }
    published.push(...(await server.publish('room', 2, { round: 'last' })))
  })()
  await waitFor(() => tokens.length === 2, { timeoutMs: 30000, message: 'the token to be renewed' })
  await publisher
  await waitFor(() => log.events.length >= published.length, { timeoutMs: 20000, message: 'every event' })
  await delay(300)
  assert.deepEqual(ids(log.events), published, 'every event once, in order')
  assert.ok(
    log.disconnects.some((d) => d.reason === 'expired' || d.reason === 'unauthorized'),
    `the stream ended for the token: ${JSON.stringify(log.disconnects)}`,
  )
  assert.equal(log.opens, 2)
  assert.equal(log.gaps.length, 0)
  subscription.close()
})

test('a token topic without a token, and no getToken: 401 reported, the subscription stops', async () => {
  const gate = controlledFetch()
  const client = createClient({ url: server.url, app: 'jsclient', fetch: gate.fetch })
  const { log } = record(client, 'room')
  await waitFor(() => log.closes.length === 1)
  await delay(200)
  assert.equal(gate.realtimeCalls().length, 1)
  assert.equal(log.errors[0].status, 401)
  assert.equal(log.errors[0].code, 'unauthorized')
  assert.equal(log.closes[0].reason, 'unauthorized')
})

test('resuming from before what the history keeps gives a gap, then the kept events; an unknown id gives a reset gap', async () => {
  await server.publish('short', 10) // the topic keeps 3: 8, 9, 10
  const client = createClient({ url: server.url, app: 'jsclient' })
  const { log, subscription } = record(client, 'short', { lastEventId: '2' })
  await waitFor(() => log.events.length === 3)
  assert.deepEqual(log.gaps, [{ from: '3', to: '7', missed: 5, reason: 'history_exceeded' }])
  assert.deepEqual(ids(log.events), ['8', '9', '10'])
  subscription.close()

  const unknown = record(client, 'short', { lastEventId: '500' })
  await waitFor(() => unknown.log.gaps.length === 1)
  assert.deepEqual(unknown.log.gaps[0], { from: null, to: '10', missed: null, reason: 'unknown_event_id' })
  assert.equal(unknown.subscription.lastEventId, '10')
  await server.publish('short', 1)
  await waitFor(() => unknown.log.events.length === 1)
  assert.equal(unknown.log.events[0].id, '11', 'ids below the one asked for are taken after the reset')
  unknown.subscription.close()
})

test('a topic made non-external ends with event: closed; 404s are reported and retried until it is back; nothing is lost', async () => {
  const client = createClient({ url: server.url, app: 'jsclient' })
  const { log, subscription } = record(client, 'toggle', { maxDelayMs: 300 })
  await waitFor(() => log.opens === 1)
  await server.publish('toggle', 2)
  await waitFor(() => log.events.length === 2)

  await server.admin('PATCH', '/admin/apps/jsclient/topics/toggle/external', { external_subscribable: false })
  await waitFor(() => log.disconnects.some((d) => d.reason === 'closed'))
  assert.equal(log.disconnects.find((d) => d.reason === 'closed').detail, 'topic_not_subscribable')
  await waitFor(() => log.errors.filter((e) => e.status === 404).length >= 2, { message: 'retried 404s' })
  assert.ok(log.errors.every((e) => e.code === 'not_found'))
  await server.publish('toggle', 2) // while nobody may follow it

  await server.admin('PATCH', '/admin/apps/jsclient/topics/toggle/external', { external_subscribable: true })
  await waitFor(() => log.events.length === 4, { message: 'the events published while it was closed' })
  assert.deepEqual(ids(log.events), range(1, 4))
  assert.equal(log.closes.length, 0)
  subscription.close()
})

test('a missing topic is 404: reported and retried, not fatal', async () => {
  const client = createClient({ url: server.url, app: 'jsclient' })
  const { log, subscription } = record(client, 'internal') // registered, not external
  await waitFor(() => log.errors.length >= 2)
  assert.ok(log.errors.every((e) => e instanceof PiCloudError && e.status === 404 && e.code === 'not_found'))
  assert.equal(log.closes.length, 0)
  subscription.close()
})

test("the server's heartbeats keep a quiet stream open under a short heartbeat timeout", async () => {
  const client = createClient({ url: server.url, app: 'jsclient' })
  const { log, subscription } = record(client, 'feed', { heartbeatTimeoutMs: 3000 })
  await waitFor(() => log.opens === 1)
  await delay(4500) // heartbeats every second, no events
  assert.equal(log.disconnects.length, 0)
  assert.equal(log.opens, 1)
  subscription.close()
})

test('close() ends the connection: the server forgets the subscriber', async () => {
  const client = createClient({ url: server.url, app: 'jsclient' })
  const { log, subscription } = record(client, 'feed')
  await waitFor(() => log.opens === 1)
  const subscribers = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith('picloud_realtime_subscribers'))
    return line ? Number(line.split(' ').at(-1)) : 0
  }
  await waitFor(async () => (await subscribers()) >= 1, { message: 'the subscriber to be counted' })
  subscription.close()
  await waitFor(async () => (await subscribers()) === 0, { message: 'the subscriber to be gone' })
  await server.publish('feed', 1)
  await delay(200)
  assert.equal(log.events.length, 0)
})

/**
 * Enough of the browser's EventSource for the transport, over fetch and the client's parser: it
 * opens, dispatches messages and named events, reconnects by itself after a dropped stream
 * (sending Last-Event-ID), and closes for good (readyState 2) on a non-200 answer.
 */
class FakeEventSource {
  static instances = []
  constructor(url) {
    this.url = url
    this.readyState = 0
    this.listeners = {}
    this.lastEventId = ''
    this.controller = new AbortController()
    FakeEventSource.instances.push(this)
    this.connect()
  }
  addEventListener(type, fn) {
    ;(this.listeners[type] ??= []).push(fn)
  }
  dispatch(type, event) {
    if (this.readyState === 2) return
    if (type === 'message') this.onmessage?.(event)
    else if (type === 'open') this.onopen?.(event)
    else if (type === 'error') this.onerror?.(event)
    for (const fn of this.listeners[type] ?? []) fn(event)
  }
  async connect() {
    try {
      const headers = this.lastEventId ? { 'last-event-id': this.lastEventId } : {}
      const response = await fetch(this.url, { headers, signal: this.controller.signal })
      if (response.status !== 200) {
        this.readyState = 2
        this.onerror?.({})
        return
      }
      this.readyState = 1
      this.dispatch('open', {})
      const parser = createSSEParser({
        lastEventId: this.lastEventId || null,
        onEvent: (e) => {
          this.lastEventId = e.id ?? ''
          this.dispatch(e.type, { data: e.data, lastEventId: this.lastEventId })
        },
      })
      const decoder = new TextDecoder()
      for await (const chunk of response.body) parser.push(decoder.decode(chunk, { stream: true }))
      if (this.readyState === 2) return
      this.readyState = 0
      this.dispatch('error', {})
      setTimeout(() => this.readyState !== 2 && this.connect(), 100)
    } catch {
      if (this.readyState === 2) return
      this.readyState = 0
      this.dispatch('error', {})
      setTimeout(() => this.readyState !== 2 && this.connect(), 100)
    }
  }
  close() {
    this.readyState = 2
    this.controller.abort()
  }
}

test("the 'eventsource' transport: token and last_event_id in the URL, events, gaps, refusal, expiry renewal", async () => {
  const key = await server.createKey(['invoke'])
  const issueToken = createClient({ url: server.url, app: 'jsclient', token: key }).endpoint('POST /token')
  const client = createClient({ url: server.url, app: 'jsclient' })

  // Public topic, resuming from 0: everything kept, then live.
  await server.publish('es', 2)
  const publicTopic = record(client, 'es', { transport: 'eventsource', EventSource: FakeEventSource, lastEventId: 0 })
  await waitFor(() => publicTopic.log.events.length === 2)
  assert.match(FakeEventSource.instances.at(-1).url, /\/apps\/jsclient\/realtime\/es\?last_event_id=0$/)
  await server.publish('es', 1)
  await waitFor(() => publicTopic.log.events.length === 3)
  assert.deepEqual(ids(publicTopic.log.events), ['1', '2', '3'])
  assert.equal(publicTopic.log.opens, 1)
  publicTopic.subscription.close()

  // A gap.
  const gapped = record(client, 'short', { transport: 'eventsource', EventSource: FakeEventSource, lastEventId: 1 })
  await waitFor(() => gapped.log.gaps.length === 1)
  assert.equal(gapped.log.gaps[0].reason, 'history_exceeded')
  gapped.subscription.close()

  // A token topic: a bad token is refused (EventSource cannot say it was a 401), getToken
  // renews it; a 1 s token ends with event: expired and is renewed again.
  let issued = 0
  const tokenTopic = record(client, 'room', {
    transport: 'eventsource',
    EventSource: FakeEventSource,
    token: 'pct_bad',
    getToken: () => issueToken({ body: { topics: ['room'], ttl: ++issued === 1 ? 1 : 3600 } }),
  })
  await waitFor(() => tokenTopic.log.opens === 1)
  assert.equal(tokenTopic.log.errors[0].code, 'connection_failed')
  assert.match(FakeEventSource.instances.at(-1).url, /\?token=pct_/)
  await waitFor(() => issued === 2, { timeoutMs: 30000, message: 'the expired token to be renewed' })
  await waitFor(() => tokenTopic.log.opens === 2)
  assert.ok(tokenTopic.log.disconnects.some((d) => d.reason === 'expired'))
  const before = tokenTopic.log.events.length
  await server.publish('room', 1)
  await waitFor(() => tokenTopic.log.events.length === before + 1)
  tokenTopic.subscription.close()
  assert.ok(FakeEventSource.instances.every((source) => source.readyState === 2), 'every EventSource closed')
})
