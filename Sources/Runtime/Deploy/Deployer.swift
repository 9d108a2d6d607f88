import Logging
import LuaBridge
import Services

/// Turns a manifest and files into a serving deployment: checks the manifest, compiles every
/// Lua file, runs every handler file's top level in a fresh pool, then stores the deployment
/// and switches to it. Any failure leaves the running deployment as it was.
struct Deployer: Sendable {
    let services: PiCloudServices
    let registry: AppRegistry
    let triggers: TriggerRegistry
    let realtime: RealtimeHub
    let pools: LuaPoolConfiguration
    let logger: Logger

    static let maxFiles = 500
    static let maxFileBytes = 512 << 10
    static let maxTotalBytes = 8 << 20

    /// Deploys and returns the new deployment; throws ``DeploymentError`` listing every problem.
    func deploy(app: String, manifest text: String, files: [String: String], by keyID: String?) async throws -> ActiveDeployment {
        _ = try await services.apps.get(app)
        let (manifest, pool) = try await build(app: app, manifestText: text, files: files)
        if manifest.name != app {
            throw DeploymentError(problems: [.init(file: "picloud.toml", line: nil, message: "name: the manifest is for '\(manifest.name)', not for app '\(app)'")])
        }
        try await services.storage.setDocIndexes(app: app, indexes: manifest.indexes)
        let record = try await services.storage.insertDeployment(app: app, manifest: text, files: files, at: Clock.now(), by: keyID)
        let deployment = ActiveDeployment(app: app, version: record.version, manifest: manifest, pool: pool, createdAt: record.createdAt)
        registry.activate(deployment)
        try await activateTriggers(app: app, manifest: manifest)
        try await activateTopics(app: app, manifest: manifest)
        services.logs.append(app: app, level: .info, message: "deployment \(record.version) serving (\(manifest.endpoints.count) endpoints)")
        return deployment
    }

    /// Serves the stored current deployment of every app (at start).
    func loadAll() async throws {
        for record in try await services.storage.currentDeployments() {
            do {
                let (manifest, pool) = try await build(app: record.app, manifestText: record.manifest, files: record.files)
                registry.activate(ActiveDeployment(app: record.app, version: record.version, manifest: manifest, pool: pool, createdAt: record.createdAt))
                try await activateTriggers(app: record.app, manifest: manifest)
            } catch let error as DeploymentError {
                logger.error("app \(record.app): deployment \(record.version) does not load: \(error.summary)")
            }
        }
    }

