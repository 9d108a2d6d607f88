import Foundation
import Hummingbird
import LuaBridge

/// `GET /openapi.json`: an OpenAPI 3.1 description of every route.
struct OpenAPIController {
    func register(on router: Router<PiCloudRequestContext>) {
        let document = OpenAPIDocument.build()
        router.get("/openapi.json") { _, _ in Response.json(document) }
    }
}

/// The API description, built from one table of routes.
enum OpenAPIDocument {
    struct Route {
        let method: String
        let path: String
        let summary: String
        /// The scope needed; nil for a public route.
        let scope: String?
        var body: LuaValue? = nil
        var success: Int = 200
        var successSchema: LuaValue = ["type": "object"]
        var query: [(String, String, String)] = [] // name, type, description
        var rawBody = false
        /// The success answer's media type, when it is not JSON.
        var successType = "application/json"
    }

    static let object: LuaValue = ["type": "object"]
    static let list: LuaValue = ["type": "object", "properties": ["items": ["type": "array", "items": ["type": "object"]]], "required": ["items"]]

    static let routes: [Route] = [
        Route(method: "get", path: "/healthz", summary: "Liveness check", scope: nil,
              successSchema: ["type": "object", "properties": ["status": ["type": "string"], "version": ["type": "string"]]]),
        Route(method: "get", path: "/openapi.json", summary: "This document", scope: nil),
        Route(method: "post", path: "/admin/apps", summary: "Create an app", scope: "instance:admin",
              body: ["type": "object", "properties": ["name": ["type": "string", "pattern": "^[a-z][a-z0-9-]{0,39}$"]], "required": ["name"]], success: 201),
        Route(method: "get", path: "/admin/apps", summary: "List the apps the key may see", scope: "any", successSchema: list),
        Route(method: "get", path: "/admin/apps/{app}", summary: "Get an app", scope: "app:read"),
        Route(method: "delete", path: "/admin/apps/{app}", summary: "Delete an app and all its data", scope: "instance:admin", success: 204),
        Route(method: "post", path: "/admin/apps/{app}/keys", summary: "Create an app key (its secret is shown once)", scope: "app:admin",
              body: keyBody, success: 201),
        Route(method: "get", path: "/admin/apps/{app}/keys", summary: "List an app's keys", scope: "app:admin", successSchema: list),
        Route(method: "delete", path: "/admin/apps/{app}/keys/{id}", summary: "Revoke an app key", scope: "app:admin", success: 204),
        Route(method: "post", path: "/admin/keys", summary: "Create an instance key", scope: "instance:admin", body: keyBody, success: 201),
        Route(method: "get", path: "/admin/keys", summary: "List instance keys", scope: "instance:admin", successSchema: list),
        Route(method: "delete", path: "/admin/keys/{id}", summary: "Revoke an instance key", scope: "instance:admin", success: 204),
        Route(method: "put", path: "/admin/apps/{app}/deployment", summary: "Deploy (manifest and Lua files); refused with every error listed", scope: "app:deploy",
              body: ["type": "object", "properties": ["manifest": ["type": "string"], "files": ["type": "object", "additionalProperties": ["type": "string"]]], "required": ["manifest", "files"]],
              success: 201),
        Route(method: "get", path: "/admin/apps/{app}/deployment", summary: "The current deployment with its files", scope: "app:read"),
        Route(method: "get", path: "/admin/apps/{app}/deployments", summary: "Every deployment, newest first", scope: "app:read", successSchema: list),
        Route(method: "get", path: "/admin/apps/{app}/endpoints", summary: "The endpoints serving now", scope: "app:read", successSchema: list),
        Route(method: "get", path: "/admin/apps/{app}/logs", summary: "The app's log (follow=1 streams Server-Sent Events)", scope: "app:read", successSchema: list,
              query: [("level", "string", "debug, info, warn or error"), ("limit", "integer", "1 to 10000"), ("after", "integer", "a line id"), ("follow", "string", "1 to stream")]),
        Route(method: "get", path: "/admin/apps/{app}/kv", summary: "Browse kv entries", scope: "data:read", successSchema: list,
              query: [("prefix", "string", "key prefix"), ("after", "string", "last key of the previous page"), ("limit", "integer", "1 to 1000")]),
        Route(method: "put", path: "/admin/apps/{app}/kv/{key}", summary: "Set a kv entry (the body is its JSON value)", scope: "data:write",
              body: ["description": "any JSON value"], success: 204, query: [("ttl", "number", "seconds to live")]),
        Route(method: "delete", path: "/admin/apps/{app}/kv/{key}", summary: "Delete a kv entry", scope: "data:write", success: 204),
        Route(method: "get", path: "/admin/apps/{app}/docs", summary: "Collections with their sizes", scope: "data:read", successSchema: list),
        Route(method: "get", path: "/admin/apps/{app}/docs/{collection}", summary: "Browse a collection", scope: "data:read", successSchema: list,
              query: [("sort", "string", "field, or -field for descending"), ("after", "string", "cursor"), ("limit", "integer", "1 to 1000")]),
        Route(method: "get", path: "/admin/apps/{app}/docs/{collection}/{id}", summary: "Get a document", scope: "data:read"),
        Route(method: "delete", path: "/admin/apps/{app}/docs/{collection}/{id}", summary: "Delete a document", scope: "data:write", success: 204),
        Route(method: "get", path: "/admin/apps/{app}/files", summary: "List files", scope: "data:read", successSchema: list,
              query: [("prefix", "string", "path prefix"), ("after", "string", "last path of the previous page"), ("limit", "integer", "1 to 1000")]),
        Route(method: "get", path: "/admin/apps/{app}/files/{path}", summary: "Download a file (answered with the Content-Type it was stored with)", scope: "data:read",
              successSchema: ["type": "string", "format": "binary"], successType: "*/*"),
        Route(method: "put", path: "/admin/apps/{app}/files/{path}", summary: "Upload a file (raw body, Content-Type kept)", scope: "data:write", success: 201, rawBody: true),
        Route(method: "delete", path: "/admin/apps/{app}/files/{path}", summary: "Delete a file", scope: "data:write", success: 204),
        Route(method: "get", path: "/admin/apps/{app}/secrets", summary: "Secret names (never values)", scope: "app:admin", successSchema: list),
        Route(method: "put", path: "/admin/apps/{app}/secrets/{name}", summary: "Set a secret (stored encrypted)", scope: "app:admin",
              body: ["type": "object", "properties": ["value": ["type": "string"]], "required": ["value"]]),
        Route(method: "delete", path: "/admin/apps/{app}/secrets/{name}", summary: "Delete a secret", scope: "app:admin", success: 204),
        Route(method: "get", path: "/admin/apps/{app}/triggers", summary: "The app's triggers (manifest and API)", scope: "app:read", successSchema: list),
        Route(method: "post", path: "/admin/apps/{app}/triggers", summary: "Add a trigger", scope: "app:deploy",
              body: ["type": "object", "properties": [
                  "kind": ["type": "string", "enum": ["kv", "docs", "files", "topic", "cron", "dead_letter"]], "handler": ["type": "string"],
                  "key": ["type": "string"], "prefix": ["type": "string"], "collection": ["type": "string"], "ops": ["type": "array", "items": ["type": "string"]],
                  "topic": ["type": "string"], "schedule": ["type": "string"], "on_trigger": ["type": "string"], "on_handler": ["type": "string"], "on_kind": ["type": "string"],
                  "max_attempts": ["type": "integer"], "backoff_base_ms": ["type": "integer"], "backoff_cap_ms": ["type": "integer"], "timeout_ms": ["type": "integer"],
              ], "required": ["kind", "handler"]], success: 201),
        Route(method: "delete", path: "/admin/apps/{app}/triggers/{id}", summary: "Remove a trigger added through the API", scope: "app:deploy", success: 204),
        Route(method: "get", path: "/admin/apps/{app}/dead-letters", summary: "Dead letters, newest first", scope: "app:read", successSchema: list,
              query: [("trigger", "string", "a trigger id"), ("handler", "string", "a handler path"), ("before", "string", "the next cursor of the previous page (a dead letter id)"), ("limit", "integer", "1 to 1000")]),
        Route(method: "delete", path: "/admin/apps/{app}/dead-letters", summary: "Purge dead letters (all, or of a trigger or handler)", scope: "app:deploy",
              query: [("trigger", "string", "a trigger id"), ("handler", "string", "a handler path")]),
        Route(method: "get", path: "/admin/apps/{app}/dead-letters/{id}", summary: "One dead letter", scope: "app:read"),
        Route(method: "delete", path: "/admin/apps/{app}/dead-letters/{id}", summary: "Purge one dead letter", scope: "app:deploy", success: 204),
        Route(method: "post", path: "/admin/apps/{app}/dead-letters/{id}/replay", summary: "Send the event back to its trigger, attempts reset", scope: "app:deploy", success: 202),
        Route(method: "get", path: "/admin/apps/{app}/outbox", summary: "Events waiting for delivery", scope: "app:read", successSchema: list,
              query: [("after", "integer", "a row id"), ("limit", "integer", "1 to 1000")]),
        Route(method: "get", path: "/admin/apps/{app}/topics", summary: "Registered topics", scope: "app:read", successSchema: list),
        Route(method: "post", path: "/admin/apps/{app}/topics", summary: "Register a topic", scope: "app:admin",
              body: ["type": "object", "properties": [
                  "name": ["type": "string"], "external_subscribable": ["type": "boolean"], "auth_mode": ["type": "string", "enum": ["public", "token"]],
                  "history_events": ["type": "integer"], "history_seconds": ["type": "integer"],
              ], "required": ["name"]], success: 201),
        Route(method: "get", path: "/admin/apps/{app}/topics/{topic}", summary: "One topic", scope: "app:read"),
        Route(method: "delete", path: "/admin/apps/{app}/topics/{topic}", summary: "Unregister a topic added through the API (ends its streams)", scope: "app:admin", success: 204),
        Route(method: "patch", path: "/admin/apps/{app}/topics/{topic}/external", summary: "Let browsers subscribe, or stop them (the only way to change it)", scope: "app:admin",
              body: ["type": "object", "properties": ["external_subscribable": ["type": "boolean"]], "required": ["external_subscribable"]]),
        Route(method: "get", path: "/admin/apps/{app}/topics/{topic}/events", summary: "The topic's kept history", scope: "data:read", successSchema: list,
              query: [("after", "integer", "an event id"), ("limit", "integer", "1 to 1000")]),
        Route(method: "get", path: "/apps/{app}/realtime/{topic}", summary: "Subscribe to a topic (text/event-stream); 404 unless external, 401 for any token problem",
              scope: nil, successSchema: ["type": "string", "description": "Server-Sent Events"],
              query: [("token", "string", "subscriber token (or Authorization: Bearer)"), ("last_event_id", "string", "resume after this event (or Last-Event-ID)")],
              successType: "text/event-stream"),
        Route(method: "get", path: "/metrics", summary: "Prometheus metrics", scope: nil, successSchema: ["type": "string"], successType: "text/plain"),
    ] + ["get", "post", "put", "patch", "delete"].map { method in
        Route(method: method, path: "/apps/{app}/api/{path}", summary: "Run the handler the app's manifest maps here", scope: nil,
              body: method == "get" || method == "delete" ? nil : ["description": "whatever the handler expects"])
    }

