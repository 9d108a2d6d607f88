import Crypto
import Foundation

/// What a subscriber token grants: subscribing to `topics` of `app` until `expiresAt`.
public struct SubscriberClaims: Sendable, Hashable, Codable {
    public var app: String
    public var topics: [String]
    /// Who the token was issued to (the API key of the endpoint call that minted it).
    public var subject: String
    /// Seconds since the epoch.
    public var issuedAt: Int64
    public var expiresAt: Int64

    public init(app: String, topics: [String], subject: String, issuedAt: Int64, expiresAt: Int64) {
        self.app = app
        self.topics = topics
        self.subject = subject
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case app, topics
        case subject = "sub"
        case issuedAt = "iat"
        case expiresAt = "exp"
    }
}

/// The subscriber token codec: `pct_<claims>.<signature>`, both URL-safe base64, where the
/// signature is HMAC-SHA256 of `pct_<claims>` under the app's signing key. Pure: the caller
/// passes the key and the time.
public enum SubscriberToken {
    public static let prefix = "pct_"
    public static let maxLength = 8192
    /// How far the clocks of the node that issued a token and the node that checks it may differ.
    public static let clockSkewSeconds: Int64 = 5

    /// Why a token was refused. Callers answer every one with the same 401: a client must not
    /// learn which check failed.
    public enum Failure: Error, Sendable, Hashable {
        case malformed, badSignature, wrongApp, expired, notYetValid, topicNotAllowed
    }

    public static func encode(_ claims: SubscriberClaims, key: [UInt8]) -> String {
        let key = SymmetricKey(data: key)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let payload = prefix + Identifiers.base64url([UInt8]((try? encoder.encode(claims)) ?? Data()))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(payload.utf8), using: key)
        return payload + "." + Identifiers.base64url(Array(signature))
    }

    /// The claims of a token that is well formed, signed with `key`, issued for `app`, valid at
    /// `now` (seconds) and grants `topic`; throws the first check that failed.
    public static func verify(_ token: String, key: [UInt8], app: String, topic: String, now: Int64) throws(Failure) -> SubscriberClaims {
        let key = SymmetricKey(data: key)
        guard token.utf8.count <= maxLength, token.hasPrefix(prefix) else { throw .malformed }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let signature = Identifiers.base64urlDecode(parts[1]), signature.count == SHA256.byteCount else { throw .malformed }
        // Checked before the claims are even decoded; the comparison takes the same time wherever it differs.
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Array(parts[0].utf8), using: key) else { throw .badSignature }
        guard let json = Identifiers.base64urlDecode(parts[0].dropFirst(prefix.count)),
              let claims = try? JSONDecoder().decode(SubscriberClaims.self, from: Data(json))
        else { throw .malformed }
        // A token of another app would not carry that app's signature either; checked anyway, so
        // the boundary does not rest on keys alone.
        guard claims.app == app else { throw .wrongApp }
        guard claims.issuedAt <= now + clockSkewSeconds else { throw .notYetValid }
        guard now < claims.expiresAt + clockSkewSeconds else { throw .expired }
        guard claims.topics.contains(topic) else { throw .topicNotAllowed }
        return claims
    }
}
