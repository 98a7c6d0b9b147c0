import Foundation
import Testing

@testable import LLM

/// The scanner for text deltas against `JSONDecoder`: the same text whenever it matches, and a fallback to the
/// decoder (with its result and errors) whenever the event is not in the one shape it knows.
@Suite(.timeLimit(.minutes(2))) struct TextDeltaScannerTests {
    /// What the wire format's Codable path reads from a delta.
    private struct Event: Decodable {
        struct Delta: Decodable {
            var type: String?
            var text: String?
        }
        var type: String?
        var delta: Delta?
    }

    private static func data(_ encodedText: String, index: String = "0") -> String {
        #"{"type":"content_block_delta","index":"# + index + #","delta":{"type":"text_delta","text":"#
            + encodedText + "}}"
    }

    private static func decoded(_ data: String) -> String? {
        (try? JSONDecoder().decode(Event.self, from: Data(data.utf8)))?.delta?.text
    }

    /// Decodes through the wire format, as the client does.
    private static func wireText(_ data: String, name: String = "content_block_delta") throws -> String {
        var info = LLMCompletionInfo()
        var text = ""
        for signal in try AnthropicWireFormat().decode(SSEEvent(name: name, data: data), info: &info) {
            if case .text(let piece) = signal { text += piece }
        }
        return text
    }

    @Test(arguments: [
        #""Hello""#, #""""#, #"" ""#, #""a\"b""#, #""back\\slash""#, #""\/slash\/""#, #""\b\f\n\r\t""#,
        #""\u0041\u00e9\u4e2D""#, #""\u0000 nul""#, #""\u001f""#, #""\ud83d\ude00 smile""#, #""\uD83D\uDE00""#,
        #""x\uDBFF\uDFFFy""#, #""ünïcödé 中文 😀 raw""#, #""\u007f\u0080\u07ff\u0800\uffff""#, #""<b>&amp;</b>""#,
        #""tab\there\u2028\u2029""#, #""\"\\\/""#,
    ])
    func theScannerReadsWhatJSONDecoderReads(_ encoded: String) throws {
        let data = Self.data(encoded)
        let expected = try #require(Self.decoded(data))
        let scanned = try #require(TextDeltaScanner.anthropicText(data), "the common shape must be scanned")
        #expect(scanned == expected)
        #expect(Array(scanned.unicodeScalars) == Array(expected.unicodeScalars))
        #expect(try Self.wireText(data) == expected)
        #expect(try Self.wireText(data, name: "message") == expected)
    }

    @Test(arguments: ["0", "1", "7", "12", "999999999"])
    func anyPlainIndexIsScanned(_ index: String) {
        #expect(TextDeltaScanner.anthropicText(Self.data(#""x""#, index: index)) == "x")
    }

    /// Valid JSON in another shape: the scanner declines, and the decoder gives the text as before.
    @Test(arguments: [
        #"{"index":0,"type":"content_block_delta","delta":{"type":"text_delta","text":"order"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"text":"order","type":"text_delta"}}"#,
        #"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "spaces"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"extra","x":1}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"extra"},"x":1}"#,
        #"{"type":"content_block_delta","index":1.0,"delta":{"type":"text_delta","text":"float"}}"#,
        // JSONDecoder accepts a leading zero; the scanner leaves it (and a sign) to it.
        #"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"zero"}}"#,
        #"{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"minus"}}"#,
        #"{"type":"content_block_delta","index":1234567890,"delta":{"type":"text_delta","text":"long"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"trailing"}} "#,
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lines\"}}\n",
    ])
    func otherShapesFallBackToTheDecoder(_ data: String) throws {
        #expect(TextDeltaScanner.anthropicText(data) == nil)
        let expected = try #require(Self.decoded(data))
        #expect(try Self.wireText(data) == expected)
    }

    /// Other deltas: not text, nothing to show, whichever path reads them.
    @Test(arguments: [
        #"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}"#,
    ])
    func otherDeltasGiveNoText(_ data: String) throws {
        #expect(try Self.wireText(data) == "")
    }

    /// Not JSON, or not JSON the scanner decodes: the decoder's verdict stands, its error included.
    @Test(arguments: [
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"unterminated"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"unterminated}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"bad \x"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"bad \u12"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"bad \u12G4"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}"#,
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"raw\ttab\"}}",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"raw\u{1}\"}}",
    ])
    func malformedDataFailsAsBefore(_ data: String) throws {
        #expect(TextDeltaScanner.anthropicText(data) == nil)
        #expect(Self.decoded(data) == nil)
        #expect(
            throws: LLMError(code: .invalidResponse, message: "The model's server sent malformed JSON in its stream.")
        ) {
            try Self.wireText(data)
        }
    }

    /// Lone surrogates: whatever `JSONDecoder` makes of them (an error or a replacement), the wire format gives the
    /// same, because the scanner leaves them to it.
    @Test(arguments: [#""\ud800""#, #""\udc00 low""#, #""\ud83d\u0041""#, #""\ud83d x""#, #""\ud83d\ud83d""#])
    func loneSurrogatesAreLeftToTheDecoder(_ encoded: String) {
        let data = Self.data(encoded)
        #expect(TextDeltaScanner.anthropicText(data) == nil)
        let viaWire = try? Self.wireText(data)
        #expect(viaWire == Self.decoded(data))
    }

    /// Random strings, encoded by `JSONEncoder` and by a Python-style ASCII-only encoder (`\u` escapes, surrogate
    /// pairs): the scanner reads each back exactly.
    @Test func randomStringsRoundTrip() throws {
        var random = SplitMix64(seed: 0x4C4F_4E47_4841_554C)
        let encoder = JSONEncoder()
        for round in 0..<2_000 {
            let text = Self.randomText(using: &random)
            let encodings = [
                String(decoding: try encoder.encode(text), as: UTF8.self), Self.asciiEncoded(text),
            ]
            for encoded in encodings {
                let data = Self.data(encoded, index: String(round % 5))
                let expected = try #require(Self.decoded(data))
                #expect(expected == text)
                let scanned = TextDeltaScanner.anthropicText(data)
                #expect(scanned == expected, "round \(round): \(encoded)")
                #expect(scanned.map { Array($0.unicodeScalars) } == Array(text.unicodeScalars))
            }
        }
    }

    private static func randomText(using random: inout SplitMix64) -> String {
        let length = Int(random.next() % 24)
        var scalars = String.UnicodeScalarView()
        for _ in 0..<length {
            let value: UInt32
            switch random.next() % 8 {
            case 0: value = UInt32(random.next() % 0x20)  // controls
            case 1: value = [0x22, 0x5C, 0x2F, 0x7F][Int(random.next() % 4)]  // " \ / DEL
            case 2: value = 0x80 + UInt32(random.next() % 0x780)  // two bytes
            case 3: value = 0x800 + UInt32(random.next() % (0xD800 - 0x800))  // three bytes, below surrogates
            case 4: value = 0xE000 + UInt32(random.next() % 0x2000)  // three bytes, above surrogates
            case 5: value = 0x10000 + UInt32(random.next() % 0x100000)  // four bytes: a surrogate pair escaped
            case 6: value = 0x300 + UInt32(random.next() % 0x70)  // combining marks
            default: value = 0x20 + UInt32(random.next() % 0x5F)  // printable ASCII
            }
            scalars.append(Unicode.Scalar(value)!)
        }
        return String(scalars)
    }

    /// JSON with every non-ASCII scalar and control escaped as `\uXXXX` (as Python's `json.dumps` writes it).
    private static func asciiEncoded(_ text: String) -> String {
        func hex(_ unit: UInt16) -> String {
            let digits = String(unit, radix: 16, uppercase: unit % 2 == 0)
            return #"\u"# + String(repeating: "0", count: 4 - digits.count) + digits
        }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += #"\""#
            case "\\": out += #"\\"#
            case "\n": out += #"\n"#
            case _ where scalar.value < 0x20 || scalar.value >= 0x7F:
                for unit in String(scalar).utf16 { out += hex(unit) }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A small seeded generator, so that a failing case can be found again.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Both providers' text chunks, read by the scanner and by the decoder (the same JSON with a space after its first
/// brace is not in the scanned shape): the same signals and the same facts.
@Suite(.timeLimit(.minutes(2))) struct TextDeltaScannerEquivalenceTests {
    private static func read(
        _ data: String, wire: any WireFormat, requestID: String? = nil
    ) throws -> ([StreamSignal], LLMCompletionInfo) {
        var info = LLMCompletionInfo(requestID: requestID, model: "configured")
        let signals = try wire.decode(SSEEvent(data: data), info: &info)
        return (signals, info)
    }

    /// The same JSON, but not in the scanned shape.
    private static func unscannable(_ data: String) -> String { "{ " + data.dropFirst() }

    private static func openAI(
        id: String = #""chatcmpl-1""#, model: String = #""gpt-x""#, fingerprint: String? = nil, text: String,
        usage: Bool = true
    ) -> String {
        let head = #"{"id":"# + id + #","object":"chat.completion.chunk","created":1733280000,"model":"# + model
        let fingerprintField = fingerprint.map { #","system_fingerprint":"# + $0 } ?? ""
        let choices = #","choices":[{"index":0,"delta":{"content":"# + text
        return head + fingerprintField + choices + #"},"logprobs":null,"finish_reason":null}]"#
            + (usage ? #","usage":null"# : "") + "}"
    }

    @Test(arguments: [
        openAI(text: #""Hello""#), openAI(text: #""""#), openAI(fingerprint: #""fp_1""#, text: #""a\nb""#),
        openAI(text: #""\ud83d\ude00 \"q\" \u00e9""#, usage: false),
        openAI(id: #""chat\/cmpl\u0031""#, model: #""m\u00f6del""#, text: #""x""#),
        openAI(fingerprint: #""fp\\1""#, text: #""y""#),
    ])
    func openAIChunksAreScannedWithTheDecodersEffects(_ data: String) throws {
        let wire = OpenAIWireFormat()
        #expect(TextDeltaScanner.openAIText(data, readingID: true) != nil, "the common shape must be scanned")
        #expect(TextDeltaScanner.openAIText(Self.unscannable(data), readingID: true) == nil)
        for requestID in [nil, "req_1"] {
            let scanned = try Self.read(data, wire: wire, requestID: requestID)
            let decoded = try Self.read(Self.unscannable(data), wire: wire, requestID: requestID)
            #expect(scanned.0 == decoded.0)
            #expect(scanned.1 == decoded.1)
        }
    }

    @Test(arguments: [
        #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"x"},"logprobs":null,"finish_reason":null}]}"#,
        #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":"stop"}]}"#,
        #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}"#,
        #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":1}}"#,
        #"{"id":"c","object":"chat.completion.chunk","created":01,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}]}"#,
        #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}]}"#,
        #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}],"obfuscation":"ab"}"#,
        #"{"id":"c\x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}]}"#,
    ])
    func otherOpenAIShapesFallBackToTheDecoder(_ data: String) throws {
        #expect(TextDeltaScanner.openAIText(data, readingID: true) == nil)
        #expect(TextDeltaScanner.openAIText(data, readingID: false) == nil)
        let wire = OpenAIWireFormat()
        let viaWire = Result { try Self.read(data, wire: wire) }.map { "\($0.0) \($0.1)" }
        let viaDecoder = Result { try Self.read(Self.unscannable(data), wire: wire) }.map { "\($0.0) \($0.1)" }
        #expect(String(describing: viaWire) == String(describing: viaDecoder))
    }

    /// Random texts and models (JSONEncoder's escaping) through both providers' shapes.
    @Test func randomChunksGiveTheDecodersResult() throws {
        var random = SplitMix64(seed: 42)
        let encoder = JSONEncoder()
        for _ in 0..<500 {
            let text = String(decoding: try encoder.encode(Self.randomText(using: &random)), as: UTF8.self)
            let model = String(decoding: try encoder.encode(Self.randomText(using: &random)), as: UTF8.self)
            let openAI = Self.openAI(model: model, text: text)
            #expect(TextDeltaScanner.openAIText(openAI, readingID: true) != nil)
            let scannedOpenAI = try Self.read(openAI, wire: OpenAIWireFormat())
            #expect(scannedOpenAI == (try Self.read(Self.unscannable(openAI), wire: OpenAIWireFormat())))
            let anthropic =
                #"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"# + text + "}}"
            #expect(TextDeltaScanner.anthropicText(anthropic) != nil)
            let scannedAnthropic = try Self.read(anthropic, wire: AnthropicWireFormat())
            #expect(scannedAnthropic == (try Self.read(Self.unscannable(anthropic), wire: AnthropicWireFormat())))
        }
    }

    private static func randomText(using random: inout SplitMix64) -> String {
        let alphabet = Array("ab \"\\/\n\t\u{1}é中😀\u{301}<>&")
        return String((0..<Int(random.next() % 12)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
    }
}
