import Foundation
import Testing

@testable import LLM

/// What gateways in front of the providers really send (LLM routers, caching proxies, company gateways): each must
/// still give exactly the answer's text.
@Suite(.timeLimit(.minutes(2))) struct GatewayTests {
    /// Feeds a whole body, cut into chunks, the way the client reads it, and returns the text, whether the answer
    /// completed, and the facts.
    private func read(
        _ body: String, contentType: String?, wire: any WireFormat, chunkSize: Int = 5
    ) throws(LLMError) -> (text: String, done: Bool, info: LLMCompletionInfo) {
        var answer = AnswerBody()
        var parser = SSEParser()
        var info = LLMCompletionInfo()
        var text = ""
        let bytes = Array(body.utf8)
        for start in stride(from: 0, to: bytes.count, by: chunkSize) {
            let chunk = Array(bytes[start..<min(start + chunkSize, bytes.count)])
            guard case .events(let events) = answer.take(chunk, contentType: contentType) else { continue }
            for event in parser.feed(events) {
                for signal in try wire.decode(event, info: &info) {
                    switch signal {
                    case .text(let piece): text += piece
                    case .done: return (text, true, info)
                    }
                }
            }
        }
        if answer.isDocument {
            text += try wire.decodeDocument(answer.document, info: &info)
            return (text, true, info)
        }
        return (text, false, info)
    }

    private static let anthropicStream = [
        #"event: message_start"#,
        #"data: {"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":4,"output_tokens":1}}}"#,
        "",
        #"event: content_block_start"#,
        #"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "",
        #"event: content_block_delta"#,
        #"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, "}}"#,
        "",
        #"event: content_block_delta"#,
        #"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"world"}}"#,
        "",
        #"event: message_delta"#,
        #"data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
        "",
        #"event: message_stop"#,
        #"data: {"type":"message_stop"}"#,
        "", "",
    ].joined(separator: "\n")

    private static let expectedAnthropic = LLMCompletionInfo(
        stopReason: "end_turn", inputTokens: 4, outputTokens: 2, requestID: "msg_1", model: "claude-x")

    @Test(arguments: [1, 2, 3, 7, 4096])
    func anthropicStreamIsReadWhateverTheChunking(_ chunkSize: Int) throws {
        let result = try read(
            Self.anthropicStream, contentType: "text/event-stream; charset=utf-8", wire: AnthropicWireFormat(),
            chunkSize: chunkSize)
        #expect(result.text == "Hello, world")
        #expect(result.done)
        #expect(result.info == Self.expectedAnthropic)
    }

    @Test func anthropicStreamWithoutEventLinesIsReadByTheJSONType() throws {
        let stream = Self.anthropicStream.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("event:") }.joined(separator: "\n")
        let result = try read(stream, contentType: "text/event-stream", wire: AnthropicWireFormat())
        #expect(result.text == "Hello, world")
        #expect(result.done)
        #expect(result.info == Self.expectedAnthropic)
    }

    @Test(arguments: ["\r\n", "\r"])
    func crlfAndLoneCRLineEndingsAreRead(_ ending: String) throws {
        let stream = Self.anthropicStream.replacingOccurrences(of: "\n", with: ending)
        for chunkSize in [1, 2, 3, 4096] {
            let result = try read(
                stream, contentType: "text/event-stream", wire: AnthropicWireFormat(), chunkSize: chunkSize)
            #expect(result.text == "Hello, world", "chunk size \(chunkSize)")
            #expect(result.done)
        }
    }

    @Test func unknownEventsAndFieldsAreIgnored() throws {
        let extra =
            [
                "event: gateway_metadata", #"data: {"type":"gateway_metadata","cache":"miss"}"#, "",
                "event: gateway_note", "data: not JSON at all", "",
                #"data: {"type":"content_block_annotation","index":0,"note":{"x":1}}"#, "",
                ": a comment from the proxy", "",
            ].joined(separator: "\n") + "\n"
        let stream =
            extra + Self.anthropicStream.replacingOccurrences(of: #"{"type":"#, with: #"{"x_trace":[1,2],"type":"#)
        let result = try read(stream, contentType: "text/event-stream", wire: AnthropicWireFormat())
        #expect(result.text == "Hello, world")
        #expect(result.done)
        #expect(result.info == Self.expectedAnthropic)
    }

    @Test func doneSentinelEndsAnAnthropicStream() throws {
        let withoutStop = Self.anthropicStream.replacingOccurrences(
            of: "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", with: "data: [DONE]\n\n")
        #expect(!withoutStop.contains("message_stop"))
        let result = try read(withoutStop, contentType: "text/event-stream", wire: AnthropicWireFormat())
        #expect(result.text == "Hello, world")
        #expect(result.done)
    }

    @Test func anthropicStreamWithoutAnEndIsIncomplete() throws {
        let cut = Self.anthropicStream.replacingOccurrences(
            of: "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", with: "")
        let result = try read(cut, contentType: "text/event-stream", wire: AnthropicWireFormat())
        #expect(!result.done)
    }

    @Test(arguments: ["application/json", "application/json; charset=utf-8", "application/vnd.gateway+json", nil])
    func aWholeAnthropicMessageIsTheAnswer(_ contentType: String?) throws {
        let message = """

              {"id":"msg_2","type":"message","role":"assistant","model":"claude-y","content":[{"type":"text","text":"Hello, "},\
            {"type":"tool_use","id":"t","name":"n","input":{}},{"type":"text","text":"world"}],"stop_reason":"max_tokens",\
            "stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":3,"cache_read_input_tokens":0},"x_gateway":true}
            """
        let result = try read(message, contentType: contentType, wire: AnthropicWireFormat())
        #expect(result.text == "Hello, world")
        #expect(result.done)
        #expect(
            result.info
                == LLMCompletionInfo(
                    stopReason: "max_tokens", inputTokens: 7, outputTokens: 3, requestID: "msg_2", model: "claude-y"))
    }

    @Test func aStreamLabelledJSONIsStillAStream() throws {
        let result = try read(Self.anthropicStream, contentType: "application/json", wire: AnthropicWireFormat())
        #expect(result.text == "Hello, world")
        #expect(result.done)
    }

    @Test func anErrorDocumentIsATypedError() {
        let body = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        #expect(throws: LLMError(code: .overloadedError, message: "Overloaded", isRetryable: true)) {
            try read(body, contentType: "application/json", wire: AnthropicWireFormat())
        }
        let openAI = #"{"error":{"message":"Bad things","type":"server_error","code":null}}"#
        #expect(throws: LLMError(code: .serverError, message: "Bad things", isRetryable: true)) {
            try read(openAI, contentType: "application/json", wire: OpenAIWireFormat())
        }
    }

    @Test func aBrokenOrForeignDocumentIsAnInvalidResponse() {
        for body in [#"{"id":"msg_3","type":"message","content":[{"type":"text","text":"half"#, #"{"hello":"world"}"#] {
            #expect(throws: LLMError.self) {
                try read(body, contentType: "application/json", wire: AnthropicWireFormat())
            }
            #expect(throws: LLMError.self) {
                try read(body, contentType: "application/json", wire: OpenAIWireFormat())
            }
        }
    }

    @Test func aWholeChatCompletionIsTheAnswer() throws {
        let completion = """
            {"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"llama","system_fingerprint":"fp",\
            "choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","refusal":null},"logprobs":null,\
            "finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}
            """
        let result = try read(completion, contentType: "application/json", wire: OpenAIWireFormat())
        #expect(result.text == "Hi there")
        #expect(
            result.info
                == LLMCompletionInfo(
                    stopReason: "stop", inputTokens: 5, outputTokens: 2, requestID: "chatcmpl-9", model: "llama"))
    }

    @Test func openAIUsageChunksWithEmptyOrNullChoicesAndUnknownEventsAreRead() throws {
        let stream = [
            #"data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":null}"#,
            "",
            "event: gateway.heartbeat", #"data: {"type":"heartbeat"}"#, "",
            "event: gateway.note", "data: plain text", "",
            #"data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}],"x":{}}"#,
            "",
            #"data: {"id":"c1","model":"m","choices":null}"#, "",
            #"data: {"id":"c1","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#, "",
            "data: [DONE]", "", "",
        ].joined(separator: "\r\n")
        let result = try read(stream, contentType: "text/event-stream", wire: OpenAIWireFormat())
        #expect(result.text == "Hi")
        #expect(result.done)
        #expect(
            result.info
                == LLMCompletionInfo(stopReason: "stop", inputTokens: 3, outputTokens: 1, requestID: "c1", model: "m"))
    }

    @Test func theBodyKindIsDecidedByTheContentTypeAndTheFirstByte() {
        var json = AnswerBody()
        #expect(json.take(Array("  \n".utf8), contentType: "application/json") == .pending)
        #expect(json.take(Array("{\"a\"".utf8), contentType: "application/json") == .document)
        #expect(json.take(Array(":1}".utf8), contentType: "application/json") == .document)
        #expect(json.document == Array("  \n{\"a\":1}".utf8))
        var events = AnswerBody()
        #expect(events.take(Array("\n".utf8), contentType: "text/event-stream") == .pending)
        #expect(events.take(Array("{x".utf8), contentType: "text/event-stream") == .events(Array("\n{x".utf8)))
        #expect(!events.isDocument)
        var labelled = AnswerBody()
        #expect(
            labelled.take(Array("data: {}".utf8), contentType: "application/json") == .events(Array("data: {}".utf8)))
        #expect(AnswerBody.isJSON("Application/JSON ; charset=utf-8"))
        #expect(AnswerBody.isJSON(nil))
        #expect(!AnswerBody.isJSON("text/event-stream"))
    }
}
