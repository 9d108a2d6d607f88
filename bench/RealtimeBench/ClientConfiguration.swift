/// How the client runs, from its command-line flags (defaults in brackets in `usage`).
struct ClientConfiguration: Sendable {
    var host = "127.0.0.1"
    var port = 0
    /// Where events are published, when not `port` (another node of a cluster: subscribers on
    /// one node, events through another).
    var publishPort = 0
    /// The server's processes (nginx: its master and workers), for their resident memory and
    /// CPU time, summed.
    var serverPIDs: [Int32] = []
    var subscribers = 1000
    /// Events per pass.
    var events = 200
    /// Publishes per second in the steady pass.
    var rate = 20.0
    var threads = 1
    var subscribePath = "/apps/rtbench/realtime/bench"
    var publishPath = "/apps/rtbench/api/publish"
    /// Where the server tells how many subscribers it holds: a Prometheus metric of `countPath`,
    /// or the whole body when `countMetric` is empty.
    var countPath = "/metrics"
    var countMetric = "picloud_realtime_subscribers"
    /// Connections opened at once, and the pause between such batches (the server's accept
    /// backlog is 256).
    var batch = 250
    var batchPauseMilliseconds = 10
    /// Attempts per connection before it counts as failed.
    var connectAttempts = 5
    /// Idle time between the last subscriber and the memory reading.
    var settleSeconds = 2.0
    /// How long to wait for deliveries after the last publish.
    var timeoutSeconds = 60.0
    var burst = true

    static let usage = """
        usage: realtime-bench client --port PORT --pid SERVER_PID[,PID...] [--publish-port PORT] [--subscribers 1000] [--events 200] [--rate 20]
                 [--threads 1] [--subscribe-path /apps/rtbench/realtime/bench] [--publish-path /apps/rtbench/api/publish]
                 [--count-path /metrics] [--count-metric picloud_realtime_subscribers|""] [--batch 250] [--settle 2]
                 [--timeout 60] [--no-burst]
               realtime-bench baseline-server [--port 0] [--threads 2]
               realtime-bench hello-server [--port 0] [--threads 2]
        """

    struct BadFlag: Error, CustomStringConvertible {
        let flag: String
        var description: String { "bad or missing value for \(flag)\n\(ClientConfiguration.usage)" }
    }

    init() {}

    init(arguments: [String]) throws {
        var flags = Flags(arguments)
        port = try flags.value("--port") ?? port
        if let list: String = try flags.value("--pid") {
            serverPIDs = try list.split(separator: ",").map { part in
                guard let pid = Int32(part), pid > 0 else { throw BadFlag(flag: "--pid") }
                return pid
            }
        }
        publishPort = try flags.value("--publish-port") ?? port
        subscribers = try flags.value("--subscribers") ?? subscribers
        events = try flags.value("--events") ?? events
        rate = try flags.value("--rate") ?? rate
        threads = try flags.value("--threads") ?? threads
        subscribePath = try flags.value("--subscribe-path") ?? subscribePath
        publishPath = try flags.value("--publish-path") ?? publishPath
        countPath = try flags.value("--count-path") ?? countPath
        countMetric = try flags.value("--count-metric") ?? countMetric
        batch = try flags.value("--batch") ?? batch
        settleSeconds = try flags.value("--settle") ?? settleSeconds
        timeoutSeconds = try flags.value("--timeout") ?? timeoutSeconds
        burst = !flags.has("--no-burst")
        try flags.finish()
        guard port > 0 else { throw BadFlag(flag: "--port") }
        guard publishPort > 0 else { throw BadFlag(flag: "--publish-port") }
        guard !serverPIDs.isEmpty else { throw BadFlag(flag: "--pid") }
        guard subscribers > 0, events > 0, rate > 0, threads > 0, batch > 0 else { throw BadFlag(flag: "a count") }
    }
}

/// `--name value` flags.
struct Flags {
    private var arguments: [String]

    init(_ arguments: [String]) {
        self.arguments = arguments
    }

    mutating func value<Value: LosslessStringConvertible>(_ name: String) throws -> Value? {
        guard let index = arguments.firstIndex(of: name) else { return nil }
        guard index + 1 < arguments.count, let value = Value(arguments[index + 1]) else { throw ClientConfiguration.BadFlag(flag: name) }
        arguments.removeSubrange(index...index + 1)
        return value
    }

    mutating func has(_ name: String) -> Bool {
        guard let index = arguments.firstIndex(of: name) else { return false }
        arguments.remove(at: index)
        return true
    }

    func finish() throws {
        if let first = arguments.first { throw ClientConfiguration.BadFlag(flag: first) }
    }
}
