import AsyncAlgorithms
import Foundation
import NIOCore
import Prometheus
import ServiceLifecycle
import Services
import Synchronization

/// The in-process broadcaster: live subscribers by `(app, topic)` on this node.
///
/// Storage hands it each committed event in commit order (``broadcast(_:)``); it appends the
/// event, encoded once as an SSE frame, to the topic's ``TopicRing`` and wakes the subscribers
/// waiting there. Each subscriber keeps only the id of the last event it took, so memory does not
/// grow with subscribers times events; one that falls more than `capacity` events behind finds the
/// oldest gone and is told which ids it missed. A topic's channel exists while it has
/// subscribers. As a `Service`, it ticks heartbeats and token expiries and ends every stream at
/// shutdown.
final class RealtimeHub: RealtimeBroadcasting, Service, Sendable {
    struct Key: Hashable, Sendable {
        var app: String
        var topic: String
    }

    let capacity: Int
    let heartbeatInterval: Duration
    let metrics: PiCloudMetrics
    private let channels = Mutex<[Key: RealtimeChannel]>([:])
    private let shuttingDown = Atomic<Bool>(false)
    private let nextID = Atomic<Int>(0)
    private let subscriberCount = Atomic<Int>(0)
    /// Bumped at every heartbeat tick; a subscriber that has not seen the current one sends one.
    let heartbeatGeneration = Atomic<Int>(0)

    init(capacity: Int, heartbeatInterval: Duration, metrics: PiCloudMetrics) {
        self.capacity = capacity
        self.heartbeatInterval = heartbeatInterval
        self.metrics = metrics
    }

    // MARK: Publishing

    func broadcast(_ event: TopicEvent) {
        guard let channel = channels.withLock({ $0[Key(app: event.app, topic: event.topic)] }) else { return }
        let frame = Self.frame(event)
        let woken = channel.state.withLock { state -> (waiters: [Int: RealtimeChannel.Waiter], ring: TopicRing<ByteBuffer>)? in
            guard !state.closed, state.ring.append(seq: event.seq, frame) else { return nil }
            guard !state.waiters.isEmpty else { return ([:], state.ring) }
            defer { state.waiters = [:] }
            return (state.waiters, state.ring)
        }
        guard let woken else { return }
        metrics.realtimeBroadcast.increment()
        guard !woken.waiters.isEmpty else { return }
        // This runs on the storage writer's thread: hand big fan-outs to a task.
        if woken.waiters.count <= 16 {
            Self.wake(woken.waiters, ring: woken.ring)
        } else {
            Task { Self.wake(woken.waiters, ring: woken.ring) }
        }
    }

    private static func wake(_ waiters: [Int: RealtimeChannel.Waiter], ring: TopicRing<ByteBuffer>) {
        // Most waiters took the same last event: read the ring once per position.
        var reads: [Int64: RealtimeWake] = [:]
        for waiter in waiters.values {
            let wake: RealtimeWake
            if let known = reads[waiter.after] {
                wake = known
            } else {
                switch ring.read(after: waiter.after) {
                case .upToDate: wake = .heartbeat // cannot happen: the ring just got a newer event
                case .entries(let entries, let missed): wake = .events(entries, missed: missed)
                }
                reads[waiter.after] = wake
            }
            waiter.continuation.resume(returning: wake)
        }
    }

