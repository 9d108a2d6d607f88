import Hummingbird
import LuaBridge
import Services

extension AdminController {
    static let maxDeploymentBytes = 16 << 20

    func registerDeployments(on admin: RouterGroup<PiCloudRequestContext>) {
        admin.put("apps/:app/deployment") { request, context in
            let (name, principal) = try await app(context, .deploy)
            let body = try await request.jsonBody(limit: Self.maxDeploymentBytes)
            let manifest = try body.requiredString("manifest")
            guard case .object(let fileValues)? = body["files"] else {
                throw ServiceError(.invalidInput, "field 'files' (an object of path: source) is required")
            }
            var files: [String: String] = [:]
            for (path, source) in fileValues {
                guard case .string(let text) = source else { throw ServiceError(.invalidInput, "files.\(path): the source must be a string") }
                files[path] = text
            }
            do {
                let deployment = try await core.deployer.deploy(app: name, manifest: manifest, files: files, by: principal.keyID)
                return Response.json(deploymentJSON(deployment), status: .created)
            } catch let error as DeploymentError {
                let details: [LuaValue] = error.problems.map { problem in
                    ["file": .string(problem.file), "line": problem.line.map { .integer(Int64($0)) } ?? .null, "message": .string(problem.message)]
                }
                return Response.json(
                    ["error": ["code": "invalid_deployment", "message": .string(error.summary), "details": .array(details)]],
                    status: .badRequest
                )
            }
        }
        admin.get("apps/:app/deployment") { _, context in
            let (name, _) = try await app(context, .read)
            guard let record = try await services.storage.deployment(app: name, version: nil) else {
                throw ServiceError(.notFound, "app '\(name)' has no deployment yet")
            }
            return Response.json(recordJSON(record, withFiles: true))
        }
        admin.get("apps/:app/deployments") { _, context in
            let (name, _) = try await app(context, .read)
            let history = try await services.storage.deploymentHistory(app: name)
            return Response.json(["items": .array(history.map { recordJSON($0, withFiles: false) })])
        }
        admin.get("apps/:app/endpoints") { _, context in
            let (name, _) = try await app(context, .read)
            let endpoints = core.registry.deployment(for: name)?.manifest.endpoints ?? []
            return Response.json(["items": .array(endpoints.map { endpointJSON($0, app: name) })])
        }
    }

    func deploymentJSON(_ deployment: ActiveDeployment) -> LuaValue {
        [
            "app": .string(deployment.app), "version": .integer(Int64(deployment.version)), "created_at": deployment.createdAt.iso8601,
            "endpoints": .array(deployment.manifest.endpoints.map { endpointJSON($0, app: deployment.app) }),
        ]
    }

    func recordJSON(_ record: DeploymentRecord, withFiles: Bool) -> LuaValue {
        var fields: [String: LuaValue] = [
            "version": .integer(Int64(record.version)), "created_at": record.createdAt.iso8601,
            "created_by": record.createdBy.map(LuaValue.string) ?? .null, "manifest": .string(record.manifest),
        ]
        if withFiles { fields["files"] = .object(record.files.mapValues(LuaValue.string)) }
        return .object(fields)
    }

    func endpointJSON(_ endpoint: Manifest.Endpoint, app: String) -> LuaValue {
        [
            "method": .string(endpoint.method), "path": .string(endpoint.path.text), "handler": .string(endpoint.handler),
            "auth": .string(endpoint.auth.rawValue), "url": .string("/apps/\(app)/api\(endpoint.path.text == "/" ? "" : endpoint.path.text)"),
        ]
    }
}
