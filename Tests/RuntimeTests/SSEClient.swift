import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A raw Server-Sent Events client over a plain TCP connection: it writes the HTTP request
/// itself and parses the chunked body and the event stream by hand, so tests see exactly what
/// the server sends (no client library smoothing anything over).
final class SSEConnection: Sendable {
    struct Event: Sendable, Equatable, CustomStringConvertible {
        var id: String?
        var event: String?
        var data: String
        /// A comment line (`: heartbeat`) rather than an event.
        var comment: String?
        var retry: Int?

        var description: String {
            comment.map { ": \($0)" } ?? "[\(event ?? "message") id=\(id ?? "-")] \(data.prefix(120))"
        }

        /// The data as a JSON object (via Foundation, independent of the server's JSON code).
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
        }
    }

    static let group = MultiThreadedEventLoopGroup.singleton

    let status: Int
    let headers: [String: String]
    /// For answers that are not a 200 stream: the whole body.
    let body: String
    let channel: any Channel
    let inbox: Inbox<Event>

    private init(status: Int, headers: [String: String], body: String, channel: any Channel, inbox: Inbox<Event>) {
        self.status = status
        self.headers = headers
        self.body = body
        self.channel = channel
        self.inbox = inbox
    }

    /// Connects, sends `GET path`, and reads the answer's head (and the whole body unless it is a
    /// 200 stream). With `reading: false` nothing after the head is read until ``startReading()``
    /// and the receive buffer is small: a slow subscriber.
    static func open(port: Int, path: String, headers: [(String, String)] = [], reading: Bool = true) async throws -> SSEConnection {
        let inbox = Inbox<Event>()
        let head = group.next().makePromise(of: SSEHandler.Head.self)
        // A machine busy with other tests may drop SYNs while a thousand connect at once: be patient.
        var bootstrap = ClientBootstrap(group: group).connectTimeout(.seconds(60)).channelOption(ChannelOptions.autoRead, value: false)
        if !reading { bootstrap = bootstrap.channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 4096) }
        let channel: any Channel
        do {
            channel = try await bootstrap.channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SSEHandler(inbox: inbox, head: head, keepReading: reading))
                }
            }.connect(host: "127.0.0.1", port: port).get()
            var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n"
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            request += "\r\n"
            try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        } catch {
            head.fail(error) // a promise must not be dropped unfulfilled
            throw error
        }
        channel.read()
        let answer = try await head.futureResult.get()
        return SSEConnection(status: answer.status, headers: answer.headers, body: answer.body, channel: channel, inbox: inbox)
    }

    /// The next event or comment, nil when the stream ended or nothing came within `timeout`.
    func next(timeout: Duration = .seconds(10)) async -> Event? { await inbox.next(timeout: timeout) }

    /// The next event that is not a comment.
    /// The next event that is not a comment, within `timeout` in all (heartbeats do not extend it).
    func nextEvent(timeout: Duration = .seconds(10)) async -> Event? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, let item = await next(timeout: deadline - ContinuousClock.now) {
            let retryOnly = item.retry != nil && item.data.isEmpty && item.event == nil
            if item.comment == nil, !retryOnly { return item }
        }
        return nil
    }

    /// Starts reading a connection opened with `reading: false`.
    func startReading() {
        channel.setOption(ChannelOptions.autoRead, value: true).whenSuccess { [channel] in channel.read() }
    }

    func close() async { try? await channel.close() }
}

/// Parses an HTTP/1.1 answer with a chunked body into SSE events, on the channel's event loop.
final class SSEHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    struct Head: Sendable {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    let inbox: Inbox<SSEConnection.Event>
    let head: EventLoopPromise<Head>
    let keepReading: Bool
    private var bytes: [UInt8] = []
    private var status = 0
    private var headers: [String: String] = [:]
    private enum Phase { case head, chunkSize, chunkData(Int), chunkEnd, fixed(Int), done }
    private var phase = Phase.head
    private var line: [UInt8] = []
    private var event = SSEConnection.Event(data: "")
    private var hasData = false

