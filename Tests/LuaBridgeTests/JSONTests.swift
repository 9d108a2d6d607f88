import LuaBridge
import Testing

@Suite("JSON")
struct JSONTests {
    @Test("encodes exactly")
    func encode() throws {
        #expect(try LuaJSON.encodeText(["b": [1, 2.5, 1.0, "x\n\"\u{1}"], "a": .null, "c": [:], "d": []]) == #"{"a":null,"b":[1,2.5,1.0,"x\n\"\u0001"],"c":{},"d":[]}"#)
        #expect(try LuaJSON.encodeText(.integer(.min)) == "-9223372036854775808")
        #expect(try LuaJSON.encodeText(1e21) == "1e+21")
        #expect(try LuaJSON.encodeText(["k": [1]], pretty: true) == "{\n  \"k\": [\n    1\n  ]\n}")
    }

    @Test("refuses what JSON cannot hold")
    func encodeRefusals() {
        #expect(throws: LuaJSONError.self) { try LuaJSON.encode(.number(.nan)) }
        #expect(throws: LuaJSONError.self) { try LuaJSON.encode(.number(.infinity)) }
        #expect(throws: LuaJSONError.self) { try LuaJSON.encode(.bytes([0xFF])) }
        var deep = LuaValue.array([])
        for _ in 0..<200 { deep = .array([deep]) }
        #expect(throws: LuaJSONError.self) { try LuaJSON.encode(deep) }
    }

    @Test("decodes integers as integers and everything else as floats")
    func numbers() throws {
        #expect(try LuaJSON.decode("1") == 1)
        #expect(try LuaJSON.decode("-0") == 0)
        #expect(try LuaJSON.decode("1.0") == 1.0)
        #expect(try LuaJSON.decode("1e2") == 100.0)
        #expect(try LuaJSON.decode("9223372036854775807") == .integer(.max))
        #expect(try LuaJSON.decode("9223372036854775808") == .number(9223372036854775808.0))
    }

    @Test("decodes strings with escapes and surrogate pairs")
    func strings() throws {
        #expect(try LuaJSON.decode(#""a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\ud83c\udf89""#) == "a\"b\\c/d\u{8}\u{C}\n\r\tAé🎉")
        #expect(try LuaJSON.decode(" [ 1 , {\"a\" : [ ] } ] ") == [1, ["a": []]])
        // Raw UTF-8, short and long, with and without escapes around it; bytes and a slice of them.
        #expect(try LuaJSON.decode(#"["é", "a longer string than fifteen bytes ✓", "x\ny é", "\u00e9é"]"#) ==
                ["é", "a longer string than fifteen bytes ✓", "x\ny é", "éé"])
        let bytes = Array(#"  {"key":"t:1","op":"set"}"#.utf8)
        #expect(try LuaJSON.decode(bytes) == ["key": "t:1", "op": "set"])
        #expect(try LuaJSON.decode(bytes[2...]) == ["key": "t:1", "op": "set"])
    }

    @Test("rejects malformed text with an offset", arguments: [
        "", "[", "[1,]", "{\"a\"}", "{a:1}", "01", "1.", "-", "tru", "nul", "\"abc", "\"\\x\"", "\"\\ud800\"", "\"\\udc00x\"",
        "[1] 2", "\"\u{1}\"", "1e", "{\"a\":1,}", "NaN", "Infinity",
    ])
    func malformed(_ text: String) {
        #expect(throws: LuaJSONError.self) { try LuaJSON.decode(text) }
    }

    @Test("rejects invalid UTF-8 inside strings")
    func invalidUTF8() {
        #expect(throws: LuaJSONError.self) { try LuaJSON.decode([UInt8(ascii: "\""), 0xFF, UInt8(ascii: "\"")]) }
        // After an escape, and a sequence cut short.
        #expect(throws: LuaJSONError.self) { try LuaJSON.decode(Array(#""a\n"#.utf8) + [0xC3, UInt8(ascii: "\"")]) }
        #expect(throws: LuaJSONError.self) { try LuaJSON.decode(Array(#""abc"#.utf8) + [0xE2, 0x9C, UInt8(ascii: "\"")]) }
    }

    @Test("limits nesting depth")
    func depth() throws {
        let deep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        #expect(throws: LuaJSONError.self) { try LuaJSON.decode(deep) }
        let fine = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(try LuaJSON.decode(fine).depth == 128)
    }
}
