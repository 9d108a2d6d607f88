import Prometheus

/// The metrics of one PiCloud instance, rendered at `GET /metrics` in Prometheus' text format.
final class PiCloudMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let deliveries: Counter
    let failures: Counter
    let retries: Counter
    let deadLetters: Counter
    let dropped: Counter
    let outboxDepth: Gauge
    let handlerDuration: DurationHistogram
    let deliveryLatency: DurationHistogram
    let requests: Counter
    let requestErrors: Counter
    let requestDuration: DurationHistogram

    init() {
        let buckets: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30)]
        deliveries = registry.makeCounter(name: "picloud_trigger_deliveries_total", help: "Trigger handler runs that succeeded.")
        failures = registry.makeCounter(name: "picloud_trigger_failures_total", help: "Trigger handler runs that failed (each attempt).")
        retries = registry.makeCounter(name: "picloud_trigger_retries_total", help: "Failed deliveries scheduled for another attempt.")
        deadLetters = registry.makeCounter(name: "picloud_dead_letters_total", help: "Deliveries that used up their attempts.")
        dropped = registry.makeCounter(name: "picloud_dead_letter_deliveries_dropped_total", help: "dead_letter handler deliveries given up (never dead-lettered).")
        outboxDepth = registry.makeGauge(name: "picloud_outbox_depth", help: "Events waiting in the outbox.")
        handlerDuration = registry.makeDurationHistogram(name: "picloud_trigger_handler_duration_seconds", buckets: buckets, help: "Trigger handler run time.")
        deliveryLatency = registry.makeDurationHistogram(name: "picloud_trigger_start_latency_seconds", buckets: buckets, help: "From an event being due to its handler starting.")
        requests = registry.makeCounter(name: "picloud_endpoint_requests_total", help: "App endpoint requests.")
        requestErrors = registry.makeCounter(name: "picloud_endpoint_errors_total", help: "App endpoint requests whose handler failed.")
        requestDuration = registry.makeDurationHistogram(name: "picloud_endpoint_duration_seconds", buckets: buckets, help: "App endpoint handler time.")
    }
}
