import LuaBridge
import Services
import Synchronization

/// A deployment that serves: its manifest, its routes and its VM pool.
final class ActiveDeployment: Sendable {
    let app: String
    let version: Int
    let manifest: Manifest
    let pool: LuaPool
    let createdAt: Milliseconds
    /// Endpoints, most specific pattern first.
    let routes: [Manifest.Endpoint]
    /// Endpoint invocations running now (see ``admit(limit:)``).
    private let running = Atomic<Int>(0)

    init(app: String, version: Int, manifest: Manifest, pool: LuaPool, createdAt: Milliseconds) {
        self.app = app
        self.version = version
        self.manifest = manifest
        self.pool = pool
        self.createdAt = createdAt
        self.routes = manifest.endpoints.sorted { $0.path.specificity.lexicographicallyPrecedes($1.path.specificity) }
    }

    /// Counts one more running endpoint invocation, unless `limit` already run: a flood of
    /// requests is refused (503) instead of queueing without bound. Pair with ``finished()``.
    func admit(limit: Int) -> Bool {
        guard running.add(1, ordering: .relaxed).newValue <= limit else {
            running.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func finished() { running.subtract(1, ordering: .relaxed) }

    enum RouteMatch {
        case found(Manifest.Endpoint, parameters: [String: String])
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    /// The endpoint for a method and a path (split into decoded segments).
    func route(method: String, path: [String]) -> RouteMatch {
        var allowed: [String] = []
        for endpoint in routes {
            guard let parameters = endpoint.path.match(path) else { continue }
            if endpoint.method == method || endpoint.method == "*" || (method == "HEAD" && endpoint.method == "GET") {
                return .found(endpoint, parameters: parameters)
            }
            allowed.append(endpoint.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }
}

/// The deployments serving now, by app. A new deployment replaces the old one atomically;
/// requests that already hold the old one finish on it.
final class AppRegistry: Sendable {
    private let deployments = Mutex<[String: ActiveDeployment]>([:])

    func deployment(for app: String) -> ActiveDeployment? { deployments.withLock { $0[app] } }

    /// Serves `deployment` unless a newer one (by creation time, then version) already serves:
    /// a node that hears late of another node's deployment never goes back to an older one.
    func activate(_ deployment: ActiveDeployment) {
        deployments.withLock { deployments in
            if let current = deployments[deployment.app], (current.createdAt, current.version) > (deployment.createdAt, deployment.version) { return }
            deployments[deployment.app] = deployment
        }
    }

    func remove(app: String) { _ = deployments.withLock { $0.removeValue(forKey: app) } }

    var all: [ActiveDeployment] { deployments.withLock { Array($0.values) } }
}
