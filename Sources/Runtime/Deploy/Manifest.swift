import LuaBridge
import Services
import TOMLKit

/// `picloud.toml`, parsed and checked. See docs/manifest.md.
struct Manifest: Sendable, Hashable {
    struct Endpoint: Sendable, Hashable {
        enum Auth: String, Sendable, Hashable {
            /// Anyone may call it.
            case `public`
            /// A key with the `invoke` scope on the app is needed.
            case key
        }

        var method: String
        var path: EndpointPattern
        var handler: String
        var auth: Auth
    }

    struct Limits: Sendable, Hashable {
        var instructions: Int64?
        var timeoutMilliseconds: Int64?
        var memoryMegabytes: Int?
    }

    /// A `[[triggers]]` entry: what it matches, which handler runs, how deliveries retry.
    struct Trigger: Sendable, Hashable {
        var kind: TriggerKind
        var match: TriggerMatch
        var handler: String
        var retry: RetryPolicy
        var timeoutMilliseconds: Int64?
    }

    /// A `[[topics]]` entry: a registered topic.
    struct TopicDeclaration: Sendable, Hashable {
        var name: String
        var externalSubscribable: Bool
        var authMode: TopicRecord.AuthMode
        var historyEvents: Int?
        var historySeconds: Int?
    }

    var name: String
    var endpoints: [Endpoint]
    var indexes: [DocIndex]
    var triggers: [Trigger]
    var topics: [TopicDeclaration]
    var limits: Limits

    static let methods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"]

