import Foundation
import Hummingbird
import NIOCore
import Services

/// Serves the dashboard at `/dashboard` and the browser client at `/client/picloud.js` (and
/// `/client/react.js`), from copies embedded in the binary (scripts/embed-resources.py). With
/// `PICLOUD_ASSETS_DIR` set to a checkout of the repository they are read from disk instead, so
/// the dashboard can be worked on without rebuilding.
struct AssetsController {
    let directory: String?

    static let types: [String: String] = [
        "html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml", "json": "application/json",
    ]

    /// The dashboard talks to this server only; it cannot be framed.
    static let dashboardHeaders: HTTPFields = [
        .init("Content-Security-Policy")!: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        .init("X-Frame-Options")!: "DENY", .init("X-Content-Type-Options")!: "nosniff", .init("Referrer-Policy")!: "no-referrer",
    ]

    func register(on router: Router<PiCloudRequestContext>) {
        // `/dashboard` and `/dashboard/` are one route; the page names its files by absolute path.
        router.get("/dashboard") { _, _ in try serve("dashboard/index.html", dashboard: true) }
        router.get("/dashboard/**") { request, _ in
            let path = String(request.uri.path.dropFirst("/dashboard/".count))
            return try serve("dashboard/" + path, dashboard: true)
        }
        router.get("/client/:file") { _, context in
            let file = try context.parameters.require("file")
            return try serve("clients/js/src/" + (file == "picloud.js" ? "index.js" : file), dashboard: false)
        }
    }

    func serve(_ path: String, dashboard: Bool) throws -> Response {
        guard !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }), let text = content(path) else {
            throw ServiceError(.notFound, "no such file")
        }
        let ext = path.split(separator: ".").last.map(String.init) ?? ""
        var headers: HTTPFields = [.contentType: Self.types[ext] ?? "application/octet-stream", .cacheControl: "no-cache"]
        if dashboard { headers.append(contentsOf: Self.dashboardHeaders) } else { headers[.init("Access-Control-Allow-Origin")!] = "*" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func content(_ path: String) -> String? {
        if let directory {
            return try? String(contentsOfFile: (directory as NSString).appendingPathComponent(path), encoding: .utf8)
        }
        return Self.embedded[path]
    }

    static let embedded: [String: String] = Dictionary(EmbeddedAssets.files.map { ($0.path, $0.contents) }, uniquingKeysWith: { first, _ in first })
}