    static let keyBody: LuaValue = [
        "type": "object",
        "properties": ["name": ["type": "string"], "scopes": ["type": "array", "items": ["type": "string", "enum": .array(scopeNames)]]],
        "required": ["scopes"],
    ]
    static let scopeNames: [LuaValue] = ["instance:admin", "app:admin", "app:deploy", "app:read", "data:write", "data:read", "invoke"]

    static func build() -> LuaValue {
        var paths: [String: [String: LuaValue]] = [:]
        for route in routes {
            var operation: [String: LuaValue] = [
                "summary": .string(route.summary),
                "operationId": .string(route.method + route.path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "")),
            ]
            var parameters: [LuaValue] = route.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { part in
                ["name": .string(String(part.dropFirst().dropLast())), "in": "path", "required": true, "schema": ["type": "string"]]
            }
            parameters += route.query.map { name, type, description in
                ["name": .string(name), "in": "query", "required": false, "description": .string(description), "schema": ["type": .string(type)]]
            }
            if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
            if let body = route.body {
                operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": body]]]
            } else if route.rawBody {
                operation["requestBody"] = ["required": true, "content": ["application/octet-stream": ["schema": ["type": "string", "format": "binary"]]]]
            }
            var responses: [String: LuaValue] = [
                String(route.success): route.success == 204
                    ? ["description": "done"]
                    : ["description": "success", "content": [route.successType: ["schema": route.successSchema]]],
                "400": errorResponse("bad input"),
                "404": errorResponse("no such app or item"),
                "413": errorResponse("body too large"),
            ]
            if let scope = route.scope {
                operation["security"] = [["bearer": []]]
                operation["description"] = .string("Needs a key with the `\(scope)` scope.")
                responses["401"] = errorResponse("missing or invalid key")
                responses["403"] = errorResponse("the key lacks the scope")
            }
            if route.method == "post" || route.method == "put" || route.method == "patch" {
                responses["409"] = errorResponse("conflicts with what exists (a name taken, a manifest-owned item)")
            }
            if route.path.hasPrefix("/apps/") && route.path.contains("/realtime/") {
                responses["401"] = errorResponse("any problem with the subscriber token")
                responses["429"] = errorResponse("too many event streams from this address")
                responses["503"] = errorResponse("the server or the app holds as many event streams as it may")
            }
            if route.path.hasPrefix("/apps/") && !route.path.contains("/realtime/") {
                responses["503"] = errorResponse("the app is running as many requests as it may; retry after Retry-After")
                responses["401"] = errorResponse("the endpoint needs a key")
                responses["403"] = errorResponse("the key lacks the invoke scope")
                responses["405"] = errorResponse("method not allowed")
                responses["500"] = errorResponse("the handler failed")
                responses["504"] = errorResponse("the handler ran out of time")
                responses["default"] = ["description": "whatever the handler answers (any status, headers and body)"]
            }
            operation["responses"] = .object(responses)
            paths[route.path, default: [:]][route.method] = .object(operation)
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "PiCloud", "version": .string(PiCloudVersion.current), "description": "Admin API and app endpoints of a PiCloud server."],
            "paths": .object(paths.mapValues { .object($0) }),
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": [
                    "Error": [
                        "type": "object", "required": ["error"],
                        "properties": ["error": ["type": "object", "required": ["code", "message"], "properties": ["code": ["type": "string"], "message": ["type": "string"]]]],
                    ],
                ],
            ],
        ]
    }

    static func errorResponse(_ description: String) -> LuaValue {
        ["description": .string(description), "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
    }
}
