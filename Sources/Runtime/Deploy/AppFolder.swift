import Foundation
import LuaBridge
import TOMLKit

/// An app folder on disk: `picloud.toml` and every `.lua` file below it.
public struct AppFolder: Sendable {
    public var manifest: String
    public var files: [String: String]

    /// Reads a folder; skips hidden folders and anything but `.lua` files.
    public static func read(_ directory: String) throws -> AppFolder {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        let manifestURL = root.appendingPathComponent("picloud.toml")
        guard let manifest = try? String(contentsOf: manifestURL, encoding: .utf8) else {
            throw ConfigurationError("\(directory) has no picloud.toml")
        }
        var files: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else {
            throw ConfigurationError("cannot read \(directory)")
        }
        for case let url as URL in walker where url.pathExtension == "lua" {
            let relative = String(url.standardizedFileURL.path.dropFirst(root.path.count + 1))
            guard let source = try? String(contentsOf: url, encoding: .utf8) else {
                throw ConfigurationError("\(relative) is not UTF-8 text")
            }
            files[relative] = source
        }
        return AppFolder(manifest: manifest, files: files)
    }

    /// The `name` the manifest declares.
    public func appName() throws -> String {
        guard let table = try? TOMLTable(string: manifest), let name = table["name"]?.string else {
            throw ConfigurationError("picloud.toml must declare name = \"...\"")
        }
        return name
    }

    /// The body of `PUT /admin/apps/{app}/deployment`.
    public var deploymentBody: [UInt8] {
        (try? LuaJSON.encode(["manifest": .string(manifest), "files": .object(files.mapValues(LuaValue.string))])) ?? []
    }
}
