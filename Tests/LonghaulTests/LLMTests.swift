import Curl
import Foundation
import Testing

@testable import LLM

@Suite(.timeLimit(.minutes(2))) struct SSEParserTests {
    @Test func parsesEventsWhateverTheChunking() {
        let stream =
            "event: ping\ndata: {}\n\n: comment\r\nevent: delta\r\ndata: one\r\ndata: two\r\nid: 7\r\n\r\ndata:no-space\n\n"
        let expected = [
            SSEEvent(name: "ping", data: "{}"), SSEEvent(name: "delta", data: "one\ntwo", id: "7"),
            SSEEvent(name: "message", data: "no-space", id: "7"),
        ]
        for chunkSize in [1, 2, 3, 7, 1000] {
            var parser = SSEParser()
            var events: [SSEEvent] = []
            let bytes = Array(stream.utf8)
            for start in stride(from: 0, to: bytes.count, by: chunkSize) {
                events += parser.feed(bytes[start..<min(start + chunkSize, bytes.count)])
            }
            #expect(events == expected, "chunk size \(chunkSize)")
        }
    }

    @Test func anIncompleteEventIsNotDispatched() {
        var parser = SSEParser()
        #expect(parser.feed(Array("event: x\ndata: half".utf8)).isEmpty)
    }

    @Test func anEventOverTheBoundStopsTheParser() {
        // Many small events pass: the bound is per event, not per stream.
        var parser = SSEParser(maxEventBytes: 64)
        let small = Array(String(repeating: "data: 0123456789\n: a comment line of some length\n\n", count: 100).utf8)
        #expect(parser.feed(small).count == 100)
        #expect(!parser.isOverflowed)
        // A line that never ends, or an event whose data lines never end, does not.
        var endless = SSEParser(maxEventBytes: 64)
        #expect(endless.feed(Array(repeating: UInt8(ascii: "x"), count: 65)).isEmpty)
        #expect(endless.isOverflowed)
        #expect(endless.feed(Array("\n\ndata: late\n\n".utf8)).isEmpty)
        var manyLines = SSEParser(maxEventBytes: 64)
        #expect(manyLines.feed(Array(String(repeating: "data: 0123456789\n", count: 10).utf8)).isEmpty)
        #expect(manyLines.isOverflowed)
    }
}

@Suite(.timeLimit(.minutes(2))) struct RetryPolicyTests {
    let policy = RetryPolicy(maxRetries: 2)

    @Test func backoffDoublesUpToTheCapWithJitter() {
        #expect(policy.delay(beforeRetry: 0, retryAfter: nil, random: 0) == .milliseconds(500))
        #expect(policy.delay(beforeRetry: 1, retryAfter: nil, random: 0) == .seconds(1))
        #expect(policy.delay(beforeRetry: 2, retryAfter: nil, random: 0) == .seconds(2))
        #expect(policy.delay(beforeRetry: 5, retryAfter: nil, random: 0) == .seconds(8))
        #expect(policy.delay(beforeRetry: 60, retryAfter: nil, random: 0) == .seconds(8))
        #expect(policy.delay(beforeRetry: 0, retryAfter: nil, random: 1) == .milliseconds(375))
        #expect(policy.delay(beforeRetry: 3, retryAfter: nil, random: 0.5) == .seconds(3.5))
    }

    @Test func serverDelaysAreHonouredUpToSixtySeconds() {
        #expect(policy.delay(beforeRetry: 0, retryAfter: .seconds(1), random: 0.9) == .seconds(1))
        #expect(policy.delay(beforeRetry: 0, retryAfter: .seconds(60), random: 0) == .seconds(60))
        #expect(policy.delay(beforeRetry: 0, retryAfter: .seconds(61), random: 0) == .milliseconds(500))
        #expect(RetryPolicy.serverDelay(retryAfterMilliseconds: "250", retryAfterSeconds: "3") == .milliseconds(250))
        #expect(RetryPolicy.serverDelay(retryAfterMilliseconds: nil, retryAfterSeconds: "3") == .seconds(3))
        #expect(RetryPolicy.serverDelay(retryAfterMilliseconds: nil, retryAfterSeconds: "Wed, 21 Oct 2015") == nil)
    }

    @Test(arguments: [408, 409, 429, 500, 502, 503, 529])
    func retryableStatuses(_ status: Int) {
        #expect(RetryPolicy.isRetryable(status: status, shouldRetryHeader: nil))
        #expect(!RetryPolicy.isRetryable(status: status, shouldRetryHeader: "false"))
    }

    @Test(arguments: [400, 401, 403, 404, 413])
    func neverRetriedStatuses(_ status: Int) {
        #expect(!RetryPolicy.isRetryable(status: status, shouldRetryHeader: nil))
        #expect(!RetryPolicy.isRetryable(status: status, shouldRetryHeader: "true"))
    }

    @Test func shouldRetryHeaderForcesOtherStatuses() {
        #expect(RetryPolicy.isRetryable(status: 422, shouldRetryHeader: "true"))
        #expect(!RetryPolicy.isRetryable(status: 422, shouldRetryHeader: nil))
    }
}

