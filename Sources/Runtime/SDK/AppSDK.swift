import Foundation
import Logging
import LuaBridge
import Services

/// The Lua SDK of one app: `kv`, `docs`, `files`, `pubsub`, `log`, `time`, `uuid`, `crypto`, `secrets`
/// (and `json`, `print`, `require` from LuaBridge). Every function is bound to the app's name
/// when the environment is built, so a script has no way to name another app's data.
struct AppSDK: Sendable {
    let app: String
    let services: PiCloudServices

    var environment: LuaEnvironment {
        let logs = services.logs
        let app = app
        return LuaEnvironment(
            libraries: [kvLibrary, docsLibrary, filesLibrary, pubsubLibrary, logLibrary, timeLibrary, cryptoLibrary, secretsLibrary, globals],
            print: { line, context in
                logs.append(app: app, level: .info, message: line, requestID: (context as? InvocationContext)?.requestID)
            }
        )
    }

    /// Runs a service call while the script waits, turning service errors into script errors
    /// named after the function (`kv.set: ...`). Internal faults are logged, not shown.
    func waiting(_ call: LuaHostCall, _ body: @escaping @Sendable () async throws -> LuaHostResult) -> LuaHostResult {
        let name = call.name
        let logger = services.logger
        return .suspend {
            do {
                return try await body()
            } catch {
                throw Self.scriptError(error, name: name, logger: logger)
            }
        }
    }

    /// ``waiting(_:_:)`` for a service call with a callback interface: no task per call. `start`
    /// begins the call and hands it the callback.
    func waiting<Value: Sendable>(
        _ call: LuaHostCall, result: @escaping @Sendable (Value) -> LuaHostResult,
        _ start: @escaping @Sendable (_ done: @escaping @Sendable (Result<Value, any Error>) -> Void) -> Void
    ) -> LuaHostResult {
        let name = call.name
        let logger = services.logger
        return .callback { done in
            start { outcome in
                done(outcome.map(result).mapError { Self.scriptError($0, name: name, logger: logger) })
            }
        }
    }

    /// The error a script sees for a failed service call named `name`.
    static func scriptError(_ error: any Error, name: String, logger: Logger) -> any Error {
        switch error {
        case let error as ServiceError:
            if error.code == .internal {
                logger.error("\(name) failed", metadata: ["error": "\(error.underlying.map { "\($0)" } ?? error.message)"])
                return LuaScriptError("\(name): internal error")
            }
            return LuaScriptError(error.message.hasPrefix(name) ? error.message : "\(name): \(error.message)")
        case let error as LuaScriptError:
            return error
        case let error as LuaJSONError:
            return LuaScriptError("\(name): \(error.message)")
        default:
            logger.error("\(name) failed", metadata: ["error": "\(error)"])
            return LuaScriptError("\(name): internal error")
        }
    }
}

/// JSON bytes for storage from a script's value; strings must be UTF-8.
func jsonBytes(_ value: LuaValue, what: String) throws -> [UInt8] {
    do {
        return try LuaJSON.encode(value)
    } catch {
        throw LuaScriptError("\(what): \(error.message)")
    }
}
