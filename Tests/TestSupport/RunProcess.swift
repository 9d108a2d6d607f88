public import Foundation

/// Runs a process to its end off the cooperative thread pool (a blocking wait there would starve
/// the in-process servers of other tests); returns its exit status and combined output.
public func runProcess(_ executable: URL, _ arguments: [String], in directory: URL? = nil, environment: [String: String]? = nil, input: String? = nil) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            do {
                let process = ChildProcess()
                process.executableURL = executable
                process.arguments = arguments
                if let directory { process.currentDirectoryURL = directory }
                if let environment { process.environment = environment }
                let output = Pipe()
                process.standardOutput = output
                process.standardError = output
                let stdin = Pipe()
                process.standardInput = stdin
                try process.run()
                if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
                try stdin.fileHandleForWriting.close()
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, text))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}
