import AsyncAlgorithms
import Foundation
import NIOCore
import Prometheus
import ServiceLifecycle
import Services
import Synchronization

/// The in-process broadcaster: live subscriptions by `(app, topic)` on this node.
///
/// Storage hands it each committed event in commit order (``broadcast(_:)``). It appends the
/// event, encoded once as an SSE frame (already framed as an HTTP chunk), to the topic's
/// ``TopicRing`` and hands the frame to every
/// *live* stream of the topic: one task per event loop, which writes it to each of its
/// connections. No task per subscriber wakes up, and memory per subscriber is a position, not a
/// queue. A stream that is not live (catching up after connecting, resuming, or after falling
/// behind a slow network) pulls from the ring and the topic history until it reaches the newest
/// event, then goes live again under the channel's lock, so no event slips between the two.
///
/// As a `Service`, it ticks heartbeats and token expiries and ends every stream at shutdown.
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
    let quota: SubscriberQuota

    init(capacity: Int, heartbeatInterval: Duration, limits: SubscriberLimits = SubscriberLimits(), metrics: PiCloudMetrics) {
        self.capacity = capacity
        self.heartbeatInterval = heartbeatInterval
        self.quota = SubscriberQuota(limits: limits)
        self.metrics = metrics
    }

    // MARK: Publishing

    /// Runs on the storage writer's thread right after the commit: appends and hands the frame to
    /// the event loops, nothing more.
    func broadcast(_ event: TopicEvent) {
        guard let channel = channels.withLock({ $0[Key(app: event.app, topic: event.topic)] }) else { return }
        let frame = Self.chunk(Self.frame(event))
        let live = channel.state.withLock { state -> [ObjectIdentifier: RealtimeChannel.LoopGroup]? in
            guard !state.closed, state.ring.append(seq: event.seq, frame) else { return nil }
            return state.live
        }
        guard let live else { return }
        metrics.realtimeBroadcast.increment()
        let metrics = metrics
        for group in live.values where !group.streams.isEmpty {
            let streams = group.streams
            group.loop.execute {
                var delivered = 0
                for stream in streams.values where stream.value.deliver(seq: event.seq, frame: frame) { delivered += 1 }
                metrics.realtimeDelivered.increment(by: Int64(delivered))
            }
        }
    }

    /// `bytes` as one chunk of HTTP/1.1's chunked transfer coding. Live events are framed once per
    /// event, not once per subscriber, and written below the HTTP encoder (see ``RealtimeStream``).
    static func chunk(_ bytes: ByteBuffer) -> ByteBuffer {
        var chunk = ByteBuffer()
        chunk.reserveCapacity(bytes.readableBytes + 12)
        chunk.writeString(String(bytes.readableBytes, radix: 16))
        chunk.writeStaticString("\r\n")
        chunk.writeImmutableBuffer(bytes)
        chunk.writeStaticString("\r\n")
        return chunk
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

    enum Joining {
        case joined(RealtimeMembership)
        /// The server, the app or the client address holds as many streams as it may.
        case refused(SubscriberQuota.Refusal)
        case shuttingDown
    }

    /// Registers a stream with its topic's channel (not live yet).
    func join(_ stream: NIOLoopBound<RealtimeStream>, app: String, topic: String, client: String, expiresAt: Milliseconds?) -> Joining {
        guard !shuttingDown.load(ordering: .acquiring) else { return .shuttingDown }
        do {
            try quota.admit(app: app, client: client)
        } catch {
            return .refused(error)
        }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let key = Key(app: app, topic: topic)
        let joined = channels.withLock { channels -> (RealtimeChannel, Bool)? in
            // Checked again under the lock: shutdown clears the channels under it.
            guard !shuttingDown.load(ordering: .acquiring) else { return nil }
            let existing = channels[key]
            let channel = existing ?? RealtimeChannel(key: key, capacity: capacity)
            if existing == nil { channels[key] = channel }
            channel.state.withLock { state in
                state.members[id] = RealtimeChannel.Member(stream: stream, expiresAt: expiresAt)
                if let expiresAt { state.earliestExpiry = min(state.earliestExpiry ?? expiresAt, expiresAt) }
            }
            return (channel, existing == nil)
        }
        guard let (channel, created) = joined else {
            quota.release(app: app, client: client)
            return .shuttingDown
        }
        if created { metrics.realtimeChannels.increment() }
        metrics.realtimeSubscribers.increment()
        return .joined(RealtimeMembership(hub: self, channel: channel, id: id, loop: stream.eventLoop, client: client))
    }

    /// Joins the request's topic, or throws what to answer (a refusal of the quota, shutdown).
    func enter(_ stream: NIOLoopBound<RealtimeStream>, _ request: RealtimeRequest, client: String) throws -> RealtimeMembership {
        switch join(stream, app: request.app, topic: request.topic, client: client, expiresAt: request.expiresAt) {
        case .joined(let membership): return membership
        case .refused(let refusal): throw RealtimeStream.refusal(refusal)
        case .shuttingDown: throw ServiceError(.unavailable, "the server is shutting down")
        }
    }

    /// Leaves; the last stream out removes the channel. Safe to call more than once.
    func leave(_ membership: RealtimeMembership) {
        let channel = membership.channel
        var wasMember = false
        let removed = channels.withLock { channels -> Bool in
            let empty = channel.state.withLock { state -> Bool in
                wasMember = state.members.removeValue(forKey: membership.id) != nil
                state.removeLive(membership.id, loop: membership.loop)
                guard state.members.isEmpty, !state.closed else { return false }
                state.closed = true
                return true
            }
            guard empty, channels[channel.key] === channel else { return false }
            channels.removeValue(forKey: channel.key)
            return true
        }
        if removed { metrics.realtimeChannels.decrement() }
        if wasMember {
            quota.release(app: channel.key.app, client: membership.client)
            metrics.realtimeSubscribers.decrement()
        }
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
            channels.keys.filter { $0.app == app }.compactMap { channels.removeValue(forKey: $0) }
        }
        metrics.realtimeChannels.decrement(by: Double(closed.count))
        for channel in closed { channel.close(reason: "app_deleted") }
    }

    /// Ends the streams of an app's topics that `stillOpen` no longer allows (deleted on another
    /// node, or no longer external).
    func revalidate(app: String, stillOpen: (String) -> Bool) {
        let topics = channels.withLock { channels in channels.keys.filter { $0.app == app }.map(\.topic) }
        for topic in topics where !stillOpen(topic) { close(app: app, topic: topic, reason: "topic_closed") }
    }

    /// After this node could not hear the others (a lost database connection), hands every
    /// channel the events committed meanwhile, from the history, as if they had been broadcast.
    /// Streams that miss events the history no longer holds get a gap event when they notice.
    func resync(storage: any StorageBackend, history: TopicHistoryDefaults) async {
        let all = channels.withLock { Array($0.values) }
        for channel in all {
            let last = channel.state.withLock { $0.ring.lastSeq }
            do {
                var after = last ?? 0
                if last == nil {
                    guard let newest = try await storage.topicHistory(app: channel.key.app, topic: channel.key.topic, after: .max, limit: 0, now: Clock.now(), defaults: history)?.lastSeq else { continue }
                    after = max(0, newest - Int64(capacity))
                }
                guard let (events, _) = try await storage.topicHistory(app: channel.key.app, topic: channel.key.topic, after: after, limit: capacity, now: Clock.now(), defaults: history) else { continue }
                for event in events { broadcast(event) }
            } catch {
                continue
            }
        }
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
                for channel in all { channel.forEachStream { $0.heartbeat() } }
            }
            let now = Clock.now()
            for channel in all { channel.expire(now: now) }
        }
        let all = channels.withLock { channels in
            shuttingDown.store(true, ordering: .releasing)
            defer { channels.removeAll() }
            return Array(channels.values)
        }
        metrics.realtimeChannels.decrement(by: Double(all.count))
        for channel in all { channel.close(reason: nil) }
    }
}

