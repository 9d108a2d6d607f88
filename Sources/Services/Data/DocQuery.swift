/// A scalar a document filter compares with.
public enum DocFieldValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    case string(String)
}

/// A field of a document, as a dotted path (`address.city`). Validated: letters, digits and `_`,
/// not starting with a digit, at most 8 levels, so it can appear in SQL index expressions.
public struct DocField: Sendable, Hashable, Codable, CustomStringConvertible {
    public let path: String

    public init(_ path: String) throws(ServiceError) {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false)
        guard !path.isEmpty, path.utf8.count <= 128, parts.count <= 8, parts.allSatisfy(Self.isIdentifier) else {
            throw ServiceError(.invalidInput, "invalid field name '\(path)': use letters, digits and _ (not first), dotted for nested fields")
        }
        self.path = path
    }

    static func isIdentifier(_ part: Substring) -> Bool {
        guard let first = part.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return part.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }

    /// The document id (a column, not a JSON field).
    public var isID: Bool { path == "id" }
    public var description: String { path }
}

/// One condition of a filter: `{ age = { gt = 18 } }` is `age gt 18`.
public struct DocCondition: Sendable, Hashable {
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        case eq, ne, gt, gte, lt, lte, `in`, exists, prefix
    }

    public let field: DocField
    public let op: Operator
    public let values: [DocFieldValue]

    /// Checks that the operator fits its values (ordering needs a number or a string, `in` a
    /// non-empty list, `exists` a boolean, `prefix` a string).
    public init(field: DocField, op: Operator, values: [DocFieldValue]) throws(ServiceError) {
        self.field = field
        self.op = op
        self.values = values
        switch op {
        case .eq, .ne:
            guard values.count == 1 else { throw Self.invalid(field, op, "one value") }
        case .gt, .gte, .lt, .lte:
            guard values.count == 1, values[0].isOrderable else { throw Self.invalid(field, op, "a number or a string") }
        case .in:
            guard !values.isEmpty, values.count <= 1000 else { throw Self.invalid(field, op, "a list of 1 to 1000 values") }
        case .exists:
            guard values.count == 1, case .bool = values[0] else { throw Self.invalid(field, op, "true or false") }
        case .prefix:
            guard values.count == 1, case .string = values[0] else { throw Self.invalid(field, op, "a string") }
        }
    }

    static func invalid(_ field: DocField, _ op: Operator, _ wanted: String) -> ServiceError {
        ServiceError(.invalidInput, "filter on '\(field)': '\(op.rawValue)' takes \(wanted)")
    }
}

extension DocFieldValue {
    var isOrderable: Bool {
        switch self {
        case .integer, .double, .string: true
        default: false
        }
    }
}

/// Which field orders the results (the id when nil) and which way.
public struct DocSort: Sendable, Hashable {
    public var field: DocField?
    public var descending: Bool

    public init(field: DocField? = nil, descending: Bool = false) {
        self.field = field
        self.descending = descending
    }
}

/// Where the previous page ended: the sort value and id of its last document.
public struct DocCursor: Sendable, Hashable, Codable {
    public var value: DocFieldValue?
    public var id: String

    public init(value: DocFieldValue?, id: String) {
        self.value = value
        self.id = id
    }
}

/// A find: conditions (all must hold), order, page size and position.
public struct DocQuery: Sendable, Hashable {
    public var filter: [DocCondition]
    public var sort: DocSort
    public var limit: Int
    public var after: DocCursor?

    public init(filter: [DocCondition] = [], sort: DocSort = DocSort(), limit: Int = 50, after: DocCursor? = nil) {
        self.filter = filter
        self.sort = sort
        self.limit = limit
        self.after = after
    }
}

/// A field the manifest declares as indexed in a collection.
public struct DocIndex: Sendable, Hashable {
    public var collection: String
    public var field: DocField

    public init(collection: String, field: DocField) {
        self.collection = collection
        self.field = field
    }
}
