import Foundation
import LuaBridge
import NIOHTTP1
import Services
import TestSupport
import Testing

/// A data directory on a small tmpfs that fills up while files are written: the writes that do
/// not fit are refused with 503 (`unavailable`, "the disk is full"), the ones acknowledged before
/// stay whole, the server keeps serving reads, and the store passes SQLite's integrity check.
@Suite("Disk full", .serialized)
struct DiskFullTests {
    @Test("filling the disk with file uploads answers 503 and corrupts nothing")
    func fillTheDisk() async throws {
        let mountPoint = FileManager.default.temporaryDirectory.appendingPathComponent("picloud-full-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mountPoint])
        guard mounted.status == 0 else {
            // Mounting needs root (CI runs as root); elsewhere the test has nothing to fill.
            print("disk full: skipped, cannot mount a tmpfs here: \(mounted.output)")
            #expect(ProcessInfo.processInfo.environment["CI"] != "true", "CI must be able to mount a tmpfs")
            return
        }
        defer { _ = try? FileManager.default.removeItem(atPath: mountPoint) }
        let directory = mountPoint + "/data"
        let outcome = Outcome()
        try await Harness.run(dataDirectory: directory) { server in
            var acknowledged: [String] = []
            var refusals: [Harness.Answer] = []
            try await server.deployHandler("filler", source: """
                return function(req)
                  if req.method == 'GET' then
                    local content = files.get(req.query.name)
                    return { json = { whole = content == string.rep(req.query.name .. ';', 200000 // (#req.query.name + 1)) } }
                  end
                  files.put(req.query.name, string.rep(req.query.name .. ';', 200000 // (#req.query.name + 1)))
                  return 'stored'
                end
                """)
            // Through the admin API (raw uploads) until the disk refuses, then through a handler.
            let letters = Array("abcdefghijklmnopqrstuvwxyz")
            for index in 0..<200 {
                let name = "\(letters[index % 26])\(index)"
                // Every file differs (the store keeps one copy of equal contents).
                let content = Array(String(repeating: name + ";", count: 200_000 / (name.utf8.count + 1)).utf8)
                let answer = try await server.request(.PUT, "/admin/apps/filler/files/\(name)", body: content, contentType: "text/plain")
                if answer.status == 201 { acknowledged.append(name) } else { refusals.append(answer); if refusals.count >= 3 { break } }
            }
            let handlerAnswer = try await server.call("filler", .POST, "/put?name=last-one", token: Harness.adminToken)
            #expect(handlerAnswer.status == 500 && handlerAnswer.errorMessage.contains("disk is full"), "\(handlerAnswer.text)")
            #expect(!acknowledged.isEmpty && acknowledged.count < 200, "\(acknowledged.count) files fit in 6 MiB")
            for refusal in refusals {
                #expect(refusal.status == 503 && refusal.errorCode == "unavailable", "\(refusal.status) \(refusal.text)")
                #expect(refusal.errorMessage.contains("disk is full"), "\(refusal.text)")
            }
            // What was acknowledged is whole, and reads still work.
            for name in acknowledged {
                let read = try await server.call("filler", .GET, "/get?name=\(name)")
                #expect(read.json["whole"] == true, "\(name): \(read.text)")
            }
            #expect(try await server.request(.GET, "/healthz", token: nil).status == 200)
            await outcome.set(acknowledged: acknowledged.count, refusals: refusals.count)
        }
        let storage = try SQLiteStorage(path: directory + "/picloud.sqlite")
        #expect(try await storage.integrityCheck() == "ok")
        _ = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["umount", "-l", mountPoint])
        print("disk full: \(await outcome.acknowledged) files of 200 KB acknowledged on a 6 MiB tmpfs, then \(await outcome.refusals) refusals (503); all acknowledged files whole; integrity ok")
    }

    actor Outcome {
        var acknowledged = 0
        var refusals = 0
        func set(acknowledged: Int, refusals: Int) {
            self.acknowledged = acknowledged
            self.refusals = refusals
        }
    }
}
