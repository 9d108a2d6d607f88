import Prometheus

/// The metrics of one PiCloud instance, rendered at `GET /metrics` in Prometheus' text format.
final class PiCloudMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let deliveries: Counter
    let failures: Counter
    let retries: Counter
    let deadLetters: Counter
    let dropped: Counter
    let released: Counter
    let outboxDepth: Gauge
    let handlerDuration: DurationHistogram
    let deliveryLatency: DurationHistogram
    let requests: Counter
    let requestErrors: Counter
    let requestDuration: DurationHistogram
    let fastPathHandOns: Counter
    let realtimeSubscribers: Gauge
    let realtimeChannels: Gauge
    let realtimeBroadcast: Counter
    let realtimeDelivered: Counter
    let realtimeDropped: Counter
    let realtimeReplays: Counter
    let clusterListens: Counter
    let realtimeReplayed: Counter

    init() {
        let buckets: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30)]
        deliveries = registry.makeCounter(name: "picloud_trigger_deliveries_total", help: "Trigger handler runs that succeeded.")
        failures = registry.makeCounter(name: "picloud_trigger_failures_total", help: "Trigger handler runs that failed (each attempt).")
        retries = registry.makeCounter(name: "picloud_trigger_retries_total", help: "Failed deliveries scheduled for another attempt.")
        deadLetters = registry.makeCounter(name: "picloud_dead_letters_total", help: "Deliveries that used up their attempts.")
        dropped = registry.makeCounter(name: "picloud_dead_letter_deliveries_dropped_total", help: "dead_letter handler deliveries given up (never dead-lettered).")
        released = registry.makeCounter(name: "picloud_trigger_released_total", help: "Claimed deliveries given back unstarted, their lease run short in line (no attempt counted).")
        outboxDepth = registry.makeGauge(name: "picloud_outbox_depth", help: "Events waiting in the outbox.")
        handlerDuration = registry.makeDurationHistogram(name: "picloud_trigger_handler_duration_seconds", buckets: buckets, help: "Trigger handler run time.")
        deliveryLatency = registry.makeDurationHistogram(name: "picloud_trigger_start_latency_seconds", buckets: buckets, help: "From an event being due to its handler starting.")
        requests = registry.makeCounter(name: "picloud_endpoint_requests_total", help: "App endpoint requests.")
        requestErrors = registry.makeCounter(name: "picloud_endpoint_errors_total", help: "App endpoint requests whose handler failed.")
        requestDuration = registry.makeDurationHistogram(name: "picloud_endpoint_duration_seconds", buckets: buckets, help: "App endpoint handler time.")
        fastPathHandOns = registry.makeCounter(
            name: "picloud_http_fast_path_handoffs_total",
            help: "Times a connection was handed from the endpoint fast path to the general HTTP pipeline (a request for another route, an event stream, or one it does not read)."
        )
        realtimeSubscribers = registry.makeGauge(name: "picloud_realtime_subscribers", help: "Open realtime (SSE) subscriptions.")
        realtimeChannels = registry.makeGauge(name: "picloud_realtime_channels", help: "Topics with at least one subscriber on this node.")
        realtimeBroadcast = registry.makeCounter(name: "picloud_realtime_events_broadcast_total", help: "Committed events handed to a topic's live subscribers.")
        realtimeDelivered = registry.makeCounter(name: "picloud_realtime_events_delivered_total", help: "Events written to subscribers (one per subscriber).")
        realtimeDropped = registry.makeCounter(name: "picloud_realtime_events_dropped_total", help: "Events subscribers missed and were told so with a gap event.")
        realtimeReplays = registry.makeCounter(name: "picloud_realtime_replays_total", help: "Subscriptions that resumed from a Last-Event-ID.")
        clusterListens = registry.makeCounter(name: "picloud_cluster_listens_total", help: "Times this node (re)started listening to the other nodes on PostgreSQL.")
        realtimeReplayed = registry.makeCounter(name: "picloud_realtime_replayed_events_total", help: "Events sent from the topic history (resumes and subscribers that fell behind).")
    }
}
