import LuaBridge
import Services

extension AppSDK {
    /// `files.put/get/stat/delete/list`.
    var filesLibrary: LuaLibrary {
        let files = services.files
        let app = app
        return LuaLibrary(name: "files", functions: [
            "put": { call in
                let path = try call.string(1)
                let content = try call.bytes(2)
                let contentType = try call.optionalTable(3)?["content_type"]?.stringValue
                let depth = call.depth
                return waiting(call) {
                    .value(fileInfo(try await files.put(app: app, path: path, content: content, contentType: contentType, depth: depth)))
                }
            },
            "get": { call in
                let path = try call.string(1)
                return waiting(call) {
                    guard let (record, content) = try await files.get(app: app, path: path) else { return .value(.nil) }
                    return .values([LuaValue(bytes: content), fileInfo(record)])
                }
            },
            "stat": { call in
                let path = try call.string(1)
                return waiting(call) { .value(try await files.stat(app: app, path: path).map(fileInfo) ?? .nil) }
            },
            "delete": { call in
                let path = try call.string(1)
                let depth = call.depth
                return waiting(call) { .value(.boolean(try await files.delete(app: app, path: path, depth: depth))) }
            },
            "list": { call in
                let prefix = try call.optionalString(1) ?? ""
                let (limit, after) = try call.page(2)
                return waiting(call) {
                    .value(.array(try await files.list(app: app, prefix: prefix, after: after, limit: limit).map(fileInfo)))
                }
            },
        ])
    }
}

/// A file's metadata as scripts see it.
func fileInfo(_ record: FileRecord) -> LuaValue {
    .object([
        "path": .string(record.path), "size": .integer(record.size), "content_type": .string(record.contentType),
        "etag": .string(record.blob), "created_at": .number(Double(record.createdAt) / 1000), "updated_at": .number(Double(record.updatedAt) / 1000),
    ])
}
