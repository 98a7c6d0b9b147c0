import Curl
import Foundation
import LLM
import Logging
import LonghaulTestSupport
import Testing

/// A response read to its end.
private struct Collected {
    var head: HTTPResponseHead?
    var chunks: [[UInt8]] = []
    var body: [UInt8] { chunks.flatMap { $0 } }
    var text: String { String(decoding: body, as: UTF8.self) }
}

private func collect(_ client: CurlHTTPClient, _ request: HTTPRequest) async throws -> Collected {
    var collected = Collected()
    for try await part in client.stream(request) {
        switch part {
        case .head(let head):
            #expect(collected.head == nil, "one head only")
            collected.head = head
        case .body(let bytes):
            #expect(collected.head != nil, "the head comes before the body")
            collected.chunks.append(bytes)
        }
    }
    return collected
}

/// The error a request ends with, or `nil` when it succeeds.
private func failure(_ client: CurlHTTPClient, _ request: HTTPRequest) async -> (any Error)? {
    do {
        _ = try await collect(client, request)
        return nil
    } catch {
        return error
    }
}

/// The text of an Anthropic stream: its `text_delta`s joined.
private func streamedText(_ body: [UInt8]) -> String {
    var parser = SSEParser()
    return parser.feed(body).filter { $0.name == "content_block_delta" }.compactMap { event -> String? in
        let json = try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any]
        return (json?["delta"] as? [String: Any])?["text"] as? String
    }.joined()
}

/// A port nothing listens on: bound, read, closed.
private func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CancellationError() }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw CancellationError() }
    return Int(UInt16(bigEndian: address.sin_port))
}

