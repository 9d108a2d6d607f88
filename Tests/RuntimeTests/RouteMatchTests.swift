import Testing
@testable import Runtime

/// The byte-level matchers that look at every request's target before the router does.
@Suite("Request target matchers")
struct RouteMatchTests {
    @Test("realtime subscribe paths: /apps/{app}/realtime/{topic}, a query may follow, nothing else")
    func realtime() {
        let cases: [(String, (String, String)?)] = [
            ("/apps/chat/realtime/room%3Alobby", ("chat", "room%3Alobby")),
            ("/apps/chat/realtime/t?last_event_id=4&token=x/y", ("chat", "t")),
            ("/apps/é/realtime/näh", ("é", "näh")),
            ("/apps/chat/realtime/", nil), ("/apps/chat/realtime", nil), ("/apps//realtime/t", nil),
            ("/apps/chat/realtime/t/more", nil), ("/apps/chat/api/realtime/t", nil), ("/app/chat/realtime/t", nil),
            ("apps/chat/realtime/t", nil), ("/apps/chat/realtimex/t", nil), ("/apps/chat/realtime?x=/t", nil), ("", nil),
        ]
        for (target, expected) in cases {
            let matched = RealtimeRequest.match(target).map { (String($0.app), String($0.topic)) }
            #expect(matched?.0 == expected?.0 && matched?.1 == expected?.1, "\(target)")
        }
    }

    @Test("path and query split at the first '?'")
    func split() {
        #expect(EndpointStream.split("/a/b?x=1?y") == ("/a/b", "x=1?y"))
        #expect(EndpointStream.split("/a/b") == ("/a/b", nil))
        #expect(EndpointStream.split("/ä?") == ("/ä", ""))
    }
}