    /// Parses the text; collects every problem before throwing.
    init(text: String) throws(DeploymentError) {
        let root: LuaValue
        do {
            let table = try TOMLTable(string: text)
            root = try LuaJSON.decode(table.convert(to: .json))
        } catch let error as TOMLParseError {
            throw DeploymentError(problems: [.init(file: "picloud.toml", line: error.source.begin.line, message: error.description)])
        } catch {
            throw DeploymentError(problems: [.init(file: "picloud.toml", line: nil, message: "cannot read the manifest: \(error)")])
        }
        var reader = ManifestReader()
        name = reader.string(root["name"], at: "name", required: true) ?? ""
        if !name.isEmpty, (try? Names.validateApp(name)) == nil {
            reader.fail("name", "'\(name)' is not a valid app name: use 1 to 40 lowercase letters, digits and '-', starting with a letter")
        }
        reader.allowOnly(root, ["name", "endpoints", "indexes", "limits", "triggers", "topics"], at: "")

        var endpoints: [Endpoint] = []
        for (index, item) in reader.tables(root["endpoints"], at: "endpoints").enumerated() {
            let place = "endpoints[\(index + 1)]"
            reader.allowOnly(item, ["method", "path", "handler", "auth"], at: place)
            let method = (reader.string(item["method"], at: place + ".method", required: true) ?? "").uppercased()
            if !method.isEmpty, !Self.methods.contains(method) {
                reader.fail(place + ".method", "'\(method)' is not one of \(Self.methods.sorted().joined(separator: ", "))")
            }
            let handler = reader.string(item["handler"], at: place + ".handler", required: true) ?? ""
            if !handler.isEmpty, !handler.hasSuffix(".lua") { reader.fail(place + ".handler", "'\(handler)' is not a .lua file") }
            let authText = reader.string(item["auth"], at: place + ".auth", required: false) ?? "public"
            let auth = Endpoint.Auth(rawValue: authText)
            if auth == nil { reader.fail(place + ".auth", "'\(authText)' is neither \"public\" nor \"key\"") }
            var pattern: EndpointPattern?
            if let path = reader.string(item["path"], at: place + ".path", required: true) {
                do { pattern = try EndpointPattern(path) } catch { reader.fail(place + ".path", error.message) }
            }
            if let pattern, let auth, !method.isEmpty, !handler.isEmpty {
                if endpoints.contains(where: { $0.method == method && $0.path == pattern }) {
                    reader.fail(place, "\(method) \(pattern.text) is declared twice")
                }
                endpoints.append(Endpoint(method: method, path: pattern, handler: handler, auth: auth))
            }
        }
        self.endpoints = endpoints

        var indexes: [DocIndex] = []
        for (index, item) in reader.tables(root["indexes"], at: "indexes").enumerated() {
            let place = "indexes[\(index + 1)]"
            reader.allowOnly(item, ["collection", "field", "fields"], at: place)
            let collection = reader.string(item["collection"], at: place + ".collection", required: true) ?? ""
            if !collection.isEmpty, (try? DocService.validate(collection: collection)) == nil {
                reader.fail(place + ".collection", "'\(collection)' is not a valid collection name")
            }
            var fields: [String] = []
            if let field = reader.string(item["field"], at: place + ".field", required: false) { fields.append(field) }
            if case .array(let list) = item["fields"] ?? .nil { fields += list.compactMap(\.stringValue) }
            if fields.isEmpty { reader.fail(place, "needs field = \"name\" (or fields = [...])") }
            for field in fields {
                do { indexes.append(DocIndex(collection: collection, field: try DocField(field))) } catch { reader.fail(place + ".field", error.message) }
            }
        }
        self.indexes = indexes

        var triggers: [Trigger] = []
        let matchFields = ["key", "prefix", "collection", "ops", "topic", "schedule", "on_trigger", "on_handler", "on_kind"]
        for (index, item) in reader.tables(root["triggers"], at: "triggers").enumerated() {
            let place = "triggers[\(index + 1)]"
            reader.allowOnly(item, Set(["kind", "handler", "max_attempts", "backoff_base_ms", "backoff_cap_ms", "timeout_ms"] + matchFields), at: place)
            let kindText = reader.string(item["kind"], at: place + ".kind", required: true) ?? ""
            let kind = TriggerKind(rawValue: kindText)
            if !kindText.isEmpty, kind == nil {
                reader.fail(place + ".kind", "'\(kindText)' is not one of \(TriggerKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let handler = reader.string(item["handler"], at: place + ".handler", required: true) ?? ""
            if !handler.isEmpty, !handler.hasSuffix(".lua") { reader.fail(place + ".handler", "'\(handler)' is not a .lua file") }
            var ops: [String]?
            if let value = item["ops"] {
                if case .array(let list) = value, list.allSatisfy({ $0.stringValue != nil }) { ops = list.compactMap(\.stringValue) } else { reader.fail(place + ".ops", "must be a list of strings") }
            }
            let match = TriggerMatch(
                key: reader.string(item["key"], at: place + ".key", required: false), prefix: reader.string(item["prefix"], at: place + ".prefix", required: false),
                collection: reader.string(item["collection"], at: place + ".collection", required: false), ops: ops,
                topic: reader.string(item["topic"], at: place + ".topic", required: false), schedule: reader.string(item["schedule"], at: place + ".schedule", required: false),
                onTrigger: reader.string(item["on_trigger"], at: place + ".on_trigger", required: false),
                onHandler: reader.string(item["on_handler"], at: place + ".on_handler", required: false), onKind: reader.string(item["on_kind"], at: place + ".on_kind", required: false)
            )
            let defaults = TriggerRecord.defaultRetry
            let retry = RetryPolicy(
                maxAttempts: Int(reader.integer(item["max_attempts"], at: place + ".max_attempts", in: 1...100) ?? Int64(defaults.maxAttempts)),
                baseMilliseconds: reader.integer(item["backoff_base_ms"], at: place + ".backoff_base_ms", in: 1...3_600_000) ?? defaults.baseMilliseconds,
                capMilliseconds: reader.integer(item["backoff_cap_ms"], at: place + ".backoff_cap_ms", in: 1...86_400_000) ?? defaults.capMilliseconds
            )
            let timeout = reader.integer(item["timeout_ms"], at: place + ".timeout_ms", in: 10...300_000)
            guard let kind, !handler.isEmpty else { continue }
            do {
                try TriggerRecord.validate(kind: kind, match: match)
                triggers.append(Trigger(kind: kind, match: match, handler: handler, retry: retry, timeoutMilliseconds: timeout))
            } catch {
                reader.fail(place, error.message)
            }
        }
        self.triggers = triggers

        var topics: [TopicDeclaration] = []
        for (index, item) in reader.tables(root["topics"], at: "topics").enumerated() {
            let place = "topics[\(index + 1)]"
            reader.allowOnly(item, ["name", "external_subscribable", "auth_mode", "history_events", "history_seconds"], at: place)
            let name = reader.string(item["name"], at: place + ".name", required: true) ?? ""
            if !name.isEmpty {
                do { try Topic.validate(name: name) } catch { reader.fail(place + ".name", error.message) }
                if topics.contains(where: { $0.name == name }) { reader.fail(place + ".name", "topic '\(name)' is declared twice") }
            }
            let modeText = reader.string(item["auth_mode"], at: place + ".auth_mode", required: false) ?? TopicRecord.AuthMode.token.rawValue
            let mode = TopicRecord.AuthMode(rawValue: modeText)
            if mode == nil { reader.fail(place + ".auth_mode", "'\(modeText)' is neither \"public\" nor \"token\"") }
            let external = reader.bool(item["external_subscribable"], at: place + ".external_subscribable") ?? false
            let events = reader.integer(item["history_events"], at: place + ".history_events", in: 0...Int64(TopicRecord.maxHistoryEvents))
            let seconds = reader.integer(item["history_seconds"], at: place + ".history_seconds", in: 1...Int64(TopicRecord.maxHistorySeconds))
            guard !name.isEmpty, let mode else { continue }
            topics.append(TopicDeclaration(name: name, externalSubscribable: external, authMode: mode, historyEvents: events.map(Int.init), historySeconds: seconds.map(Int.init)))
        }
        self.topics = topics

        var limits = Limits()
        if let table = root["limits"] {
            reader.allowOnly(table, ["instructions", "timeout_ms", "memory_mb"], at: "limits")
            limits.instructions = reader.integer(table["instructions"], at: "limits.instructions", in: 100_000...10_000_000_000)
            limits.timeoutMilliseconds = reader.integer(table["timeout_ms"], at: "limits.timeout_ms", in: 10...300_000)
            limits.memoryMegabytes = reader.integer(table["memory_mb"], at: "limits.memory_mb", in: 4...1024).map(Int.init)
        }
        self.limits = limits
        if !reader.problems.isEmpty { throw DeploymentError(problems: reader.problems) }
    }
}

/// Collects manifest problems with where they are.
struct ManifestReader {
    var problems: [DeploymentError.Problem] = []

    mutating func fail(_ place: String, _ message: String) {
        problems.append(.init(file: "picloud.toml", line: nil, message: place.isEmpty ? message : "\(place): \(message)"))
    }

    mutating func string(_ value: LuaValue?, at place: String, required: Bool) -> String? {
        switch value {
        case .string(let text)?: return text
        case nil, .nil?:
            if required { fail(place, "is required") }
            return nil
        default:
            fail(place, "must be a string")
            return nil
        }
    }

    mutating func bool(_ value: LuaValue?, at place: String) -> Bool? {
        switch value {
        case nil, .nil?: return nil
        case .boolean(let flag)?: return flag
        default:
            fail(place, "must be true or false")
            return nil
        }
    }

    mutating func integer(_ value: LuaValue?, at place: String, in range: ClosedRange<Int64>) -> Int64? {
        guard let value, value != .nil else { return nil }
        guard case .integer(let number) = value, range.contains(number) else {
            fail(place, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return number
    }

    mutating func tables(_ value: LuaValue?, at place: String) -> [LuaValue] {
        switch value {
        case nil, .nil?: return []
        case .array(let items)?:
            let tables = items.filter { if case .object = $0 { true } else { false } }
            if tables.count != items.count { fail(place, "must be an array of tables ([[\(place)]])") }
            return tables
        default:
            fail(place, "must be an array of tables ([[\(place)]])")
            return []
        }
    }

    mutating func allowOnly(_ value: LuaValue, _ keys: Set<String>, at place: String) {
        guard case .object(let fields) = value else { return }
        for key in fields.keys.sorted() where !keys.contains(key) {
            fail(place.isEmpty ? key : "\(place).\(key)", "unknown setting (expected one of \(keys.sorted().joined(separator: ", ")))")
        }
    }
}

/// A deployment was refused: every problem found, each with its file and line when known.
struct DeploymentError: Error, Sendable {
    struct Problem: Sendable, Hashable, Codable {
        var file: String
        var line: Int?
        var message: String
    }

    var problems: [Problem]

    var summary: String {
        let first = problems.first.map(\.message) ?? "the deployment was refused"
        return problems.count == 1 ? first : "\(first) (and \(problems.count - 1) more problem\(problems.count == 2 ? "" : "s"))"
    }
}
