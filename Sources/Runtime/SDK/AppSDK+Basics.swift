import Crypto
import Foundation
import LuaBridge
import Services

extension AppSDK {
    /// `log.debug/info/warn/error(message [, fields])`: one line in the app's log.
    var logLibrary: LuaLibrary {
        let logs = services.logs
        let app = app
        var functions: [String: LuaHostFunction] = [:]
        for level in LogEntry.Level.allCases {
            functions[level.rawValue] = { call in
                var message: String
                switch try call.value(1) {
                case .string(let text): message = text
                case .nil: message = ""
                case let other: message = (try? LuaJSON.encodeText(other)) ?? "(\(other.typeName))"
                }
                if call.count >= 2, let fields = try? LuaJSON.encodeText(try call.value(2)) { message += " " + fields }
                logs.append(app: app, level: level, message: message, requestID: call.requestID)
                return .none
            }
        }
        return LuaLibrary(name: "log", functions: functions)
    }

    /// `time.now()` (seconds, with milliseconds), `time.ms()`, `time.iso([seconds])`, `time.sleep(seconds)`.
    var timeLibrary: LuaLibrary {
        LuaLibrary(name: "time", functions: [
            "sleep": { call in
                // Waits without holding the VM: other invocations run meanwhile. The invocation's
                // time limit still applies.
                let seconds = try call.number(1)
                guard seconds >= 0, seconds <= 3600 else { throw LuaArgumentError(position: 1, message: "seconds from 0 to 3600") }
                return .suspend {
                    try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                    return .none
                }
            },
            "now": { _ in .value(.number((Date().timeIntervalSince1970 * 1000).rounded() / 1000)) },
            "ms": { _ in .value(.integer(Clock.now())) },
            "iso": { call in
                let seconds = try call.value(1) == .nil ? Date().timeIntervalSince1970 : call.number(1)
                let formatter = ISO8601DateFormatter()
                formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
                return .value(.string(formatter.string(from: Date(timeIntervalSince1970: seconds))))
            },
        ])
    }

    /// `crypto.sha256`, `crypto.hmac_sha256` (hex), `crypto.random_hex(n)`, `crypto.equal(a, b)`.
    var cryptoLibrary: LuaLibrary {
        LuaLibrary(name: "crypto", functions: [
            "sha256": { call in .value(.string(Identifiers.hex(SHA256.hash(data: try call.bytes(1))))) },
            "hmac_sha256": { call in
                let key = SymmetricKey(data: try call.bytes(1))
                return .value(.string(Identifiers.hex(HMAC<SHA256>.authenticationCode(for: try call.bytes(2), using: key))))
            },
            "random_hex": { call in
                let count = try call.optionalInteger(1) ?? 16
                guard (1...1024).contains(count) else { throw LuaArgumentError(position: 1, message: "between 1 and 1024 bytes") }
                return .value(.string(Identifiers.randomHex(Int(count))))
            },
            "equal": { call in
                // Constant time: the time does not depend on where the strings differ.
                let a = try call.bytes(1)
                let b = try call.bytes(2)
                var difference = UInt8(a.count == b.count ? 0 : 1)
                for index in 0..<min(a.count, b.count) { difference |= a[index] ^ b[index] }
                return .value(.boolean(difference == 0))
            },
        ])
    }

    /// `secrets.get(name)` → the secret's value or nil.
    var secretsLibrary: LuaLibrary {
        let secrets = services.secrets
        let app = app
        return LuaLibrary(name: "secrets", functions: [
            "get": { call in
                let name = try call.string(1)
                return waiting(call) { .value(try await secrets.get(app: app, name: name).map { LuaValue(bytes: $0) } ?? .nil) }
            },
        ])
    }

    /// `pubsub.publish(topic, message)` → event id: the message goes to the app's topic triggers
    /// and, on a registered topic, to its history and live subscribers.
    /// `pubsub.subscriber_token(topics, ttl_seconds)` → token, expires_at: lets a browser subscribe.
    var pubsubLibrary: LuaLibrary {
        let pubsub = services.pubsub
        let topics = services.topics
        let app = app
        return LuaLibrary(name: "pubsub", functions: [
            "publish": { call in
                let topic = try call.string(1)
                let message = try jsonBytes(try call.value(2), what: "pubsub.publish")
                let depth = call.depth
                return waiting(call) { .value(.string(try await pubsub.publish(app: app, topic: topic, message: message, depth: depth))) }
            },
            "subscriber_token": { call in
                var names: [String]
                switch try call.value(1) {
                case .string(let name): names = [name]
                case .array(let items) where items.allSatisfy({ $0.stringValue != nil }): names = items.compactMap(\.stringValue)
                case .object(let fields) where fields.isEmpty: names = []
                case let other: throw LuaArgumentError(position: 1, message: "a topic name or a list of them expected, got \(other.typeName)")
                }
                let seconds = try call.optionalInteger(2)
                // Tokens are issued to someone: the API key the endpoint was called with.
                guard let principal = (call.context as? InvocationContext)?.principal else {
                    throw LuaScriptError("pubsub.subscriber_token: the caller is anonymous; issue tokens from an endpoint with auth = \"key\"")
                }
                let requested = names
                return waiting(call) {
                    let issued = try await topics.issueToken(app: app, topics: requested, subject: principal.keyID, seconds: seconds.map { Int(clamping: $0) })
                    return .values([.string(issued.token), .integer(issued.expiresAt)])
                }
            },
        ])
    }

    /// Globals: `uuid()`.
    var globals: LuaLibrary {
        LuaLibrary(name: nil, functions: [
            "uuid": { _ in .value(.string(UUID().uuidString.lowercased())) },
        ])
    }
}
