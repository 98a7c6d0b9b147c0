import Testing

@testable import LLM

/// Batching: the text deltas of one received chunk reach the consumer as one delta, in order, with every other
/// signal as before, whatever the chunking.
@Suite(.timeLimit(.minutes(2))) struct EventStreamReaderTests {
    private static func delta(_ encoded: String) -> String {
        "event: content_block_delta\ndata: "
            + #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#
            + encoded + "}}\n\n"
    }

    private static let start =
        "event: message_start\ndata: "
        + #"{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":4,"output_tokens":1}}}"#
        + "\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n"
    private static let end =
        "event: message_delta\ndata: "
        + #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#
        + "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    /// Deltas in the scanned shape and in others (key order, spaces: the decoder's path), escapes and all.
    private static let deltas = [
        delta(#""Hello""#), delta(#"", \"wörld\"\n""#), delta(#""\ud83d\ude00""#), delta(#""""#),
        "event: content_block_delta\ndata: "
            + #"{"index":0,"type":"content_block_delta","delta":{"text":" (other order)","type":"text_delta"}}"#
            + "\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n", delta(#"" end.""#),
    ]
    private static let expectedText = "Hello, \"wörld\"\n😀 (other order) end."
    private static let expectedInfo = LLMCompletionInfo(
        stopReason: "end_turn", inputTokens: 4, outputTokens: 9, requestID: "msg_1", model: "claude-x")

    /// Reads the chunks; returns the text of each chunk that had any, whether the end came, and the facts.
    private static func read(_ chunks: [[UInt8]]) throws(LLMError) -> (
        deltas: [String], done: Bool, info: LLMCompletionInfo
    ) {
        var reader = EventStreamReader(wire: AnthropicWireFormat())
        var info = LLMCompletionInfo()
        var deltas: [String] = []
        for chunk in chunks {
            var text = ""
            let done = try reader.read(chunk, text: &text, info: &info)
            if !text.isEmpty { deltas.append(text) }
            if done { return (deltas, true, info) }
        }
        return (deltas, false, info)
    }

    @Test func theDeltasOfOneChunkAreOneDelta() throws {
        let body = Self.start + Self.deltas.joined() + Self.end
        let read = try Self.read([Array(body.utf8)])
        #expect(read.deltas == [Self.expectedText])
        #expect(read.done)
        #expect(read.info == Self.expectedInfo)
    }

    @Test func eachChunkGivesItsOwnDeltaInOrder() throws {
        let chunks =
            [Self.start, Self.deltas[0] + Self.deltas[1], Self.deltas[2], Self.deltas[3] + Self.deltas[4]]
            + [Self.deltas[5], Self.deltas[6] + Self.end]
        let read = try Self.read(chunks.map { Array($0.utf8) })
        #expect(read.deltas == ["Hello, \"wörld\"\n", "😀", " (other order)", " end."])
        #expect(read.done)
        #expect(read.info == Self.expectedInfo)
    }

    /// The body cut in two at every byte offset, and in chunks of every size up to 64: the same text and facts.
    @Test func theTextAndFactsDoNotDependOnTheChunking() throws {
        let body = Array((Self.start + Self.deltas.joined() + Self.end).utf8)
        for cut in 0...body.count {
            let read = try Self.read([Array(body[..<cut]), Array(body[cut...])])
            #expect(read.deltas.joined() == Self.expectedText, "cut at \(cut)")
            #expect(read.deltas.count <= 2, "cut at \(cut)")
            #expect(read.done && read.info == Self.expectedInfo, "cut at \(cut)")
        }
        for size in 1...64 {
            let chunks = stride(from: 0, to: body.count, by: size).map { Array(body[$0..<min($0 + size, body.count)]) }
            let read = try Self.read(chunks)
            #expect(read.deltas.joined() == Self.expectedText, "chunks of \(size)")
            #expect(read.done && read.info == Self.expectedInfo, "chunks of \(size)")
        }
    }

    @Test func textBeforeTheEndInTheSameChunkComesFirstAndBytesAfterItAreIgnored() throws {
        let body = Self.start + Self.deltas[0] + Self.end + Self.deltas[6]
        let read = try Self.read([Array(body.utf8)])
        #expect(read.deltas == ["Hello"])
        #expect(read.done)
    }

    /// An error after text in the same chunk: the error is thrown, and the text read before it is kept for the
    /// caller (which counts it as delivered, so the call is not retried, as before batching).
    @Test func anErrorAfterTextInTheSameChunkStillFails() {
        let error =
            "event: error\ndata: "
            + #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"# + "\n\n"
        var reader = EventStreamReader(wire: AnthropicWireFormat())
        var info = LLMCompletionInfo()
        var text = ""
        #expect(throws: LLMError(code: .overloadedError, message: "Overloaded", isRetryable: true)) {
            _ = try reader.read(Array((Self.deltas[0] + error + Self.deltas[6]).utf8), text: &text, info: &info)
        }
        #expect(text == "Hello")
    }

    @Test func malformedJSONAfterTextFailsAsBefore() {
        let malformed =
            "event: content_block_delta\ndata: "
            + #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"unterminated"#
            + "\n\n"
        var reader = EventStreamReader(wire: AnthropicWireFormat())
        var info = LLMCompletionInfo()
        var text = ""
        #expect(
            throws: LLMError(code: .invalidResponse, message: "The model's server sent malformed JSON in its stream.")
        ) {
            _ = try reader.read(Array((Self.deltas[0] + malformed).utf8), text: &text, info: &info)
        }
        #expect(text == "Hello")
    }

    @Test func anEventOverTheBoundFails() {
        var reader = EventStreamReader(wire: AnthropicWireFormat())
        var info = LLMCompletionInfo()
        var text = ""
        let huge = "data: " + String(repeating: "x", count: (1 << 20) + 1)
        #expect(throws: LLMError.self) {
            _ = try reader.read(Array(huge.utf8), text: &text, info: &info)
        }
    }
}