@Suite(.timeLimit(.minutes(2))) struct CurlHTTPClientTests {
    private let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test(.timeLimit(.minutes(1))) func aPlainRequestGivesItsStatusHeadersAndBody() async throws {
        let mock = try MockLLMServer()
        let client = CurlHTTPClient(logger: logger)
        defer { client.shutdown() }

        let health = try await collect(client, HTTPRequest(url: mock.baseURL + "/mock/health"))
        #expect(health.head?.status == 200)
        #expect(health.head?.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(health.head?.header("content-length") == "2")
        #expect(health.text == "ok")

        let missing = try await collect(client, HTTPRequest(url: mock.baseURL + "/no/such/path"))
        #expect(missing.head?.status == 404, "an HTTP error status is a response, not a CurlError")
        #expect(missing.text.contains("not_found_error"))
    }

    @Test(.timeLimit(.minutes(1))) func aStreamedBodyArrivesInChunksInOrder() async throws {
        let mock = try MockLLMServer(latency: 1)
        let client = CurlHTTPClient(logger: logger)
        defer { client.shutdown() }

        let response = try await collect(client, mock.messages("chunks please [mock:long=20]"))
        #expect(response.head?.status == 200)
        #expect(response.head?.header("content-type")?.hasPrefix("text/event-stream") == true)
        #expect(response.chunks.count > 1, "the deltas are sent over a second, so they cannot all come in one chunk")
        let words = (1...20).map { "word\($0)" }.joined(separator: " ")
        #expect(streamedText(response.body) == "Mock reply to: chunks please [mock:long=20] " + words)
        var parser = SSEParser()
        #expect(parser.feed(response.body).last?.name == "message_stop", "the body ends with the stream's last event")
    }

    @Test(.timeLimit(.minutes(1))) func http1TransfersAreNotHeldToTheMultiplexedConnectionLimit() async throws {
        // Each HTTP/1.1 call needs its own connection: a limit meant for HTTP/2 would queue these one at a time.
        let mock = try MockLLMServer(latency: 3)
        var configuration = CurlHTTPClient.Configuration()
        configuration.maxMultiplexedConnectionsPerHost = 1
        let client = CurlHTTPClient(configuration: configuration, logger: logger)
        defer { client.shutdown() }

        let statuses = try await withThrowingTaskGroup(of: Int?.self) { group in
            for index in 0..<8 {
                group.addTask { try await collect(client, mock.messages("parallel \(index)")).head?.status }
            }
            return try await group.reduce(into: [Int?]()) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 200, count: 8))
        // Held to one connection, the mock would never have had two streams open at once (each lasts 3 s). Counted
        // by the mock, not timed: a loaded machine (the sanitizer builds) slows the calls, not their overlap.
        let body = try await collect(client, HTTPRequest(url: mock.baseURL + "/mock/stats")).body
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(try #require(stats["max_concurrent_streams"] as? Int) >= 2)
    }

    @Test(.timeLimit(.minutes(1))) func aClosedPortIsCouldNotConnect() async throws {
        let client = CurlHTTPClient(logger: logger)
        defer { client.shutdown() }

        let error = await failure(client, HTTPRequest(url: "http://127.0.0.1:\(try closedPort())/"))
        let curlError = try #require(error as? CurlError)
        #expect(curlError == .couldNotConnect)
        #expect(curlError.curlCode != nil, "libcurl's own code is kept for logs")
        #expect(!curlError.curlMessage.isEmpty)
        #expect(curlError.description.contains("could_not_connect"))
    }

    @Test(.timeLimit(.minutes(1))) func silenceLongerThanTheIdleTimeoutIsIdleTimedOut() async throws {
        let mock = try MockLLMServer()
        let client = CurlHTTPClient(logger: logger)
        defer { client.shutdown() }

        let request = mock.messages("wait [mock:slow-headers=30]", idleTimeout: .milliseconds(500))
        let error = await failure(client, request)
        let curlError = try #require(error as? CurlError)
        #expect(curlError == .idleTimedOut)
        #expect(curlError != .operationTimedOut)
        #expect(curlError.shortDescription == "idle_timed_out")
    }

    @Test(.timeLimit(.minutes(1))) func cancellingTheTaskAbortsTheTransfer() async throws {
        let mock = try MockLLMServer()
        let client = CurlHTTPClient(logger: logger)
        defer { client.shutdown() }

        // The reply would take five minutes: the test can only end in time if cancellation aborts it.
        let (started, startedContinuation) = AsyncStream<Void>.makeStream()
        let reader = Task {
            var parts = 0
            for try await _ in client.stream(mock.messages("never mind [mock:latency=300]", idleTimeout: nil)) {
                parts += 1
                if parts == 1 { startedContinuation.yield() }
            }
            return parts
        }
        for await _ in started { break }
        reader.cancel()
        _ = try? await reader.value

        // The mock sees the connection closed: the stream ends as aborted, none is left open.
        var stats: [String: Any] = [:]
        for _ in 0..<500 {
            let body = try await collect(client, HTTPRequest(url: mock.baseURL + "/mock/stats")).body
            stats = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
            if stats["streams_active"] as? Int == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(stats["streams_active"] as? Int == 0)
        #expect(stats["streams_aborted"] as? Int == 1)
        #expect(stats["streams_completed"] as? Int == 0)
    }

    @Test(.timeLimit(.minutes(1))) func shuttingDownEndsRunningTransfersAndRefusesNewOnes() async throws {
        let mock = try MockLLMServer()
        let client = CurlHTTPClient(logger: logger)

        // The reply would take five minutes: only the shutdown can end it in time.
        var parts = client.stream(mock.messages("slow [mock:latency=300]", idleTimeout: nil)).makeAsyncIterator()
        guard case .head(let head) = try await parts.next() else {
            Issue.record("no head first")
            return
        }
        #expect(head.status == 200)
        client.shutdown()
        var ended: (any Error)?
        do {
            while try await parts.next() != nil {}
        } catch {
            ended = error
        }
        #expect(ended as? CurlError == .clientShutDown)
        let later = await failure(client, HTTPRequest(url: mock.baseURL + "/mock/health"))
        #expect(later as? CurlError == .clientShutDown)
    }

    @Test(.timeLimit(.minutes(1))) func manyConcurrentTransfersAllComplete() async throws {
        let mock = try MockLLMServer(latency: 0.5)
        let client = CurlHTTPClient(logger: logger)
        defer { client.shutdown() }

        let count = 200
        let texts = try await withThrowingTaskGroup(of: (Int, Int?, String).self) { group in
            for index in 0..<count {
                group.addTask {
                    let response = try await collect(client, mock.messages("call \(index)"))
                    return (index, response.head?.status, streamedText(response.body))
                }
            }
            var texts: [Int: String] = [:]
            for try await (index, status, text) in group {
                #expect(status == 200)
                texts[index] = text
            }
            return texts
        }
        #expect(texts.count == count)
        for index in 0..<count {
            #expect(texts[index] == "Mock reply to: call \(index)")
        }
    }
}
