import Crypto
import Foundation
import Synchronization

/// Random identifiers and secrets.
public enum Identifiers {
    static let crockford = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// A ULID: 48 bits of milliseconds then 80 random bits as 26 Crockford base-32 characters,
    /// so that identifiers sort by creation time.
    public static func ulid(at time: Milliseconds = Clock.now()) -> String {
        var random = SystemRandomNumberGenerator()
        return ulid(at: time, using: &random)
    }

    /// A ULID for a request: its random bits come from a fast generator seeded once from the
    /// system's (two `getrandom` calls per request were a measurable part of answering one).
    /// Unique and time-ordered like any ULID, but predictable: never for anything secret.
    public static func requestID(at time: Milliseconds = Clock.now()) -> String {
        var steps = TwoSteps(first: reserveRequestIDs(1))
        return ulid(at: time, using: &steps)
    }

    /// A ULID for an outbox event, from the generator of ``requestID(at:)``: event ids name
    /// events to handlers and in the API, and grant nothing. Two `getrandom` calls per event were
    /// 4 % of the writer's CPU in a trigger burst, on SQLite's one writer thread.
    public static func eventID(at time: Milliseconds) -> String {
        requestID(at: time)
    }

    private static let requestIDState = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    /// The generator's state for the first of `count` ids (two steps each), taken without a lock
    /// (both event loops make ids): the state only ever advances by a constant, so one atomic add
    /// hands each caller steps of its own.
    private static func reserveRequestIDs(_ count: Int) -> UInt64 {
        requestIDState.wrappingAdd(2 &* UInt64(count) &* SplitMix64.gamma, ordering: .relaxed).oldValue &+ SplitMix64.gamma
    }

    /// Request ids for one thread (an event loop): the same sequence as ``requestID(at:)``, taken
    /// from it `block` ids at a time, so that the threads do not write the shared state for every
    /// request (each such write moves its cache line from the other core).
    public struct RequestIDs {
        private var next: UInt64 = 0
        private var left = 0
        private let block: Int

        public init(block: Int = 64) {
            self.block = block
        }

        public mutating func make(at time: Milliseconds = Clock.now()) -> String {
            if left == 0 {
                next = reserveRequestIDs(block)
                left = block
            }
            left -= 1
            var steps = TwoSteps(first: next)
            next &+= 2 &* SplitMix64.gamma
            return ulid(at: time, using: &steps)
        }
    }

    /// Two consecutive outputs of a ``SplitMix64`` whose next state is `first`.
    private struct TwoSteps: RandomNumberGenerator {
        var first: UInt64
        mutating func next() -> UInt64 {
            defer { first &+= SplitMix64.gamma }
            return SplitMix64.mix(first)
        }
    }

    private static func ulid(at time: Milliseconds, using random: inout some RandomNumberGenerator) -> String {
        let millis = UInt64(max(0, time)) & 0xFFFF_FFFF_FFFF
        let parts = (random.next() & 0xFF_FFFF_FFFF, random.next() & 0xFF_FFFF_FFFF) // 40 bits each
        let alphabet = crockford
        // Written in place: one allocation (the string's) instead of an array and a copy.
        return String(unsafeUninitializedCapacity: 26) { text in
            var index = 0
            func put(_ value: UInt64, shift: Int) {
                text[index] = alphabet[Int((value >> UInt64(shift)) & 31)]
                index += 1
            }
            for shift in stride(from: 45, through: 0, by: -5) { put(millis, shift: shift) }
            for shift in stride(from: 35, through: 0, by: -5) { put(parts.0, shift: shift) }
            for shift in stride(from: 35, through: 0, by: -5) { put(parts.1, shift: shift) }
            return index
        }
    }

    /// `count` random bytes from the system's secure generator.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var random = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &random) }
    }

    /// Random bytes as lowercase hex.
    public static func randomHex(_ bytes: Int) -> String { hex(randomBytes(bytes)) }

    /// URL-safe base64 without padding.
    public static func base64url(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let n = UInt32(bytes[index]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        } else if rest == 2 {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes URL-safe base64 without padding; nil for anything else.
    public static func base64urlDecode(_ text: Substring) -> [UInt8]? {
        guard text.utf8.allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "=") }), text.utf8.count % 4 != 1 else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        return Data(base64Encoded: standard).map { [UInt8]($0) }
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The value of one hex digit (either case), or nil for another byte.
    @inlinable
    public static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// SHA-256 of bytes.
    public static func sha256(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        Array(SHA256.hash(data: Array(bytes)))
    }
}

/// SplitMix64 (Steele, Lea and Flood): a fast, well-mixed, non-cryptographic generator; seeded,
/// it replays (tests print their seed).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= Self.gamma
        return Self.mix(state)
    }

    /// What the state advances by at each step.
    static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The output for a state.
    static func mix(_ state: UInt64) -> UInt64 {
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
