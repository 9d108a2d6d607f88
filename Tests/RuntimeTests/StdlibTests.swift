import Foundation
import Testing

@testable import Runtime

@Suite("Embedded stdlib")
struct StdlibTests {
    @Test("the binary carries exactly stdlib/ (run scripts/embed-resources.py after editing), and it compiles")
    func inSync() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let stdlib = root.appendingPathComponent("stdlib")
        let walker = FileManager.default.enumerator(atPath: stdlib.path)
        var onDisk: [(String, String)] = []
        while let path = walker?.nextObject() as? String {
            guard path.hasSuffix(".lua") else { continue }
            onDisk.append((path, try String(contentsOf: stdlib.appendingPathComponent(path), encoding: .utf8)))
        }
        onDisk.sort { $0.0 < $1.0 }
        #expect(EmbeddedStdlib.files.map(\.path) == onDisk.map(\.0))
        #expect(EmbeddedStdlib.files.map(\.contents) == onDisk.map(\.1))
        #expect(Stdlib.chunks.map(\.moduleName) == ["picloud.router", "picloud.validate"])
    }
}
