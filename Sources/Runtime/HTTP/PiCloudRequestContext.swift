import Foundation
import Hummingbird
import Services

/// Per-request state: who is calling, and the id that ties logs and errors together.
struct PiCloudRequestContext: RequestContext, RequestIdentified {
    var coreContext: CoreRequestContextStorage
    /// The authenticated key, if the request carried a valid one.
    var principal: Principal?
    /// Whether an Authorization header was present (valid or not).
    var presentedCredentials = false
    let requestID: String

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = Identifiers.requestID()
    }

    /// The principal, if it may act with `scope` on `app`: 401 without a valid key, 403 without the scope.
    func require(_ scope: Scope, app: String?) throws -> Principal {
        try Self.require(scope, app: app, principal: principal, presentedCredentials: presentedCredentials)
    }

    /// The principal of a valid key, else 401.
    func authenticated() throws -> Principal {
        try Self.authenticated(principal, presentedCredentials: presentedCredentials)
    }

    static func require(_ scope: Scope, app: String?, principal: Principal?, presentedCredentials: Bool) throws -> Principal {
        let principal = try authenticated(principal, presentedCredentials: presentedCredentials)
        try principal.require(scope, app: app)
        return principal
    }

    static func authenticated(_ principal: Principal?, presentedCredentials: Bool) throws -> Principal {
        guard let principal else {
            throw ServiceError(.unauthorized, presentedCredentials ? "the API key is not valid (revoked or mistyped)" : "an API key is needed: send 'Authorization: Bearer <key>'")
        }
        return principal
    }
}

/// Reads the bearer token and finds its key.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = PiCloudRequestContext
    let keys: KeyService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let header = request.headers[.authorization] {
            context.presentedCredentials = true
            context.principal = try await Self.authenticate(authorization: header, keys: keys)
        }
        var response = try await next(request, context)
        response.headers[.init("X-Request-Id")!] = context.requestID
        return response
    }

    /// The key an `Authorization: Bearer <key>` header names, if it is valid.
    static func authenticate(authorization header: String, keys: KeyService) async throws -> Principal? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return try await keys.authenticate(String(parts[1]).trimmingCharacters(in: .whitespaces))
    }
}