@Suite(.timeLimit(.minutes(2))) struct WireFormatTests {
    @Test func anthropicStreamIsDecoded() throws {
        let wire = AnthropicWireFormat()
        var info = LLMCompletionInfo()
        var text = ""
        var done = false
        let events = [
            SSEEvent(
                name: "message_start",
                data:
                    #"{"type":"message_start","message":{"id":"msg_1","model":"claude-haiku-4-5","usage":{"input_tokens":12,"output_tokens":1}}}"#
            ),
            SSEEvent(
                name: "content_block_start",
                data: #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            SSEEvent(name: "ping", data: #"{"type": "ping"}"#),
            SSEEvent(
                name: "content_block_delta",
                data: #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#),
            SSEEvent(
                name: "content_block_delta",
                data: #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" <b>"}}"#),
            SSEEvent(name: "content_block_stop", data: #"{"type":"content_block_stop","index":0}"#),
            SSEEvent(
                name: "message_delta",
                data:
                    #"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":15}}"#
            ),
            SSEEvent(name: "message_stop", data: #"{"type":"message_stop"}"#),
        ]
        for event in events {
            for signal in try wire.decode(event, info: &info) {
                switch signal {
                case .text(let piece): text += piece
                case .done: done = true
                }
            }
        }
        #expect(text == "Hello <b>")
        #expect(done)
        #expect(
            info
                == LLMCompletionInfo(
                    stopReason: "max_tokens", inputTokens: 12, outputTokens: 15, requestID: "msg_1",
                    model: "claude-haiku-4-5"))
    }

    @Test func anthropicErrorEventBecomesATypedError() {
        var info = LLMCompletionInfo(requestID: "req_9")
        let event = SSEEvent(
            name: "error", data: #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
        #expect(throws: LLMError(code: .overloadedError, message: "Overloaded", requestID: "req_9", isRetryable: true))
        {
            try AnthropicWireFormat().decode(event, info: &info)
        }
    }

    @Test func malformedJSONIsAnInvalidResponse() {
        var info = LLMCompletionInfo()
        let event = SSEEvent(name: "content_block_delta", data: #"{"type":"content_block_delta","delta":{"#)
        #expect(throws: LLMError.self) { try AnthropicWireFormat().decode(event, info: &info) }
    }

    @Test func httpErrorBodiesAreRead() {
        let body = Array(
            #"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_body"}"#
                .utf8)
        let error = AnthropicWireFormat().error(status: 401, body: body, requestID: "req_header")
        #expect(error.code == .authenticationError)
        #expect(error.type == "authentication_error")
        #expect(error.message == "invalid x-api-key")
        #expect(error.requestID == "req_header")
        let html = AnthropicWireFormat().error(
            status: 502, body: Array("<html>Bad gateway</html>".utf8), requestID: nil)
        #expect(html.code == .apiError)
        #expect(html.httpStatus == 502)
    }

    @Test func openAIStreamIsDecoded() throws {
        let wire = OpenAIWireFormat()
        var info = LLMCompletionInfo()
        var text = ""
        var done = false
        let events = [
            #"{"id":"chatcmpl-1","model":"llama","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            #"{"id":"chatcmpl-1","model":"llama","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            #"{"id":"chatcmpl-1","model":"llama","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
            #"{"id":"chatcmpl-1","model":"llama","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            "[DONE]",
        ].map { SSEEvent(data: $0) }
        for event in events {
            for signal in try wire.decode(event, info: &info) {
                if case .text(let piece) = signal { text += piece } else { done = true }
            }
        }
        #expect(text == "Hi")
        #expect(done)
        #expect(
            info
                == LLMCompletionInfo(
                    stopReason: "length", inputTokens: 3, outputTokens: 1, requestID: "chatcmpl-1", model: "llama"))
    }

    @Test func anthropicRequestCarriesKeyVersionAndStream() throws {
        var configuration = LLMConfiguration()
        configuration.apiKey = "sk-test"
        configuration.baseURL = "http://127.0.0.1:9/"
        let request = AnthropicWireFormat().request(prompt: "hi \"there\"", configuration: configuration)
        #expect(request.url == "http://127.0.0.1:9/v1/messages")
        #expect(request.headers.contains(.init("x-api-key", "sk-test")))
        #expect(request.headers.contains(.init("anthropic-version", "2023-06-01")))
        let body = String(decoding: request.body, as: UTF8.self)
        #expect(body.contains(#""stream":true"#))
        #expect(body.contains(#""model":"claude-haiku-4-5""#))
        #expect(body.contains(#""content":"hi \"there\"""#))
    }

    @Test func requestBodiesAreJSONThatCarriesThePromptExactly() throws {
        var configuration = LLMConfiguration()
        configuration.model = "m\"odel/<1>"
        configuration.maxTokens = 77
        let prompt = "line 1\nline 2\t\"q\" \\ <b>&amp; é 🎉 \u{2028}\u{01}"
        let anthropic = AnthropicWireFormat().request(prompt: prompt, configuration: configuration)
        let openAI = OpenAIWireFormat().request(prompt: prompt, configuration: configuration)
        for request in [anthropic, openAI] {
            let object = try #require(JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])
            #expect(object["model"] as? String == configuration.model)
            #expect(object["max_tokens"] as? Int == 77)
            #expect(object["stream"] as? Bool == true)
            let messages = try #require(object["messages"] as? [[String: Any]])
            #expect(messages.count == 1)
            #expect(messages.first?["role"] as? String == "user")
            #expect(messages.first?["content"] as? String == prompt)
        }
        let options = try #require(JSONSerialization.jsonObject(with: Data(openAI.body)) as? [String: Any])
        #expect((options["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
    }
}
