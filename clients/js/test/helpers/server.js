// Test support: runs a real `picloud serve` with the fixture app, and a fetch that records and
// can hold realtime requests. Not a test file (node --test lists it as one passing file when given
// the whole folder; test/run.sh passes the *.test.js files).
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
export const repoRoot = resolve(here, '../../../..')
export const fixtureDir = resolve(here, '../fixture')
export const binary = process.env.PICLOUD_BIN ?? join(repoRoot, '.build/debug/picloud')
export const adminToken = 'pc_jsclient_test_admin_token_0123456789'

const running = new Set()
const tempDirs = new Set()
function cleanUp() {
  for (const child of running) {
    try {
      child.kill('SIGKILL')
    } catch {}
  }
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {}
  }
}
// Servers and temporary directories go when the test process ends, also when it is interrupted.
process.on('exit', cleanUp)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    cleanUp()
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal] ?? 0))
  })
}

/** A temporary directory removed when the process exits (or by removeTempDir). */
export function makeTempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'picloud-js-'))
  tempDirs.add(dir)
  return dir
}

export function removeTempDir(dir) {
  rmSync(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

/**
 * Starts `picloud serve --port <port> --data-dir <dataDir> --deploy test/fixture` and waits for
 * its "listening on" line.
 */
export async function startServer({ port = 0, dataDir = join(makeTempDir(), 'data'), env = {} } = {}) {
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: build it with 'cd ${repoRoot} && swift build --product picloud' (or set PICLOUD_BIN)`)
  }
  const child = spawn(binary, ['serve', '--port', String(port), '--data-dir', dataDir, '--deploy', fixtureDir], {
    env: { ...process.env, PICLOUD_ADMIN_TOKEN: adminToken, PICLOUD_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  running.add(child)
  const log = []
  let exited = null
  const exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child)
      exited = { code, signal }
      resolve(exited)
    })
  })
  const url = await new Promise((resolve, reject) => {
    let pending = ''
    const timer = setTimeout(() => reject(new Error(`picloud did not start within 60 s:\n${log.join('\n')}`)), 60000)
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk) => {
      pending += chunk
      const lines = pending.split('\n')
      pending = lines.pop()
      for (const line of lines) {
        log.push(line)
        if (log.length > 500) log.shift()
        const match = /listening on (http:\/\/[^\s]+)/.exec(line)
        if (match) {
          clearTimeout(timer)
          resolve(match[1].replace(/\/+$/, ''))
        }
      }
    })
    exit.then((status) => {
      clearTimeout(timer)
      reject(new Error(`picloud exited (${JSON.stringify(status)}) before listening:\n${log.join('\n')}`))
    })
  })
  const server = {
    url,
    port: Number(new URL(url).port),
    dataDir,
    log,
    process: child,
    /** Stops the server (SIGTERM, then SIGKILL after 20 s) and waits for it to exit. */
    async stop(signal = 'SIGTERM') {
      if (exited) return exited
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 20000)
      const status = await exit
      clearTimeout(timer)
      return status
    },
    /** An admin API call with the instance admin token. */
    async admin(method, path, body) {
      const response = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await response.text()
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`)
      return text ? JSON.parse(text) : undefined
    },
    /** Publishes n messages to a topic of the fixture app; returns their ids. */
    async publish(topic, n = 1, body) {
      const path = topic.split('/').map(encodeURIComponent).join('/')
      const response = await fetch(`${url}/apps/jsclient/api/publish/${path}?n=${n}`, {
        method: 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await response.text()
      if (!response.ok) throw new Error(`publish ${topic}: ${response.status} ${text}`)
      return JSON.parse(text).ids
    },
    /** A new key of the fixture app with these scopes. */
    async createKey(scopes = ['invoke']) {
      const created = await server.admin('POST', '/admin/apps/jsclient/keys', { name: 'js-test', scopes })
      return created.key
    },
  }
  return server
}

/**
 * A fetch that records every call, and can hold realtime (SSE) requests until released, to put
 * a client's reconnection exactly where a test wants it.
 */
export function controlledFetch() {
  const calls = []
  let gate = null
  let open = null
  const control = {
    calls,
    /** Realtime requests made from now on wait until release(). */
    hold() {
      if (!gate) gate = new Promise((resolve) => (open = resolve))
    },
    release() {
      const resolve = open
      gate = null
      open = null
      resolve?.()
    },
    get holding() {
      return gate !== null
    },
    realtimeCalls() {
      return calls.filter((call) => call.url.includes('/realtime/'))
    },
    async fetch(url, init = {}) {
      const headers = new Headers(init.headers)
      const call = { url: String(url), method: init.method ?? 'GET', headers: Object.fromEntries(headers.entries()), signal: init.signal, status: null }
      calls.push(call)
      if (call.url.includes('/realtime/') && gate) await gate
      if (init.signal?.aborted) throw new DOMException('aborted', 'AbortError')
      const response = await fetch(url, init)
      call.status = response.status
      return response
    },
  }
  return control
}

/** Waits until check() is truthy (polling every 10 ms), or fails after timeoutMs. */
export async function waitFor(check, { timeoutMs = 20000, message = 'condition' } = {}) {
  const started = Date.now()
  for (;;) {
    const value = await check()
    if (value) return value
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
