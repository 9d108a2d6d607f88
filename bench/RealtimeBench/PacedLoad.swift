import NIOCore
import NIOPosix

/// `realtime-bench paced`: POSTs to one path at a fixed rate, open loop. Request i is due at
/// start + i / rate on connection i mod C and is sent at the first tick of that connection's event
/// loop from then on (ticks at most 0.2 ms apart), whether or not earlier answers have arrived
/// (they are pipelined), so a slow server meets the same arrivals as a fast one. bench/compare's
/// trigger workload uses it for its passes at fixed rates; the server measures their latency itself.
enum PacedLoad {
    static let usage = """
               realtime-bench paced --port PORT --path PATH [--rate 10000] [--requests 30000] [--connections 32] [--threads 1] [--body '{}']
        """

    static func run(arguments: [String]) async throws {
        var flags = Flags(arguments)
        let port: Int = try flags.value("--port") ?? 0
        let path: String = try flags.value("--path") ?? ""
        let rate: Double = try flags.value("--rate") ?? 10000
        let requests: Int = try flags.value("--requests") ?? 30000
        let connections: Int = try flags.value("--connections") ?? 32
        let threads: Int = try flags.value("--threads") ?? 1
        let body: String = try flags.value("--body") ?? "{}"
        try flags.finish()
        guard port > 0 else { throw ClientConfiguration.BadFlag(flag: "--port") }
        guard path.hasPrefix("/") else { throw ClientConfiguration.BadFlag(flag: "--path") }
        guard rate > 0, requests > 0, connections > 0, threads > 0 else { throw ClientConfiguration.BadFlag(flag: "a count") }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var byLoop: [ObjectIdentifier: [(first: Int, http: HTTPConnection)]] = [:]
        for first in 0..<connections {
            let http = try await HTTPConnection.connect(group: group, host: "127.0.0.1", port: port)
            byLoop[ObjectIdentifier(http.channel.eventLoop), default: []].append((first, http))
        }
        // Every request is the same: its bytes are built once.
        let request = ByteBuffer(string: HTTPConnection.post(path, host: "127.0.0.1:\(port)", json: body))
        let tickers = byLoop.values.map { PacedTicker(connections: $0, count: requests, stride: connections, request: request) }
        let start = NIODeadline.now() + .milliseconds(20)
        let startWall = wallMicros() + 20_000
        let period = 1e9 / rate
        let results = try await withThrowingTaskGroup(of: PacedTicker.Result.self) { tasks in
            for ticker in tickers {
                tasks.addTask { try await ticker.run(start: start, period: period) }
            }
            var all: [PacedTicker.Result] = []
            for try await result in tasks { all.append(result) }
            return all
        }
        for ticker in tickers {
            for connection in ticker.connections { await connection.http.close() }
        }
        try await group.shutdownGracefully()

        let latencies = results.flatMap(\.latencies).sorted()
        let late = results.flatMap(\.late).sorted()
        let lastSent = results.map(\.lastSent).max() ?? start
        let fields = [
            "\"requests\":\(requests)", "\"rate\":\(rate)", "\"connections\":\(connections)", "\"start_us\":\(startWall)",
            "\"errors\":\(results.reduce(0) { $0 + $1.errors })",
            "\"send_s\":\(format(Double((lastSent - start).nanoseconds) / 1e9))",
            "\"late_p99_ms\":\(format(percentile(late, 0.99)))",
            "\"client_p50_ms\":\(format(percentile(latencies, 0.5)))", "\"client_p99_ms\":\(format(percentile(latencies, 0.99)))",
        ]
        print("{" + fields.joined(separator: ",") + "}")
    }

    private static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]
    }

    private static func format(_ value: Double) -> String {
        String(Double((value * 1000).rounded()) / 1000)
    }
}

/// The connections of one event loop and their share of the requests: connection k sends
/// 'first', 'first + stride', … below 'count'. Every `tick` (each 0.2 ms at most, or at the next
/// request's time) it writes the requests due by then on each connection and flushes each once.
/// Its state is touched only on that event loop (ticks and answer callbacks).
final class PacedTicker: @unchecked Sendable {
    struct Result: Sendable {
        /// Milliseconds from sending to the answer, and from the due time to sending.
        var latencies: [Double] = []
        var late: [Double] = []
        var errors = 0
        var lastSent = NIODeadline.uptimeNanoseconds(0)
    }

    let connections: [(first: Int, http: HTTPConnection)]
    private let count: Int
    private let stride: Int
    private let request: ByteBuffer
    private var next: [Int]
    private var result = Result()
    private var answered = 0
    private let expected: Int

    init(connections: [(first: Int, http: HTTPConnection)], count: Int, stride: Int, request: ByteBuffer) {
        self.connections = connections
        self.count = count
        self.stride = stride
        self.request = request
        next = connections.map(\.first)
        expected = connections.reduce(0) { $0 + ($1.first < count ? (count - $1.first + stride - 1) / stride : 0) }
    }

    private var loop: any EventLoop { connections[0].http.channel.eventLoop }

    func run(start: NIODeadline, period: Double) async throws -> Result {
        let done = loop.makePromise(of: Result.self)
        loop.execute {
            if self.expected == 0 { done.succeed(self.result) } else { self.tick(start: start, period: period, done: done) }
        }
        return try await done.futureResult.get()
    }

    private func tick(start: NIODeadline, period: Double, done: EventLoopPromise<Result>) {
        let now = NIODeadline.now()
        let due = now < start ? 0 : min(count, Int(Double((now - start).nanoseconds) / period) + 1)
        var earliest = count
        for k in connections.indices {
            var index = next[k]
            while index < due {
                result.late.append(Double((now - (start + .nanoseconds(Int64(Double(index) * period)))).nanoseconds) / 1e6)
                connections[k].http.start(request, flush: false).whenComplete { outcome in
                    switch outcome {
                    case .success(let response):
                        if response.status != 200 { self.result.errors += 1 }
                        self.result.latencies.append(Double((NIODeadline.now() - now).nanoseconds) / 1e6)
                    case .failure:
                        self.result.errors += 1
                    }
                    self.answered += 1
                    if self.answered == self.expected { done.succeed(self.result) }
                }
                index += stride
            }
            if index != next[k] {
                connections[k].http.flush()
                result.lastSent = now
                next[k] = index
            }
            earliest = min(earliest, index)
        }
        guard earliest < count else { return }
        let deadline = max(start + .nanoseconds(Int64(Double(earliest) * period)), now + .microseconds(200))
        loop.scheduleTask(deadline: deadline) { self.tick(start: start, period: period, done: done) }
    }
}
