import Foundation
import HTTPTypes
import Hummingbird
import LuaBridge
import Logging
import NIOCore
import Prometheus
import Services

/// One call of an app endpoint, however the request came in: from the connection's pipeline on
/// its event loop (``EndpointStream``, the usual way) or through the router
/// (``EndpointController``). Both build the handler's arguments and its answer here.
struct EndpointCall {
    let deployment: ActiveDeployment
    let endpoint: Manifest.Endpoint
    let parameters: [String: String]
    /// The path below `/apps/{app}/api`, decoded, e.g. `/messages/42`.
    let path: String

    enum Resolution {
        case call(EndpointCall)
        case methodNotAllowed(allowed: [String])
        case notFound(path: String)
    }

    /// The endpoint the active deployment maps `method` and `rawPath` (what follows
    /// `/apps/{app}/api`, without the query) to.
    static func resolve(_ deployment: ActiveDeployment, method: String, rawPath: Substring) throws -> Resolution {
        if let endpoint = deployment.staticRoute(method: method, path: rawPath) {
            return .call(EndpointCall(deployment: deployment, endpoint: endpoint, parameters: [:], path: rawPath.isEmpty ? "/" : String(rawPath)))
        }
        var segments: [String] = []
        for part in rawPath.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            guard let decoded = decodePathSegment(Substring(part)) else { throw ServiceError(.invalidInput, "malformed percent-encoding in the path") }
            segments.append(decoded)
        }
        switch deployment.route(method: method, path: segments) {
        case .notFound: return .notFound(path: rawPath.isEmpty ? "/" : String(rawPath))
        case .methodNotAllowed(let allowed): return .methodNotAllowed(allowed: allowed)
        case .found(let endpoint, let parameters):
            return .call(EndpointCall(deployment: deployment, endpoint: endpoint, parameters: parameters, path: "/" + segments.joined(separator: "/")))
        }
    }

    /// The call a request path (without its query) is for, when it is `/apps/{app}/api[/...]`
    /// and names an endpoint of an active deployment; nil otherwise (the router answers those).
    static func resolve(path: Substring, method: String, registry: AppRegistry) -> EndpointCall? {
        // Looked at as bytes, in one pass (the delimiters are ASCII): the app's name ends at the
        // first '/' after "/apps/", and "/api" must follow it, then the end or a '/'.
        var path = path
        let offsets: (slash: Int, rest: Int)? = path.withUTF8 { bytes in
            guard bytes.count > 6, bytes[0] == UInt8(ascii: "/"), bytes[1] == UInt8(ascii: "a"), bytes[2] == UInt8(ascii: "p"),
                  bytes[3] == UInt8(ascii: "p"), bytes[4] == UInt8(ascii: "s"), bytes[5] == UInt8(ascii: "/"),
                  let slash = bytes[6...].firstIndex(of: UInt8(ascii: "/")), slash > 6, bytes.count >= slash + 4,
                  bytes[slash + 1] == UInt8(ascii: "a"), bytes[slash + 2] == UInt8(ascii: "p"), bytes[slash + 3] == UInt8(ascii: "i"),
                  bytes.count == slash + 4 || bytes[slash + 4] == UInt8(ascii: "/")
            else { return nil }
            return (slash, slash + 4)
        }
        guard let offsets else { return nil }
        let utf8 = path.utf8
        let appStart = utf8.index(utf8.startIndex, offsetBy: 6), slash = utf8.index(utf8.startIndex, offsetBy: offsets.slash)
        guard let deployment = registry.deployment(for: String(path[appStart..<slash])),
              case .call(let call)? = try? resolve(deployment, method: method, rawPath: path[utf8.index(utf8.startIndex, offsetBy: offsets.rest)...])
        else { return nil }
        return call
    }

    /// The answer to a request the app has no room for now.
    static func busy(app: String) -> EndpointAnswer {
        var answer = EndpointAnswer.error(ServiceError(.unavailable, "app '\(app)' is running as many requests as it may; retry shortly"))
        answer.headers[.retryAfter] = "1"
        return answer
    }

    /// The handler's arguments: the `request` table and `ctx`, written straight onto its stack.
    /// Throws for a body that claims to be JSON and is not.
    func arguments(_ request: EndpointRequest, invocation: InvocationContext) throws(ServiceError) -> LuaArguments {
        var json: LuaValue = .nil
        if !request.body.isEmpty, request.contentType?.lowercased().contains("json") == true {
            do {
                json = try LuaJSON.decode(request.body)
            } catch {
                throw ServiceError(.invalidInput, "malformed JSON body: \(error.message)")
            }
        }
        let (method, body, path, parameters, decoded, fields, target) = (request.method, request.body, path, parameters, json, request.fields, request.query)
        return LuaArguments(count: 2) { writer throws(LuaConversionError) in
            // A handler declared `function()` sees neither table, `function(req)` no `ctx`.
            guard writer.accepted > 0 else { return }
            let headers = Self.joined(fields)
            // Form encoding (HTML forms, URLSearchParams) writes spaces as '+'.
            let query = Self.queryParameters(target)
            try writer.table(fields: 7) { () throws(LuaConversionError) in
                try writer.field("method", string: method)
                try writer.field("path", string: path)
                try writer.field("params", tableOf: parameters.count) { () throws(LuaConversionError) in
                    for (name, value) in parameters { try writer.field(named: name, string: value) }
                }
                // Set in order, so that the last of repeated names wins.
                try writer.field("query", tableOf: query.count) { () throws(LuaConversionError) in
                    for (name, value) in query { try writer.field(named: name, string: value) }
                }
                try writer.field("headers", tableOf: headers.count) { () throws(LuaConversionError) in
                    for (name, value) in headers { try writer.field(named: name, string: value) }
                }
                try writer.field("body", bytes: body)
                if decoded != .nil { try writer.field("json", decoded) }
            }
            guard writer.accepted > 1 else { return }
            try invocation.write(into: writer)
        }
    }

    /// Header fields with repeated names joined into one, `a, b`, where the first stood.
    static func joined(_ fields: [(name: String, value: String)]) -> [(name: String, value: String)] {
        // Most requests repeat no name: then the fields are the answer as they are (no copy).
        if fields.count <= 32, !fields.indices.contains(where: { index in fields[..<index].contains { $0.name == fields[index].name } }) {
            return fields
        }
        var result: [(name: String, value: String)] = []
        result.reserveCapacity(fields.count)
        // A few fields: look back. Many (the router's path takes any number): index by name.
        var positions: [String: Int]? = fields.count > 32 ? Dictionary(minimumCapacity: fields.count) : nil
        for field in fields {
            let earlier = positions.map { $0[field.name] } ?? result.firstIndex { $0.name == field.name }
            if let earlier {
                result[earlier].value += ", " + field.value
            } else {
                positions?[field.name] = result.count
                result.append(field)
            }
        }
        return result
    }

    /// Runs the call for a request read in a connection's pipeline: finds the caller's key when
    /// the request names one (a task: it reads the store), checks it when the endpoint asks for
    /// one, builds the handler's `request`, admits it under the app's cap and runs it on the VM
    /// the loop of `locals` keeps for the app. `done` gets the answer and the request's id on
    /// that loop — synchronously when the handler waits for nothing.
    func run(_ request: EndpointRequest, core: PiCloudCore, locals: LoopLocals, done: @escaping (EndpointAnswer, String) -> Void) {
        let now = Clock.now()
        let requestID = locals.requestID(at: now)
        guard let authorization = request.authorization else {
            run(request, principal: nil, presentedCredentials: false, requestID: requestID, now: now, core: core, locals: locals, done: done)
            return
        }
        let loop = locals.loop
        let keys = core.services.keys
        let bound = NIOLoopBound(done, eventLoop: loop)
        let call = self
        Task {
            do {
                let principal = try await AuthenticationMiddleware.authenticate(authorization: authorization, keys: keys)
                loop.execute {
                    call.run(request, principal: principal, presentedCredentials: true, requestID: requestID, now: Clock.now(), core: core, locals: locals, done: bound.value)
                }
            } catch {
                let failure = error as? ServiceError ?? ServiceError(.internal, "internal error", underlying: error)
                if failure.code == .internal { core.logger.error("endpoint: \(failure.underlying.map { "\($0)" } ?? failure.message)") }
                loop.execute { bound.value(.error(failure), requestID) }
            }
        }
    }

    private func run(
        _ request: EndpointRequest, principal: Principal?, presentedCredentials: Bool, requestID: String, now: Milliseconds, core: PiCloudCore,
        locals: LoopLocals, done: @escaping (EndpointAnswer, String) -> Void
    ) {
        let invocation = invocationContext(requestID: requestID, principal: principal, now: now)
        let arguments: LuaArguments
        do {
            if endpoint.auth == .key {
                _ = try PiCloudRequestContext.require(.invoke, app: deployment.app, principal: principal, presentedCredentials: presentedCredentials)
            }
            arguments = try self.arguments(request, invocation: invocation)
        } catch {
            done(.error(error as? ServiceError ?? ServiceError(.internal, "internal error", underlying: error)), requestID)
            return
        }
        guard deployment.admit(limit: core.configuration.maxConcurrentRequestsPerApp) else {
            done(Self.busy(app: deployment.app), requestID)
            return
        }
        locals.countRequest(core.metrics)
        let started = ContinuousClock.now
        let worker = locals.worker(for: deployment)
        let pending = PendingEndpointCall(
            call: self, head: request.method == "HEAD", requestID: requestID, principal: principal, core: core, locals: locals, started: started,
            done: NIOLoopBound(done, eventLoop: locals.loop)
        )
        // The completion holds only `pending`: no context to allocate, nothing else to retain.
        worker.invoke(endpoint.handler, arguments: arguments, context: invocation, results: pending) { pending.finish($0) }
    }

    /// The `ctx` of the invocation, its deadline the pool's time limit after `now`.
    func invocationContext(requestID: String, principal: Principal?, now: Milliseconds = Clock.now()) -> InvocationContext {
        let timeout = deployment.pool.configuration.limits.timeout.components
        return InvocationContext(
            app: deployment.app, requestID: requestID, principal: principal,
            deadline: Double(now) / 1000 + Double(timeout.seconds) + Double(timeout.attoseconds) / 1e18
        )
    }

    /// The query's parameters, percent-decoded with '+' as a space (the last of repeated names wins).
    static func queryParameters(_ query: Substring?) -> [(String, String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = percentDecoded(parts[0], plusIsSpace: true), !name.isEmpty else { return nil }
            return (name, parts.count > 1 ? percentDecoded(parts[1], plusIsSpace: true) ?? String(parts[1]) : "")
        }
    }

    /// The answer to what the handler did: its return value as a response, or its failure.
    func answer(_ result: Result<[LuaValue], LuaError>, head: Bool, requestID: String, principal: Principal?, core: PiCloudCore) -> EndpointAnswer {
        switch result {
        case .success(let values):
            do {
                return try Self.answer(from: values.first ?? .nil, handler: endpoint.handler, head: head)
            } catch let error as ServiceError {
                return .error(error)
            } catch {
                return .error(ServiceError(.internal, "internal error", underlying: error))
            }
        case .failure(let error):
            core.metrics.requestErrors.increment()
            return Self.failure(error, app: deployment.app, requestID: requestID, principal: principal, core: core)
        }
    }

    /// What a handler returned, as an HTTP answer. A table with only `status`, `headers`, `json`
    /// and `body` is a response; any other value is sent as JSON (a string as text, nil as 204).
    static func answer(from value: LuaValue, handler: String, head: Bool) throws -> EndpointAnswer {
        switch value {
        case .nil:
            return EndpointAnswer(status: .noContent)
        case .string, .bytes:
            return EndpointAnswer(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], bytes: value.byteValue ?? [])
        case .object(let fields) where !fields.isEmpty && fields.keys.allSatisfy(isResponseKey):
            return try response(
                ResponseTable(status: fields["status"], headers: fields["headers"], json: fields["json"].map(ResponseTable.JSON.value), body: fields["body"]),
                handler: handler, head: head
            )
        default:
            return try .json(value, handler: handler)
        }
    }

    /// The fields of a response table, however they were read (converted, or off the stack).
    struct ResponseTable {
        var status: LuaValue?
        var headers: LuaValue?
        var json: JSON?
        var body: LuaValue?

        enum JSON {
            case value(LuaValue)
            /// Already JSON text (``LuaResults/json(_:)``).
            case encoded([UInt8])
        }
    }

    /// The answer a response table asks for.
    static func response(_ table: ResponseTable, handler: String, head: Bool) throws -> EndpointAnswer {
        var status = HTTPResponse.Status.ok
        if let code = table.status {
            guard let number = code.integerValue, (100...599).contains(number) else {
                throw ServiceError(.scriptError, "\(handler): the response status must be an integer from 100 to 599")
            }
            status = HTTPResponse.Status(code: Int(number))
        }
        var headers = HTTPFields()
        if case .object(let given)? = table.headers {
            for (name, headerValue) in given.sorted(by: { $0.key < $1.key }) {
                guard let fieldName = HTTPField.Name(name) else { throw ServiceError(.scriptError, "\(handler): '\(name)' is not a valid header name") }
                let text = headerValue.stringValue ?? headerValue.integerValue.map(String.init) ?? ""
                guard !text.contains("\r"), !text.contains("\n") else { throw ServiceError(.scriptError, "\(handler): header '\(name)' contains a line break") }
                headers[fieldName] = text
            }
        }
        switch (table.json, table.body) {
        case (.some, .some):
            throw ServiceError(.scriptError, "\(handler): a response has either json or body, not both")
        case (.value(let json)?, nil):
            return try .json(json, status: status, headers: headers, handler: handler)
        case (.encoded(let text)?, nil):
            return .json(encoded: text, status: status, headers: headers)
        case (nil, let body?):
            guard let bytes = body.byteValue else { throw ServiceError(.scriptError, "\(handler): body must be a string") }
            if headers[.contentType] == nil { headers[.contentType] = "text/plain; charset=utf-8" }
            return EndpointAnswer(status: status, headers: headers, bytes: head ? [] : bytes)
        case (nil, nil):
            return EndpointAnswer(status: status, headers: headers)
        }
    }

    private static func isResponseKey(_ key: String) -> Bool {
        switch key {
        case "status", "headers", "json", "body": true
        default: false
        }
    }

    /// A failed handler. An error table with a status (`error({status = 404, message = ...})`) is
    /// the handler's own answer. Anything else is logged to the app's log and answered 500 (504
    /// for the time limit): with `file:line` and the traceback for the app's admins, without for
    /// everyone else.
    static func failure(_ error: LuaError, app: String, requestID: String, principal: Principal?, core: PiCloudCore) -> EndpointAnswer {
        if case .object(var fields)? = error.value, let status = fields["status"]?.integerValue, (400...599).contains(status) {
            let code = fields.removeValue(forKey: "code")?.stringValue ?? ErrorMiddleware<PiCloudRequestContext>.code(for: HTTPResponse.Status(code: Int(status))).rawValue
            let message = fields.removeValue(forKey: "message")?.stringValue ?? HTTPResponse.Status(code: Int(status)).reasonPhrase
            fields.removeValue(forKey: "status")
            var detail: [String: LuaValue] = ["code": .string(code), "message": .string(message)]
            for (key, value) in fields { detail[key] = value }
            return .json(["error": .object(detail)], status: HTTPResponse.Status(code: Int(status)))
        }
        core.services.logs.append(app: app, level: .error, message: error.message + (error.traceback.map { "\n" + $0 } ?? ""), requestID: requestID)
        let isAdmin = principal?.may(.read, app: app) == true
        let status: HTTPResponse.Status = error.code == .timeout ? .gatewayTimeout : .internalServerError
        var detail: [String: LuaValue] = [
            "code": .string(error.code == .timeout ? "timeout" : "script_error"),
            "message": .string(isAdmin ? error.message : "the handler failed; the app's admins can find request \(requestID) in its logs"),
            "request_id": .string(requestID),
        ]
        if isAdmin, let traceback = error.traceback { detail["traceback"] = .string(traceback) }
        return .json(["error": .object(detail)], status: status)
    }
}
