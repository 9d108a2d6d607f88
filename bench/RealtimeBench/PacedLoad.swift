import NIOCore
import NIOPosix

/// `realtime-bench paced`: POSTs to one path at a fixed rate, open loop. Request i is sent at
/// start + i / rate on connection i mod C whether or not earlier answers have arrived (they are
/// pipelined), so a slow server meets the same arrivals as a fast one. bench/compare's trigger
/// workload uses it for its pass at a fixed rate; the server measures that pass's latency itself.
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
        var senders: [PacedSender] = []
        for first in 0..<connections {
            let http = try await HTTPConnection.connect(group: group, host: "127.0.0.1", port: port)
            senders.append(PacedSender(http: http, first: first, stride: connections, count: requests, path: path, body: body))
        }
        let start = NIODeadline.now() + .milliseconds(20)
        let period = 1e9 / rate
        let results = try await withThrowingTaskGroup(of: PacedSender.Result.self) { tasks in
            for sender in senders {
                tasks.addTask { try await sender.run(start: start, period: period) }
            }
            var all: [PacedSender.Result] = []
            for try await result in tasks { all.append(result) }
            return all
        }
        for sender in senders { await sender.http.close() }
        try await group.shutdownGracefully()

        let latencies = results.flatMap(\.latencies).sorted()
        let late = results.flatMap(\.late).sorted()
        let lastSent = results.map(\.lastSent).max() ?? start
        let fields = [
            "\"requests\":\(requests)", "\"rate\":\(rate)", "\"connections\":\(connections)",
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

/// One connection's share of the paced requests: 'first', 'first + stride', … below 'count'.
/// Its state is touched only on its connection's event loop (scheduled tasks and answer callbacks).
final class PacedSender: @unchecked Sendable {
    struct Result: Sendable {
        /// Milliseconds from sending to the answer, and from the due time to sending.
        var latencies: [Double] = []
        var late: [Double] = []
        var errors = 0
        var lastSent = NIODeadline.uptimeNanoseconds(0)
    }

    let http: HTTPConnection
    private let first: Int
    private let stride: Int
    private let count: Int
    private let path: String
    private let body: String
    private var result = Result()
    private var answered = 0

    init(http: HTTPConnection, first: Int, stride: Int, count: Int, path: String, body: String) {
        self.http = http
        self.first = first
        self.stride = stride
        self.count = count
        self.path = path
        self.body = body
    }

    private var expected: Int { first < count ? (count - first + stride - 1) / stride : 0 }

    func run(start: NIODeadline, period: Double) async throws -> Result {
        let loop = http.channel.eventLoop
        let done = loop.makePromise(of: Result.self)
        loop.execute {
            if self.expected == 0 { done.succeed(self.result) } else { self.schedule(self.first, start: start, period: period, done: done) }
        }
        return try await done.futureResult.get()
    }

    private func schedule(_ index: Int, start: NIODeadline, period: Double, done: EventLoopPromise<Result>) {
        guard index < count else { return }
        let due = start + .nanoseconds(Int64(Double(index) * period))
        http.channel.eventLoop.scheduleTask(deadline: due) {
            self.send(index, due: due, start: start, period: period, done: done)
        }
    }

    private func send(_ index: Int, due: NIODeadline, start: NIODeadline, period: Double, done: EventLoopPromise<Result>) {
        let sent = NIODeadline.now()
        result.late.append(Double((sent - due).nanoseconds) / 1e6)
        result.lastSent = sent
        http.startPost(path, json: body).whenComplete { outcome in
            switch outcome {
            case .success(let response):
                if response.status != 200 { self.result.errors += 1 }
                self.result.latencies.append(Double((NIODeadline.now() - sent).nanoseconds) / 1e6)
            case .failure:
                self.result.errors += 1
            }
            self.answered += 1
            if self.answered == self.expected { done.succeed(self.result) }
        }
        schedule(index + stride, start: start, period: period, done: done)
    }
}
