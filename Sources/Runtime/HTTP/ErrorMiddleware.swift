import Foundation
import Hummingbird
import Logging
import NIOCore
import Services

/// A request context that knows its request's id.
protocol RequestIdentified {
    var requestID: String { get }
}

/// Turns every error into `{"error":{"code","message"}}` with a fitting status, in one place.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var response = answer(error, request: request, context: context)
            // Error answers carry the request id too (the log lines of the request have it).
            if let identified = context as? any RequestIdentified { response.headers[.init("X-Request-Id")!] = identified.requestID }
            return response
        }
    }

    private func answer(_ error: any Error, request: Request, context: Context) -> Response {
        switch error {
        case let error as ServiceError:
            if error.code == .internal {
                context.logger.error("internal error", metadata: ["error": "\(error.underlying.map { "\($0)" } ?? error.message)"])
            }
            return Self.response(status: Self.status(for: error.code), code: error.code.rawValue, message: error.message)
        case is NIOTooManyBytesError:
            return Self.response(status: .contentTooLarge, code: ServiceError.Code.payloadTooLarge.rawValue, message: "the request body is too large")
        case let error as HTTPError:
            let code = Self.code(for: error.status)
            return Self.response(status: error.status, code: code.rawValue, message: error.body ?? Self.defaultMessage(error.status, request))
        default:
            context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            return Self.response(status: .internalServerError, code: ServiceError.Code.internal.rawValue, message: "internal error")
        }
    }

    static func status(for code: ServiceError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidInput: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .conflict: .conflict
        case .payloadTooLarge: .contentTooLarge
        case .rateLimited: .tooManyRequests
        case .unavailable: .serviceUnavailable
        default: .internalServerError
        }
    }

    static func code(for status: HTTPResponse.Status) -> ServiceError.Code {
        switch status {
        case .notFound: .notFound
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .methodNotAllowed: .methodNotAllowed
        case .conflict: .conflict
        case .contentTooLarge: .payloadTooLarge
        case .tooManyRequests: .rateLimited
        case .serviceUnavailable: .unavailable
        default: status.code < 500 ? .invalidInput : .internal
        }
    }

    static func defaultMessage(_ status: HTTPResponse.Status, _ request: Request) -> String {
        status == .notFound ? "no route for \(request.method) \(request.uri.path)" : status.reasonPhrase
    }

    static func response(status: HTTPResponse.Status, code: String, message: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: body(code: code, message: message))
        )
    }

    /// `{"error":{"code","message"}}` with sorted keys: the same error is the same bytes (404s and
    /// 401s that must not differ do not).
    static func body(code: String, message: String) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(ErrorBody(error: .init(code: code, message: message)))) ?? Data(#"{"error":{"code":"internal","message":"internal error"}}"#.utf8)
        return ByteBuffer(bytes: data)
    }
}

/// The one error shape of the API.
struct ErrorBody: Codable, Sendable {
    struct Detail: Codable, Sendable {
        let code: String
        let message: String
    }

    let error: Detail
}
