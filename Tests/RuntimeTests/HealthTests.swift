import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOFoundationEssentialsCompat
import Runtime
import Testing

@Suite("HTTP basics")
struct HealthTests {
    func application() async throws -> some ApplicationProtocol {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-test-\(UUID().uuidString)").path
        return try await PiCloudServer.makeApplication(
            configuration: RuntimeConfiguration(port: 0, dataDirectory: directory),
            logger: Logger(label: "test")
        )
    }

    @Test("GET /healthz answers ok with the version")
    func healthz() async throws {
        try await application().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: String]
                #expect(body == ["status": "ok", "version": PiCloudVersion.current])
            }
        }
    }

    @Test("an unknown route answers 404 in the JSON error shape")
    func unknownRoute() async throws {
        try await application().test(.router) { client in
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: [String: String]]
                #expect(body?["error"]?["code"] == "not_found")
                #expect(body?["error"]?["message"] == "no route for GET /nowhere")
            }
        }
    }

    @Test("configuration reads PICLOUD_* and rejects nonsense")
    func configuration() throws {
        let configuration = try RuntimeConfiguration(environment: ["PICLOUD_PORT": "9000", "PICLOUD_DATA_DIR": "/tmp/x", "PICLOUD_HOST": "0.0.0.0"])
        #expect(configuration.host == "0.0.0.0" && configuration.port == 9000 && configuration.dataDirectory == "/tmp/x")
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: ["PICLOUD_PORT": "eighty"]) }
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: ["PICLOUD_PORT": "70000"]) }
    }
}
