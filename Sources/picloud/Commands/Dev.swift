import ArgumentParser
import NIOHTTP1
import Foundation
import Hummingbird
import Logging
import Runtime
import Services

/// `picloud dev DIR`
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve an app folder and redeploy it on every save.",
        discussion: """
            Starts PiCloud on the embedded store (in DIR/.picloud-dev unless --data-dir), deploys \
            DIR, then watches picloud.toml and the .lua files: each save redeploys within a fraction \
            of a second. Errors are printed as file:line: message and the last good deployment keeps \
            serving. Stop with Ctrl-C.
            """
    )

    @Argument(help: "The app folder.") var directory: String
    @Option(help: "TCP port.") var port = 8080
    @Option(name: .customLong("data-dir"), help: "Where to keep data (default DIR/.picloud-dev).") var dataDirectory: String?

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .notice
            return handler
        }
        let token = "pc_dev_" + Identifiers.randomHex(16)
        var configuration = RuntimeConfiguration()
        configuration.port = port
        configuration.dataDirectory = dataDirectory ?? (directory as NSString).appendingPathComponent(".picloud-dev")
        configuration.adminToken = token
        configuration.durability = .normal
        let (ready, announce) = AsyncStream.makeStream(of: Int.self)
        let application = try await PiCloudServer.makeApplication(configuration: configuration, logger: Logger(label: "picloud")) { port in
            announce.yield(port)
        }
        let directory = directory
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.runService() }
            group.addTask {
                var ports = ready.makeAsyncIterator()
                guard let port = await ports.next() else { return }
                let client = AdminClient(base: "http://127.0.0.1:\(port)", token: token)
                var seen = Self.snapshot(directory)
                await Self.deployOnce(directory, client: client, port: port)
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(150))
                    let now = Self.snapshot(directory)
                    if now != seen {
                        seen = now
                        await Self.deployOnce(directory, client: client, port: port)
                    }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Modification times and sizes of the files a deployment is made of.
    static func snapshot(_ directory: String) -> [String: String] {
        var files: [String: String] = [:]
        let root = URL(fileURLWithPath: directory)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.contentModificationDateKey, .fileSizeKey], options: [.skipsHiddenFiles]) else { return files }
        for case let url as URL in walker where url.pathExtension == "lua" || url.lastPathComponent == "picloud.toml" {
            let values = try? url.resourceValues(forKeys: [.contentModificationDateKey, .fileSizeKey])
            files[url.path] = "\(values?.contentModificationDate?.timeIntervalSince1970 ?? 0)/\(values?.fileSize ?? 0)"
        }
        return files
    }

    static func deployOnce(_ directory: String, client: AdminClient, port: Int) async {
        let started = ContinuousClock.now
        do {
            let folder = try AppFolder.read(directory)
            let name = try folder.appName()
            let result = try await Deploy.deploy(folder, as: name, with: client, createIfMissing: true)
            let elapsed = ContinuousClock.now - started
            let milliseconds = Int(Double(elapsed.components.attoseconds) / 1e15) + Int(elapsed.components.seconds) * 1000
            say("[\(Self.time())] deployed '\(name)' version \(result.version) in \(milliseconds) ms — http://127.0.0.1:\(port)/apps/\(name)/api")
            for endpoint in result.endpoints { say("    \(endpoint)") }
        } catch {
            say("[\(Self.time())] \(error)")
        }
    }

    /// Writes a line at once (print's buffer would hold it back when the output is a pipe).
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func time() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: Date())
    }
}
