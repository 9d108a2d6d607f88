import NIOCore
import NIOPosix
import Synchronization

/// The client side of the benchmark: opens the subscribers, measures the server's memory per
/// idle subscriber, then publishes the events (a steady pass, then a burst) and measures how
/// they arrive. Prints one JSON object on stdout.
final class BenchClient: Sendable {
    let config: ClientConfiguration
    let group: MultiThreadedEventLoopGroup
    let stats: StatsByLoop
    private let retries = Atomic<Int>(0)
    /// The subscribe request, the same bytes for every subscriber.
    private let request: ByteBuffer

    struct Timeout: Error, CustomStringConvertible {
        let what: String
        var description: String { "timed out: \(what)" }
    }

    static func run(_ config: ClientConfiguration) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        let client = BenchClient(config: config, group: group, stats: try await StatsByLoop(group: group))
        let result = try await client.run()
        print(result)
        try await group.shutdownGracefully()
    }

    private init(config: ClientConfiguration, group: MultiThreadedEventLoopGroup, stats: StatsByLoop) {
        self.config = config
        self.group = group
        self.stats = stats
        request = ByteBuffer(string: "GET \(config.subscribePath) HTTP/1.1\r\nHost: \(config.host):\(config.port)\r\nAccept: text/event-stream\r\n\r\n")
    }

    func run() async throws -> String {
        let http = try await HTTPConnection.connect(group: group, host: config.host, port: config.port)
        // Publishes go to `publishPort` (by default the same server, on the same connection).
        let publisher = config.publishPort == config.port ? http : try await HTTPConnection.connect(group: group, host: config.host, port: config.publishPort)
        let rssBefore = residentKiB(pids: config.serverPIDs)
        let connectStart = wallMicros()
        let (failures, firstError) = try await subscribeAll()
        let connectSeconds = Double(wallMicros() - connectStart) / 1e6
        let open = config.subscribers - failures
        printError("  \(open) subscribers open in \(format(connectSeconds))s (\(retries.load(ordering: .relaxed)) retries, \(failures) failed\(firstError.map { ": \($0)" } ?? ""))")
        var serverCount = try await serverSubscribers(http)
        let countDeadline = wallMicros() + 30_000_000
        while serverCount < open, wallMicros() < countDeadline {
            try await Task.sleep(for: .milliseconds(100))
            serverCount = try await serverSubscribers(http)
        }
        guard serverCount >= open else { throw Timeout(what: "the server counts \(serverCount) of \(open) subscribers") }
        try await Task.sleep(for: .milliseconds(Int(config.settleSeconds * 1000)))
        let rssAfter = residentKiB(pids: config.serverPIDs)
        let perSubscriber = Double(rssAfter - rssBefore) / Double(max(open, 1))

        let steady = try await pass(publisher, target: config.events, steady: true)
        printError("  steady: \(steady.summary)")
        var fields = [
            "\"subscribers\":\(config.subscribers)", "\"open\":\(open)", "\"connect_failures\":\(failures)",
            "\"connect_retries\":\(retries.load(ordering: .relaxed))", "\"connect_s\":\(format(connectSeconds))",
            "\"server_count\":\(serverCount)", "\"rss_before_kib\":\(rssBefore)", "\"rss_after_kib\":\(rssAfter)",
            "\"rss_per_subscriber_kib\":\(format(perSubscriber))", "\"steady\":\(steady.json)",
        ]
        if config.burst {
            let burst = try await pass(publisher, target: 2 * config.events, steady: false)
            printError("  burst: \(burst.summary)")
            fields.append("\"burst\":\(burst.json)")
        }
        let final = try await stats.merged()
        fields += ["\"streams_ended\":\(final.ended)", "\"stream_errors\":\(final.errors)", "\"comments\":\(final.comments)"]
        await http.close()
        if config.publishPort != config.port { await publisher.close() }
        return "{" + fields.joined(separator: ",") + "}"
    }

    // MARK: Subscribing

    /// Opens every subscriber, a batch at a time; returns how many could not be opened.
    private func subscribeAll() async throws -> (failures: Int, firstError: String?) {
        var failures = 0
        var firstError: String?
        for start in stride(from: 0, to: config.subscribers, by: config.batch) {
            let count = min(config.batch, config.subscribers - start)
            let futures = (0..<count).map { _ in subscribe(attempt: 1) }
            for result in try await EventLoopFuture.whenAllComplete(futures, on: group.next()).get() {
                if case .failure(let error) = result {
                    failures += 1
                    firstError = firstError ?? "\(error)"
                }
            }
            try await Task.sleep(for: .milliseconds(config.batchPauseMilliseconds))
        }
        return (failures, firstError)
    }

    /// One subscriber: connect, wait for the 200 head; again after a pause if that failed.
    private func subscribe(attempt: Int) -> EventLoopFuture<Void> {
        ClientBootstrap(group: group)
            .connectTimeout(.seconds(10))
            .channelInitializer { [request, stats] channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = SubscriberHandler(request: request, stats: stats.current(on: channel.eventLoop), started: channel.eventLoop.makePromise())
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: config.host, port: config.port)
            .flatMap { channel in
                channel.eventLoop.flatSubmit {
                    do {
                        return try channel.pipeline.syncOperations.handler(type: SubscriberHandler.self).started.futureResult
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                }
            }
            .flatMapError { error in
                let loop = self.group.next()
                guard attempt < self.config.connectAttempts else { return loop.makeFailedFuture(error) }
                self.retries.add(1, ordering: .relaxed)
                return loop.scheduleTask(in: .milliseconds(100 * Int64(attempt))) {}.futureResult
                    .flatMap { self.subscribe(attempt: attempt + 1) }
            }
    }

    /// The subscribers the server says it holds.
    private func serverSubscribers(_ http: HTTPConnection) async throws -> Int {
        let response = try await http.get(config.countPath)
        let text = String(buffer: response.body)
        if config.countMetric.isEmpty {
            return Int(text.split(whereSeparator: \.isWhitespace).first ?? "") ?? -1
        }
        for line in text.split(separator: "\n") where line.hasPrefix(config.countMetric + " ") {
            return Int(Double(line.split(separator: " ").last ?? "") ?? -1)
        }
        return -1
    }

    // MARK: Publishing

    /// Publishes `config.events` events through `http` (at `config.rate`, or back to back) and waits until every
    /// subscriber has `target` events in all, or the timeout.
    private func pass(_ http: HTTPConnection, target: Int, steady: Bool) async throws -> PassResult {
        let open = try await stats.merged().subscribed
        let perLoop = open * config.events / stats.all.count + 1024
        _ = try await stats.each { $0.startPass(target: target, expectedEvents: perLoop) }
        let serverCPU = cpuSeconds(pids: config.serverPIDs)
        let clientCPU = cpuSeconds(pid: getpid()) ?? 0
        let start = wallMicros()
        var publishErrors = 0
        for index in 0..<config.events {
            if steady {
                let due = start + Int64(Double(index) * 1e6 / config.rate)
                let wait = due - wallMicros()
                if wait > 0 { try await Task.sleep(for: .microseconds(wait)) }
            }
            let response = try await http.post(config.publishPath, json: "{\"t\":\(wallMicros())}")
            if response.status != 200 { publishErrors += 1 }
        }
        let published = wallMicros()
        var timedOut = false
        while try await stats.each({ $0.complete }).reduce(0, +) < open {
            if wallMicros() > published + Int64(config.timeoutSeconds * 1e6) {
                timedOut = true
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let snapshot = try await stats.merged()
        return PassResult(
            events: config.events, expected: open * config.events, snapshot: snapshot, start: start, published: published,
            publishErrors: publishErrors, timedOut: timedOut,
            serverCPU: cpuSeconds(pids: config.serverPIDs) - serverCPU, clientCPU: (cpuSeconds(pid: getpid()) ?? 0) - clientCPU
        )
    }
}
