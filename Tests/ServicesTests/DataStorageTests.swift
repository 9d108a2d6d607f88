import Foundation
import Services
import Testing

@Suite("kv")
struct KVTests {
    @Test("set, get, overwrite, delete", arguments: Backend.all)
    func basics(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let kv = KVService(storage: store.storage)
        #expect(try await kv.get(app: "demo", key: "a") == nil)
        try await kv.set(app: "demo", key: "a", value: store.json(#"{"n":1}"#))
        try await kv.set(app: "demo", key: "a", value: store.json(#""two""#))
        #expect(try await kv.get(app: "demo", key: "a")?.value.text == #""two""#)
        #expect(try await kv.delete(app: "demo", key: "a"))
        #expect(try await kv.delete(app: "demo", key: "a") == false)
        await #expect(throws: ServiceError.self) { try await kv.set(app: "demo", key: "", value: store.json("1")) }
        await #expect(throws: ServiceError.self) { try await kv.set(app: "demo", key: "big", value: Array(repeating: 0x31, count: KVService.maxValueBytes + 1)) }
    }

    @Test("entries expire after their ttl and are purged", arguments: Backend.all)
    func ttl(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let kv = KVService(storage: store.storage)
        let written = ContinuousClock.now
        try await kv.set(app: "demo", key: "short", value: store.json("1"), ttl: 1.5)
        try await kv.set(app: "demo", key: "long", value: store.json("2"), ttl: 3600)
        let present = try await kv.get(app: "demo", key: "short") != nil
        // On a loaded machine the two writes and the read can take longer than the ttl; "still there" is
        // only asserted when they did not.
        if written.duration(to: .now) < .milliseconds(1400) { #expect(present) }
        try await Task.sleep(until: written + .milliseconds(1600))
        #expect(try await kv.get(app: "demo", key: "short") == nil)
        #expect(try await kv.list(app: "demo", prefix: "").map(\.key) == ["long"])
        #expect(try await kv.delete(app: "demo", key: "short") == false)
        try await kv.set(app: "demo", key: "gone", value: store.json("1"), ttl: 0.01)
        try await Task.sleep(for: .milliseconds(20))
        #expect(try await kv.purgeExpired() >= 1)
        await #expect(throws: ServiceError.self) { try await kv.set(app: "demo", key: "x", value: store.json("1"), ttl: -1) }
    }

    @Test("incr is atomic under concurrency and refuses non-integers", arguments: Backend.all)
    func increment(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let kv = KVService(storage: store.storage)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 { group.addTask { _ = try await kv.increment(app: "demo", key: "hits") } }
            try await group.waitForAll()
        }
        #expect(try await kv.get(app: "demo", key: "hits")?.value.text == "200")
        #expect(try await kv.increment(app: "demo", key: "hits", by: -50) == 150)
        try await kv.set(app: "demo", key: "name", value: store.json(#""x""#))
        await #expect(throws: ServiceError.self) { try await kv.increment(app: "demo", key: "name") }
        try await kv.set(app: "demo", key: "max", value: store.json(String(Int64.max)))
        await #expect(throws: ServiceError.self) { try await kv.increment(app: "demo", key: "max") }
    }

    @Test("list walks a prefix in key order with pages", arguments: Backend.all)
    func list(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        let kv = KVService(storage: store.storage)
        for key in ["user:3", "user:1", "user:2", "users", "admin:1"] { try await kv.set(app: "demo", key: key, value: store.json("0")) }
        #expect(try await kv.list(app: "demo", prefix: "user:").map(\.key) == ["user:1", "user:2", "user:3"])
        #expect(try await kv.list(app: "demo", prefix: "user:", after: "user:1", limit: 1).map(\.key) == ["user:2"])
        #expect(try await kv.list(app: "demo", prefix: "").count == 5)
    }

    @Test("one app never sees another's keys", arguments: Backend.all)
    func isolation(_ backend: Backend) async throws {
        let store = try await TestStore(backend)
        _ = try await store.storage.createApp(name: "other", at: 0)
        let kv = KVService(storage: store.storage)
        try await kv.set(app: "demo", key: "secret", value: store.json("1"))
        #expect(try await kv.get(app: "other", key: "secret") == nil)
        #expect(try await kv.list(app: "other", prefix: "").isEmpty)
        #expect(try await kv.delete(app: "other", key: "secret") == false)
        #expect(try await kv.get(app: "demo", key: "secret") != nil)
    }
}

@Suite("docs")
struct DocTests {
    func seeded(_ backend: Backend) async throws -> (TestStore, DocService) {
        let store = try await TestStore(backend)
        let docs = DocService(storage: store.storage)
        let rows = [
            #"{"id":"a","name":"Ada","age":36,"city":"London","tags":["math"],"admin":true}"#,
            #"{"id":"b","name":"Bob","age":17,"city":"Paris"}"#,
            #"{"id":"c","name":"Cy","age":52.5,"city":"Berlin","admin":false}"#,
            #"{"id":"d","name":"Di","age":"unknown","city":null}"#,
            #"{"id":"e","name":"Ed","age":29,"address":{"city":"Rome"}}"#,
        ]
        for row in rows {
            let id = String(row.split(separator: "\"")[3])
            _ = try await docs.insert(app: "demo", collection: "people", id: id, body: store.json(row))
        }
        return (store, docs)
    }

    func ids(_ docs: DocService, _ filter: [DocCondition], sort: DocSort = DocSort()) async throws -> [String] {
        try await docs.find(app: "demo", collection: "people", query: DocQuery(filter: filter, sort: sort)).records.map(\.id)
    }

    func condition(_ field: String, _ op: DocCondition.Operator, _ values: DocFieldValue...) throws -> DocCondition {
        try DocCondition(field: DocField(field), op: op, values: values)
    }

    @Test("every filter operator, with JSON types kept apart", arguments: Backend.all)
    func filters(_ backend: Backend) async throws {
        let (_, docs) = try await seeded(backend)
        #expect(try await ids(docs, [condition("city", .eq, .string("Paris"))]) == ["b"])
        #expect(try await ids(docs, [condition("age", .eq, .integer(36))]) == ["a"])
        #expect(try await ids(docs, [condition("age", .eq, .string("36"))]) == [])
        #expect(try await ids(docs, [condition("admin", .eq, .bool(true))]) == ["a"])
        #expect(try await ids(docs, [condition("city", .eq, .null)]) == ["d", "e"])
        #expect(try await ids(docs, [condition("city", .ne, .string("Paris"))]) == ["a", "c", "d", "e"])
        #expect(try await ids(docs, [condition("age", .gt, .integer(30))]) == ["a", "c"])
        #expect(try await ids(docs, [condition("age", .gte, .integer(36)), condition("age", .lt, .double(52.5))]) == ["a"])
        #expect(try await ids(docs, [condition("age", .lte, .integer(17))]) == ["b"])
        #expect(try await ids(docs, [condition("name", .in, .string("Bob"), .string("Cy"), .string("Zed"))]) == ["b", "c"])
        #expect(try await ids(docs, [condition("admin", .exists, .bool(true))]) == ["a", "c"])
        #expect(try await ids(docs, [condition("admin", .exists, .bool(false))]) == ["b", "d", "e"])
        #expect(try await ids(docs, [condition("name", .prefix, .string("B"))]) == ["b"])
        #expect(try await ids(docs, [condition("address.city", .eq, .string("Rome"))]) == ["e"])
        #expect(try await ids(docs, [condition("id", .in, .string("a"), .string("e"))]) == ["a", "e"])
        #expect(try await docs.count(app: "demo", collection: "people", filter: [condition("age", .gt, .integer(0))]) == 4)
        #expect(throws: ServiceError.self) { try condition("age", .gt, .bool(true)) }
        #expect(throws: ServiceError.self) { try DocField("a;DROP TABLE docs") }
    }

    @Test("sorting and cursor pagination visit every document once, both ways", arguments: Backend.all)
    func pagination(_ backend: Backend) async throws {
        let (_, docs) = try await seeded(backend)
        for descending in [false, true] {
            for field in [nil, "age", "city"] as [String?] {
                let sort = DocSort(field: try field.map(DocField.init), descending: descending)
                let all = try await ids(docs, [], sort: sort)
                var seen: [String] = []
                var cursor: DocCursor?
                repeat {
                    let page = try await docs.find(app: "demo", collection: "people", query: DocQuery(sort: sort, limit: 2, after: cursor))
                    seen += page.records.map(\.id)
                    cursor = try page.next.map { try DocService.decode(cursor: DocService.encode(cursor: $0)) }
                } while cursor != nil
                #expect(seen == all, "sort \(field ?? "id") \(descending ? "desc" : "asc")")
                #expect(Set(seen).count == 5)
            }
        }
        // SQLite's order across JSON types: missing/null, then numbers, then strings.
        #expect(try await ids(docs, [], sort: DocSort(field: try DocField("age"))) == ["b", "e", "a", "c", "d"])
        #expect(try await ids(docs, [], sort: DocSort(field: try DocField("city"))) == ["d", "e", "c", "a", "b"])
        #expect(try await ids(docs, [], sort: DocSort(field: try DocField("city"), descending: true)) == ["b", "a", "c", "e", "d"])
        #expect(throws: ServiceError.self) { try DocService.decode(cursor: "garbage!") }
    }

    @Test("update transforms atomically, delete removes, ids are unique", arguments: Backend.all)
    func updates(_ backend: Backend) async throws {
        let (store, docs) = try await seeded(backend)
        let updated = try await docs.update(app: "demo", collection: "people", id: "b") { _ in store.json(#"{"id":"b","name":"Robert"}"#) }
        #expect(updated?.body.text == #"{"id":"b","name":"Robert"}"#)
        #expect(try await docs.get(app: "demo", collection: "people", id: "b")?.body.text == #"{"id":"b","name":"Robert"}"#)
        #expect(try await docs.update(app: "demo", collection: "people", id: "zz") { $0 } == nil)
        await #expect(throws: ServiceError.self) { try await docs.insert(app: "demo", collection: "people", id: "a", body: store.json("{}")) }
        #expect(try await docs.delete(app: "demo", collection: "people", id: "a"))
        #expect(try await docs.delete(app: "demo", collection: "people", id: "a") == false)
        #expect(try await docs.collections(app: "demo").map(\.name) == ["people"])
    }

    @Test("declared indexes become expression indexes that queries use", arguments: Backend.all)
    func indexes(_ backend: Backend) async throws {
        let (store, docs) = try await seeded(backend)
        try await store.storage.setDocIndexes(app: "demo", indexes: [DocIndex(collection: "people", field: try DocField("city"))])
        #expect(try await store.storage.docIndexNames() == ["docs_field_city"])
        let plan = try await store.storage.docQueryPlan(app: "demo", collection: "people", query: DocQuery(filter: [condition("city", .eq, .string("Paris"))]))
        #expect(plan.contains("docs_field_city"), "plan: \(plan)")
        #expect(try await ids(docs, [condition("city", .eq, .string("Paris"))]) == ["b"])
        try await store.storage.setDocIndexes(app: "demo", indexes: [])
        #expect(try await store.storage.docIndexNames().isEmpty)
    }
}
