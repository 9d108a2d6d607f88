import Foundation
import Hummingbird
import HTTPTypes

/// Which web origins may call an app's API and follow its topics from a browser
/// (`PICLOUD_CORS_ORIGINS`: `*` by default, a comma-separated list of origins, or `none`).
/// Credentials are bearer keys and tokens, never cookies, so allowing an origin lends it nothing
/// it does not already hold. The admin API is not opened to other origins.
public struct CORSPolicy: Sendable, Hashable {
    public enum Origins: Sendable, Hashable {
        case any
        case only(Set<String>)
        case none
    }

    public var origins: Origins

    public init(_ origins: Origins = .any) { self.origins = origins }

    /// Parses the setting's text.
    public init(setting: String) {
        let trimmed = setting.trimmingCharacters(in: .whitespaces)
        if trimmed == "*" { self.init(.any) } else if trimmed.lowercased() == "none" || trimmed.isEmpty { self.init(.none) } else {
            self.init(.only(Set(trimmed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })))
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, or nil.
    func allowOrigin(_ origin: String?) -> String? {
        guard let origin else { return nil }
        switch origins {
        case .any: return "*"
        case .only(let allowed): return allowed.contains(origin) ? origin : nil
        case .none: return nil
        }
    }

    static let methods = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
    static let headers = "Authorization, Content-Type, Accept, Last-Event-ID, X-Request-Id"
    static let origin = HTTPField.Name("Origin")!
    static let allowOriginField = HTTPField.Name("Access-Control-Allow-Origin")!

    /// Headers for an answer to an allowed origin.
    func fields(origin: String?) -> HTTPFields {
        guard let allowed = allowOrigin(origin) else { return [:] }
        var fields: HTTPFields = [Self.allowOriginField: allowed, .init("Access-Control-Expose-Headers")!: "X-Request-Id"]
        if allowed != "*" { fields[.init("Vary")!] = "Origin" }
        return fields
    }

    /// The fields of the answer to a preflight from `origin` that asked to send `requestHeaders`
    /// (`Access-Control-Request-Headers`): none when the origin is not allowed.
    func preflightFields(origin: String?, requestHeaders: String?) -> HTTPFields {
        var fields = fields(origin: origin)
        if !fields.isEmpty {
            fields[.init("Access-Control-Allow-Methods")!] = Self.methods
            fields[.init("Access-Control-Allow-Headers")!] = requestHeaders ?? Self.headers
            fields[.init("Access-Control-Max-Age")!] = "86400"
        }
        return fields
    }

    static let requestMethod = HTTPField.Name("Access-Control-Request-Method")!
    static let requestHeaders = HTTPField.Name("Access-Control-Request-Headers")!

    static func isAppPath(_ path: String) -> Bool { path.hasPrefix("/apps/") || path.hasPrefix("/client/") }
}

/// Answers CORS preflight requests for `/apps/...` and adds the allow headers to their answers.
/// (``EndpointFastPath`` answers the preflights of the connections it serves the same way.)
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let policy: CORSPolicy

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard CORSPolicy.isAppPath(request.uri.path) else { return try await next(request, context) }
        let origin = request.headers[CORSPolicy.origin]
        if request.method == .options, request.headers[CORSPolicy.requestMethod] != nil {
            return Response(status: .noContent, headers: policy.preflightFields(origin: origin, requestHeaders: request.headers[CORSPolicy.requestHeaders]))
        }
        var response = try await next(request, context)
        for field in policy.fields(origin: origin) where response.headers[field.name] == nil { response.headers.append(field) }
        return response
    }
}
