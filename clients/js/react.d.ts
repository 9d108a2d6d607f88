// Types of @picloud/client/react (src/react.js). Hand-written; checked by test/types-check.ts.
import type { Endpoint, EndpointInput, PiCloudClient, PiCloudError, TopicState, TopicStoreOptions } from './index.js'

/** The part of React the hooks use (React 18+; `import * as React from 'react'` fits). */
export interface ReactLike {
  useSyncExternalStore<S>(subscribe: (onStoreChange: () => void) => () => void, getSnapshot: () => S, getServerSnapshot?: () => S): S
  useState<S>(initialState: S | (() => S)): [S, (value: S | ((previous: S) => S)) => void]
  useEffect(effect: () => void | (() => void), deps?: ReadonlyArray<unknown>): void
  useRef<T>(initialValue: T): { current: T }
  useCallback<F extends (...args: any[]) => any>(callback: F, deps: ReadonlyArray<unknown>): F
}

export interface EndpointState<Output> {
  /** The last answer (kept while a new call runs). */
  data: Output | undefined
  error: PiCloudError | null
  loading: boolean
  /** Calls again with the same input. */
  refetch(): void
}

export interface Hooks {
  /** The live state of a topic while the component is mounted. */
  useTopic<T = unknown>(client: PiCloudClient, topic: string, options?: TopicStoreOptions<T>): TopicState<T>
  /**
   * Calls an endpoint on mount and when the input (or `deps`) changes; aborts on changes and
   * unmount. `input = null` skips the call.
   */
  useEndpoint<Input = EndpointInput, Output = unknown>(
    client: PiCloudClient,
    route: string | Endpoint<Input, Output>,
    input?: (Input & { headers?: HeadersInit }) | null,
    deps?: ReadonlyArray<unknown>,
  ): EndpointState<Output>
}

/** `const { useTopic, useEndpoint } = createHooks(React)` */
export declare function createHooks(React: ReactLike): Hooks
