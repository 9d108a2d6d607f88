@testable import Runtime
import Testing

/// The dispatcher's doorbell (pure logic): a ring asks for a claim until a claim that started after
/// it answers it; a nudge only wakes the loop; neither is lost between two waits.
@Suite("Doorbell")
struct DoorbellTests {
    @Test("a claim is wanted at first, after a ring, and until a claim that began after the ring")
    func claimWanted() {
        let doorbell = Doorbell()
        #expect(doorbell.isClaimWanted)
        doorbell.claimed(through: doorbell.ringsSoFar)
        #expect(!doorbell.isClaimWanted)
        doorbell.nudge()
        #expect(!doorbell.isClaimWanted)
        // A claim began, then a ring came: that claim does not answer it.
        let before = doorbell.ringsSoFar
        doorbell.ring()
        doorbell.claimed(through: before)
        #expect(doorbell.isClaimWanted)
        doorbell.claimed(through: doorbell.ringsSoFar)
        #expect(!doorbell.isClaimWanted)
    }

    @Test("a ring or a nudge while nobody waits ends the next wait at once")
    func keptWakeUps() async {
        let doorbell = Doorbell()
        let clock = ContinuousClock()
        doorbell.nudge()
        let nudged = await clock.measure { await doorbell.wait(timeout: .seconds(30)) }
        doorbell.ring()
        let rung = await clock.measure { await doorbell.wait(timeout: .seconds(30)) }
        let waiting = Task { await doorbell.wait(timeout: .seconds(30)) }
        try? await Task.sleep(for: .milliseconds(50))
        let woken = await clock.measure {
            doorbell.nudge()
            await waiting.value
        }
        // Any of them waiting out the 30 s timeout would show here; the bound is far from any
        // scheduler's delay.
        #expect(nudged < .seconds(10) && rung < .seconds(10) && woken < .seconds(10))
    }
}
