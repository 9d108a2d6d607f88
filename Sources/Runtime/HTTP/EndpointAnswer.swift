import HTTPTypes
import Hummingbird
import LuaBridge
import NIOCore
import NIOHTTP1
import Services

/// A request for an endpoint, however it was read.
struct EndpointRequest {
    var method: String
    var query: Substring?
    /// Header fields with lowercase names, in the order sent (`Host` included).
    var fields: [(name: String, value: String)]
    var contentType: String?
    var authorization: String?
    var body: [UInt8]

    /// A request decoded by NIO and HTTPTypes, which keep `Host` as the authority.
    init(_ head: HTTPRequest, body: [UInt8]) {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(head.headerFields.count + 1)
        if let authority = head.authority { fields.append(("host", authority)) }
        for field in head.headerFields { fields.append((field.name.canonicalName, field.value)) }
        self.init(
            method: head.method.rawValue, query: head.path.flatMap { EndpointStream.split($0).query }, fields: fields,
            contentType: head.headerFields[.contentType], authorization: head.headerFields[.authorization], body: body
        )
    }

    init(method: String, query: Substring?, fields: [(name: String, value: String)], contentType: String?, authorization: String?, body: [UInt8]) {
        self.method = method
        self.query = query
        self.fields = fields
        self.contentType = contentType
        self.authorization = authorization
        self.body = body
    }
}

/// An endpoint's answer before it is written: by the pipeline as is, by the router as a `Response`.
struct EndpointAnswer {
    var status: HTTPResponse.Status
    var headers: HTTPFields = [:] {
        didSet { onlyJSONType = false }
    }
    /// The fields are JSON's content type alone (a JSON answer without fields of the handler's):
    /// the most common head, written from a template.
    private(set) var onlyJSONType = false
    /// The body as made: a handler's text or JSON stays an array until it is written, so that the
    /// fast path copies it once, into the answer's buffer (a `ByteBuffer` of its own first was two
    /// more allocations and a copy for every answer).
    private var content: Content

    private enum Content {
        case buffer(ByteBuffer)
        case bytes([UInt8])
    }

    init(status: HTTPResponse.Status, headers: HTTPFields = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.content = .buffer(body)
    }

    init(status: HTTPResponse.Status, headers: HTTPFields = [:], bytes: [UInt8]) {
        self.status = status
        self.headers = headers
        self.content = .bytes(bytes)
    }

    /// The body as a buffer (the router's and the pipeline's answers).
    var body: ByteBuffer {
        get {
            switch content {
            case .buffer(let buffer): buffer
            case .bytes(let bytes): ByteBuffer(bytes: bytes)
            }
        }
        set { content = .buffer(newValue) }
    }

    /// The body's length in bytes.
    var bodyCount: Int {
        switch content {
        case .buffer(let buffer): buffer.readableBytes
        case .bytes(let bytes): bytes.count
        }
    }

    /// Appends the body to `out`.
    func writeBody(into out: inout ByteBuffer) {
        switch content {
        case .buffer(let buffer): out.writeImmutableBuffer(buffer)
        case .bytes(let bytes): out.writeBytes(bytes)
        }
    }

    static let requestIDField = HTTPField.Name("X-Request-Id")!

    /// Whether the status allows a body.
    var hasBody: Bool { status != .noContent && status != .notModified && status.kind != .informational }

    /// The fields the answer goes out with from a connection's pipeline: the handler's, with
    /// this server's framing (whatever the handler set), request id, date, server and CORS.
    func fields(requestID: String, origin: String?, cors: CORSPolicy, closing: Bool) -> HTTPFields {
        var fields = HTTPFields()
        forEachField(requestID: requestID, origin: origin, cors: cors, closing: closing) { fields.append(HTTPField(name: $0, value: $1)) }
        return fields
    }

