/// What an API key may do. Seven scopes, from widest to narrowest:
///
/// | scope | grants |
/// |---|---|
/// | `instance:admin` | everything, on every app: create and delete apps, instance keys |
/// | `app:admin` | everything within its app: keys, secrets, deployments, data, logs |
/// | `app:deploy` | deploy, and read deployments, endpoints and logs |
/// | `app:read` | read deployments, endpoints and logs (no data, no secrets) |
/// | `data:write` | change and read the app's data through the admin API |
/// | `data:read` | read the app's kv, docs and files through the admin API |
/// | `invoke` | call the app's endpoints declared with `auth = "key"` |
public enum Scope: String, CaseIterable, Sendable, Hashable, Codable {
    case instanceAdmin = "instance:admin"
    case appAdmin = "app:admin"
    case deploy = "app:deploy"
    case read = "app:read"
    case dataWrite = "data:write"
    case dataRead = "data:read"
    case invoke = "invoke"

    /// Whether holding this scope grants `needed`.
    public func grants(_ needed: Scope) -> Bool {
        if self == needed { return true }
        switch self {
        case .instanceAdmin: return true
        case .appAdmin: return needed != .instanceAdmin
        case .deploy: return needed == .read
        case .dataWrite: return needed == .dataRead
        default: return false
        }
    }

    /// Parses a space- or comma-separated list; throws `invalid_input` naming an unknown scope.
    public static func parse(_ text: String) throws(ServiceError) -> Set<Scope> {
        var scopes: Set<Scope> = []
        for word in text.split(whereSeparator: { $0 == " " || $0 == "," }) {
            guard let scope = Scope(rawValue: String(word)) else {
                throw ServiceError(.invalidInput, "unknown scope '\(word)'; scopes are \(Scope.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            scopes.insert(scope)
        }
        return scopes
    }
}

extension Set where Element == Scope {
    /// Whether any scope in the set grants `needed`.
    public func grants(_ needed: Scope) -> Bool { contains { $0.grants(needed) } }

    /// The scopes as stored and shown: sorted, space-separated.
    public var text: String { map(\.rawValue).sorted().joined(separator: " ") }
}
