// Types of @picloud/client (src/index.js). Hand-written; checked by test/types-check.ts.

export declare const VERSION: string

/** Codes the client itself gives errors (the server's codes come through as they are). */
export type ClientErrorCode =
  | 'network_error'
  | 'aborted'
  | 'invalid_response'
  | 'invalid_request'
  | 'token_error'
  | 'token_expired'
  | 'connection_failed'
  | 'unsupported'
  | 'internal_error'

/**
 * Every error of the client. `code` is the server's error code (`not_found`, `invalid_input`,
 * `unauthorized`, an app's own code, ...), `http_<status>` when the answer had none, or a
 * {@link ClientErrorCode}. `status` is the HTTP status, 0 when there was no answer.
 */
export declare class PiCloudError extends Error {
  constructor(code: string, message: string, options?: { status?: number; details?: unknown; requestId?: string | null; cause?: unknown })
  readonly name: 'PiCloudError'
  code: ClientErrorCode | (string & {})
  status: number
  /** The server's whole `error` object (for `invalid_input` it has `fields`), or a validator's `issues`. */
  details: unknown
  /** The server's request id (X-Request-Id), to find the call in the app's logs. */
  requestId: string | null
}

export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:8080`; `''` (or omitted in a browser) for the page's own origin. */
  url?: string
  /** The app's name. */
  app: string
  /** An app key sent as `Authorization: Bearer` with endpoint calls (scope `invoke` for `auth = "key"` endpoints). */
  token?: string | null
  /** A fetch to use instead of the global one. */
  fetch?: (input: string, init?: RequestInit) => Promise<Response>
}

export type QueryValue = string | number | boolean | null | undefined | ReadonlyArray<string | number | boolean>

/** What an endpoint call takes. */
export interface EndpointInput {
  /** Values for `:name` and `*name` segments of the route, URI-encoded (`*name` keeps its slashes). */
  params?: Record<string, string | number | ReadonlyArray<string>>
  /** Query parameters (null and undefined are left out; arrays repeat the name). */
  query?: Record<string, QueryValue> | URLSearchParams
  /** Sent as JSON, unless it is a string, Blob, ArrayBuffer(View), FormData or URLSearchParams (sent as is). */
  body?: unknown
  headers?: HeadersInit
  signal?: AbortSignal
}

/** Per-call options that every endpoint accepts besides its input. */
export interface CallOptions {
  headers?: HeadersInit
  signal?: AbortSignal
}

/** A function `(data) => value` (may throw), or an object with `parse` (zod and friends). */
export type Validator<T> = ((data: unknown) => T | PromiseLike<T>) | { parse(data: unknown): T }

export interface EndpointOptions<Output> {
  /** Checks the answer; its result is returned, a throw becomes `invalid_response`. */
  validate?: Validator<Output>
}

type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T]
type AllOptional<T> = Exclude<keyof T, OptionalKeys<T>> extends never ? true : false

/**
 * An endpoint as a function. The input may be left out when nothing in it is required.
 * `Input` describes `{ params?, query?, body? }`.
 */
export type Endpoint<Input = EndpointInput, Output = unknown> = {
  (...args: AllOptional<Input> extends true ? [input?: Input & CallOptions] : [input: Input & CallOptions]): Promise<Output>
  /** The route it calls, e.g. `'POST /messages'`. */
  readonly route: string
}

/** One event of a topic. */
export interface TopicEvent<T = unknown> {
  /** The event's id in the topic ("1", "2", ... in commit order). */
  id: string
  topic: string
  message: T
  /** When it was published, in ms since the epoch. */
  publishedAt: number
}

/** Events the history no longer had: resync what you show. */
export interface GapEvent {
  /** The first missed id; null when the id resumed from is unknown to the topic (`unknown_event_id`). */
  from: string | null
  /** The last missed id (the subscription continues after it). */
  to: string
  /** How many were missed; null for `unknown_event_id`. */
  missed: number | null
  reason: 'history_exceeded' | 'unknown_event_id' | (string & {})
}

export interface DisconnectInfo {
  /**
   * Why the connection (or attempt) ended: `ended` (the server closed it, e.g. at shutdown),
   * `closed` (`event: closed`, see `detail`), `expired` (token), `heartbeat_timeout`,
   * `network_error`, `not_found`, `unauthorized`, `http_error`, `invalid_response`, `token_error`, `error`.
   */
  reason: string
  /** The wait before the next attempt; 0 for at once, null when the browser reconnects by itself (EventSource). */
  delayMs: number | null
  /** The server's reason for `closed` and `expired` (`topic_deleted`, `token_expired`, ...). */
  detail?: string
}

/** A token, or what the app's token endpoint answered (`{ token, expires_at }`). */
export type TokenResult = string | { token: string }

export interface SubscribeOptions<T = unknown> {
  /** A subscriber token (`pct_...`) for `auth_mode = "token"` topics. */
  token?: string | null
  /** Gives a fresh token: called first when no token was given, after `event: expired` and after a 401. */
  getToken?: () => TokenResult | PromiseLike<TokenResult>
  /** The same as getToken (an alias). */
  onTokenExpired?: () => TokenResult | PromiseLike<TokenResult>
  onEvent: (event: TopicEvent<T>) => void
  onGap?: (gap: GapEvent) => void
  /** Every problem, as it happens; the subscription keeps retrying unless onClose follows. */
  onError?: (error: PiCloudError) => void
  /** A connection opened. */
  onOpen?: () => void
  /** A connection (or an attempt) ended; another follows after `delayMs`. */
  onDisconnect?: (info: DisconnectInfo) => void
  /** The subscription stopped by itself for good (401 with no getToken, another 4xx); never after close(). */
  onClose?: (info: { reason: string; error?: PiCloudError }) => void
  /** Resume after this id (the topic's history fills in what came since). */
  lastEventId?: string | number | null
  /** `fetch` (default): streaming fetch with headers. `eventsource`: the browser's EventSource (token in the URL). */
  transport?: 'fetch' | 'eventsource'
  /** Reconnect when nothing (not even a heartbeat) arrived for this long. Default 45000; 0 turns it off. fetch transport only. */
  heartbeatTimeoutMs?: number
  /** The backoff's first step. Default 1000 ms, or the server's `retry:` when larger. */
  minDelayMs?: number
  /** The backoff's cap. Default 30000 ms. */
  maxDelayMs?: number
  /** An EventSource class to use instead of the global one. */
  EventSource?: new (url: string) => EventSource
}

export interface Subscription {
  /** Stops everything: no callback is called afterwards. */
  close(): void
  /** The id of the last event (or gap) received, to resume from. */
  readonly lastEventId: string | null
  readonly topic: string
}

export interface PiCloudClient {
  readonly url: string
  readonly app: string
  /** The app key sent with endpoint calls. */
  readonly token: string | null
  setToken(token: string | null | undefined): void
  /** Calls an endpoint once. */
  request<Output = unknown>(route: string, input?: EndpointInput): Promise<Output>
  /** A function that calls one endpoint: `client.endpoint<{ body: { text: string } }, Message>('POST /messages')`. */
  endpoint<Input = EndpointInput, Output = unknown>(route: string, options?: EndpointOptions<Output>): Endpoint<Input, Output>
  /** Follows a topic; reconnects and resumes until close(). */
  subscribe<T = unknown>(topic: string, options: SubscribeOptions<T>): Subscription
}

export declare function createClient(options: ClientOptions): PiCloudClient

export interface TopicState<T = unknown> {
  /** The last `keep` events, oldest first. */
  events: ReadonlyArray<TopicEvent<T>>
  last: TopicEvent<T> | null
  /** The last gap announced, if any. */
  gap: GapEvent | null
  /** `connecting` until a connection opens; `closed` after the last subscriber left or when the subscription stopped for good; `error` after a failure (it keeps retrying). */
  status: 'connecting' | 'open' | 'closed' | 'error'
  error: PiCloudError | null
}

export interface TopicStoreOptions<T = unknown> extends Partial<Omit<SubscribeOptions<T>, 'onEvent'>> {
  /** How many events the value keeps. Default 100. */
  keep?: number
  onEvent?: (event: TopicEvent<T>) => void
}

/** A Svelte-compatible readable store. */
export interface TopicStore<T = unknown> {
  subscribe(run: (value: TopicState<T>) => void, invalidate?: (value?: TopicState<T>) => void): () => void
  get(): TopicState<T>
}

export declare function topicStore<T = unknown>(client: PiCloudClient, topic: string, options?: TopicStoreOptions<T>): TopicStore<T>

export interface SSEParserHandlers {
  onEvent?: (event: { type: string; data: string; id: string | null }) => void
  onComment?: (text: string) => void
  onRetry?: (ms: number) => void
  /** A block with an `id:` and no data: a position without an event. */
  onId?: (id: string | null) => void
  lastEventId?: string | null
}

export interface SSEParser {
  push(text: string): void
  end(): void
  readonly lastEventId: string | null
}

/** The client's incremental Server-Sent Events parser, for other streams. */
export declare function createSSEParser(handlers?: SSEParserHandlers): SSEParser
