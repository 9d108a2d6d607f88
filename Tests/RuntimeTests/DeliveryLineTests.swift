@testable import Runtime
import Testing

/// The dispatcher's line of claimed deliveries (pure logic): long for fast handlers, so one claim
/// transaction serves many deliveries; short for slow ones, so no row waits out its lease.
@Suite("Delivery line")
struct DeliveryLineTests {
    let line = DeliveryLine(concurrency: 8, leaseMilliseconds: 60_000)

    @Test("before any handler finished, as many rows wait as run")
    func unknownPace() {
        #expect(line.waiting(handlerMicros: 0) == 8)
    }

    @Test("fast handlers get the longest line; one claim is then half of it")
    func fastHandlers() {
        #expect(line.maximum == 128)
        #expect(line.waiting(handlerMicros: 50) == 128)
        #expect(line.waiting(handlerMicros: 100_000) == 128) // 8 × 15 s / 0.1 s = 1,200, capped
        #expect(DeliveryLine(concurrency: 100, leaseMilliseconds: 60_000).maximum == 200)
    }

    @Test("the line is what the running handlers work off in a quarter of the lease")
    func slowHandlers() {
        // 8 handlers of 1 s each work off 120 rows in 15 s.
        #expect(line.waiting(handlerMicros: 1_000_000) == 120)
        // 10 s each: 12 rows; the last one waits 15 s of its 60 s lease.
        #expect(line.waiting(handlerMicros: 10_000_000) == 12)
        // Slower still: never fewer than the running ones.
        #expect(line.waiting(handlerMicros: 50_000_000) == 8)
        #expect(line.waiting(handlerMicros: Int.max) == 8)
    }

    @Test("the average follows handlers that slow down, an eighth of the way per delivery")
    func average() {
        #expect(DeliveryLine.average(0, adding: 400) == 400)
        #expect(DeliveryLine.average(400, adding: 1200) == 500)
        #expect(DeliveryLine.average(500, adding: 0) == 438)
        var pace = 50
        for _ in 0..<40 { pace = DeliveryLine.average(pace, adding: 10_000_000) }
        #expect(pace > 9_000_000)
        #expect(line.waiting(handlerMicros: pace) <= 14)
    }
}
