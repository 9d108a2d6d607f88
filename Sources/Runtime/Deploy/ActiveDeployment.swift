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
    /// What ``route(method:path:)`` finds for the paths of patterns without parameters, by the
    /// path's canonical text (`/notes/recent`) and then method: a request for one of those needs
    /// no split, decode or match (see ``staticRoute(method:path:)``).
    private let staticRoutes: [String: [String: Manifest.Endpoint]]

    init(app: String, version: Int, manifest: Manifest, pool: LuaPool, createdAt: Milliseconds) {
        self.app = app
        self.version = version
        self.manifest = manifest
        self.pool = pool
        self.createdAt = createdAt
        let routes = manifest.endpoints.sorted { $0.path.specificity.lexicographicallyPrecedes($1.path.specificity) }
        self.routes = routes
        // Computed with route(method:path:) itself, so that a hit answers exactly as a match would.
        let methods = Set(routes.map(\.method).filter { $0 != "*" } + ["HEAD"])
        var staticRoutes: [String: [String: Manifest.Endpoint]] = [:]
        for endpoint in routes {
            let literals = endpoint.path.segments.compactMap { segment -> String? in
                if case .literal(let text) = segment { text } else { nil }
            }
            guard literals.count == endpoint.path.segments.count, staticRoutes[endpoint.path.text] == nil else { continue }
            var byMethod: [String: Manifest.Endpoint] = [:]
            for method in methods {
                if case .found(let found, _) = Self.route(in: routes, method: method, path: literals) { byMethod[method] = found }
            }
            staticRoutes[endpoint.path.text] = byMethod
        }
        self.staticRoutes = staticRoutes
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
    func route(method: String, path: [String]) -> RouteMatch { Self.route(in: routes, method: method, path: path) }

    /// The endpoint ``route(method:path:)`` finds when `path` is, as sent, the canonical text of a
    /// pattern without parameters; nil when it is not (then split, decode and match).
    func staticRoute(method: String, path: Substring) -> Manifest.Endpoint? {
        staticRoutes[path.isEmpty ? "/" : String(path)]?[method]
    }

    /// The most specific pattern that matches and takes the method wins; among patterns as
    /// specific, one declared for the method beats `GET` serving a `HEAD`, which beats `*`.
    private static func route(in routes: [Manifest.Endpoint], method: String, path: [String]) -> RouteMatch {
        var allowed: [String] = []
        var best: (endpoint: Manifest.Endpoint, parameters: [String: String], rank: Int)?
        for endpoint in routes {
            if let best, endpoint.path.specificity != best.endpoint.path.specificity { break }
            guard let parameters = endpoint.path.match(path) else { continue }
            let rank: Int
            if endpoint.method == method {
                rank = 0
            } else if method == "HEAD" && endpoint.method == "GET" {
                rank = 1
            } else if endpoint.method == "*" {
                rank = 2
            } else {
                allowed.append(endpoint.method)
                continue
            }
            if rank < best?.rank ?? .max { best = (endpoint, parameters, rank) }
        }
        if let best { return .found(best.endpoint, parameters: best.parameters) }
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
