import Curl
import FastCGI
import Testing

@testable import LLM
@testable import Longhaul

/// Header values read as bytes where `Character`s used to be: the same results as the `String` forms they replace.
@Suite(.timeLimit(.minutes(1))) struct HeaderBytesTests {
    /// The media type as the `Character` form read it (prefix before `;`, whitespace removed, lower-cased).
    private static func characterMediaType(_ contentType: String) -> String? {
        let type = String(contentType.prefix { $0 != ";" }.filter { !$0.isWhitespace }).lowercased()
        return type.isEmpty ? nil : type
    }

    @Test(arguments: [
        "application/json", "Application/JSON; charset=utf-8", " application/x-www-form-urlencoded ;q=1",
        "text/plain;", ";", "", "  ", "multipart/form-data; boundary=X", "APPLICATION/\tJSON", "a\r\nb",
        "application/json\u{A0}", "Ünicode/Type", "x;y;z", "\u{85}text/html",
    ])
    func mediaTypeReadsAsTheCharacterFormDid(contentType: String) {
        let request = Request(
            raw: FastCGIRequest(params: ["REQUEST_METHOD": "POST", "CONTENT_TYPE": contentType]), path: "/")
        #expect(request.mediaType == Self.characterMediaType(contentType))
    }

    @Test func responseHeadersAreFoundByNameWhateverItsCase() {
        let head = HTTPResponseHead(
            status: 200,
            headers: [
                HTTPHeader("Content-Type", "text/event-stream"), HTTPHeader("request-id", "req_1"),
                HTTPHeader("X-RateLimit-Remaining-Requests", "7"),
            ])
        #expect(head.header("content-type") == "text/event-stream")
        #expect(head.header("CONTENT-TYPE") == "text/event-stream")
        #expect(head.header("Request-Id") == "req_1")
        #expect(head.header("x-ratelimit-remaining-requests") == "7")
        #expect(head.header("x-ratelimit-remaining-request") == nil)
        #expect(head.header("content-typ") == nil)
        #expect(head.header("") == nil)
    }

    @Test func theDoneSentinelIsRecognisedAsTrimmingFoundIt() {
        let wire = AnthropicWireFormat()
        for data in ["[DONE]", " [DONE] ", "\t\r\n[DONE]\n", "\u{A0}[DONE]\u{2003}", "\u{85}[DONE]"] {
            #expect(wire.isDoneSentinel(SSEEvent(name: "message", data: data)), "\(data)")
        }
        for data in ["", " ", "[DONE", "[DONE]x", #"{"type":"message_stop"}"#, "[1]", "\u{A0}{}", "x[DONE]"] {
            #expect(!wire.isDoneSentinel(SSEEvent(name: "message", data: data)), "\(data)")
        }
    }
}
