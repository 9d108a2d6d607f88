import Dispatch
import HTTPTypes
import LuaBridge
import NIOCore
import Services
import Testing
@testable import Runtime

/// The answers made straight off a handler's stack against those made the usual way (its results
/// converted to `LuaValue`, then ``EndpointCall/answer(from:handler:head:)``).
@Suite("Endpoint answers read off the stack")
struct EndpointAnswerReaderTests {
    /// The reader's answer (nil when it left the results), and the usual way's answer.
    static func answers(_ returned: String, head: Bool = false) async throws -> (read: EndpointAnswer?, usual: EndpointAnswer) {
        let program = try LuaProgram(files: ["h.lua": "return function() return \(returned) end"], handlers: ["h.lua"])
        let pool = LuaPool(program: program, configuration: LuaPoolConfiguration(maxCopiedValues: 100_000))
        let queue = DispatchQueue(label: "answer-reader-test")
        let worker = pool.confinedWorker(for: ObjectIdentifier(queue), schedule: { queue.async(execute: $0) })
        let reader = EndpointAnswerReader(handler: "h.lua", head: head)
        let read: EndpointAnswer? = await withCheckedContinuation { continuation in
            queue.async {
                worker.invoke("h.lua", arguments: LuaArguments([]), context: nil, results: reader) { result in
                    if case .success(let values) = result, reader.answer != nil {
                        #expect(values.isEmpty, "taken results are not converted too")
                    }
                    continuation.resume(returning: reader.answer)
                }
            }
        }
        let usual: EndpointAnswer
        do {
            let values = try await pool.invoke("h.lua", [])
            usual = try EndpointCall.answer(from: values.first ?? .nil, handler: "h.lua", head: head)
        } catch let error as ServiceError {
            usual = .error(error)
        } catch {
            // A value that cannot leave Lua (the handler's failure, answered 500).
            usual = .error(ServiceError(.scriptError, "\(error)"))
        }
        return (read, usual)
    }

    static func text(_ answer: EndpointAnswer) -> String {
        "\(answer.status.code) \(answer.headers.map { "\($0.name): \($0.value)" }.joined(separator: "; ")) | \(String(buffer: answer.body))"
    }

    @Test("what handlers return most is answered off the stack, exactly as the usual way answers it", arguments: [
        "{ json = { hello = 'world' } }", "{ json = { ok = true } }", "{ status = 201, json = { id = 7, tags = { 'a', 'b' } } }",
        "{ status = 404, headers = { ['X-Why'] = 'gone', ['Cache-Control'] = 'no-store' }, json = { error = 'no' } }",
        "{ status = 200, headers = { ['Content-Type'] = 'text/csv' }, body = 'a,b' }", "{ body = 'plain' }", "{ status = 204 }",
        "{ headers = { ['X-N'] = 5 } }", "{ json = json.null }", "{ json = {} }", "{ json = json.array({}) }", "{ json = 'text' }",
        "{ json = 3.25 }", "{ status = 200.0, json = 1 }", "'hi'", "''", "'\\255 not UTF-8'", "nil", "42", "false", "json.null", "{ 1, 2, 3 }", "{}",
        "{ message = 'not a response table', status = 200 }", "{ json = { nested = { deep = { deeper = { 'x', 1, true } } } } }",
        "{ json = { text = 'quote \" newline \\n tab \\t ü ✓' } }",
    ])
    func same(_ returned: String) async throws {
        let (read, usual) = try await Self.answers(returned)
        let answer = try #require(read, "read off the stack")
        #expect(Self.text(answer) == Self.text(usual))
    }

    @Test("a HEAD request's body answer is empty both ways")
    func head() async throws {
        let (read, usual) = try await Self.answers("{ body = 'not sent' }", head: true)
        #expect(Self.text(try #require(read)) == Self.text(usual))
        #expect(usual.body.readableBytes == 0)
    }

    @Test("results that make an error, or that the reader does not take, are left to the usual way", arguments: [
        "{ status = 99 }", "{ status = 'ok' }", "{ status = 200.5 }", "{ json = 1, body = 'x' }", "{ body = 1 }", "{ body = {} }",
        "{ headers = { ['bad name'] = 'x' } }", "{ headers = { X = 'a\\r\\nb' } }", "{ json = 0/0 }", "{ json = { f = string.len } }",
        "{ json = { ['ü'] = 1 } }", "0/0", "string.len", "1, 2", "{ json = { [1] = 'a', ['1'] = 'b' } }",
        "(function() local t = {} t.a = t t.b = t return { json = t } end)()",
        "(function() local t = {} for i = 1, 40 do t = {a = t, b = t} end return { json = t } end)()",
    ])
    func leaves(_ returned: String) async throws {
        let (read, _) = try await Self.answers(returned)
        #expect(read == nil)
    }
}

extension EndpointAnswerReaderTests {
    @Test("a plain JSON answer's head from the template is byte for byte the head written field by field")
    func templateHead() {
        let allocator = ByteBufferAllocator()
        let date = "Mon, 30 Nov 2026 08:40:00 GMT"
        for length in [0, 1, 9, 10, 99, 100, 12_345, 1_000_000] {
            let answer = EndpointAnswer.json(encoded: Array(repeating: UInt8(ascii: "7"), count: length))
            #expect(answer.onlyJSONType)
            let template = answer.templateHead(allocator: allocator, reserving: 0, requestID: "01KB0000000000000000000000", date: date)
            let written = answer.writtenHead(
                allocator: allocator, reserving: 0, requestID: "01KB0000000000000000000000", origin: nil, cors: CORSPolicy(), closing: false, date: date
            )
            #expect(template == written, "\(length): \(String(buffer: template)) vs \(String(buffer: written))")
            #expect(String(buffer: template).contains("Content-Length: \(length)\r\n"))
        }
        // Anything else takes the written way.
        #expect(!EndpointAnswer.json(encoded: [], headers: [.cacheControl: "no-store"]).onlyJSONType)
        var busy = EndpointAnswer.json(encoded: [])
        busy.headers[.retryAfter] = "1"
        #expect(!busy.onlyJSONType)
        #expect(!EndpointAnswer.error(ServiceError(.notFound, "x")).onlyJSONType)
        #expect(EndpointAnswer.json(.object(["a": 1])).onlyJSONType)
    }
}
