import Foundation
import HTTPTypes
import Hummingbird
import LuaBridge
import NIOCore
import Prometheus
import Services

/// `/apps/{app}/api/...`: runs the handler the app's manifest maps the method and path to.
struct EndpointController {
    let core: PiCloudCore
    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .head, .options]

    func register(on router: Router<PiCloudRequestContext>) {
        for method in Self.methods {
            router.on("/apps/:app/api", method: method) { request, context in try await handle(request, context) }
            router.on("/apps/:app/api/**", method: method) { request, context in try await handle(request, context) }
        }
    }

    /// The query's parameters, percent-decoded with '+' as a space (the last of repeated names wins).
    static func queryParameters(_ query: String?) -> [(String, String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&").compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String? { String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]), !name.isEmpty else { return nil }
            return (name, parts.count > 1 ? decode(parts[1]) ?? String(parts[1]) : "")
        }
    }

    func handle(_ request: Request, _ context: PiCloudRequestContext) async throws -> Response {
        let app = try context.parameters.require("app")
        guard let deployment = core.registry.deployment(for: app) else {
            if try await core.services.storage.app(named: app) != nil { throw ServiceError(.notFound, "app '\(app)' has nothing deployed yet") }
            throw ServiceError(.notFound, "no app named '\(app)'")
        }
        let prefix = "/apps/\(app)/api"
        let rawPath = String(request.uri.path.dropFirst(min(prefix.utf8.count, request.uri.path.utf8.count)))
        var segments: [String] = []
        for part in rawPath.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = decodePathSegment(part) else { throw ServiceError(.invalidInput, "malformed percent-encoding in the path") }
            segments.append(decoded)
        }
        let method = request.method.rawValue
        switch deployment.route(method: method, path: segments) {
        case .notFound:
            throw ServiceError(.notFound, "no endpoint for \(method) \(rawPath.isEmpty ? "/" : rawPath) in app '\(app)'")
        case .methodNotAllowed(let allowed):
            var response = Response.json(
                ["error": ["code": "method_not_allowed", "message": .string("\(method) is not allowed here; allowed: \(allowed.joined(separator: ", "))")]],
                status: .methodNotAllowed
            )
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        case .found(let endpoint, let parameters):
            if endpoint.auth == .key { _ = try context.require(.invoke, app: app) }
            return try await invoke(endpoint, parameters: parameters, path: "/" + segments.joined(separator: "/"), deployment: deployment, request: request, context: context)
        }
    }

    func invoke(_ endpoint: Manifest.Endpoint, parameters: [String: String], path: String, deployment: ActiveDeployment, request: Request, context: PiCloudRequestContext) async throws -> Response {
        let body = try await request.bodyBytes(limit: core.configuration.maxBodyBytes)
        var headers: [String: LuaValue] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            if case .string(let existing)? = headers[name] {
                headers[name] = .string(existing + ", " + field.value)
            } else {
                headers[name] = .string(field.value)
            }
        }
        var query: [String: LuaValue] = [:]
        // Form encoding (HTML forms, URLSearchParams) writes spaces as '+'.
        for (key, value) in Self.queryParameters(request.uri.query) { query[key] = .string(value) }
        var json: LuaValue = .nil
        if !body.isEmpty, request.headers[.contentType]?.lowercased().contains("json") == true {
            do {
                json = try LuaJSON.decode(body)
            } catch {
                throw ServiceError(.invalidInput, "malformed JSON body: \(error.message)")
            }
        }
        let requestValue: LuaValue = .object([
            "method": .string(request.method.rawValue), "path": .string(path), "params": .object(parameters.mapValues(LuaValue.string)),
            "query": .object(query), "headers": .object(headers), "body": LuaValue(bytes: body), "json": json,
        ])
        let limits = deployment.pool.configuration.limits
        let invocation = InvocationContext(
            app: deployment.app, requestID: context.requestID, principal: context.principal,
            deadline: Date().timeIntervalSince1970 + Double(limits.timeout.components.seconds) + Double(limits.timeout.components.attoseconds) / 1e18
        )
        let metrics = core.metrics
        metrics.requests.increment()
        let started = ContinuousClock.now
        defer { metrics.requestDuration.record(ContinuousClock.now - started) }
        do {
            let results = try await deployment.pool.invoke(endpoint.handler, [requestValue, invocation.luaValue], context: invocation)
            return try response(from: results.first ?? .nil, handler: endpoint.handler, head: request.method == .head)
        } catch let error as LuaError {
            metrics.requestErrors.increment()
            return failure(error, app: deployment.app, context: context)
        }
    }

    /// What a handler returned, as an HTTP response. A table with only `status`, `headers`, `json`
    /// and `body` is a response; any other value is sent as JSON (a string as text, nil as 204).
    func response(from value: LuaValue, handler: String, head: Bool) throws -> Response {
        let responseKeys: Set<String> = ["status", "headers", "json", "body"]
        switch value {
        case .nil:
            return Response.noContent()
        case .string, .bytes:
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: value.byteValue ?? [])))
        case .object(let fields) where !fields.isEmpty && Set(fields.keys).isSubset(of: responseKeys):
            var status = HTTPResponse.Status.ok
            if let code = fields["status"] {
                guard let number = code.integerValue, (100...599).contains(number) else {
                    throw ServiceError(.scriptError, "\(handler): the response status must be an integer from 100 to 599")
                }
                status = HTTPResponse.Status(code: Int(number))
            }
            var headers = HTTPFields()
            if case .object(let given)? = fields["headers"] {
                for (name, headerValue) in given.sorted(by: { $0.key < $1.key }) {
                    guard let fieldName = HTTPField.Name(name) else { throw ServiceError(.scriptError, "\(handler): '\(name)' is not a valid header name") }
                    let text = headerValue.stringValue ?? headerValue.integerValue.map(String.init) ?? ""
                    guard !text.contains("\r"), !text.contains("\n") else { throw ServiceError(.scriptError, "\(handler): header '\(name)' contains a line break") }
                    headers[fieldName] = text
                }
            }
            if let json = fields["json"], fields["body"] != nil, json != .nil {
                throw ServiceError(.scriptError, "\(handler): a response has either json or body, not both")
            }
            if let json = fields["json"] {
                return Response.json(json, status: status, headers: headers)
            }
            if let body = fields["body"] {
                guard let bytes = body.byteValue else { throw ServiceError(.scriptError, "\(handler): body must be a string") }
                if headers[.contentType] == nil { headers[.contentType] = "text/plain; charset=utf-8" }
                return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: head ? [] : bytes)))
            }
            return Response(status: status, headers: headers)
        default:
            return Response.json(value)
        }
    }

    /// A failed handler. An error table with a status (`error({status = 404, message = ...})`) is
    /// the handler's own answer. Anything else is logged to the app's log and answered 500 (504
    /// for the time limit): with `file:line` and the traceback for the app's admins, without for
    /// everyone else.
    func failure(_ error: LuaError, app: String, context: PiCloudRequestContext) -> Response {
        if case .object(var fields)? = error.value, let status = fields["status"]?.integerValue, (400...599).contains(status) {
            let code = fields.removeValue(forKey: "code")?.stringValue ?? ErrorMiddleware<PiCloudRequestContext>.code(for: HTTPResponse.Status(code: Int(status))).rawValue
            let message = fields.removeValue(forKey: "message")?.stringValue ?? HTTPResponse.Status(code: Int(status)).reasonPhrase
            fields.removeValue(forKey: "status")
            var detail: [String: LuaValue] = ["code": .string(code), "message": .string(message)]
            for (key, value) in fields { detail[key] = value }
            return Response.json(["error": .object(detail)], status: HTTPResponse.Status(code: Int(status)))
        }
        core.services.logs.append(app: app, level: .error, message: error.message + (error.traceback.map { "\n" + $0 } ?? ""), requestID: context.requestID)
        let isAdmin = context.principal?.may(.read, app: app) == true
        let status: HTTPResponse.Status = error.code == .timeout ? .gatewayTimeout : .internalServerError
        var detail: [String: LuaValue] = [
            "code": .string(error.code == .timeout ? "timeout" : "script_error"),
            "message": .string(isAdmin ? error.message : "the handler failed; the app's admins can find request \(context.requestID) in its logs"),
            "request_id": .string(context.requestID),
        ]
        if isAdmin, let traceback = error.traceback { detail["traceback"] = .string(traceback) }
        return Response.json(["error": .object(detail)], status: status)
    }
}
