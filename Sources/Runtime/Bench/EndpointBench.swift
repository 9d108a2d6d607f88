import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Services

/// The endpoint path of one connection without sockets, for `endpoint-bench`: requests go into
/// ``EndpointFastPath`` on an `EmbeddedChannel` and answers come out of it, on the calling thread.
/// What it measures is PiCloud's own work per request (head, route, call, Lua, answer), free of
/// the kernel and of the load generator, so that small changes show.
@_spi(Bench) public final class EndpointBench: Sendable {
    let core: PiCloudCore

    private init(core: PiCloudCore) {
        self.core = core
    }

    /// Opens a core on `dataDirectory` (SQLite) with the app folder `deploy` deployed.
    public static func open(dataDirectory: String, deploy: String) async throws -> EndpointBench {
        var configuration = RuntimeConfiguration(dataDirectory: dataDirectory)
        configuration.deployDirectories = [deploy]
        var logger = Logger(label: "endpoint-bench")
        logger.logLevel = .warning
        return EndpointBench(core: try await PiCloudCore.open(configuration: configuration, logger: logger))
    }

    /// Stores a key's JSON value, as `kv.set` would, and reads it once (into the read cache).
    public func set(app: String, key: String, json: String) async throws {
        try await core.services.kv.set(app: app, key: key, value: Array(json.utf8), ttl: nil, depth: 0)
        _ = try await core.services.kv.get(app: app, key: key)
    }

    public struct Measurement: Sendable {
        public let name: String
        /// The last answer, as sent.
        public let answer: String
        /// This thread's CPU time per request in the fastest run: the runs differ by what else the
        /// machine does (this VM loses CPU to its host), and the least disturbed is the measure.
        public let nanoseconds: Double
    }

    /// Sends each request (complete HTTP/1.1 text) `count` times per run over one connection, each
    /// answered before the next, after a warm-up of a tenth of that. Only handlers that answer
    /// without waiting can be measured: everything runs on this thread, synchronously.
    public func measure(_ requests: [(name: String, text: String)], count: Int, runs: Int) throws -> [Measurement] {
        let channel = EmbeddedChannel(handler: EndpointFastPath(core: core))
        defer { _ = try? channel.finish() }
        return try requests.map { name, text in
            var bytes = channel.allocator.buffer(capacity: text.utf8.count)
            bytes.writeString(text)
            var answer = ""
            func run(_ count: Int) throws -> Double {
                let started = Self.threadCPU()
                for index in 0..<count {
                    try channel.writeInbound(bytes)
                    // The end of the loop's turn, where answers are flushed (TurnFlushes).
                    channel.embeddedEventLoop.run()
                    guard var out = try channel.readOutbound(as: ByteBuffer.self) else {
                        throw ConfigurationError("\(name): request \(index) got no answer at once")
                    }
                    if index == count - 1 { answer = out.readString(length: out.readableBytes) ?? "" }
                }
                return Double(Self.threadCPU() - started) / Double(max(count, 1))
            }
            _ = try run(max(count / 10, 1))
            let samples = try (0..<max(runs, 1)).map { _ in try run(count) }
            if ProcessInfo.processInfo.environment["ENDPOINT_BENCH_RUNS"] != nil { print(name, samples.map { Int($0) }) }
            return Measurement(name: name, answer: answer, nanoseconds: samples.min()!)
        }
    }

    private static func threadCPU() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