    /// The answer's head — status line, the fields ``fields(requestID:origin:cors:closing:)``
    /// lists, blank line — written in one pass over raw bytes, without building `HTTPFields`
    /// first (the fast path's answers; a piece-by-piece `ByteBuffer` write costs more than the rest).
    /// The buffer is allocated once, with room for `reserving` more bytes (the body) after the head.
    func head(
        allocator: ByteBufferAllocator, reserving extra: Int, requestID: String, origin: String?, cors: CORSPolicy, closing: Bool,
        date: String = HTTPDate.now
    ) -> ByteBuffer {
        if onlyJSONType, status == .ok, origin == nil, !closing {
            return templateHead(allocator: allocator, reserving: extra, requestID: requestID, date: date)
        }
        return writtenHead(allocator: allocator, reserving: extra, requestID: requestID, origin: origin, cors: cors, closing: closing, date: date)
    }

    /// The head of a plain JSON answer (200, JSON's content type, no CORS, the connection kept),
    /// the same bytes ``writtenHead(allocator:reserving:requestID:origin:cors:closing:date:)``
    /// writes for it, without going through its fields.
    func templateHead(allocator: ByteBufferAllocator, reserving extra: Int, requestID: String, date: String) -> ByteBuffer {
        let length = bodyCount
        // The static parts and the length take under 192 bytes.
        let bound = 192 + requestID.utf8.count + date.utf8.count
        var out = allocator.buffer(capacity: bound + extra)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { raw in
            var head = RawWriter(base: raw.baseAddress!)
            head.put("HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ")
            head.put(decimal: length)
            head.put("\r\nX-Request-Id: ")
            head.put(requestID)
            head.put("\r\nDate: ")
            head.put(date)
            head.put("\r\nServer: PiCloud\r\n\r\n")
            return head.count
        }
        return out
    }

    /// The head written field by field.
    func writtenHead(
        allocator: ByteBufferAllocator, reserving extra: Int, requestID: String, origin: String?, cors: CORSPolicy, closing: Bool, date: String
    ) -> ByteBuffer {
        let phrase = self.phrase
        let code = status.code
        let bound = headBound(requestID: requestID, origin: origin, phrase: phrase)
        var out = allocator.buffer(capacity: bound + extra)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { raw in
            var head = RawWriter(base: raw.baseAddress!)
            head.put("HTTP/1.1 ")
            head.put(UInt8(48 + code / 100 % 10), UInt8(48 + code / 10 % 10), UInt8(48 + code % 10), UInt8(ascii: " "))
            head.put(phrase)
            head.put("\r\n")
            forEachField(requestID: requestID, origin: origin, cors: cors, closing: closing, date: date) { name, value in
                head.put(name.rawName)
                head.put(": ")
                head.put(value)
                head.put("\r\n")
            }
            head.put("\r\n")
            return head.count
        }
        return out
    }

