import Hummingbird

/// `GET /healthz`: answers while the process serves requests.
struct HealthController<Context: RequestContext> {
    struct Health: ResponseEncodable, Sendable {
        let status: String
        let version: String
    }

    func register(on router: Router<Context>) {
        router.get("/healthz") { _, _ in
            Health(status: "ok", version: PiCloudVersion.current)
        }
    }
}
