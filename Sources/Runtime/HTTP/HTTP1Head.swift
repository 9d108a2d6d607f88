/// The head of an HTTP/1.1 request as ``EndpointFastPath`` reads it: a strict subset of RFC 9112.
///
/// The fast path answers only requests it understands completely. Anything outside this subset
/// — another method or version, `Transfer-Encoding`, `Upgrade`, `Expect`, obsolete line folding, a bare CR
/// or LF, a field it cannot read, a head larger than ``maxBytes`` — is `.other`: the connection
/// goes on to NIO's decoder (llhttp), which answers or refuses it as every other request. So this
/// parser never has to produce an error of its own, and cannot accept what llhttp would refuse.
struct HTTP1Head {
    var method: String
    /// The request target as sent (origin form), e.g. `/apps/chat/api/messages?limit=5`.
    var target: String
    /// Field names in lowercase, values without surrounding whitespace, in the order sent.
    var fields: [(name: String, value: String)]
    /// Bytes of the head, the blank line included; the body starts here.
    var length: Int
    /// `Content-Length`, 0 when absent.
    var contentLength: Int
    /// `Connection: close`.
    var closes: Bool
    var authorization: String?
    var contentType: String?
    /// `Origin`; the values of repeated fields joined with `, `, as `HTTPFields` gives them to the router.
    var origin: String?
    /// `Access-Control-Request-Method` is present: with `OPTIONS`, a CORS preflight.
    var asksPreflight = false
    /// `Access-Control-Request-Headers` (joined like `origin`).
    var preflightHeaders: String?

    /// Largest head read here; a larger one goes on to the decoder (which allows 80 KiB).
    static let maxBytes = 16 * 1024
    /// Most fields read here; more go on to the decoder (which allows 1,000).
    static let maxFields = 100
    /// The methods an endpoint may answer, and `OPTIONS` for CORS preflights.
    static let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    enum Parse {
        /// More bytes are needed to tell.
        case incomplete
        /// Not for the fast path: hand the connection on.
        case other
        case head(HTTP1Head)
    }

    /// Reads the head at the start of `bytes` when its target starts with `prefix`.
    static func parse(_ bytes: UnsafeRawBufferPointer, prefix: StaticString) -> Parse {
        let count = bytes.count
        var position = 0

        // Request line: METHOD SP target SP HTTP/1.1 CRLF
        while position < count, isUpper(bytes[position]) { position += 1 }
        guard position < count else { return position > 20 ? .other : .incomplete }
        guard position > 0, position <= 20, bytes[position] == space,
              let method = methods.first(where: { $0.utf8.elementsEqual(bytes[0..<position]) })
        else { return .other }
        position += 1
        let targetStart = position
        // The prefix first, so that a request for another route is passed on at its first bytes.
        let prefixBytes = UnsafeRawBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        for expected in prefixBytes {
            guard position < count else { return .incomplete }
            guard bytes[position] == expected else { return .other }
            position += 1
        }
        while position < count, isTargetByte(bytes[position]) { position += 1 }
        guard position < count else { return count >= maxBytes ? .other : .incomplete }
        guard bytes[position] == space, position - targetStart <= RequestGuard.maxTargetBytes else { return .other }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<position]), as: UTF8.self)
        position += 1
        for expected in "HTTP/1.1\r\n".utf8 {
            guard position < count else { return .incomplete }
            guard bytes[position] == expected else { return .other }
            position += 1
        }

        var head = HTTP1Head(method: method, target: target, fields: [], length: 0, contentLength: 0, closes: false)
        var sawContentLength = false
        while true {
            guard position < count else { return count >= maxBytes ? .other : .incomplete }
            if bytes[position] == cr {
                guard position + 1 < count else { return .incomplete }
                guard bytes[position + 1] == lf else { return .other }
                head.length = position + 2
                return .head(head)
            }
            // name ":" OWS value OWS CRLF
            let nameStart = position
            while position < count, isTokenByte(bytes[position]) { position += 1 }
            guard position < count else { return count >= maxBytes ? .other : .incomplete }
            guard position > nameStart, bytes[position] == colon else { return .other }
            let nameEnd = position
            position += 1
            while position < count, bytes[position] == space || bytes[position] == tab { position += 1 }
            let valueStart = position
            var valueEnd = position
            while position < count {
                let byte = bytes[position]
                guard isValueByte(byte) else { break }
                position += 1
                if byte != space && byte != tab { valueEnd = position }
            }
            guard position + 1 < count else { return count >= maxBytes ? .other : .incomplete }
            guard bytes[position] == cr, bytes[position + 1] == lf else { return .other }
            position += 2
            guard head.fields.count < maxFields, position < maxBytes else { return .other }

            let name = lowercasedName(UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameEnd]))
            let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd]), as: UTF8.self)
            switch name {
            case "content-length":
                // One value of digits only, nothing after them (llhttp refuses a tab there); anything
                // else (even a repeated equal value) is llhttp's to judge.
                guard !sawContentLength, !value.isEmpty, valueEnd == position - 2, value.utf8.count <= 15, value.utf8.allSatisfy(isDigit), let length = Int(value) else { return .other }
                sawContentLength = true
                head.contentLength = length
            case "transfer-encoding", "upgrade", "expect":
                return .other
            case "connection":
                for token in value.utf8.split(separator: UInt8(ascii: ",")) {
                    switch lowercased(token.trimmingOWS) {
                    case "close": head.closes = true
                    case "upgrade": return .other
                    default: break
                    }
                }
            case "authorization": if head.authorization == nil { head.authorization = value }
            case "content-type": if head.contentType == nil { head.contentType = value }
            case "origin": head.origin = head.origin.map { "\($0), \(value)" } ?? value
            case "access-control-request-method": head.asksPreflight = true
            case "access-control-request-headers": head.preflightHeaders = head.preflightHeaders.map { "\($0), \(value)" } ?? value
            default: break
            }
            head.fields.append((name, value))
        }
    }

    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let colon = UInt8(ascii: ":")

    private static func isUpper(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "A") < 26 }
    private static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
    /// Visible ASCII except `#` (a fragment has no place in a request).
    private static func isTargetByte(_ byte: UInt8) -> Bool { byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "#") }
    /// Field content: visible ASCII, space, tab and obs-text; no control characters.
    private static func isValueByte(_ byte: UInt8) -> Bool { (byte >= 0x20 && byte != 0x7F) || byte == tab }
    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"),
             UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"),
             UInt8(ascii: "~"): true
        default: false
        }
    }

    /// A field name in lowercase (most arrive that way, or in capitalized form).
    private static func lowercasedName(_ bytes: UnsafeRawBufferPointer) -> String {
        guard bytes.contains(where: isUpper) else { return String(decoding: bytes, as: UTF8.self) }
        return String(unsafeUninitializedCapacity: bytes.count) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = isUpper(byte) ? byte | 0x20 : byte }
            return bytes.count
        }
    }

    private static func lowercased<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        String(decoding: bytes.lazy.map { $0 &- UInt8(ascii: "A") < 26 ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}

private extension Collection where Element == UInt8, SubSequence == Self {
    /// Without leading and trailing spaces and tabs.
    var trimmingOWS: SubSequence {
        let ows: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard let first = firstIndex(where: { !ows($0) }) else { return self[endIndex...] }
        var last = first
        var index = first
        while index != endIndex {
            if !ows(self[index]) { last = index }
            index = self.index(after: index)
        }
        return self[first...last]
    }
}