/// One topic's streams on this node, and its recent events.
final class RealtimeChannel: Sendable {
    struct Member: Sendable {
        var stream: NIOLoopBound<RealtimeStream>
        var expiresAt: Milliseconds?
    }

    /// The live streams of one event loop.
    struct LoopGroup: Sendable {
        var loop: any EventLoop
        var streams: [Int: NIOLoopBound<RealtimeStream>] = [:]
    }

    struct State: Sendable {
        var ring: TopicRing<ByteBuffer>
        var members: [Int: Member] = [:]
        /// Streams that are caught up, by event loop: they get each new event as it is broadcast.
        var live: [ObjectIdentifier: LoopGroup] = [:]
        var closed = false
        var earliestExpiry: Milliseconds?

        mutating func removeLive(_ id: Int, loop: any EventLoop) {
            let key = ObjectIdentifier(loop)
            guard live[key]?.streams.removeValue(forKey: id) != nil else { return }
            if live[key]?.streams.isEmpty == true { live.removeValue(forKey: key) }
        }
    }

    let key: RealtimeHub.Key
    let state: Mutex<State>

    init(key: RealtimeHub.Key, capacity: Int) {
        self.key = key
        self.state = Mutex(State(ring: TopicRing(capacity: capacity)))
    }

    /// Runs `body` for every stream, on each stream's event loop (one task per loop).
    func forEachStream(_ body: @escaping @Sendable (RealtimeStream) -> Void) {
        let members = state.withLock { $0.members.values.map(\.stream) }
        for (_, streams) in Dictionary(grouping: members, by: { ObjectIdentifier($0.eventLoop) }) {
            streams[0].eventLoop.execute { for stream in streams { body(stream.value) } }
        }
    }