    init(inbox: Inbox<SSEConnection.Event>, head: EventLoopPromise<Head>, keepReading: Bool) {
        self.inbox = inbox
        self.head = head
        self.keepReading = keepReading
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
        parse()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Before the head arrived, or for a reading client, ask for more.
        if case .head = phase { context.read() } else if case .fixed = phase { context.read() } else if keepReading { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        head.fail(SSEError.message("the connection closed before an answer"))
        inbox.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func parse() {
        var index = 0
        parsing: while true {
            switch phase {
            case .head:
                guard let end = find([13, 10, 13, 10], from: index) else { break parsing }
                let text = String(decoding: bytes[index..<end], as: UTF8.self)
                index = end + 4
                var lines = text.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
                for line in lines {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                if headers["transfer-encoding"]?.lowercased() == "chunked" {
                    phase = .chunkSize
                    if status == 200 { head.succeed(Head(status: status, headers: headers, body: "")) }
                } else {
                    phase = .fixed(Int(headers["content-length"] ?? "0") ?? 0)
                }
            case .fixed(let length):
                guard bytes.count - index >= length else { break parsing }
                head.succeed(Head(status: status, headers: headers, body: String(decoding: bytes[index..<(index + length)], as: UTF8.self)))
                index += length
                phase = .done
            case .chunkSize:
                guard let end = find([13, 10], from: index) else { break parsing }
                let size = Int(String(decoding: bytes[index..<end], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
                index = end + 2
                phase = size == 0 ? .done : .chunkData(size)
                if size == 0 {
                    inbox.finish()
                    if status != 200 { head.succeed(Head(status: status, headers: headers, body: "")) }
                }
            case .chunkData(let size):
                let available = min(size, bytes.count - index)
                guard available > 0 else { break parsing }
                if status == 200 { feed(bytes[index..<(index + available)]) }
                index += available
                phase = available == size ? .chunkEnd : .chunkData(size - available)
            case .chunkEnd:
                guard bytes.count - index >= 2 else { break parsing }
                index += 2
                phase = .chunkSize
            case .done:
                index = bytes.count
                break parsing
            }
        }
        bytes.removeFirst(index)
    }

    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        for position in start...(bytes.count - needle.count) where bytes[position] == needle[0] && Array(bytes[position..<(position + needle.count)]) == needle {
            return position
        }
        return nil
    }

    /// The event-stream format: lines of `field: value`; a blank line ends an event.
    private func feed(_ chunk: ArraySlice<UInt8>) {
        for byte in chunk {
            guard byte == 10 else {
                line.append(byte)
                continue
            }
            if line.last == 13 { line.removeLast() }
            let text = String(decoding: line, as: UTF8.self)
            line.removeAll(keepingCapacity: true)
            if text.isEmpty {
                if hasData || event.event != nil || event.retry != nil { inbox.push(event) }
                event = SSEConnection.Event(data: "")
                hasData = false
                continue
            }
            if text.hasPrefix(":") {
                inbox.push(SSEConnection.Event(data: "", comment: String(text.dropFirst()).trimmingCharacters(in: .whitespaces)))
                continue
            }
            let field = text.prefix { $0 != ":" }
            var value = text.dropFirst(field.count + 1)
            if value.hasPrefix(" ") { value = value.dropFirst() }
            switch field {
            case "id": event.id = String(value)
            case "event": event.event = String(value)
            case "retry": event.retry = Int(value)
            case "data":
                event.data += (hasData ? "\n" : "") + value
                hasData = true
            default: break
            }
        }
    }
}

enum SSEError: Error, CustomStringConvertible {
    case message(String)
    var description: String {
        switch self {
        case .message(let text): text
        }
    }
}

/// Items handed from a reading task to a test, with a timeout on waiting.
final class Inbox<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        var head = 0
        var finished = false
        var waiter: (id: Int, continuation: CheckedContinuation<Item?, Never>)?
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    func push(_ item: Item) {
        let waiter = state.withLock { state -> CheckedContinuation<Item?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter.continuation
            }
            state.items.append(item)
            return nil
        }
        waiter?.resume(returning: item)
    }

    func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter?.continuation
        }
        waiter?.resume(returning: nil)
    }

    /// The next item, or nil when the stream ended or nothing came within `timeout`.
    func next(timeout: Duration) async -> Item? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Item?, Never>) in
            let (ready, id): (Item??, Int) = state.withLock { state in
                if state.head < state.items.count {
                    let item = state.items[state.head]
                    state.head += 1
                    if state.head > 1024 {
                        state.items.removeFirst(state.head)
                        state.head = 0
                    }
                    return (.some(item), 0)
                }
                if state.finished { return (.some(nil), 0) }
                state.nextWaiter += 1
                state.waiter = (state.nextWaiter, continuation)
                return (nil, state.nextWaiter)
            }
            if let ready {
                continuation.resume(returning: ready)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                let expired = state.withLock { state -> CheckedContinuation<Item?, Never>? in
                    guard let waiter = state.waiter, waiter.id == id else { return nil }
                    state.waiter = nil
                    return waiter.continuation
                }
                expired?.resume(returning: nil)
            }
        }
    }
}

/// Sends raw bytes on a fresh connection and returns everything the server sent until it closed
/// the connection or `timeout` passed.
func rawExchange(port: Int, _ request: String, timeout: Duration = .seconds(15)) async throws -> String {
    try await rawExchange(port: port, pieces: [Array(request.utf8)], timeout: timeout)
}

/// Sends `pieces` one after the other, `pause` apart, and collects what comes back as in
/// ``rawExchange(port:_:timeout:)``.
func rawExchange(port: Int, pieces: [[UInt8]], pause: Duration = .zero, timeout: Duration = .seconds(15)) async throws -> String {
    let received = Inbox<String>()
    let channel = try await ClientBootstrap(group: SSEConnection.group).channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(inbox: received)) }
    }.connect(host: "127.0.0.1", port: port).get()
    for (index, piece) in pieces.enumerated() {
        if index > 0, pause > .zero { try await Task.sleep(for: pause) }
        try await channel.writeAndFlush(ByteBuffer(bytes: piece)).get()
    }
    var text = ""
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline, let chunk = await received.next(timeout: deadline - ContinuousClock.now) { text += chunk }
    try? await channel.close()
    return text
}

/// Hands every read to an inbox as text; finishes it when the connection closes.
final class Collector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let inbox: Inbox<String>
    init(inbox: Inbox<String>) { self.inbox = inbox }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { inbox.push(String(buffer: unwrapInboundIn(data))) }
    func channelInactive(context: ChannelHandlerContext) { inbox.finish() }
}
