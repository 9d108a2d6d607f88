import Services

/// A path pattern of an endpoint: `/notes`, `/notes/:id`, `/files/*path`.
///
/// Static segments are matched exactly, `:name` matches one segment, `*name` (last only) the
/// rest of the path. More specific patterns win: static beats parameter beats rest.
struct EndpointPattern: Sendable, Hashable {
    enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter(String)
        case rest(String)
    }

    let text: String
    let segments: [Segment]

    init(_ text: String) throws(ServiceError) {
        guard text.hasPrefix("/"), text.utf8.count <= 256 else {
            throw ServiceError(.invalidInput, "'\(text)' must start with '/' and be at most 256 characters")
        }
        var segments: [Segment] = []
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        for (index, part) in parts.enumerated() {
            if part.hasPrefix(":") || part.hasPrefix("*") {
                let name = String(part.dropFirst())
                guard (try? DocField(name)) != nil, !name.contains(".") else {
                    throw ServiceError(.invalidInput, "'\(part)' in '\(text)': a parameter needs a name of letters, digits and _")
                }
                if part.hasPrefix("*") {
                    guard index == parts.count - 1 else { throw ServiceError(.invalidInput, "'\(part)' in '\(text)': a rest parameter must come last") }
                    segments.append(.rest(name))
                } else {
                    segments.append(.parameter(name))
                }
            } else {
                guard part.utf8.allSatisfy(Self.isPathCharacter) else {
                    throw ServiceError(.invalidInput, "'\(part)' in '\(text)' has characters a path segment cannot have")
                }
                segments.append(.literal(String(part)))
            }
        }
        let names = segments.compactMap { segment -> String? in
            switch segment {
            case .parameter(let name), .rest(let name): name
            case .literal: nil
            }
        }
        guard Set(names).count == names.count else { throw ServiceError(.invalidInput, "'\(text)' uses a parameter name twice") }
        self.text = "/" + parts.joined(separator: "/")
        self.segments = segments
    }

    static func isPathCharacter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "-._~@!$&'()+,;=".utf8.contains(byte)
    }

    /// The parameters if `path` (already split into decoded segments) matches.
    func match(_ path: [String]) -> [String: String]? {
        var parameters: [String: String] = [:]
        for (index, segment) in segments.enumerated() {
            switch segment {
            case .literal(let literal):
                guard index < path.count, path[index] == literal else { return nil }
            case .parameter(let name):
                guard index < path.count, !path[index].isEmpty else { return nil }
                parameters[name] = path[index]
            case .rest(let name):
                parameters[name] = path[index...].joined(separator: "/")
                return parameters
            }
        }
        return path.count == segments.count ? parameters : nil
    }

    /// Orders patterns so that the first match is the most specific.
    var specificity: [Int] {
        segments.map { segment in
            switch segment {
            case .literal: 0
            case .parameter: 1
            case .rest: 2
            }
        } + [3]
    }
}
