import Hummingbird
import Prometheus
import Services
import NIOCore
import LuaBridge

/// `GET /healthz`: answers while the process serves requests. `GET /metrics`: Prometheus metrics.
struct HealthController {
    let core: PiCloudCore

    func register(on router: Router<PiCloudRequestContext>) {
        router.get("/healthz") { _, _ in
            Response.json(["status": "ok", "version": .string(PiCloudVersion.current)])
        }
        router.get("/metrics") { _, _ in
            core.metrics.outboxDepth.set(Int64(try await core.services.storage.outboxDepth()))
            let text = core.metrics.registry.emitToBuffer()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}
