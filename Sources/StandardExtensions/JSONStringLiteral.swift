/// Reads one JSON string literal (RFC 8259) from UTF-8 bytes: the shared piece of the byte-level readers that stand
/// in for `JSONDecoder` on hot paths (the LLM's text deltas, Redis's record metadata). Also writes one, for the
/// writers that stand in for `JSONEncoder` (API answers, event streams, request bodies).
///
/// Strict where it matters for those callers: anything it does not decode exactly as `JSONDecoder` would (a raw
/// control character, an unknown escape, a malformed `\u` escape, a lone surrogate, bytes that are not UTF-8, no
/// closing quote) gives `nil`, and the caller leaves the whole document to `JSONDecoder`.
package enum JSONStringLiteral {
    /// Reads a string whose opening quote has been read, through its closing quote.
    /// - Parameters:
    ///   - bytes: the JSON text.
    ///   - position: just after the opening quote; on success, just after the closing quote.
    /// - Returns: the decoded string, or `nil`.
    package static func read(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> String? {
        let start = position
        // The common case: no escape, so the string is the bytes as they are.
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return String(validating: UnsafeBufferPointer(rebasing: bytes[start..<(position - 1)]), as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { return nil }
            position += 1
        }
        guard position < bytes.count else { return nil }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count - start)
        decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { return nil }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape(bytes, at: &position) else { return nil }
                    UTF8.encode(scalar) { decoded.append($0) }
                default:
                    return nil
                }
            default:
                if byte < 0x20 { return nil }
                decoded.append(byte)
            }
        }
        return nil
    }

    /// The scalar of a `\u` escape whose `\u` has been read; a high surrogate must be followed by a `\u` escape of a
    /// low one.
    private static func unicodeEscape(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> Unicode.Scalar? {
        guard let first = hex4(bytes, at: &position) else { return nil }
        switch first {
        case 0xD800...0xDBFF:
            guard bytes.count - position >= 2, bytes[position] == UInt8(ascii: "\\"),
                bytes[position + 1] == UInt8(ascii: "u")
            else { return nil }
            position += 2
            guard let second = hex4(bytes, at: &position), (0xDC00...0xDFFF).contains(second) else { return nil }
            return Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
        case 0xDC00...0xDFFF:
            return nil
        default:
            return Unicode.Scalar(first)
        }
    }

    private static func hex4(_ bytes: UnsafeBufferPointer<UInt8>, at position: inout Int) -> UInt32? {
        guard bytes.count - position >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Appends a string as a JSON string literal, quotes included. The UTF-8 bytes are scanned in place and copied
    /// in runs: only the bytes that need an escape are handled one by one. Besides what JSON requires, `<`, `>`, `&`,
    /// U+2028 and U+2029 are escaped, so that the text is safe inside HTML and JavaScript too.
    /// - Parameters:
    ///   - text: the string.
    ///   - out: the buffer to append to.
    package static func write(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            out.reserveCapacity(out.count + utf8.count + 1)
            var clean = 0
            var index = 0
            while index < utf8.count {
                let byte = utf8[index]
                var length = 1
                let escape: StaticString
                switch byte {
                case UInt8(ascii: "\""): escape = "\\\""
                case UInt8(ascii: "\\"): escape = "\\\\"
                case UInt8(ascii: "\n"): escape = "\\n"
                case UInt8(ascii: "\r"): escape = "\\r"
                case UInt8(ascii: "\t"): escape = "\\t"
                // Escaping < > & keeps JSON safe even if a browser is tricked into reading it as HTML.
                case UInt8(ascii: "<"): escape = "\\u003c"
                case UInt8(ascii: ">"): escape = "\\u003e"
                case UInt8(ascii: "&"): escape = "\\u0026"
                case 0xE2 where index + 2 < utf8.count && utf8[index + 1] == 0x80 && utf8[index + 2] & 0xFE == 0xA8:
                    // U+2028 and U+2029 end a line in JavaScript.
                    escape = utf8[index + 2] == 0xA8 ? "\\u2028" : "\\u2029"
                    length = 3
                case 0..<0x20:
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<index]))
                    out.append(contentsOf: "\\u00".utf8)
                    out.append(Self.hexDigit(byte >> 4))
                    out.append(Self.hexDigit(byte & 0x0F))
                    index += 1
                    clean = index
                    continue
                default:
                    index += 1
                    continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<index]))
                escape.withUTF8Buffer { out.append(contentsOf: $0) }
                index += length
                clean = index
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[clean..<utf8.count]))
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
