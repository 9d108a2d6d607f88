import Hummingbird
import LuaBridge
import Services

extension AdminController {
    /// `/admin/apps/{app}/topics`: registered topics. Whether browsers may subscribe changes only
    /// through `PATCH .../topics/{topic}/external`, so it is never flipped as a side effect.
    func registerTopics(on admin: RouterGroup<PiCloudRequestContext>) {
        admin.get("apps/:app/topics") { _, context in
            let (name, _) = try await app(context, .read)
            return Response.json(["items": .array(try await services.topics.list(app: name).map(topicJSON))])
        }
        admin.post("apps/:app/topics") { request, context in
            let (name, _) = try await app(context, .appAdmin)
            let body = try await request.jsonBody(limit: 16 << 10)
            try body.allowOnly(["name", "external_subscribable", "auth_mode", "history_events", "history_seconds"])
            let modeText = body["auth_mode"]?.stringValue ?? TopicRecord.AuthMode.token.rawValue
            guard let mode = TopicRecord.AuthMode(rawValue: modeText) else {
                throw ServiceError(.invalidInput, "auth_mode must be \"public\" or \"token\"")
            }
            let topic = try await services.topics.create(
                app: name, name: try body.requiredString("name"), externalSubscribable: try body.optionalBool("external_subscribable") ?? false,
                authMode: mode, historyEvents: try body.optionalInteger("history_events"), historySeconds: try body.optionalInteger("history_seconds")
            )
            return Response.json(topicJSON(topic), status: .created)
        }
        admin.get("apps/:app/topics/:topic") { _, context in
            let (name, _) = try await app(context, .read)
            return Response.json(topicJSON(try await services.topics.get(app: name, name: try topicName(context))))
        }
        admin.delete("apps/:app/topics/:topic") { _, context in
            let (name, _) = try await app(context, .appAdmin)
            let topic = try await services.topics.get(app: name, name: try topicName(context))
            guard topic.source == .api else {
                throw ServiceError(.conflict, "topic '\(topic.name)' is declared in the manifest; remove it there and deploy")
            }
            try await services.topics.delete(app: name, name: topic.name)
            core.realtime.close(app: name, topic: topic.name, reason: "topic_deleted")
            return Response.noContent()
        }
        admin.patch("apps/:app/topics/:topic/external") { request, context in
            let (name, _) = try await app(context, .appAdmin)
            let body = try await request.jsonBody(limit: 1024)
            try body.allowOnly(["external_subscribable"])
            guard let external = try body.optionalBool("external_subscribable") else {
                throw ServiceError(.invalidInput, "field 'external_subscribable' (true or false) is required")
            }
            let topic = try await services.topics.setExternal(app: name, name: try topicName(context), external: external)
            if !external { core.realtime.close(app: name, topic: topic.name, reason: "topic_not_subscribable") }
            services.logs.append(app: name, level: .warn, message: "topic '\(topic.name)' is \(external ? "now" : "no longer") externally subscribable (\(topic.authMode.rawValue))")
            return Response.json(topicJSON(topic))
        }
        admin.get("apps/:app/topics/:topic/events") { request, context in
            let (name, _) = try await app(context, .dataRead)
            let topic = try topicName(context)
            let limit = try request.queryInteger("limit", default: 100, range: 1...1000)
            let after = try request.query("after").map { text -> Int64 in
                guard let id = Int64(text), id >= 0 else { throw ServiceError(.invalidInput, "after must be an event id (a number)") }
                return id
            } ?? 0
            guard let page = try await services.topics.events(app: name, topic: topic, after: after, limit: limit) else {
                throw ServiceError(.notFound, "app '\(name)' has no topic named '\(topic)'")
            }
            let items: [LuaValue] = page.events.map { event in
                [
                    "id": .string(String(event.seq)), "message": (try? LuaJSON.decode(event.message)) ?? .null,
                    "published_at": event.publishedAt.iso8601,
                ]
            }
            return Response.json(["items": .array(items), "last_event_id": .string(String(page.lastSeq))])
        }
    }

    func topicName(_ context: PiCloudRequestContext) throws -> String {
        guard let name = decodePathSegment(try context.parameters.require("topic")[...]) else {
            throw ServiceError(.invalidInput, "malformed topic name in the path")
        }
        return name
    }

    func topicJSON(_ topic: TopicRecord) -> LuaValue {
        let history = services.topics.history
        return [
            "name": .string(topic.name), "external_subscribable": .boolean(topic.externalSubscribable), "auth_mode": .string(topic.authMode.rawValue),
            "history_events": .integer(Int64(topic.historyEvents ?? history.events)), "history_seconds": .integer(Int64(topic.historySeconds ?? history.seconds)),
            "source": .string(topic.source.rawValue), "last_event_id": .string(String(topic.lastSeq)),
            "subscribe_path": .string("/apps/\(topic.app)/realtime/\(percentEncodePathSegment(topic.name))"),
            "created_at": topic.createdAt.iso8601, "updated_at": topic.updatedAt.iso8601,
        ]
    }
}
