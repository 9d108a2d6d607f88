import Foundation
import Hummingbird
import LuaBridge
import NIOCore
import Services

extension AdminController {
    /// The rest of the path after `prefix` (for keys and file paths that contain '/').
    func tail(_ request: Request, after marker: String) throws -> String {
        let path = request.uri.path
        guard let range = path.range(of: marker) else { throw ServiceError(.invalidInput, "missing name") }
        let raw = path[range.upperBound...]
        guard let decoded = String(raw).removingPercentEncoding, !decoded.isEmpty else { throw ServiceError(.invalidInput, "missing or malformed name") }
        return decoded
    }

    func registerData(on admin: RouterGroup<PiCloudRequestContext>) {
        // kv
        admin.get("apps/:app/kv") { request, context in
            let (name, _) = try await app(context, .dataRead)
            let limit = try request.queryInteger("limit", default: 100, range: 1...1000)
            let entries = try await services.kv.list(app: name, prefix: request.query("prefix") ?? "", after: request.query("after"), limit: limit + 1)
            let page = entries.prefix(limit)
            let items: [LuaValue] = page.map { entry in
                [
                    "key": .string(entry.key), "value": (try? LuaJSON.decode(entry.value)) ?? .null,
                    "expires_at": entry.expiresAt.map(\.iso8601) ?? .null, "updated_at": entry.updatedAt.iso8601,
                ]
            }
            return Response.json(["items": .array(items), "next": entries.count > limit ? page.last.map { .string($0.key) } ?? .null : .null])
        }
        admin.put("apps/:app/kv/**") { request, context in
            let (name, _) = try await app(context, .dataWrite)
            let key = try tail(request, after: "/kv/")
            let value = try await request.jsonBody(limit: KVService.maxValueBytes)
            let ttl = try request.query("ttl").map { text -> Double in
                guard let seconds = Double(text) else { throw ServiceError(.invalidInput, "ttl must be a number of seconds") }
                return seconds
            }
            try await services.kv.set(app: name, key: key, value: try LuaJSON.encode(value), ttl: ttl)
            return Response.noContent()
        }
        admin.delete("apps/:app/kv/**") { request, context in
            let (name, _) = try await app(context, .dataWrite)
            let key = try tail(request, after: "/kv/")
            guard try await services.kv.delete(app: name, key: key) else { throw ServiceError(.notFound, "no key '\(key)'") }
            return Response.noContent()
        }

        // docs
        admin.get("apps/:app/docs") { _, context in
            let (name, _) = try await app(context, .dataRead)
            let collections = try await services.docs.collections(app: name)
            return Response.json(["items": .array(collections.map { ["name": .string($0.name), "count": .integer(Int64($0.count))] })])
        }
        admin.get("apps/:app/docs/:collection") { request, context in
            let (name, _) = try await app(context, .dataRead)
            var query = DocQuery(limit: try request.queryInteger("limit", default: 50, range: 1...1000))
            if let after = request.query("after") { query.after = try DocService.decode(cursor: after) }
            if let sort = request.query("sort") {
                let descending = sort.hasPrefix("-")
                query.sort = DocSort(field: try DocField(descending ? String(sort.dropFirst()) : sort), descending: descending)
            }
            let page = try await services.docs.find(app: name, collection: try context.parameters.require("collection"), query: query)
            let items = page.records.map { (try? LuaJSON.decode($0.body)) ?? .null }
            return Response.json(["items": .array(items), "next": page.next.map { .string(DocService.encode(cursor: $0)) } ?? .null])
        }
        admin.get("apps/:app/docs/:collection/:id") { _, context in
            let (name, _) = try await app(context, .dataRead)
            let id = try context.parameters.require("id")
            guard let record = try await services.docs.get(app: name, collection: try context.parameters.require("collection"), id: id) else {
                throw ServiceError(.notFound, "no document '\(id)'")
            }
            return Response.json(try LuaJSON.decode(record.body))
        }
        admin.delete("apps/:app/docs/:collection/:id") { _, context in
            let (name, _) = try await app(context, .dataWrite)
            let id = try context.parameters.require("id")
            guard try await services.docs.delete(app: name, collection: try context.parameters.require("collection"), id: id) else {
                throw ServiceError(.notFound, "no document '\(id)'")
            }
            return Response.noContent()
        }

        // files
        admin.get("apps/:app/files") { request, context in
            let (name, _) = try await app(context, .dataRead)
            let limit = try request.queryInteger("limit", default: 100, range: 1...1000)
            let records = try await services.files.list(app: name, prefix: request.query("prefix") ?? "", after: request.query("after"), limit: limit)
            return Response.json(["items": .array(records.map(fileInfo))])
        }
        admin.get("apps/:app/files/**") { request, context in
            let (name, _) = try await app(context, .dataRead)
            let path = try tail(request, after: "/files/")
            guard let (record, content) = try await services.files.get(app: name, path: path) else { throw ServiceError(.notFound, "no file '\(path)'") }
            return Response(
                status: .ok, headers: [.contentType: record.contentType, .eTag: "\"\(record.blob)\""],
                body: .init(byteBuffer: ByteBuffer(bytes: content))
            )
        }
        admin.put("apps/:app/files/**") { request, context in
            let (name, _) = try await app(context, .dataWrite)
            let path = try tail(request, after: "/files/")
            let content = try await request.bodyBytes(limit: services.files.maxSize)
            let record = try await services.files.put(app: name, path: path, content: content, contentType: request.headers[.contentType])
            return Response.json(fileInfo(record), status: .created)
        }
        admin.delete("apps/:app/files/**") { request, context in
            let (name, _) = try await app(context, .dataWrite)
            let path = try tail(request, after: "/files/")
            guard try await services.files.delete(app: name, path: path) else { throw ServiceError(.notFound, "no file '\(path)'") }
            return Response.noContent()
        }
    }
}
