import Foundation
import Testing

@testable import LLM

/// The Foundation-free reader of Anthropic's other events against `JSONDecoder`: whenever it gives an event, the
/// decoder gives the same one; the events the mock and the API send are read by it, not left to the decoder.
@Suite(.timeLimit(.minutes(2))) struct EventJSONTests {
    private static func decoded(_ data: String) -> AnthropicWireFormat.Event? {
        try? JSONDecoder().decode(AnthropicWireFormat.Event.self, from: Data(data.utf8))
    }

    /// The events as the mock and the API send them: read without the decoder, with the decoder's result.
    @Test(arguments: [
        #"{"type":"message_start","message":{"id":"msg_mock_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
        #"{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-6", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1, "cache_creation": {"ephemeral_5m_input_tokens": 0}, "service_tier": "standard"}}}"#,
        #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        #"{"type":"content_block_stop","index":0}"#,
        #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        #"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":-0,"output_tokens":0}}"#,
        #"{"type":"ping"}"#, #"{"type":"message_stop"}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\u00e9\"\n"}}"#,
        #" {"type":"x","extra":[1,2.5,-3e+2,true,false,null,{"a":[]},"\ud83d\ude00"]} "#,
    ])
    func knownEventsAreReadAsTheDecoderReadsThem(data: String) throws {
        let quick = try #require(AnthropicWireFormat.quickEvent(data))
        #expect(quick == Self.decoded(data))
    }

    /// Anything unusual is left to the decoder: never a different result.
    @Test(arguments: [
        #"{"type":"message_delta","usage":{"output_tokens":1.0}}"#,
        #"{"type":"message_delta","usage":{"output_tokens":1e2}}"#,
        #"{"type":"message_delta","usage":{"output_tokens":"15"}}"#,
        #"{"type":"message_delta","usage":{"output_tokens":99999999999999999999}}"#,
        #"{"type":5}"#, #"{"type":"a","type":"b"}"#, #"{"type":"a","delta":[]}"#,
        #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        #"{"type":"a",}"#, #"{"type":"a"} x"#, #"{"type":01}"#, #"{"type":"\x"}"#, #"[1]"#, #""#, #"{"#,
        #"{"type":"a","n":-}"#, #"{"type":"a","n":1.}"#, #"{"type":"a","n":.5}"#, #"{'type':'a'}"#,
        #"{"type":"a","v":tru}"#, #"{"type":"a","s":"\ud800"}"#,
        String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
        #"{"type":"message_start","message":{"id":7}}"#,
        #"{"type":"message_start","message":{"usage":{"input_tokens":null,"output_tokens":2}}}"#,
    ])
    func unusualEventsAreLeftToTheDecoderOrReadTheSame(data: String) {
        guard let quick = AnthropicWireFormat.quickEvent(data) else { return }
        #expect(quick == Self.decoded(data))
    }

    @Test func theReaderRejectsWhatIsNotStrictJSON() {
        for text in [#"{"a":1,}"#, #"[1,]"#, "01", "1.", "-", "+1", "nul", #""a"#, "{} {}", "[1 2]", #"{"a" 1}"#] {
            #expect(EventJSON.parse(text) == nil, "\(text)")
        }
        #expect(
            EventJSON.parse(#" {"a":[1,-0.5e-3,"x",null,true]} "#)
                == .object([
                    ("a", .array([.number("1"), .number("-0.5e-3"), .string("x"), .null, .bool(true)]))
                ]))
    }
}
