/// Who is calling: an authenticated API key and what it may do.
public struct Principal: Sendable, Hashable {
    public var keyID: String
    /// The app the key belongs to; nil for an instance key (which reaches every app).
    public var app: String?
    public var scopes: Set<Scope>

    public init(keyID: String, app: String?, scopes: Set<Scope>) {
        self.keyID = keyID
        self.app = app
        self.scopes = scopes
    }

    /// Whether the key may act with `scope` on `app` (nil: on the instance itself).
    public func may(_ scope: Scope, app target: String?) -> Bool {
        if let app, app != target { return false } // an app key never reaches another app or the instance
        return scopes.grants(scope)
    }

    /// Throws `forbidden` unless the key may act with `scope` on `app`.
    public func require(_ scope: Scope, app target: String?) throws(ServiceError) {
        guard may(scope, app: target) else {
            let place = target.map { "app '\($0)'" } ?? "this instance"
            throw ServiceError(.forbidden, "this key lacks the '\(scope.rawValue)' scope on \(place)")
        }
    }
}
