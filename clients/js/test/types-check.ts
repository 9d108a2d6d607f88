// Compiled by `tsc --noEmit -p clients/js`, never run: it proves the declarations accept right
// usage and refuse wrong usage (each @ts-expect-error must be an error, or tsc fails).
import { createClient, PiCloudError, topicStore, createSSEParser, VERSION } from '@picloud/client'
import type { Endpoint, GapEvent, PiCloudClient, Subscription, TopicEvent, TopicState, TopicStore } from '@picloud/client'
import { createHooks } from '@picloud/client/react'
import type { ReactLike } from '@picloud/client/react'

const version: string = VERSION
const client: PiCloudClient = createClient({ url: 'http://127.0.0.1:8080', app: 'chat', token: 'pc_key' })
createClient({ app: 'chat' }) // url defaults to the page's origin
createClient({ app: 'chat', fetch: (input, init) => fetch(input, init) })
// @ts-expect-error app is required
createClient({ url: 'http://127.0.0.1:8080' })

interface Message {
  id: string
  text: string
}

// Endpoints: generics for the input and the answer.
const postMessage: Endpoint<{ body: { text: string } }, { id: string }> = client.endpoint<{ body: { text: string } }, { id: string }>('POST /messages')
async function endpoints(): Promise<void> {
  const created = await postMessage({ body: { text: 'hi' }, signal: new AbortController().signal })
  const id: string = created.id
  // @ts-expect-error the body is required by this endpoint's input type
  await postMessage()
  // @ts-expect-error text must be a string
  await postMessage({ body: { text: 42 } })
  // @ts-expect-error the answer has no field 'nope'
  created.nope

  const getMessage = client.endpoint<{ params: { id: string } }, Message>('GET /messages/:id')
  const message: Message = await getMessage({ params: { id } })
  const route: string = getMessage.route

  // Everything optional: the input may be left out.
  const list = client.endpoint<{ query?: { limit?: number } }, Message[]>('GET /messages')
  const messages: Message[] = await list()
  await list({ query: { limit: 10 } })

  // Untyped: EndpointInput in, unknown out.
  const anything = client.endpoint('GET /files/*path')
  const data: unknown = await anything({ params: { path: 'a/b.txt' }, query: { tag: ['x', 'y'], skip: null } })
  // @ts-expect-error unknown must be narrowed before use
  data.field

  // Validators: a function or an object with parse (zod-like); the result type is the output.
  const checked = client.endpoint<{}, Message>('GET /latest', {
    validate: (value: unknown): Message => {
      if (typeof value !== 'object' || value === null) throw new Error('not an object')
      return value as Message
    },
  })
  const latest: Message = await checked()
  const zodLike = { parse: (value: unknown) => value as Message[] }
  const viaParse = client.endpoint<{}, Message[]>('GET /all', { validate: zodLike })
  const all: Message[] = await viaParse()
  // @ts-expect-error a validator must return the endpoint's output type
  client.endpoint<{}, Message>('GET /latest', { validate: (value: unknown) => 42 })

  const once = await client.request<Message>('GET /messages/:id', { params: { id: '1' } })
  console.log(message, messages, route, latest, all, once.text)
}

// Errors.
function handle(error: unknown): string {
  if (error instanceof PiCloudError) {
    const status: number = error.status
    const code: string = error.code
    return `${code} ${status} ${error.message} ${error.requestId ?? ''}`
  }
  return String(error)
}
const made = new PiCloudError('not_found', 'no such note', { status: 404 })
made.code === 'network_error'

// Subscriptions: typed events.
interface ChatMessage {
  user: string
  text: string
}
const subscription: Subscription = client.subscribe<ChatMessage>('room:lobby', {
  getToken: async () => {
    const answer = await client.request<{ token: string; expires_at: number }>('POST /token')
    return answer // { token } is accepted as it is
  },
  onEvent: (event: TopicEvent<ChatMessage>) => {
    const text: string = event.message.text
    const when: number = event.publishedAt
    // @ts-expect-error ChatMessage has no 'body'
    event.message.body
    console.log(text, when)
  },
  onGap: (gap: GapEvent) => console.log(gap.from ?? 'unknown', gap.to, gap.missed ?? 0, gap.reason),
  onError: (error) => console.log(error.code),
  onDisconnect: (info) => console.log(info.reason, info.delayMs),
  onClose: (info) => console.log(info.reason, info.error?.status),
  lastEventId: 10,
  transport: 'fetch',
  heartbeatTimeoutMs: 45000,
})
const resumeFrom: string | null = subscription.lastEventId
subscription.close()
client.subscribe('public', { token: 'pct_x', transport: 'eventsource', onEvent: () => {} })
// @ts-expect-error onEvent is required
client.subscribe('public', {})
// @ts-expect-error unknown transport
client.subscribe('public', { onEvent: () => {}, transport: 'websocket' })

// Stores.
const store: TopicStore<ChatMessage> = topicStore<ChatMessage>(client, 'room:lobby', { keep: 50, getToken: () => 'pct_x' })
const unsubscribe = store.subscribe((state: TopicState<ChatMessage>) => {
  const status: 'connecting' | 'open' | 'closed' | 'error' = state.status
  const texts: string[] = state.events.map((event) => event.message.text)
  console.log(status, texts, state.last?.message.user, state.error?.code)
})
unsubscribe()
const current: TopicState<ChatMessage> = store.get()
// @ts-expect-error events are read-only
current.events.push(current.events[0])

// The SSE parser.
const parser = createSSEParser({ onEvent: (event) => console.log(event.type, event.data, event.id), onRetry: (ms: number) => ms })
parser.push('data: x\n\n')
parser.end()

// React hooks against a stand-in with @types/react's signatures (no npm here to fetch them).
declare const React: {
  useSyncExternalStore<Snapshot>(subscribe: (onStoreChange: () => void) => () => void, getSnapshot: () => Snapshot, getServerSnapshot?: () => Snapshot): Snapshot
  useState<S>(initialState: S | (() => S)): [S, (value: S | ((prevState: S) => S)) => void]
  useState<S = undefined>(): [S | undefined, (value: S | undefined | ((prevState: S | undefined) => S | undefined)) => void]
  useEffect(effect: () => void | (() => void | undefined), deps?: ReadonlyArray<unknown>): void
  useRef<T>(initialValue: T): { current: T }
  useRef<T>(initialValue: T | null): { readonly current: T | null }
  useRef<T = undefined>(): { current: T | undefined }
  useCallback<T extends Function>(callback: T, deps: ReadonlyArray<unknown>): T
}
const hooks = createHooks(React)
const { useTopic, useEndpoint } = hooks
function Room(): string {
  const state = useTopic<ChatMessage>(client, 'room:lobby', { keep: 20 })
  const latest = useEndpoint<{ params: { id: string } }, Message>(client, 'GET /messages/:id', { params: { id: '1' } })
  const viaEndpoint = useEndpoint(client, postMessage, { body: { text: 'hello' } })
  const created: { id: string } | undefined = viaEndpoint.data
  const skipped = useEndpoint(client, 'GET /x', null)
  latest.refetch()
  // @ts-expect-error data may be undefined while loading
  const text: string = latest.data.text
  return `${state.status} ${state.events.length} ${latest.loading} ${latest.error?.message} ${created?.id} ${skipped.loading} ${text}`
}
// @ts-expect-error createHooks needs React's hooks
createHooks({})
const partial: ReactLike = React

export { endpoints, handle, made, resumeFrom, Room, partial, version }
