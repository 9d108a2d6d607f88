import Glibc

/// Wall-clock time (CLOCK_REALTIME) in microseconds since the epoch: the same clock the
/// publisher stamps into each event, so receive − send is the delivery latency on one machine.
func wallMicros() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}

/// A process's resident set size in KiB (`VmRSS` in `/proc/PID/status`), nil if unreadable.
func residentKiB(pid: Int32) -> Int? {
    guard let file = fopen("/proc/\(pid)/status", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if text.hasPrefix("VmRSS:") {
            return Int(text.dropFirst(6).split(separator: " ").first { Int($0) != nil } ?? "")
        }
    }
    return nil
}

/// Prints a line on stderr (progress and the listening address; stdout is for the results).
func printError(_ line: String) {
    var line = line + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// CPU time (user + system) a process has used so far, in seconds, from `/proc/PID/stat`.
func cpuSeconds(pid: Int32) -> Double? {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 2048)
    guard fgets(&line, Int32(line.count), file) != nil else { return nil }
    let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    guard let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The resident set sizes of `pids` summed, in KiB; a process that cannot be read counts 0.
func residentKiB(pids: [Int32]) -> Int {
    pids.reduce(0) { $0 + (residentKiB(pid: $1) ?? 0) }
}

/// The CPU time of `pids` summed, in seconds; a process that cannot be read counts 0.
func cpuSeconds(pids: [Int32]) -> Double {
    pids.reduce(0) { $0 + (cpuSeconds(pid: $1) ?? 0) }
}