    /// `id: <seq>` and one `data:` line of JSON: `{"id","topic","message","published_at"}`.
    static func frame(_ event: TopicEvent) -> ByteBuffer {
        let id = String(event.seq)
        let data = EventJSON.object([
            ("id", EventJSON.string(id)), ("topic", EventJSON.string(event.topic)), ("message", event.message), ("published_at", EventJSON.integer(event.publishedAt)),
        ])
        var buffer = ByteBuffer()
        buffer.reserveCapacity(data.count + id.utf8.count + 16)
        buffer.writeString("id: \(id)\ndata: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        return buffer
    }

    // MARK: Subscribing

    /// Joins a topic's channel; nil while the server shuts down. `expiresAt` (ms) ends the
    /// subscription when the token that allowed it expires.
    func subscribe(app: String, topic: String, expiresAt: Milliseconds?) -> RealtimeSubscription? {
        guard !shuttingDown.load(ordering: .acquiring) else { return nil }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let key = Key(app: app, topic: topic)
        let generation = heartbeatGeneration.load(ordering: .relaxed)
        let (channel, created) = channels.withLock { channels -> (RealtimeChannel, Bool) in
            let existing = channels[key]
            let channel = existing ?? RealtimeChannel(key: key, capacity: capacity)
            if existing == nil { channels[key] = channel }
            channel.state.withLock { state in
                state.members[id] = RealtimeChannel.Member(expiresAt: expiresAt, heartbeat: generation)
                if let expiresAt { state.earliestExpiry = min(state.earliestExpiry ?? expiresAt, expiresAt) }
            }
            return (channel, existing == nil)
        }
        if created { metrics.realtimeChannels.increment() }
        metrics.realtimeSubscribers.set(Int64(subscriberCount.add(1, ordering: .relaxed).newValue))
        return RealtimeSubscription(hub: self, channel: channel, id: id)
    }

    /// Leaves; the last subscriber out removes the channel.
    func unsubscribe(_ subscription: RealtimeSubscription) {
        let channel = subscription.channel
        var waiter: RealtimeChannel.Waiter?
        var wasMember = false
        let removed = channels.withLock { channels -> Bool in
            let empty = channel.state.withLock { state -> Bool in
                wasMember = state.members.removeValue(forKey: subscription.id) != nil
                waiter = state.waiters.removeValue(forKey: subscription.id)
                guard state.members.isEmpty, !state.closed else { return false }
                state.closed = true
                return true
            }
            guard empty, channels[channel.key] === channel else { return false }
            channels.removeValue(forKey: channel.key)
            return true
        }
        waiter?.continuation.resume(returning: .closed(reason: nil))
        if removed { metrics.realtimeChannels.decrement() }
        if wasMember { metrics.realtimeSubscribers.set(Int64(subscriberCount.subtract(1, ordering: .relaxed).newValue)) }
    }

    /// Ends every stream of a topic (deleted, no longer external, or its auth mode changed):
    /// subscribers reconnect and are checked again.
    func close(app: String, topic: String, reason: String) {
        guard let channel = channels.withLock({ $0.removeValue(forKey: Key(app: app, topic: topic)) }) else { return }
        metrics.realtimeChannels.decrement()
        channel.close(reason: reason)
    }

    /// Ends every stream of an app (deleted).
    func close(app: String) {
        let closed = channels.withLock { channels -> [RealtimeChannel] in
            let keys = channels.keys.filter { $0.app == app }
            return keys.compactMap { channels.removeValue(forKey: $0) }
        }
        metrics.realtimeChannels.decrement(by: Double(closed.count))
        for channel in closed { channel.close(reason: "app_deleted") }
    }

    var channelCount: Int { channels.withLock { $0.count } }

    // MARK: Ticking

    func run() async throws {
        let tick = min(heartbeatInterval, .seconds(1))
        var lastHeartbeat = ContinuousClock.now
        for await _ in AsyncTimerSequence.repeating(every: tick).cancelOnGracefulShutdown() {
            let all = channels.withLock { Array($0.values) }
            if ContinuousClock.now - lastHeartbeat >= heartbeatInterval - .milliseconds(50) {
                lastHeartbeat = ContinuousClock.now
                let generation = heartbeatGeneration.add(1, ordering: .relaxed).newValue
                for channel in all { channel.heartbeat(generation) }
            }
            let now = Clock.now()
            for channel in all { channel.expire(now: now) }
        }
        shuttingDown.store(true, ordering: .releasing)
        let all = channels.withLock { channels in
            defer { channels.removeAll() }
            return Array(channels.values)
        }
        metrics.realtimeChannels.decrement(by: Double(all.count))
        for channel in all { channel.close(reason: nil) }
    }
}

/// What a waiting subscriber wakes up to.
enum RealtimeWake: Sendable {
    /// New events in order, and ids missed in front of them (read them from the history).
    case events([TopicRing<ByteBuffer>.Entry], missed: ClosedRange<Int64>?)
    case heartbeat
    /// The token that allowed the subscription expired.
    case expired
    /// The channel closed (shutdown, topic changed or deleted) or the subscription was cancelled.
    case closed(reason: String?)
}

/// One topic's subscribers on this node, and its recent events.
final class RealtimeChannel: Sendable {
    struct Waiter: Sendable {
        var after: Int64
        var continuation: CheckedContinuation<RealtimeWake, Never>
    }