    /// NIO's phrase for the codes it knows, as the general pipeline sends.
    private var phrase: String { HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase).reasonPhrase }

    /// Room for the whole head: every field of `forEachField` (the handler's, this server's —
    /// under 256 bytes with the status line —, the request id and the origin allowed).
    private func headBound(requestID: String, origin: String?, phrase: String) -> Int {
        var bound: Int = 320 + phrase.utf8.count + requestID.utf8.count
        bound += 2 * (origin?.utf8.count ?? 1)
        for field in headers { bound += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        return bound
    }

    /// The answer's fields in the order they are sent, for both ways of writing them.
    private func forEachField(
        requestID: String, origin: String?, cors: CORSPolicy, closing: Bool, date: String = HTTPDate.now, _ field: (HTTPField.Name, String) -> Void
    ) {
        for given in headers {
            switch given.name {
            case .contentLength, .transferEncoding, .connection, Self.requestIDField, .date, .server: continue
            default: field(given.name, given.value)
            }
        }
        if hasBody { field(.contentLength, String(bodyCount)) }
        field(Self.requestIDField, requestID)
        field(.date, date)
        field(.server, "PiCloud")
        if origin != nil {
            for extra in cors.fields(origin: origin) where headers[extra.name] == nil { field(extra.name, extra.value) }
        }
        if closing { field(.connection, "close") }
    }

    /// Appends bytes at a pointer with room for them (checked by the caller's bound).
    private struct RawWriter {
        let base: UnsafeMutableRawPointer
        var count = 0

        mutating func put(_ text: StaticString) {
            (base + count).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
            count += text.utf8CodeUnitCount
        }

        mutating func put(_ text: String) {
            var text = text
            text.withUTF8 { bytes in
                if let start = bytes.baseAddress { (base + count).copyMemory(from: start, byteCount: bytes.count) }
                count += bytes.count
            }
        }

        /// A non-negative integer in decimal.
        mutating func put(decimal value: Int) {
            var digits = 1
            var rest = value / 10
            while rest > 0 {
                digits += 1
                rest /= 10
            }
            var value = value
            for position in stride(from: count + digits - 1, through: count, by: -1) {
                base.storeBytes(of: UInt8(48 + value % 10), toByteOffset: position, as: UInt8.self)
                value /= 10
            }
            count += digits
        }

        mutating func put(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
            base.storeBytes(of: a, toByteOffset: count, as: UInt8.self)
            base.storeBytes(of: b, toByteOffset: count + 1, as: UInt8.self)
            base.storeBytes(of: c, toByteOffset: count + 2, as: UInt8.self)
            base.storeBytes(of: d, toByteOffset: count + 3, as: UInt8.self)
            count += 4
        }
    }

    /// Only the JSON content type: made once, shared by every answer that sets no other field.
    private static let jsonOnly: HTTPFields = [.contentType: "application/json; charset=utf-8"]

    /// `headers` with the JSON content type.
    private static func withJSONType(_ headers: HTTPFields) -> HTTPFields {
        guard !headers.isEmpty else { return jsonOnly }
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return headers
    }

    /// A JSON answer with `bytes`, the handler's `headers` (before the content type is added).
    private static func jsonAnswer(status: HTTPResponse.Status, headers: HTTPFields, bytes: [UInt8]) -> EndpointAnswer {
        var answer = EndpointAnswer(status: status, headers: withJSONType(headers), bytes: bytes)
        answer.onlyJSONType = headers.isEmpty
        return answer
    }

    /// A JSON answer (PiCloud's one JSON model, exact about integers and floats).
    static func json(_ value: LuaValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> EndpointAnswer {
        let bytes = (try? LuaJSON.encode(value)) ?? Array(#"{"error":{"code":"internal","message":"response not encodable"}}"#.utf8)
        return jsonAnswer(status: status, headers: headers, bytes: bytes)
    }

    /// A handler's value as JSON; one that JSON cannot hold (NaN, invalid UTF-8) is the handler's error.
    static func json(_ value: LuaValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:], handler: String) throws -> EndpointAnswer {
        do {
            return jsonAnswer(status: status, headers: headers, bytes: try LuaJSON.encode(value))
        } catch {
            throw ServiceError(.scriptError, "\(handler): the response cannot be sent as JSON: \(error.message)")
        }
    }

    /// An answer with JSON text already encoded.
    static func json(encoded text: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> EndpointAnswer {
        jsonAnswer(status: status, headers: headers, bytes: text)
    }

    /// `{"error":{"code","message"}}` for a service error, as the error middleware answers it.
    static func error(_ error: ServiceError) -> EndpointAnswer {
        typealias Errors = ErrorMiddleware<PiCloudRequestContext>
        return EndpointAnswer(
            status: Errors.status(for: error.code), headers: [.contentType: "application/json; charset=utf-8"],
            body: Errors.body(code: error.code.rawValue, message: error.message)
        )
    }

    var response: Response { Response(status: status, headers: headers, body: .init(byteBuffer: body)) }
}
