import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOFoundationEssentialsCompat
import Runtime
import Services
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
        #expect(try RuntimeConfiguration(environment: ["PICLOUD_DISPATCHER_CONCURRENCY": "0"]).dispatcherConcurrency == 0)
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: ["PICLOUD_DISPATCHER_CONCURRENCY": "-1"]) }
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: ["PICLOUD_PORT": "70000"]) }
        let defaults = try RuntimeConfiguration(environment: [:])
        #expect(defaults.listenBacklog == 4096 && defaults.luaTimeSliceMilliseconds == 2)
        let set = try RuntimeConfiguration(environment: ["PICLOUD_LISTEN_BACKLOG": "512", "PICLOUD_LUA_TIME_SLICE_MS": "0"])
        #expect(set.listenBacklog == 512 && set.luaTimeSliceMilliseconds == 0)
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: ["PICLOUD_LISTEN_BACKLOG": "0"]) }
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: ["PICLOUD_LUA_TIME_SLICE_MS": "-1"]) }
    }

    @Test("the realtime settings: defaults, environment, and lifetimes that contradict each other")
    func realtimeConfiguration() throws {
        let defaults = try RuntimeConfiguration(environment: [:])
        #expect(defaults.heartbeatSeconds == 30 && defaults.realtimeCapacity == 64)
        #expect(defaults.realtimeHistoryEvents == 1000 && defaults.realtimeHistorySeconds == 86400)
        #expect(defaults.subscriberTokenLifetime == SubscriberTokenLifetime(minimum: 10, maximum: 86400, standard: 3600))
        let set = try RuntimeConfiguration(environment: [
            "PICLOUD_REALTIME_HEARTBEAT_SEC": "5", "PICLOUD_REALTIME_BROADCAST_CAPACITY": "256", "PICLOUD_REALTIME_HISTORY_EVENTS": "0",
            "PICLOUD_REALTIME_HISTORY_SEC": "60", "PICLOUD_SUBSCRIBER_TOKEN_TTL_MIN_SEC": "1", "PICLOUD_SUBSCRIBER_TOKEN_TTL_MAX_SEC": "120",
            "PICLOUD_SUBSCRIBER_TOKEN_TTL_DEFAULT_SEC": "60",
        ])
        #expect(set.heartbeatSeconds == 5 && set.realtimeCapacity == 256 && set.realtimeHistoryEvents == 0 && set.realtimeHistorySeconds == 60)
        #expect(set.subscriberTokenLifetime == SubscriberTokenLifetime(minimum: 1, maximum: 120, standard: 60))
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: ["PICLOUD_SUBSCRIBER_TOKEN_TTL_DEFAULT_SEC": "100000"]) }
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(environment: ["PICLOUD_REALTIME_BROADCAST_CAPACITY": "0"]) }
    }
}
