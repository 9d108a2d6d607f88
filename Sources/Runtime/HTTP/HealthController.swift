import Hummingbird
import LuaBridge

/// `GET /healthz`: answers while the process serves requests.
struct HealthController {
    func register(on router: Router<PiCloudRequestContext>) {
        router.get("/healthz") { _, _ in
            Response.json(["status": "ok", "version": .string(PiCloudVersion.current)])
        }
    }
}
