import HTTPTypes
import LuaBridge
import NIOCore
import Prometheus
import Services

/// Makes an endpoint's answer straight from what its handler returned, on the handler's stack
/// (see ``LuaResultReader``): no `LuaValue` tree for the result and its `json` table is built
/// only to be encoded and dropped.
///
/// It takes the shapes handlers return (a response table, a table or scalar sent as JSON, a
/// string, nothing) when they make a good answer. A value that leads to an error (a bad status, a
/// value JSON cannot hold, a function), and more than one result, it leaves to the usual
/// conversion and ``EndpointCall/answer(from:handler:head:)``, so that errors read as before.
class EndpointAnswerReader: LuaResultReader, @unchecked Sendable {
    let handler: String
    let head: Bool
    /// The answer, once the reader took the results. Written on the VM's thread before the
    /// invocation's completion runs, and read in that completion (which the VM calls after).
    private(set) var answer: EndpointAnswer?

    init(handler: String, head: Bool) {
        self.handler = handler
        self.head = head
    }

    /// The names a response table may use, in the order ``read(_:)`` reads them.
    private static let responseKeys: [StaticString] = ["status", "headers", "json", "body"]

    func read(_ results: LuaResults) -> Bool {
        answer = try? answer(results)
        return answer != nil
    }

    /// The answer, or nil (or a throw) to leave the results to the usual way.
    private func answer(_ results: LuaResults) throws -> EndpointAnswer? {
        guard results.count <= 1 else { return nil }
        switch results.kind(0) {
        case .none, .nil:
            return EndpointAnswer(status: .noContent)
        case .string:
            return try EndpointCall.answer(from: results.value(0), handler: handler, head: head)
        case .table:
            guard let fields = results.fields(of: 0, named: Self.responseKeys) else {
                return results.json(0).map { .json(encoded: $0) }
            }
            // `{ json = ... }` alone, the most common response table: straight to its answer.
            if fields.kind(0) == .nil, fields.kind(1) == .nil, fields.kind(3) == .nil, fields.kind(2) != .nil {
                return fields.json(2).map { .json(encoded: $0) }
            }
            var table = EndpointCall.ResponseTable(status: try fields.value(0), headers: try fields.value(1), body: try fields.value(3))
            // Absent fields read as nil: present ones are never nil in a Lua table.
            if table.status == .nil { table.status = nil }
            if table.headers == .nil { table.headers = nil }
            if table.body == .nil { table.body = nil }
            if fields.kind(2) != .nil {
                guard let text = fields.json(2) else { return nil }
                table.json = .encoded(text)
            }
            return try EndpointCall.response(table, handler: handler, head: head)
        case .number, .boolean, .null:
            return results.json(0).map { .json(encoded: $0) }
        case .other:
            return nil
        }
    }
}

/// An endpoint call whose handler runs on a loop's VM: its answer is read off the stack when the
/// handler returns, and ``finish(_:)`` ends the call (the app's count, the duration, the answer
/// handed to the connection). One object instead of a reader and a completion's captures.
final class PendingEndpointCall: EndpointAnswerReader, @unchecked Sendable {
    let call: EndpointCall
    let requestID: String
    let principal: Principal?
    let core: PiCloudCore
    let locals: LoopLocals
    let started: ContinuousClock.Instant
    let done: NIOLoopBound<(EndpointAnswer, String) -> Void>

    init(
        call: EndpointCall, head: Bool, requestID: String, principal: Principal?, core: PiCloudCore, locals: LoopLocals, started: ContinuousClock.Instant,
        done: NIOLoopBound<(EndpointAnswer, String) -> Void>
    ) {
        self.call = call
        self.requestID = requestID
        self.principal = principal
        self.core = core
        self.locals = locals
        self.started = started
        self.done = done
        super.init(handler: call.endpoint.handler, head: head)
    }

    /// The handler's outcome, on the loop: its answer as read, or made from its converted results or its failure.
    func finish(_ result: Result<[LuaValue], LuaError>) {
        call.deployment.finished()
        locals.recordDuration(ContinuousClock.now - started, core.metrics)
        if case .success = result, let answer {
            done.value(answer, requestID)
        } else {
            done.value(call.answer(result, head: head, requestID: requestID, principal: principal, core: core), requestID)
        }
    }
}
