/// The recent events of one topic in one process, shared by every subscriber of the topic: each
/// subscriber keeps only the id of the last event it took. The ring holds at most `capacity`
/// events; a subscriber that falls further behind finds the oldest gone, and `read(after:)` tells
/// it exactly which ids it missed (its caller then reads them from the topic history, or sends a
/// gap event). This is the bounded, drop-oldest subscriber buffer, kept once per topic instead of
/// once per subscriber. A pure value: no locks, no I/O.
public struct TopicRing<Payload: Sendable>: Sendable {
    public struct Entry: Sendable {
        public let seq: Int64
        public let payload: Payload
    }

    /// What a subscriber that has taken everything up to some id finds.
    public enum Read: Sendable {
        /// Nothing newer.
        case upToDate
        /// Newer entries in order; `missed` are ids between the subscriber's position and the first
        /// entry that the ring does not hold (dropped as the oldest, or never seen here).
        case entries([Entry], missed: ClosedRange<Int64>?)
    }

    public let capacity: Int
    private var storage: [Entry?]
    private var start = 0
    public private(set) var count = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "a ring holds at least one event")
        self.capacity = capacity
        self.storage = Array(repeating: nil, count: capacity)
    }

    /// The newest id appended, or nil before the first.
    public private(set) var lastSeq: Int64?

    /// The oldest id still held.
    public var firstSeq: Int64? { count == 0 ? nil : storage[start]?.seq }

    /// Appends an event; ignores (and returns false for) an id not newer than the last one, which
    /// is a duplicate or arrived late (subscribers then read it from the history).
    @discardableResult
    public mutating func append(seq: Int64, _ payload: Payload) -> Bool {
        if let lastSeq, seq <= lastSeq { return false }
        let entry = Entry(seq: seq, payload: payload)
        if count == capacity {
            storage[start] = entry
            start = (start + 1) % capacity
        } else {
            storage[(start + count) % capacity] = entry
            count += 1
        }
        lastSeq = seq
        return true
    }

    /// The entries after id `after`, and the ids missing in front of them.
    public func read(after: Int64) -> Read {
        guard let lastSeq, lastSeq > after else { return .upToDate }
        // Ids are increasing: find the first entry newer than `after` by binary search.
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if self[middle].seq <= after { low = middle + 1 } else { high = middle }
        }
        let entries = (low..<count).map { self[$0] }
        let first = entries[0].seq
        return .entries(entries, missed: first > after + 1 ? (after + 1)...(first - 1) : nil)
    }

    private subscript(position: Int) -> Entry { storage[(start + position) % capacity]! }
}
