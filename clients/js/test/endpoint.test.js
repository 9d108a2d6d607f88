// Endpoint calls against a real `picloud serve` with the fixture app: routes, params, bodies,
// answers of each kind, and errors mapped to PiCloudError.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createClient, PiCloudError } from '../src/index.js'
import { startServer } from './helpers/server.js'

let server
let client

before(async () => {
  server = await startServer()
  client = createClient({ url: `${server.url}/`, app: 'jsclient' })
})

after(async () => {
  await server?.stop()
})

/** The PiCloudError a promise rejects with. */
async function failure(promise) {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof PiCloudError, `expected a PiCloudError, got ${error}`)
    assert.equal(error.name, 'PiCloudError')
    return error
  }
  assert.fail('expected the call to fail')
}

test('JSON answers are parsed; :params are URI-encoded', async () => {
  const getItem = client.endpoint('GET /items/:id')
  assert.equal(getItem.route, 'GET /items/:id')
  assert.deepEqual(await getItem({ params: { id: 'a b/c?d' } }), { id: 'a b/c?d', name: 'item a b/c?d' })
  assert.deepEqual(await getItem({ params: { id: 42 } }), { id: '42', name: 'item 42' })
})

test('*params keep their slashes; query, JSON body and headers reach the handler', async () => {
  const echo = client.endpoint('PUT /echo/*rest')
  const answer = await echo({
    params: { rest: 'dir one/ü.txt' },
    query: { tag: 'x y+z&', n: 3, skip: undefined, none: null },
    body: { text: 'héllo', list: [1, 2] },
    headers: { 'x-custom': 'yes' },
  })
  assert.deepEqual(answer, {
    method: 'PUT',
    path: '/echo/dir one/ü.txt',
    params: { rest: 'dir one/ü.txt' },
    query: { tag: 'x y+z&', n: '3' },
    body: { text: 'héllo', list: [1, 2] },
    content_type: 'application/json',
    authorization: null,
    custom: 'yes',
  })
  // A string body goes as it is; a route without a method is GET.
  const raw = await client.request('POST /echo/*rest', { params: { rest: 'raw' }, body: 'plain words', headers: { 'content-type': 'text/plain' } })
  assert.equal(raw.body, 'plain words')
  assert.equal((await client.request('/echo/*rest', { params: { rest: ['a/b', 'c'] } })).path, '/echo/a/b/c')
})

test('text answers come back as text, 204 as undefined', async () => {
  assert.equal(await client.endpoint('GET /text')(), 'hello, text')
  assert.equal(await client.endpoint('DELETE /nothing')(), undefined)
})

test('the client token goes as Authorization: Bearer to auth = "key" endpoints', async () => {
  const anonymous = await failure(client.endpoint('GET /whoami')())
  assert.equal(anonymous.status, 401)
  assert.equal(anonymous.code, 'unauthorized')
  const key = await server.createKey(['invoke'])
  const keyed = createClient({ url: server.url, app: 'jsclient', token: key })
  const who = await keyed.endpoint('GET /whoami')()
  assert.match(who.key_id, /^key_/)
  assert.equal((await keyed.request('GET /echo/*rest', { params: { rest: 'x' } })).authorization, `Bearer ${key}`)
  keyed.setToken(null)
  assert.equal((await failure(keyed.request('GET /whoami'))).status, 401)
})

test('an unknown route is 404 not_found', async () => {
  const error = await failure(client.endpoint('GET /no/such/route')())
  assert.equal(error.status, 404)
  assert.equal(error.code, 'not_found')
  assert.match(error.message, /no endpoint for GET \/no\/such\/route/)
})

test("a handler's error({ status, code, message }) keeps its status and code", async () => {
  const error = await failure(client.endpoint('GET /fail')())
  assert.equal(error.status, 409)
  assert.equal(error.code, 'already_done')
  assert.match(error.requestId, /^[0-9A-Z]{26}$/, 'the X-Request-Id comes along')
  assert.equal(error.message, 'it was done before')
  assert.deepEqual(error.details, { code: 'already_done', message: 'it was done before' })
})

test('a crashing handler is 500 script_error with a request id', async () => {
  const error = await failure(client.endpoint('GET /crash')())
  assert.equal(error.status, 500)
  assert.equal(error.code, 'script_error')
  assert.ok(error.requestId)
})

test('a validation failure is 400 invalid_input, with the fields in details', async () => {
  const error = await failure(client.endpoint('POST /validated')({ body: {} }))
  assert.equal(error.status, 400)
  assert.equal(error.code, 'invalid_input')
  assert.deepEqual(error.details.fields, [{ field: 'title', message: 'is required' }])
  assert.deepEqual(await client.endpoint('POST /validated')({ body: { title: 'ok' } }), { title: 'ok' })
})

test('a wrong method is 405 method_not_allowed', async () => {
  const error = await failure(client.request('POST /text'))
  assert.equal(error.status, 405)
  assert.equal(error.code, 'method_not_allowed')
})

test('validate: a function or a parse() object; its result is returned, a throw is invalid_response', async () => {
  const upper = client.endpoint('GET /items/:id', { validate: (data) => ({ ...data, name: data.name.toUpperCase() }) })
  assert.deepEqual(await upper({ params: { id: 'x' } }), { id: 'x', name: 'ITEM X' })

  const schema = {
    parse(data) {
      if (typeof data.count !== 'number') {
        const error = new Error('count: expected number, received undefined')
        error.issues = [{ path: ['count'], message: 'expected number' }]
        throw error
      }
      return data
    },
  }
  const error = await failure(client.endpoint('GET /items/:id', { validate: schema })({ params: { id: 'x' } }))
  assert.equal(error.code, 'invalid_response')
  assert.equal(error.status, 200)
  assert.match(error.message, /count: expected number/)
  assert.deepEqual(error.details, [{ path: ['count'], message: 'expected number' }])
  assert.equal(error.cause.message, 'count: expected number, received undefined')

  const rejecting = client.endpoint('GET /text', { validate: () => Promise.reject(new Error('async no')) })
  assert.equal((await failure(rejecting())).code, 'invalid_response')
  assert.throws(() => client.endpoint('GET /text', { validate: 42 }), TypeError)
})

test('a missing route parameter is invalid_request; a bad route string is a TypeError', async () => {
  const error = await failure(client.endpoint('GET /items/:id')({ params: {} }))
  assert.equal(error.code, 'invalid_request')
  assert.equal(error.status, 0)
  assert.throws(() => client.endpoint('GET items'), TypeError)
})

test('a network failure is network_error with status 0; an abort is aborted', async () => {
  const nowhere = createClient({ url: 'http://127.0.0.1:9', app: 'jsclient' })
  const error = await failure(nowhere.endpoint('GET /text')())
  assert.equal(error.code, 'network_error')
  assert.equal(error.status, 0)

  const controller = new AbortController()
  controller.abort()
  const aborted = await failure(client.endpoint('GET /text')({ signal: controller.signal }))
  assert.equal(aborted.code, 'aborted')
})

test('a non-JSON error answer falls back to http_<status> and its text', async () => {
  const fake = createClient({
    url: 'http://proxy.test',
    app: 'jsclient',
    fetch: async () => new Response('Bad Gateway from the proxy', { status: 502, headers: { 'content-type': 'text/plain' } }),
  })
  const error = await failure(fake.request('GET /text'))
  assert.equal(error.code, 'http_502')
  assert.equal(error.status, 502)
  assert.equal(error.message, 'Bad Gateway from the proxy')
})
