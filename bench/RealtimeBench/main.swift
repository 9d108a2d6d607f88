// The realtime (Server-Sent Events) benchmark's two halves; bench/realtime/run.sh drives them.
//   realtime-bench client …           subscribers + publisher against a server, JSON on stdout
//   realtime-bench baseline-server …  a bare SwiftNIO fan-out server to compare PiCloud with
//   realtime-bench hello-server …     the least a SwiftNIO server does per request (bench/compare's hello floor)
//   realtime-bench paced …            POSTs at a fixed rate, open loop (bench/compare's trigger pass at 10,000/s)
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "client":
        try await BenchClient.run(ClientConfiguration(arguments: Array(arguments.dropFirst())))
    case "paced":
        try await PacedLoad.run(arguments: Array(arguments.dropFirst()))
    case let server? where server == "baseline-server" || server == "hello-server":
        var flags = Flags(Array(arguments.dropFirst()))
        let port: Int = try flags.value("--port") ?? 0
        let threads: Int = try flags.value("--threads") ?? 2
        try flags.finish()
        if server == "hello-server" {
            try await HelloServer.run(threads: threads, port: port)
        } else {
            try await BaselineServer.run(threads: threads, port: port)
        }
    default:
        printError(ClientConfiguration.usage + "\n" + PacedLoad.usage)
        exit(2)
    }
} catch {
    printError("realtime-bench: \(error)")
    exit(1)
}
