/// Rules for names that appear in URLs, paths and SQL identifiers.
public enum Names {
    /// An app name: 1 to 40 lowercase letters, digits and '-', starting with a letter.
    public static func validateApp(_ name: String) throws(ServiceError) {
        guard (1...40).contains(name.utf8.count), let first = name.utf8.first, isLower(first),
              name.utf8.allSatisfy({ isLower($0) || isDigit($0) || $0 == UInt8(ascii: "-") })
        else {
            throw ServiceError(.invalidInput, "invalid app name '\(name)': use 1 to 40 lowercase letters, digits and '-', starting with a letter")
        }
    }

    /// A collection, secret or key name: 1 to 64 letters, digits, '_', '-' and '.'.
    public static func validateIdentifier(_ name: String, what: String) throws(ServiceError) {
        guard (1...64).contains(name.utf8.count),
              name.utf8.allSatisfy({ isLower($0) || isUpper($0) || isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") })
        else {
            throw ServiceError(.invalidInput, "invalid \(what) '\(name)': use 1 to 64 letters, digits, '_', '-' and '.'")
        }
    }

    static func isLower(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") }
    static func isUpper(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") }
    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
