/// A failure a caller can act on: bad input, a missing thing, a conflict, a refusal.
///
/// Services throw it; the HTTP edge maps `code` to a status once and answers
/// `{"error":{"code","message"}}`. `message` is meant for the caller and holds no secrets;
/// `underlying` is for the log only.
public struct ServiceError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure, as a stable string API clients can switch on.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The request is malformed or a value is out of range.
        public static let invalidInput = Code(rawValue: "invalid_input")
        /// No credentials, or credentials that do not check out.
        public static let unauthorized = Code(rawValue: "unauthorized")
        /// Valid credentials without the needed scope.
        public static let forbidden = Code(rawValue: "forbidden")
        /// The thing asked for does not exist (or the caller may not know it does).
        public static let notFound = Code(rawValue: "not_found")
        /// The method is not supported on this resource.
        public static let methodNotAllowed = Code(rawValue: "method_not_allowed")
        /// The change conflicts with the current state (a name taken, a stale version).
        public static let conflict = Code(rawValue: "conflict")
        /// The request body or a stored value is larger than allowed.
        public static let payloadTooLarge = Code(rawValue: "payload_too_large")
        /// Too many requests; retry later.
        public static let rateLimited = Code(rawValue: "rate_limited")
        /// A script failed (compile error, runtime error, limit).
        public static let scriptError = Code(rawValue: "script_error")
        /// The server cannot take this now (overloaded, shutting down, disk full).
        public static let unavailable = Code(rawValue: "unavailable")
        /// A fault on our side; details are in the log, not in the answer.
        public static let `internal` = Code(rawValue: "internal")
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { "\(code): \(message)" }
}