    struct Member: Sendable {
        var expiresAt: Milliseconds?
        var heartbeat: Int
        var cancelled = false
    }

    struct State: Sendable {
        var ring: TopicRing<ByteBuffer>
        var members: [Int: Member] = [:]
        var waiters: [Int: Waiter] = [:]
        var closed = false
        var closeReason: String?
        var earliestExpiry: Milliseconds?
    }

    let key: RealtimeHub.Key
    let state: Mutex<State>

    init(key: RealtimeHub.Key, capacity: Int) {
        self.key = key
        self.state = Mutex(State(ring: TopicRing(capacity: capacity)))
    }

    /// What subscriber `id`, having taken everything up to `after`, should do next; waits when
    /// there is nothing.
    func next(id: Int, after: Int64, generation: Int) async -> RealtimeWake {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<RealtimeWake, Never>) in
                let ready = state.withLock { state -> RealtimeWake? in
                    guard !state.closed, let member = state.members[id], !member.cancelled else { return .closed(reason: state.closeReason) }
                    if case .entries(let entries, let missed) = state.ring.read(after: after) { return .events(entries, missed: missed) }
                    if let expiresAt = member.expiresAt, expiresAt <= Clock.now() { return .expired }
                    if member.heartbeat < generation {
                        state.members[id]?.heartbeat = generation
                        return .heartbeat
                    }
                    state.waiters[id] = Waiter(after: after, continuation: continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                state.members[id]?.cancelled = true
                return state.waiters.removeValue(forKey: id)
            }
            waiter?.continuation.resume(returning: .closed(reason: nil))
        }
    }

    func heartbeat(_ generation: Int) {
        let waiters = state.withLock { state in
            defer { state.waiters = [:] }
            for id in state.waiters.keys { state.members[id]?.heartbeat = generation }
            return state.waiters
        }
        for waiter in waiters.values { waiter.continuation.resume(returning: .heartbeat) }
    }

    func expire(now: Milliseconds) {
        let expired = state.withLock { state -> [Waiter] in
            guard let earliest = state.earliestExpiry, earliest <= now else { return [] }
            var expired: [Waiter] = []
            for (id, member) in state.members {
                guard let expiresAt = member.expiresAt, expiresAt <= now, let waiter = state.waiters.removeValue(forKey: id) else { continue }
                expired.append(waiter)
            }
            // Members past their expiry that are busy writing find out at their next wait.
            state.earliestExpiry = state.members.values.compactMap { $0.expiresAt }.filter { $0 > now }.min()
            return expired
        }
        for waiter in expired { waiter.continuation.resume(returning: .expired) }
    }

    func close(reason: String?) {
        let waiters = state.withLock { state in
            state.closed = true
            state.closeReason = reason
            defer { state.waiters = [:] }
            return state.waiters
        }
        for waiter in waiters.values { waiter.continuation.resume(returning: .closed(reason: reason)) }
    }
}

/// One subscriber's handle on its channel.
final class RealtimeSubscription: Sendable {
    let hub: RealtimeHub
    let channel: RealtimeChannel
    let id: Int

    init(hub: RealtimeHub, channel: RealtimeChannel, id: Int) {
        self.hub = hub
        self.channel = channel
        self.id = id
    }

    func next(after: Int64) async -> RealtimeWake {
        await channel.next(id: id, after: after, generation: hub.heartbeatGeneration.load(ordering: .relaxed))
    }

    func cancel() { hub.unsubscribe(self) }
}
