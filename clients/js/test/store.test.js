// topicStore against a real server: Svelte's store contract, one connection for every
// subscriber, closed after the last one, resumed when subscribed again.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createClient, topicStore } from '../src/index.js'
import { controlledFetch, delay, startServer, waitFor } from './helpers/server.js'

let server

before(async () => {
  server = await startServer()
})

// Store subscriptions left by a failing test would keep the process alive: ended at the end.
const unsubscribers = []
after(async () => {
  for (const unsubscribe of unsubscribers) unsubscribe()
  await server?.stop()
})

/** store.subscribe, remembered for the cleanup. */
function track(unsubscribe) {
  unsubscribers.push(unsubscribe)
  return unsubscribe
}

test('topicStore: run at once, connect on the first subscriber, share one connection, keep the last N, close after the last', async () => {
  const gate = controlledFetch()
  const client = createClient({ url: server.url, app: 'jsclient', fetch: gate.fetch })
  const store = topicStore(client, 'store', { keep: 3, minDelayMs: 50 })
  assert.deepEqual(store.get(), { events: [], last: null, gap: null, status: 'connecting', error: null })
  await delay(50)
  assert.equal(gate.realtimeCalls().length, 0, 'nothing connects before a subscriber')

  const seenA = []
  const unsubscribeA = track(store.subscribe((value) => seenA.push(value)))
  assert.equal(seenA.length, 1, 'run is called at once')
  assert.equal(seenA[0].status, 'connecting')
  await waitFor(() => gate.realtimeCalls().length === 1, { message: 'the first subscriber to connect' })

  const seenB = []
  const unsubscribeB = track(store.subscribe((value) => seenB.push(value)))
  assert.equal(seenB.length, 1)
  assert.equal(seenB[0], store.get(), 'the current value, as is')
  await waitFor(() => store.get().status === 'open')
  assert.equal(gate.realtimeCalls().length, 1, 'one connection for both')

  await server.publish('store', 5)
  await waitFor(() => store.get().last?.id === '5')
  const value = store.get()
  assert.deepEqual(
    value.events.map((e) => e.id),
    ['3', '4', '5'],
    'the last 3',
  )
  assert.equal(value.last, value.events.at(-1))
  assert.equal(seenA.at(-1), value)
  assert.equal(seenB.at(-1), value)
  assert.ok(Object.isFrozen(value))

  // One subscriber leaves: still connected.
  unsubscribeA()
  unsubscribeA() // twice is harmless
  const connection = gate.realtimeCalls()[0]
  assert.equal(connection.signal.aborted, false)
  const countA = seenA.length
  await server.publish('store', 1)
  await waitFor(() => store.get().last?.id === '6')
  assert.equal(seenA.length, countA, 'no calls after unsubscribing')

  // The last one leaves: the connection closes.
  unsubscribeB()
  assert.equal(connection.signal.aborted, true)
  assert.equal(store.get().status, 'closed')
  const countB = seenB.length
  await server.publish('store', 2) // 7, 8 while nobody listens
  await delay(200)
  assert.equal(seenB.length, countB)
  assert.equal(store.get().last.id, '6')

  // Subscribed again: a new connection resumes after the last event seen.
  const seenC = []
  const unsubscribeC = track(store.subscribe((v) => seenC.push(v)))
  assert.equal(seenC[0].status, 'connecting')
  assert.equal(seenC[0].last.id, '6', 'the events kept so far are still there')
  await waitFor(() => store.get().last?.id === '8')
  assert.equal(gate.realtimeCalls().length, 2)
  assert.equal(gate.realtimeCalls()[1].headers['last-event-id'], '6')
  assert.deepEqual(
    store.get().events.map((e) => e.id),
    ['6', '7', '8'],
  )

  // The same function twice is two subscriptions.
  const run = () => {}
  const first = track(store.subscribe(run))
  const second = track(store.subscribe(run))
  first()
  second()
  unsubscribeC()
  assert.equal(gate.realtimeCalls()[1].signal.aborted, true)
})

test('topicStore: a topic browsers may not follow gives status error with the PiCloudError', async () => {
  const client = createClient({ url: server.url, app: 'jsclient' })
  const store = topicStore(client, 'internal', { minDelayMs: 50 })
  const seen = []
  const unsubscribe = track(store.subscribe((value) => seen.push(value.status)))
  await waitFor(() => store.get().status === 'error')
  assert.equal(store.get().error.status, 404)
  assert.equal(store.get().error.code, 'not_found')
  unsubscribe()
  assert.equal(store.get().status, 'closed')
  assert.equal(seen[0], 'connecting')
})

test('topicStore: a token topic with getToken opens; keep = 0 keeps only the last', async () => {
  const key = await server.createKey(['invoke'])
  const issueToken = createClient({ url: server.url, app: 'jsclient', token: key }).endpoint('POST /token')
  const client = createClient({ url: server.url, app: 'jsclient' })
  const received = []
  const store = topicStore(client, 'room', { keep: 0, getToken: () => issueToken(), onEvent: (e) => received.push(e.id) })
  const unsubscribe = track(store.subscribe(() => {}))
  await waitFor(() => store.get().status === 'open')
  const [id] = await server.publish('room', 1)
  await waitFor(() => store.get().last?.id === id)
  assert.deepEqual(store.get().events, [])
  assert.deepEqual(received, [id], 'options.onEvent is called too')
  unsubscribe()
})
