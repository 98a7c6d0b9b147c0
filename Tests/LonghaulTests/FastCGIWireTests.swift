import Testing

@testable import FastCGI

/// The bytes the server writes before a body, and the parameters it reads, without a socket.
@Suite(.timeLimit(.minutes(1))) struct FastCGIWireTests {
    @Test(arguments: [
        200, 201, 202, 204, 286, 303, 304, 400, 403, 404, 405, 409, 413, 414, 415, 422, 429, 500, 502, 503, 504, 299,
        599,
    ])
    func statusLineIsCodeAndReason(_ status: Int) {
        var head: [UInt8] = []
        FastCGIServer.appendStatusLine(status, to: &head)
        #expect(String(decoding: head, as: UTF8.self) == "Status: \(status) \(reasonPhrase(status))\r\n")
    }

    @Test func headerBlockDropsLineBreaksFromValues() {
        let response = FastCGIResponse(
            status: 200, headers: [HeaderField("X-A", "one\r\nX-Injected: 1"), HeaderField("X-B", "a\rb\nc")])
        let head = String(decoding: FastCGIServer.headerBlock(response), as: UTF8.self)
        #expect(head == "Status: 200 OK\r\nX-A: oneX-Injected: 1\r\nX-B: abc\r\n")
    }

    @Test(arguments: [0, 7, 10, 99, 875, 1_048_576, Int.max])
    func headEndsWithTheLengthAndTheBlankLine(_ value: Int) {
        var bytes: [UInt8] = Array("X".utf8)
        ResponseHeadEnd.append(contentLength: value, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "X\(value)\r\n\r\n")
        #expect(bytes.count - 1 == ResponseHeadEnd.count(contentLength: value))
        #expect(bytes.count - 1 <= ResponseHeadEnd.maxCount)
    }

    @Test func parametersLastEntryWinsAndHeadersAreFoundByName() {
        let entries = ["REQUEST_METHOD=GET", "HTTP_HX_REQUEST=false", "NOEQUALS", "HTTP_HX_REQUEST=true", "EMPTY="]
        let request = FastCGIRequest(parameters: Self.parameters(entries))
        #expect(request.method == "GET")
        #expect(request.header("hx-request") == "true")
        #expect(request.header("HX-Request") == "true")
        #expect(request.header("X-Missing") == nil)
        #expect(request.params == ["REQUEST_METHOD": "GET", "HTTP_HX_REQUEST": "true", "EMPTY": ""])
        #expect(request.path == "/")
        #expect(request.contentType == nil)
    }

    /// The dictionary the parameters replace compared names as Strings: U+212A KELVIN SIGN equals "K" there.
    @Test func parameterNamesCompareAsStrings() {
        for (entries, expected) in [
            (["HTTP_K=a", "HTTP_\u{212A}=b"], "b"), (["HTTP_\u{212A}=b", "HTTP_K=a"], "a"), (["HTTP_\u{212A}=b"], "b"),
        ] {
            let request = FastCGIRequest(parameters: Self.parameters(entries))
            #expect(request.header("k") == expected)
            #expect(request.params.count == 1)
            #expect(request.params["HTTP_K"] == expected)
            let viaDictionary = FastCGIRequest(params: request.params)
            #expect(viaDictionary.header("K") == expected)
        }
    }

    /// Parameters from `NAME=VALUE` entries, as libfcgi's `envp` would hold them.
    private static func parameters(_ entries: [String]) -> FastCGIParameters {
        let bytes = Array(entries.joined().utf8)
        var ranges: [Range<Int>] = []
        var end = 0
        for entry in entries {
            ranges.append(end..<end + entry.utf8.count)
            end += entry.utf8.count
        }
        return bytes.withUnsafeBufferPointer { all in
            FastCGIParameters(environment: ranges.map { UnsafeBufferPointer(rebasing: all[$0]) })
        }
    }
}
