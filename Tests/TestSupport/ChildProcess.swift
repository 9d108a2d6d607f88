public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process for tests, started with `posix_spawn`: the parts of Foundation's `Process`
/// the tests use, without its `Process.run()`, which on Linux (swift-corelibs-foundation as of
/// Swift 6.3.1) reads past a buffer while listing `/proc/self/fd` and crashes now and then when
/// the test process holds many descriptors (swiftlang/swift-corelibs-foundation#5472). The child
/// gets only its standard input, output and error (every other descriptor is closed).
public final class ChildProcess: @unchecked Sendable {
    public var executableURL: URL?
    public var arguments: [String] = []
    public var environment: [String: String]?
    public var currentDirectoryURL: URL?
    /// A `Pipe`, a `FileHandle` (such as `FileHandle.nullDevice`), or nil to share the test's.
    public var standardInput: Any?
    public var standardOutput: Any?
    public var standardError: Any?

    public enum TerminationReason: Sendable { case exit, uncaughtSignal }

    private let lock = NSLock()
    private var pid: pid_t = 0
    private var status: Int32?

    public init() {}

    public var processIdentifier: Int32 { lock.withLock { pid } }

    /// Starts the child.
    public func run() throws {
        guard let executable = executableURL?.path else { throw SpawnError(message: "no executable", code: EINVAL) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var nullDevice: Int32 = -1
        defer { if nullDevice >= 0 { close(nullDevice) } }
        var parentEnds: [FileHandle] = []
        for (stream, target) in [(standardInput, Int32(0)), (standardOutput, Int32(1)), (standardError, Int32(2))] {
            guard let stream else { continue }
            let descriptor: Int32
            switch stream {
            case let pipe as Pipe:
                descriptor = target == 0 ? pipe.fileHandleForReading.fileDescriptor : pipe.fileHandleForWriting.fileDescriptor
                parentEnds.append(target == 0 ? pipe.fileHandleForReading : pipe.fileHandleForWriting)
            case let handle as FileHandle:
                if handle === FileHandle.nullDevice {
                    if nullDevice < 0 { nullDevice = open("/dev/null", O_RDWR | O_CLOEXEC) }
                    descriptor = nullDevice
                } else {
                    descriptor = handle.fileDescriptor
                }
            default:
                throw SpawnError(message: "unsupported standard stream \(type(of: stream))", code: EINVAL)
            }
            posix_spawn_file_actions_adddup2(&actions, descriptor, target)
        }
        if let directory = currentDirectoryURL?.path { _ = spawnAddChdir(&actions, directory) }
        _ = spawnAddCloseFrom(&actions, 3)

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, nil, argv, env)
        guard result == 0 else { throw SpawnError(message: "cannot start \(executable)", code: result) }
        lock.withLock { pid = child }
        // The child holds its ends now; the parent's copies would keep readers from seeing EOF.
        for end in parentEnds { try? end.close() }
    }

    /// Whether the child still runs (reaping it if it ended).
    public var isRunning: Bool {
        lock.withLock {
            guard pid > 0, status == nil else { return false }
            var raw: Int32 = 0
            let reaped = waitpid(pid, &raw, WNOHANG)
            if reaped == pid { status = raw }
            return reaped == 0
        }
    }

    /// Blocks until the child ends.
    public func waitUntilExit() {
        let child = lock.withLock { status == nil ? pid : 0 }
        guard child > 0 else { return }
        var raw: Int32 = 0
        while waitpid(child, &raw, 0) == -1 && errno == EINTR {}
        lock.withLock { if status == nil { status = raw } }
    }

    private var rawStatus: Int32 {
        _ = isRunning
        return lock.withLock { status } ?? 0
    }

    public var terminationReason: TerminationReason { (rawStatus & 0x7f) == 0 ? .exit : .uncaughtSignal }

    /// The exit status, or the signal that ended the child.
    public var terminationStatus: Int32 {
        let raw = rawStatus
        return (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    /// Sends SIGTERM.
    public func terminate() {
        let child = lock.withLock { status == nil ? pid : 0 }
        if child > 0 { kill(child, SIGTERM) }
    }
}

// glibc (2.29, 2.34) has these, but only under _GNU_SOURCE, which Swift's Glibc module leaves out.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
private func spawnAddCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

@_silgen_name("posix_spawn_file_actions_addchdir_np")
private func spawnAddChdir(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: UnsafePointer<CChar>) -> Int32

public struct SpawnError: Error, CustomStringConvertible {
    public let message: String
    public let code: Int32
    public var description: String { "\(message): \(String(cString: strerror(code)))" }
}
