/// How one pass went.
struct PassResult {
    var events: Int
    var expected: Int
    var snapshot: LoopStats.Snapshot
    /// Wall-clock µs: first publish, last publish answered.
    var start: Int64
    var published: Int64
    var publishErrors: Int
    var timedOut: Bool
    var serverCPU: Double
    var clientCPU: Double

    private var sorted: [Int32] { snapshot.latencies.sorted() }

    /// Delivered events per second, from the first publish to the last receipt.
    var deliveredPerSecond: Double {
        guard snapshot.lastReceive > start else { return 0 }
        return Double(snapshot.events) / (Double(snapshot.lastReceive - start) / 1e6)
    }

    var json: String {
        let latencies = sorted
        let fields = [
            "\"events\":\(events)", "\"expected\":\(expected)", "\"delivered\":\(snapshot.events)", "\"complete\":\(snapshot.complete)",
            "\"events_without_time\":\(snapshot.eventsWithoutTime)", "\"gaps\":\(snapshot.gaps)", "\"timed_out\":\(timedOut)",
            "\"publish_errors\":\(publishErrors)", "\"publish_s\":\(format(Double(published - start) / 1e6))",
            "\"last_receipt_s\":\(format(Double(max(snapshot.lastReceive - start, 0)) / 1e6))",
            "\"delivered_per_s\":\(format(deliveredPerSecond))",
            "\"p50_ms\":\(format(Self.quantile(latencies, 0.5)))", "\"p99_ms\":\(format(Self.quantile(latencies, 0.99)))",
            "\"max_ms\":\(format(Self.quantile(latencies, 1)))",
            "\"server_cpu_s\":\(format(serverCPU))", "\"client_cpu_s\":\(format(clientCPU))",
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }

    var summary: String {
        let latencies = sorted
        return "\(snapshot.events)/\(expected) events, \(format(deliveredPerSecond)) events/s, p50 \(format(Self.quantile(latencies, 0.5))) ms, "
            + "p99 \(format(Self.quantile(latencies, 0.99))) ms, max \(format(Self.quantile(latencies, 1))) ms, \(snapshot.gaps) gaps"
            + (timedOut ? ", TIMED OUT" : "") + ", server CPU \(format(serverCPU)) s, client CPU \(format(clientCPU)) s"
    }

    /// Nearest-rank quantile of sorted µs values, in ms.
    static func quantile(_ sorted: [Int32], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = max(Int((q * Double(sorted.count)).rounded(.up)) - 1, 0)
        return Double(sorted[min(rank, sorted.count - 1)]) / 1000
    }
}

/// A number with up to three decimals, as JSON and the reports want it.
func format(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    let scaled = (value * 1000).rounded() / 1000
    return scaled == scaled.rounded() ? String(Int(scaled)) : String(scaled)
}
