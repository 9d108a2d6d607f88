// PiCloud's own CPU per endpoint request, without sockets: raw requests go through the fast
// path of one connection (an EmbeddedChannel) on one thread and the answers come back, so that
// the kernel and the load generator — which take most of a wrk run's CPU on 2 cores and make
// it swing by 10-25 % on this VM — stay out. Rows are relative to `hello`, measured in the same
// process; compare two builds by running each (bench/ab has the socket-level A/B).
//
//   swift run -c release endpoint-bench [--quick]
//
// Prints a table and writes bench/results/endpoint-micro-<date>.csv and .md.
@_spi(Bench) import Runtime
import Foundation

let quick = CommandLine.arguments.contains("--quick")
let count = quick ? 5_000 : 20_000
let runs = quick ? 15 : 40
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let data = FileManager.default.temporaryDirectory.appendingPathComponent("endpoint-bench-\(getpid())").path
defer { try? FileManager.default.removeItem(atPath: data) }

let bench = try await EndpointBench.open(dataDirectory: data, deploy: root.appendingPathComponent("bench/compare/apps/bench").path)
try await bench.set(app: "cmp", key: "hot", json: "42")

func request(_ path: String) -> String { "GET /apps/cmp/api/\(path) HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n" }
let rows = try bench.measure(
    [("hello", request("hello")), ("request table, a query", request("echo?page=2&q=a+b%21")), ("kv read (cached key)", request("kv"))],
    count: count, runs: runs
)
for row in rows where !row.answer.hasPrefix("HTTP/1.1 200") {
    print("\(row.name): unexpected answer:\n\(row.answer)")
    exit(1)
}

let date = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate])
let hello = rows[0].nanoseconds
var markdown = """
    # Endpoint path: CPU per request without sockets (\(date))

    `swift run -c release endpoint-bench`: \(count) requests per run on one connection, fastest of \(runs) runs, one thread.

    | request | µs per request | vs hello |
    |---|---|---|

    """
var csv = "name,microseconds,ratio_to_hello\n"
print("request                 µs/request   vs hello")
for row in rows {
    let micro = String(format: "%.2f", row.nanoseconds / 1000), ratio = String(format: "%.2f", row.nanoseconds / hello)
    print(row.name.padding(toLength: 24, withPad: " ", startingAt: 0) + micro.leftPadded(10) + ratio.leftPadded(11))
    markdown += "| \(row.name) | \(micro) | \(ratio) |\n"
    csv += "\(row.name),\(micro),\(ratio)\n"
}
if !quick {
    let results = root.appendingPathComponent("bench/results")
    try csv.write(to: results.appendingPathComponent("endpoint-micro-\(date).csv"), atomically: true, encoding: .utf8)
    try markdown.write(to: results.appendingPathComponent("endpoint-micro-\(date).md"), atomically: true, encoding: .utf8)
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