    func expire(now: Milliseconds) {
        let expired = state.withLock { state -> [NIOLoopBound<RealtimeStream>] in
            guard let earliest = state.earliestExpiry, earliest <= now else { return [] }
            let expired = state.members.values.filter { ($0.expiresAt ?? .max) <= now }.map(\.stream)
            state.earliestExpiry = state.members.values.compactMap(\.expiresAt).filter { $0 > now }.min()
            return expired
        }
        for stream in expired { stream.eventLoop.execute { stream.value.end(event: "expired", reason: "token_expired") } }
    }

    func close(reason: String?) {
        state.withLock { $0.closed = true }
        forEachStream { $0.end(event: reason == nil ? nil : "closed", reason: reason) }
    }
}

/// A stream's place in its channel.
struct RealtimeMembership: Sendable {
    let hub: RealtimeHub
    let channel: RealtimeChannel
    let id: Int
    let loop: any EventLoop
    /// The address the stream's connection came from (counted per client).
    let client: String

    /// What the stream, having sent everything up to `position`, should send next; when that is
    /// nothing, it becomes live (atomically with the check: no broadcast slips in between).
    func catchUp(after position: Int64) -> TopicRing<ByteBuffer>.Read {
        channel.state.withLock { state in
            let read = state.ring.read(after: position)
            if case .upToDate = read, !state.closed, let member = state.members[id] {
                state.live[ObjectIdentifier(loop), default: RealtimeChannel.LoopGroup(loop: loop)].streams[id] = member.stream
            }
            return read
        }
    }

    /// What the ring holds after `position`, without becoming live.
    func peek(after position: Int64) -> TopicRing<ByteBuffer>.Read {
        channel.state.withLock { $0.ring.read(after: position) }
    }

    /// Stops live delivery (the stream fell behind and catches up by itself).
    func pause() {
        channel.state.withLock { $0.removeLive(id, loop: loop) }
    }

    func leave() { hub.leave(self) }
}
