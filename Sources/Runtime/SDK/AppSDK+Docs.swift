import LuaBridge
import Services

extension AppSDK {
    /// `docs.insert/get/update/replace/delete/find/count`.
    var docsLibrary: LuaLibrary {
        let docs = services.docs
        let app = app
        return LuaLibrary(name: "docs", functions: [
            "insert": { call in
                let collection = try call.string(1)
                guard case .object(var fields) = try call.table(2) else { throw LuaArgumentError(position: 2, message: "a document must be a table with named fields") }
                let id: String
                switch fields["id"] {
                case .string(let given)?: id = given
                case nil: id = DocService.newID()
                case .some: throw LuaArgumentError(position: 2, message: "a document's id must be a string")
                }
                fields["id"] = .string(id)
                let body = try jsonBytes(.object(fields), what: "docs.insert")
                let depth = call.depth
                return waiting(call) {
                    _ = try await docs.insert(app: app, collection: collection, id: id, body: body, depth: depth)
                    return .value(.string(id))
                }
            },
            "get": { call in
                let collection = try call.string(1)
                let id = try call.string(2)
                // Read on this thread when the store can (as kv.get does).
                if call.canSuspend, let known = docs.getNow(app: app, collection: collection, id: id) {
                    guard let record = known else { return .value(.nil) }
                    return .value(try decodeStored(record.body, what: "docs.get"))
                }
                return waiting(call) {
                    guard let record = try await docs.get(app: app, collection: collection, id: id) else { return .value(.nil) }
                    return .value(try LuaJSON.decode(record.body))
                }
            },
            "update": { call in
                let collection = try call.string(1)
                let id = try call.string(2)
                guard case .object(let patch) = try call.table(3) else { throw LuaArgumentError(position: 3, message: "a patch must be a table with named fields") }
                if let patched = patch["id"], patched != .string(id) { throw LuaArgumentError(position: 3, message: "a patch cannot change the id") }
                let depth = call.depth
                return waiting(call) {
                    let record = try await docs.update(app: app, collection: collection, id: id, depth: depth) { body in
                        try LuaJSON.encode(mergePatch(try LuaJSON.decode(body), .object(patch)))
                    }
                    return .value(try record.map { try LuaJSON.decode($0.body) } ?? .nil)
                }
            },
            "replace": { call in
                let collection = try call.string(1)
                let id = try call.string(2)
                guard case .object(var fields) = try call.table(3) else { throw LuaArgumentError(position: 3, message: "a document must be a table with named fields") }
                if let given = fields["id"], given != .string(id) { throw LuaArgumentError(position: 3, message: "the document's id differs from the id given") }
                fields["id"] = .string(id)
                let document = LuaValue.object(fields)
                let body = try jsonBytes(document, what: "docs.replace")
                let depth = call.depth
                return waiting(call) {
                    let record = try await docs.update(app: app, collection: collection, id: id, depth: depth) { _ in body }
                    return .value(record == nil ? .nil : document)
                }
            },
            "delete": { call in
                let collection = try call.string(1)
                let id = try call.string(2)
                let depth = call.depth
                return waiting(call) { .value(.boolean(try await docs.delete(app: app, collection: collection, id: id, depth: depth))) }
            },
            "find": { call in
                let collection = try call.string(1)
                let filter = try docFilter(try call.optionalTable(2), position: 2)
                let query = try docQuery(filter: filter, options: try call.optionalTable(3))
                return waiting(call) {
                    let page = try await docs.find(app: app, collection: collection, query: query)
                    let items = try page.records.map { try LuaJSON.decode($0.body) }
                    return .values([.array(items), page.next.map { .string(DocService.encode(cursor: $0)) } ?? .nil])
                }
            },
            "count": { call in
                let collection = try call.string(1)
                let filter = try docFilter(try call.optionalTable(2), position: 2)
                return waiting(call) { .value(.integer(Int64(try await docs.count(app: app, collection: collection, filter: filter)))) }
            },
        ])
    }
}

/// `{ status = "open", age = { gt = 18 }, tags = { ["in"] = {"a", "b"} } }` as conditions.
func docFilter(_ value: LuaValue?, position: Int) throws -> [DocCondition] {
    guard let value else { return [] }
    guard case .object(let fields) = value else {
        if value == .array([]) { return [] }
        throw LuaArgumentError(position: position, message: "a filter is a table of field = value or field = { op = value }")
    }
    var conditions: [DocCondition] = []
    do {
        for (name, criterion) in fields.sorted(by: { $0.key < $1.key }) {
            let field = try DocField(name)
            if case .object(let operators) = criterion, !operators.isEmpty,
               operators.keys.allSatisfy({ DocCondition.Operator(rawValue: $0) != nil }) {
                for (opName, operand) in operators.sorted(by: { $0.key < $1.key }) {
                    let op = DocCondition.Operator(rawValue: opName)!
                    let values: [DocFieldValue]
                    if op == .in {
                        guard case .array(let list) = operand else { throw ServiceError(.invalidInput, "filter on '\(name)': 'in' takes a list") }
                        values = try list.map { try fieldValue($0, field: name) }
                    } else {
                        values = [try fieldValue(operand, field: name)]
                    }
                    conditions.append(try DocCondition(field: field, op: op, values: values))
                }
            } else {
                conditions.append(try DocCondition(field: field, op: .eq, values: [try fieldValue(criterion, field: name)]))
            }
        }
    } catch let error as ServiceError {
        throw LuaArgumentError(position: position, message: error.message)
    }
    return conditions
}

func fieldValue(_ value: LuaValue, field: String) throws -> DocFieldValue {
    switch value {
    case .null: return .null
    case .boolean(let flag): return .bool(flag)
    case .integer(let number): return .integer(number)
    case .number(let number): return .double(number)
    case .string(let text): return .string(text)
    default:
        throw ServiceError(.invalidInput, "filter on '\(field)': compare with a string, number, boolean or json.null (use dotted names for nested fields, 'in' for lists)")
    }
}

/// `{ sort = "-created", limit = 20, after = cursor }` as a query.
func docQuery(filter: [DocCondition], options: LuaValue?) throws -> DocQuery {
    var query = DocQuery(filter: filter)
    guard let options else { return query }
    do {
        if let sort = options["sort"]?.stringValue {
            let descending = sort.hasPrefix("-")
            query.sort = DocSort(field: try DocField(descending ? String(sort.dropFirst()) : sort), descending: descending)
        }
        if let limit = options["limit"] {
            guard let number = limit.integerValue, (1...1000).contains(number) else {
                throw ServiceError(.invalidInput, "limit must be an integer from 1 to 1000")
            }
            query.limit = Int(number)
        }
        if let after = options["after"]?.stringValue { query.after = try DocService.decode(cursor: after) }
    } catch let error as ServiceError {
        throw LuaArgumentError(position: 3, message: error.message)
    }
    return query
}

/// RFC 7386 merge patch: objects merge recursively, `null` removes a field, anything else replaces.
func mergePatch(_ target: LuaValue, _ patch: LuaValue) -> LuaValue {
    guard case .object(let changes) = patch else { return patch }
    var fields: [String: LuaValue]
    if case .object(let existing) = target { fields = existing } else { fields = [:] }
    for (key, change) in changes {
        if change == .null || change == .nil {
            fields.removeValue(forKey: key)
        } else {
            fields[key] = mergePatch(fields[key] ?? .nil, change)
        }
    }
    return .object(fields)
}