    /// Brings this node in step with what another node changed in an app (on a shared database):
    /// serves its current deployment if it is not the one serving here, reloads its triggers, and
    /// ends streams of topics that are gone or no longer external. Builds, never stores.
    func sync(app: String) async throws {
        // The app may have been deleted and created again with a new signing key: read it again.
        services.topics.forget(app: app)
        guard try await services.storage.app(named: app) != nil else {
            registry.remove(app: app)
            triggers.remove(app: app)
            realtime.close(app: app)
            return
        }
        if let record = try await services.storage.deployment(app: app, version: nil),
           registry.deployment(for: app).map({ ($0.version, $0.createdAt) != (record.version, record.createdAt) }) ?? true {
            do {
                let (manifest, pool) = try await build(app: app, manifestText: record.manifest, files: record.files)
                registry.activate(ActiveDeployment(app: app, version: record.version, manifest: manifest, pool: pool, createdAt: record.createdAt))
                logger.info("app \(app): serving deployment \(record.version) made on another node")
            } catch let error as DeploymentError {
                logger.error("app \(app): deployment \(record.version) does not load: \(error.summary)")
            }
        }
        try await triggers.reload(app: app, from: services.storage)
        let topics = Dictionary(try await services.storage.topics(app: app).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        realtime.revalidate(app: app) { name in topics[name]?.externalSubscribable == true }
    }

    /// Makes the app's manifest triggers those of `manifest` (ids are stable, so cron state carries over).
    func activateTriggers(app: String, manifest: Manifest) async throws {
        let now = Clock.now()
        let records = manifest.triggers.map { trigger in
            TriggerRecord(
                id: TriggerRecord.manifestID(app: app, kind: trigger.kind, match: trigger.match, handler: trigger.handler), app: app, source: .manifest,
                kind: trigger.kind, match: trigger.match, handler: trigger.handler, retry: trigger.retry,
                timeoutMilliseconds: trigger.timeoutMilliseconds, createdAt: now
            )
        }
        try await services.storage.replaceManifestTriggers(app: app, triggers: records)
        try await triggers.reload(app: app, from: services.storage)
    }

    /// Makes the app's manifest topics those of `manifest`. Streams of topics that went away or
    /// changed who may subscribe end, so their subscribers are checked again when they reconnect.
    /// A topic's external flag is set by the deployment that registers it and afterwards only
    /// through the PATCH endpoint; a manifest that disagrees gets a warning in the app's log.
    func activateTopics(app: String, manifest: Manifest) async throws {
        let now = Clock.now()
        let records = manifest.topics.map { topic in
            TopicRecord(
                app: app, name: topic.name, externalSubscribable: topic.externalSubscribable, authMode: topic.authMode,
                historyEvents: topic.historyEvents, historySeconds: topic.historySeconds, source: .manifest, createdAt: now, updatedAt: now
            )
        }
        let changes = try await services.topics.replaceManifestTopics(app: app, topics: records)
        for name in changes.removed { realtime.close(app: app, topic: name, reason: "topic_deleted") }
        for name in changes.authChanged { realtime.close(app: app, topic: name, reason: "topic_changed") }
        for name in changes.externalKept {
            services.logs.append(
                app: app, level: .warn,
                message: "topic '\(name)': external_subscribable in picloud.toml differs from the stored flag, which stays; change it with PATCH /admin/apps/\(app)/topics/\(name)/external"
            )
        }
    }

    /// Checks and compiles, and builds a prepared pool.
    func build(app: String, manifestText: String, files: [String: String]) async throws -> (Manifest, LuaPool) {
        var problems: [DeploymentError.Problem] = []
        var manifest: Manifest?
        do { manifest = try Manifest(text: manifestText) } catch { problems += error.problems }
        problems += Self.check(files: files)
        if let manifest {
            for (index, endpoint) in manifest.endpoints.enumerated() where files[endpoint.handler] == nil {
                problems.append(.init(file: "picloud.toml", line: nil, message: "endpoints[\(index + 1)].handler: no file '\(endpoint.handler)' in the deployment"))
            }
            for (index, trigger) in manifest.triggers.enumerated() where files[trigger.handler] == nil {
                problems.append(.init(file: "picloud.toml", line: nil, message: "triggers[\(index + 1)].handler: no file '\(trigger.handler)' in the deployment"))
            }
        }
        guard problems.isEmpty, let manifest else { throw DeploymentError(problems: problems) }

        let handlers = Array(Set(manifest.endpoints.map(\.handler) + manifest.triggers.map(\.handler))).sorted()
        let program: LuaProgram
        do {
            program = try LuaProgram(files: files, handlers: handlers, library: Stdlib.chunks)
        } catch {
            throw DeploymentError(problems: error.errors.map { .init(file: $0.file ?? "?", line: $0.line, message: $0.message) })
        }
        var configuration = pools
        if let instructions = manifest.limits.instructions { configuration.limits.instructions = instructions }
        if let timeout = manifest.limits.timeoutMilliseconds { configuration.limits.timeout = .milliseconds(timeout) }
        if let memory = manifest.limits.memoryMegabytes { configuration.memoryLimit = memory << 20 }
        let pool = LuaPool(program: program, environment: AppSDK(app: app, services: services).environment, configuration: configuration)
        do {
            try await pool.prepare()
        } catch {
            throw DeploymentError(problems: [.init(file: error.file ?? "?", line: error.line, message: error.message)])
        }
        return (manifest, pool)
    }

    static func check(files: [String: String]) -> [DeploymentError.Problem] {
        var problems: [DeploymentError.Problem] = []
        if files.count > maxFiles { problems.append(.init(file: "", line: nil, message: "a deployment has at most \(maxFiles) files; this one has \(files.count)")) }
        var total = 0
        for (path, source) in files.sorted(by: { $0.key < $1.key }) {
            total += source.utf8.count
            if !path.hasSuffix(".lua") {
                problems.append(.init(file: path, line: nil, message: "\(path): only .lua files are deployed"))
            } else if (try? FileService.validate(path: path)) == nil {
                problems.append(.init(file: path, line: nil, message: "\(path): not a valid relative path"))
            } else if path.hasPrefix("picloud/") {
                problems.append(.init(file: path, line: nil, message: "\(path): the picloud/ folder is reserved for PiCloud's own modules"))
            }
            if source.utf8.count > maxFileBytes {
                problems.append(.init(file: path, line: nil, message: "\(path): larger than \(maxFileBytes / 1024) KiB"))
            }
        }
        if total > maxTotalBytes { problems.append(.init(file: "", line: nil, message: "a deployment holds at most \(maxTotalBytes >> 20) MiB of source")) }
        return problems
    }
}
