import AsyncAlgorithms
import Hummingbird
import LuaBridge
import NIOCore
import ServiceLifecycle
import Services

extension AdminController {
    func registerLogs(on admin: RouterGroup<PiCloudRequestContext>) {
        admin.get("apps/:app/logs") { request, context in
            let (name, _) = try await app(context, .read)
            let levelText = request.query("level") ?? "debug"
            guard let level = LogEntry.Level(rawValue: levelText) else {
                throw ServiceError(.invalidInput, "level must be debug, info, warn or error")
            }
            let limit = try request.queryInteger("limit", default: 100, range: 1...10_000)
            let after = try request.query("after").map { text -> Int64 in
                guard let id = Int64(text) else { throw ServiceError(.invalidInput, "after must be a log line id") }
                return id
            }
            if request.query("follow") == "1" || request.query("follow") == "true" {
                return follow(app: name, level: level, after: after, limit: limit)
            }
            let entries = try await (after == nil ? services.logs.recent(app: name, level: level, limit: limit) : services.logs.since(app: name, after: after, level: level, limit: limit))
            return Response.json(["items": .array(entries.map(logJSON))])
        }
    }

    func logJSON(_ entry: LogEntry) -> LuaValue {
        [
            "id": .integer(entry.id), "at": entry.at.iso8601, "level": .string(entry.level.rawValue), "message": .string(entry.message),
            "request_id": entry.requestID.map(LuaValue.string) ?? .null,
        ]
    }

    /// Server-Sent Events: the recent lines, then every new one, with heartbeat comments.
    func follow(app: String, level: LogEntry.Level, after: Int64?, limit: Int) -> Response {
        let logs = services.logs
        let heartbeat = core.configuration.heartbeatInterval
        let stream = logs.follow(app: app, level: level)
        enum Event: Sendable { case line(LogEntry), heartbeat }
        let body = ResponseBody { writer in
            var lastID = after ?? 0
            let backlog = try await (after == nil ? logs.recent(app: app, level: level, limit: limit) : logs.since(app: app, after: after, level: level, limit: limit))
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            for entry in backlog {
                lastID = entry.id
                try await writer.write(ByteBuffer(string: Self.sse(entry, json: logJSON(entry))))
            }
            let events = merge(stream.map { Event.line($0) }, AsyncTimerSequence.repeating(every: heartbeat).map { _ in Event.heartbeat })
                .cancelOnGracefulShutdown()
            for await event in events {
                switch event {
                case .line(let entry) where entry.id > lastID:
                    lastID = entry.id
                    try await writer.write(ByteBuffer(string: Self.sse(entry, json: logJSON(entry))))
                case .line:
                    continue
                case .heartbeat:
                    try await writer.write(ByteBuffer(string: ": heartbeat\n\n"))
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: body
        )
    }

    static func sse(_ entry: LogEntry, json: LuaValue) -> String {
        "id: \(entry.id)\nevent: log\ndata: \((try? LuaJSON.encodeText(json)) ?? "{}")\n\n"
    }
}
