import Foundation
import HTTPTypes
import Hummingbird
import LuaBridge
import NIOCore
import Prometheus
import Services

/// `/apps/{app}/api/...` through the router. Requests for an endpoint of an active deployment are
/// normally answered in the connection's pipeline (``EndpointStream``); the router gets the rest:
/// unknown apps and paths (404), other methods (405), CORS preflights, and a request whose
/// deployment changed between the two looks.
struct EndpointController {
    let core: PiCloudCore
    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .head, .options]

    func register(on router: Router<PiCloudRequestContext>) {
        for method in Self.methods {
            router.on("/apps/:app/api", method: method) { request, context in try await handle(request, context) }
            router.on("/apps/:app/api/**", method: method) { request, context in try await handle(request, context) }
        }
    }

    func handle(_ request: Request, _ context: PiCloudRequestContext) async throws -> Response {
        let app = try context.parameters.require("app")
        guard let deployment = core.registry.deployment(for: app) else {
            if try await core.services.storage.app(named: app) != nil { throw ServiceError(.notFound, "app '\(app)' has nothing deployed yet") }
            throw ServiceError(.notFound, "no app named '\(app)'")
        }
        let prefix = "/apps/\(app)/api"
        let rawPath = request.uri.path.dropFirst(min(prefix.utf8.count, request.uri.path.utf8.count))
        let method = request.method.rawValue
        switch try EndpointCall.resolve(deployment, method: method, rawPath: rawPath) {
        case .notFound(let path):
            throw ServiceError(.notFound, "no endpoint for \(method) \(path) in app '\(app)'")
        case .methodNotAllowed(let allowed):
            var response = Response.json(
                ["error": ["code": "method_not_allowed", "message": .string("\(method) is not allowed here; allowed: \(allowed.joined(separator: ", "))")]],
                status: .methodNotAllowed
            )
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        case .call(let call):
            if call.endpoint.auth == .key { _ = try context.require(.invoke, app: app) }
            return try await invoke(call, request: request, context: context)
        }
    }

    func invoke(_ call: EndpointCall, request: Request, context: PiCloudRequestContext) async throws -> Response {
        let body = try await request.bodyBytes(limit: core.configuration.maxBodyBytes)
        let invocation = call.invocationContext(requestID: context.requestID, principal: context.principal)
        let arguments = try call.arguments(EndpointRequest(request.head, body: body), invocation: invocation)
        guard call.deployment.admit(limit: core.configuration.maxConcurrentRequestsPerApp) else { return EndpointCall.busy(app: call.deployment.app).response }
        defer { call.deployment.finished() }
        let metrics = core.metrics
        metrics.requests.increment()
        let started = ContinuousClock.now
        defer { metrics.requestDuration.record(ContinuousClock.now - started) }
        let result: Result<[LuaValue], LuaError>
        do {
            result = .success(try await call.deployment.pool.invoke(call.endpoint.handler, arguments: arguments, context: invocation))
        } catch {
            result = .failure(error)
        }
        return call.answer(result, head: request.method == .head, requestID: context.requestID, principal: context.principal, core: core).response
    }
}
