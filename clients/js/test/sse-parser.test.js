// The SSE parser on canned streams: chunk boundaries anywhere, CRLF/LF/CR, comments, ids, retry.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createSSEParser } from '../src/index.js'

/** Parses `chunks` and returns everything the parser reported, in order. */
function parse(chunks, lastEventId = null) {
  const out = []
  const parser = createSSEParser({
    lastEventId,
    onEvent: (event) => out.push(['event', event.type, event.data, event.id]),
    onComment: (text) => out.push(['comment', text]),
    onRetry: (ms) => out.push(['retry', ms]),
  })
  for (const chunk of chunks) parser.push(chunk)
  return { out, lastEventId: parser.lastEventId }
}

const stream = [
  'retry: 2000',
  '',
  'id: 1',
  'data: {"id":"1","topic":"t","message":{"text":"héllo 🌍"},"published_at":1}',
  '',
  ': heartbeat',
  '',
  'id: 7',
  'event: gap',
  'data: {"from":"3","missed":5,"to":"7","reason":"history_exceeded"}',
  '',
  'data: line one',
  'data:line two',
  'data',
  '',
  'event: expired',
  'data: {"reason":"token_expired"}',
  '',
]

const expected = [
  ['retry', 2000],
  ['event', 'message', '{"id":"1","topic":"t","message":{"text":"héllo 🌍"},"published_at":1}', '1'],
  ['comment', 'heartbeat'],
  ['event', 'gap', '{"from":"3","missed":5,"to":"7","reason":"history_exceeded"}', '7'],
  ['event', 'message', 'line one\nline two\n', '7'],
  ['event', 'expired', '{"reason":"token_expired"}', '7'],
]

for (const [name, eol] of [
  ['LF', '\n'],
  ['CRLF', '\r\n'],
  ['CR', '\r'],
]) {
  const text = stream.join(eol) + eol
  test(`SSE parser: ${name} line endings, in one chunk`, () => {
    assert.deepEqual(parse([text]).out, expected)
  })
  test(`SSE parser: ${name} line endings, split at every position`, () => {
    for (let at = 0; at <= text.length; at++) {
      assert.deepEqual(parse([text.slice(0, at), text.slice(at)]).out, expected, `split at ${at}`)
    }
  })
  test(`SSE parser: ${name} line endings, one character at a time`, () => {
    assert.deepEqual(parse([...text]).out, expected)
  })
}

test('SSE parser: three-way splits, including between CR and LF', () => {
  const text = stream.join('\r\n') + '\r\n'
  for (let a = 0; a < text.length; a += 3) {
    for (let b = a; b <= text.length; b += 7) {
      assert.deepEqual(parse([text.slice(0, a), text.slice(a, b), text.slice(b)]).out, expected, `split at ${a}, ${b}`)
    }
  }
})

test('SSE parser: id without data updates lastEventId and reports it with onId, but dispatches no event', () => {
  const ids = []
  const out = []
  const parser = createSSEParser({ onEvent: (e) => out.push(e), onId: (id) => ids.push(id) })
  parser.push('id: 42\n\nretry: 10\n\nid: 43\ndata: x\n\n')
  assert.deepEqual(out, [{ type: 'message', data: 'x', id: '43' }])
  assert.deepEqual(ids, ['42'], 'only for the block with an id and no data')
  assert.equal(parser.lastEventId, '43')
})

test('SSE parser: the id in force carries over to later events, and starts from the given one', () => {
  const { out } = parse(['data: a\n\nid: 5\ndata: b\n\ndata: c\n\n'], '3')
  assert.deepEqual(out, [
    ['event', 'message', 'a', '3'],
    ['event', 'message', 'b', '5'],
    ['event', 'message', 'c', '5'],
  ])
})

test('SSE parser: an id containing NUL is ignored, an empty id resets', () => {
  const { out } = parse(['id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\nid\ndata: c\n\n'])
  assert.deepEqual(out, [
    ['event', 'message', 'a', '1'],
    ['event', 'message', 'b', '1'],
    ['event', 'message', 'c', ''],
  ])
})

test('SSE parser: a leading BOM is dropped; only one leading space is stripped from values', () => {
  const { out } = parse(['\uFEFFdata:  two spaces\n\n'])
  assert.deepEqual(out, [['event', 'message', ' two spaces', null]])
})

test('SSE parser: retry must be digits; unknown fields are ignored; an event type is reset after dispatch', () => {
  const { out } = parse(['retry: 1s\nretry: 150\nfoo: bar\nevent: custom\n\ndata: x\n\n'])
  assert.deepEqual(out, [
    ['retry', 150],
    ['event', 'message', 'x', null],
  ])
})

test('SSE parser: an unfinished event at the end of the stream is not dispatched', () => {
  const out = []
  const parser = createSSEParser({ onEvent: (event) => out.push(event) })
  parser.push('data: complete\n\ndata: incomplete\n')
  parser.end()
  assert.deepEqual(out, [{ type: 'message', data: 'complete', id: null }])
})

test('SSE parser: multi-byte characters split across chunks survive a streaming TextDecoder', () => {
  const bytes = new TextEncoder().encode('data: ✓ ünïcödé 🌍\n\n')
  for (let at = 0; at <= bytes.length; at++) {
    const decoder = new TextDecoder()
    const out = []
    const parser = createSSEParser({ onEvent: (event) => out.push(event.data) })
    parser.push(decoder.decode(bytes.slice(0, at), { stream: true }))
    parser.push(decoder.decode(bytes.slice(at), { stream: true }))
    assert.deepEqual(out, ['✓ ünïcödé 🌍'], `split at byte ${at}`)
  }
})
