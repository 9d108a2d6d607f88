import Services
import Testing

@Suite("ServiceError")
struct ServiceErrorTests {
    struct DiskFault: Error {}

    @Test("keeps code, message and the underlying error apart")
    func fields() {
        let error = ServiceError(.notFound, "no app named 'chat'", underlying: DiskFault())
        #expect(error.code == .notFound)
        #expect(error.code.rawValue == "not_found")
        #expect(error.message == "no app named 'chat'")
        #expect(error.underlying is DiskFault)
        #expect("\(error)" == "not_found: no app named 'chat'")
    }

    @Test("codes are stable strings")
    func codes() {
        let codes: [ServiceError.Code] = [.invalidInput, .unauthorized, .forbidden, .notFound, .methodNotAllowed, .conflict, .payloadTooLarge, .rateLimited, .scriptError, .unavailable, .internal]
        #expect(Set(codes.map(\.rawValue)).count == codes.count)
        #expect(codes.allSatisfy { $0.rawValue.allSatisfy { $0.isLowercase || $0 == "_" } })
    }
}
