import Foundation
import LuaBridge
import TestSupport
import Testing

/// PiCloud's step-counted pattern matcher against stock Lua 5.4 (the `lua5.4` interpreter, which
/// the test command installs): the same random patterns and subjects must give the same results
/// and the same error messages.
@Suite("Pattern matching matches stock Lua")
struct PatternDifferentialTests {
    static let pieces = [
        "a", "b", "%.", ".", "%a", "%d", "%s", "%w", "%p", "%A", "[ab]", "[^a]", "[a-c]", "[%d%s]", "[]]", "x",
        "(", ")", "()", "%b()", "%f[%w]", "%f[%W]", "%1", "-", "[",
    ]
    static let quantifiers = ["", "", "", "*", "+", "-", "?"]

    static func pattern(using generator: inout SplitMix64) -> String {
        var text = Bool.random(using: &generator) && Int.random(in: 0..<4, using: &generator) == 0 ? "^" : ""
        for _ in 0..<Int.random(in: 1...5, using: &generator) {
            let piece = pieces.randomElement(using: &generator)!
            text += piece
            if piece.count <= 4, !["(", ")", "()", "%1", "-", "["].contains(piece) {
                text += quantifiers.randomElement(using: &generator)!
            }
        }
        if Int.random(in: 0..<5, using: &generator) == 0 { text += "$" }
        return text
    }

    static func subject(using generator: inout SplitMix64) -> String {
        let alphabet = Array("aab b(c)d1 2.x]")
        return String((0..<Int.random(in: 0...16, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.unicodeScalars.map { "\\" + String($0.value) }.joined() + "\""
    }

    /// A Lua chunk body that runs every case and returns one line per case.
    static func script(cases: [(String, String)]) -> String {
        let list = cases.map { "{\(quoted($0.0)), \(quoted($0.1))}" }.joined(separator: ",\n")
        return """
            local cases = {
            \(list)
            }
            local out = {}
            local function show(ok, ...)
              local parts = { tostring(ok) }
              for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
              return table.concat(parts, ",")
            end
            local function all(s, p)
              local got = {}
              for a, b in string.gmatch(s, p) do got[#got + 1] = tostring(a) .. "/" .. tostring(b) end
              return table.concat(got, ";")
            end
            for i, c in ipairs(cases) do
              local s, p = c[1], c[2]
              out[#out + 1] = table.concat({
                show(pcall(string.find, s, p)),
                show(pcall(string.find, s, p, 3)),
                show(pcall(string.match, s, p)),
                show(pcall(all, s, p)),
                show(pcall(string.gsub, s, p, "<%0>")),
                show(pcall(string.gsub, s, p, "[%1]", 2)),
              }, " | ")
            end
            return table.concat(out, "\\n")
            """
    }

    @Test("random patterns behave as in stock Lua 5.4", arguments: 0..<8)
    func differential(seed: UInt64) async throws {
        var generator = SplitMix64(seed: 1000 + seed)
        let cases = (0..<250).map { _ in (Self.subject(using: &generator), Self.pattern(using: &generator)) }
        let body = Self.script(cases: cases)

        // The whole suite shares two cores: time waiting for a turn must not fail a test of results.
        let ours = try await run(body, limits: LuaLimits(timeout: .seconds(300))).first?.stringValue ?? ""

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("patterns-\(UUID().uuidString).lua")
        try "io.write((function()\n\(body)\nend)())".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let (status, stock) = try await runProcess(URL(fileURLWithPath: "/usr/bin/lua5.4"), [file.path])
        try #require(status == 0, "lua5.4 failed: \(stock)")

        // Errors raised inside the for loop name the chunk: ours is handlers/main.lua, stock's the
        // temporary file (at the same line). Compare without the file name.
        func lines(_ text: String, chunk: String) -> [String] {
            text.replacingOccurrences(of: chunk + ":", with: "").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        let ourLines = lines(ours, chunk: "handlers/main.lua")
        let stockLines = lines(stock, chunk: file.path)
        #expect(ourLines.count == stockLines.count)
        for (index, (mine, theirs)) in zip(ourLines, stockLines).enumerated() where mine != theirs {
            Issue.record("subject \(cases[index].0.debugDescription) pattern \(cases[index].1.debugDescription)\n ours:  \(mine)\n stock: \(theirs)")
        }
    }
}
