import StandardExtensions

/// Reads the most common event of a stream, a text delta, by scanning its bytes instead of decoding it with
/// `JSONDecoder` into Codable structs (which cost more than everything else done per delta).
///
/// Only one exact shape is recognised, as the providers send it: no whitespace, the keys in their usual order, no
/// other field. Anything else (another order, another delta type, an extra field, a number that is not a plain
/// non-negative integer, a string with a raw control character, an invalid escape or a lone surrogate) is not
/// matched, and the caller decodes the event as before: the result is always what `JSONDecoder` would give.
enum TextDeltaScanner {
    /// The text of an Anthropic `content_block_delta` event whose delta is a `text_delta`:
    /// `{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"..."}}`.
    /// - Parameter data: the event's data.
    /// - Returns: the decoded text, or `nil` when the data does not have exactly that shape.
    static func anthropicText(_ data: String) -> String? {
        // A native string's bytes are contiguous; a bridged one is left to JSONDecoder.
        let scanned = data.utf8.withContiguousStorageIfAvailable { bytes -> String? in
            var reader = ByteReader(bytes: bytes)
            guard reader.skip(#"{"type":"content_block_delta","index":"#), reader.skipInteger(),
                reader.skip(#","delta":{"type":"text_delta","text":""#),
                let text = reader.string(), reader.skip("}}"), reader.isAtEnd
            else { return nil }
            return text
        }
        return scanned ?? nil
    }

    /// What an OpenAI-style text chunk holds.
    struct OpenAIDelta: Equatable {
        /// The chunk's `id`, when asked for (only the first is kept as the request id).
        var id: String?
        var model: String
        var text: String
    }

    /// An OpenAI-style chunk with one choice's text delta, as OpenAI's API and vLLM send it:
    /// `{"id":"…","object":"chat.completion.chunk","created":N,"model":"…",["system_fingerprint":"…",]`
    /// `"choices":[{"index":0,"delta":{"content":"…"},"logprobs":null,"finish_reason":null}][,"usage":null]}`.
    /// - Parameters:
    ///   - data: the event's data.
    ///   - readingID: whether to decode the `id` (it is checked either way).
    /// - Returns: the chunk's facts, or `nil` when the data does not have exactly that shape.
    static func openAIText(_ data: String, readingID: Bool) -> OpenAIDelta? {
        let scanned = data.utf8.withContiguousStorageIfAvailable { bytes -> OpenAIDelta? in
            var reader = ByteReader(bytes: bytes)
            guard reader.skip(#"{"id":""#) else { return nil }
            var id: String? = nil
            if readingID {
                guard let read = reader.string() else { return nil }
                id = read
            } else {
                guard reader.skipString() else { return nil }
            }
            guard reader.skip(#","object":"chat.completion.chunk","created":"#), reader.skipInteger(maxDigits: 18),
                reader.skip(#","model":""#), let model = reader.string()
            else { return nil }
            if reader.skip(#","system_fingerprint":""#) {
                guard reader.skipString() else { return nil }
            }
            guard reader.skip(#","choices":[{"index":0,"delta":{"content":""#), let text = reader.string(),
                reader.skip(#"},"logprobs":null,"finish_reason":null}]"#)
            else { return nil }
            _ = reader.skip(#","usage":null"#)
            guard reader.skip("}"), reader.isAtEnd else { return nil }
            return OpenAIDelta(id: id, model: model, text: text)
        }
        return scanned ?? nil
    }
}

/// A cursor over the bytes of one JSON text (the scanner's; `JSONDecoder` reads everything else).
private struct ByteReader {
    let bytes: UnsafeBufferPointer<UInt8>
    private(set) var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { position == bytes.count }

    /// Steps over `literal` if the bytes continue with it.
    mutating func skip(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count else { return false }
        let start = literal.utf8Start
        for offset in 0..<count where bytes[position + offset] != start[offset] { return false }
        position += count
        return true
    }

    /// Steps over a JSON non-negative integer without sign, fraction or exponent (`0` or a digit from 1 to 9
    /// followed by digits; a leading zero is not JSON) of at most `maxDigits` digits: a longer one is left to
    /// `JSONDecoder`.
    mutating func skipInteger(maxDigits: Int = 9) -> Bool {
        let start = position
        while position < bytes.count, position - start <= maxDigits, Self.isDigit(bytes[position]) { position += 1 }
        let digits = position - start
        return digits > 0 && digits <= maxDigits && (digits == 1 || bytes[start] != UInt8(ascii: "0"))
    }

    /// Steps over a JSON string whose opening quote has been read, checking it as ``string()`` does, without
    /// building it.
    mutating func skipString() -> Bool {
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return true
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            position += 1
        }
        // An escape (or an error): the full reader decides.
        return string() != nil
    }

    /// Reads a JSON string whose opening quote has been read, through its closing quote (``JSONStringLiteral``).
    mutating func string() -> String? {
        JSONStringLiteral.read(bytes, at: &position)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
