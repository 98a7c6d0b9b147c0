import Curl
import Foundation
import LLM
import Logging
import LonghaulTestSupport
import Testing

/// The client against the repository's mock: deltas that arrive together reach the consumer as one delta, with the
/// same text and the same facts as one delta each.
@Suite(.timeLimit(.minutes(2))) struct HTTPLLMClientBatchingTests {
    private let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    private func complete(
        _ prompt: String, provider: LLMProvider, mock: MockLLMServer, http: CurlHTTPClient
    ) async throws -> (deltas: [String], info: LLMCompletionInfo?) {
        try await complete(prompt, provider: provider, baseURL: mock.baseURL, http: http)
    }

    private func complete(
        _ prompt: String, provider: LLMProvider, baseURL: String, http: CurlHTTPClient
    ) async throws -> (deltas: [String], info: LLMCompletionInfo?) {
        var configuration = LLMConfiguration()
        configuration.provider = provider
        configuration.baseURL = baseURL
        configuration.apiKey = "test-key"
        configuration.maxRetries = 0
        let client = HTTPLLMClient(configuration: configuration, http: http, logger: logger)
        var deltas: [String] = []
        var info: LLMCompletionInfo?
        for try await event in client.complete(prompt: prompt) {
            switch event {
            case .textDelta(let text): deltas.append(text)
            case .finished(let finished): info = finished
            }
        }
        return (deltas, info)
    }

    /// 52 deltas written in one burst, each event its own HTTP chunk (as the mock and most providers flush them), all
    /// in one write: libcurl calls back once per chunk, and they reach the consumer as fewer deltas than events, with
    /// the text and facts of the deltas one by one. (A server's own pacing would make the count depend on scheduling:
    /// the mock's burst sometimes arrives one read per event on an idle machine.)
    @Test(.timeLimit(.minutes(1)), arguments: [LLMProvider.anthropic, .openAI])
    func deltasReadTogetherAreDeliveredAsOne(_ provider: LLMProvider) async throws {
        let prompt = "batch [mock:long=50]"
        let words = (1...50).map { "word\($0)" }.joined(separator: " ")
        let pieces = ["Mock reply to: ", prompt] + (1...50).map { " word\($0)" }
        let server = try OneShotServer(response: Self.chunkedStream(provider: provider, pieces: pieces))
        let http = CurlHTTPClient(logger: logger)
        defer { http.shutdown() }
        let result = try await complete(
            prompt, provider: provider, baseURL: "http://127.0.0.1:\(server.port)", http: http)
        #expect(result.deltas.joined() == "Mock reply to: \(prompt) " + words)
        #expect(result.deltas.count < 52, "52 deltas written in a burst: \(result.deltas.count) deltas delivered")
        #expect(result.deltas.allSatisfy { !$0.isEmpty })
        let info = try #require(result.info)
        #expect(info.stopReason == (provider == .anthropic ? "end_turn" : "stop"))
        #expect(info.outputTokens == 55)
        #expect(info.requestID != nil)
    }

    /// A streamed answer in the provider's wire format, one HTTP chunk per event, as one response.
    private static func chunkedStream(provider: LLMProvider, pieces: [String]) -> String {
        var events: [String] = []
        switch provider {
        case .anthropic:
            events.append(
                #"event: message_start\#ndata: {"type":"message_start","message":{"id":"msg_b","model":"m"}}\#n\#n"#)
            for piece in pieces {
                events.append(
                    "event: content_block_delta\ndata: "
                        + #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""# + piece
                        + "\"}}\n\n")
            }
            events.append(
                #"event: message_delta\#ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":55}}\#n\#n"#
            )
            events.append(#"event: message_stop\#ndata: {"type":"message_stop"}\#n\#n"#)
        case .openAI:
            let head =
                #"{"id":"chatcmpl-b","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"#
            for piece in pieces {
                events.append(
                    "data: " + head + #""delta":{"content":""# + piece
                        + #""},"logprobs":null,"finish_reason":null}]}"# + "\n\n")
            }
            events.append("data: " + head + #""delta":{},"logprobs":null,"finish_reason":"stop"}]}"# + "\n\n")
            events.append(
                #"data: {"id":"chatcmpl-b","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":55,"total_tokens":59}}"#
                    + "\n\n")
            events.append("data: [DONE]\n\n")
        }
        var body = ""
        for event in events { body += String(event.utf8.count, radix: 16) + "\r\n" + event + "\r\n" }
        body += "0\r\n\r\n"
        return "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            + "request-id: req_b\r\nconnection: close\r\n\r\n" + body
    }

    /// Spread over a second, the deltas come one read at a time: each is its own delta, as before.
    @Test(.timeLimit(.minutes(1))) func deltasReadApartStayApart() async throws {
        let mock = try MockLLMServer(latency: 1)
        let http = CurlHTTPClient(logger: logger)
        defer { http.shutdown() }
        let result = try await complete("apart [mock:long=10]", provider: .anthropic, mock: mock, http: http)
        #expect(
            result.deltas.joined() == "Mock reply to: apart [mock:long=10] "
                + (1...10).map { "word\($0)" }.joined(separator: " "))
        #expect(result.deltas.count > 5)
    }

    /// One read holding the whole answer (a server that writes it at once, without chunked encoding): one delta.
    @Test(.timeLimit(.minutes(1))) func aWholeAnswerInOneReadIsOneDelta() async throws {
        var events =
            #"event: message_start\#ndata: {"type":"message_start","message":{"id":"msg_9","model":"m"}}\#n\#n"#
        for word in ["One", " two", " \\\"three\\\"", "", " f\\u00f6ur", " \\ud83d\\ude00"] {
            events +=
                "event: content_block_delta\ndata: "
                + #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""# + word + "\"}}\n\n"
        }
        events +=
            #"event: message_delta\#ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":6}}\#n\#n"#
        events += #"event: message_stop\#ndata: {"type":"message_stop"}\#n\#n"#
        let server = try OneShotServer(
            response: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: \(events.utf8.count)\r\n"
                + "connection: close\r\n\r\n" + events)
        let http = CurlHTTPClient(logger: logger)
        defer { http.shutdown() }
        var configuration = LLMConfiguration()
        configuration.baseURL = "http://127.0.0.1:\(server.port)"
        configuration.maxRetries = 0
        let client = HTTPLLMClient(configuration: configuration, http: http, logger: logger)
        var received: [LLMEvent] = []
        for try await event in client.complete(prompt: "q") { received.append(event) }
        #expect(received.count == 2)
        #expect(received.first == .textDelta(#"One two "three" föur 😀"#))
        guard case .finished(let info) = received.last else {
            Issue.record("no end: \(received)")
            return
        }
        #expect(info.stopReason == "end_turn" && info.outputTokens == 6 && info.requestID == "msg_9")
    }
}

/// A server on 127.0.0.1 that answers one request with a fixed response, written at once.
private struct OneShotServer {
    let port: Int

    init(response: String) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw CancellationError() }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && getsockname(listener, pointer, &length) == 0
                    && listen(listener, 1) == 0
            }
        }
        guard bound else {
            close(listener)
            throw CancellationError()
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let bytes = Array(response.utf8)
        let thread = Thread {
            defer { close(listener) }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            // Reads the request (its head, then as many body bytes as it says), so that closing sends no reset.
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(connection, &buffer, buffer.count)
                guard count > 0 else { return }
                request += buffer[..<count]
                let text = String(decoding: request, as: UTF8.self)
                guard let end = text.range(of: "\r\n\r\n") else { continue }
                let head = text[..<end.lowerBound].lowercased()
                let declared =
                    head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.distance(from: end.upperBound, to: text.endIndex) >= declared { break }
            }
            _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
            shutdown(connection, Int32(SHUT_WR))
            while read(connection, &buffer, buffer.count) > 0 {}
        }
        thread.start()
    }
}
