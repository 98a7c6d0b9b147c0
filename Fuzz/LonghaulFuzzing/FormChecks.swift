import Longhaul

/// `application/x-www-form-urlencoded` decoding (`URLEncodedForm`).
///
/// Invariants: the byte and `String` entry points agree; no more pairs than `&`-separated parts; what decodes
/// re-encodes (every byte percent-encoded, or only the reserved ones, `+` or `%20` for spaces, upper- or lower-case
/// hex) to text that decodes to the same pairs, byte for byte.
enum FormChecks {
    static func run(_ input: UnsafeBufferPointer<UInt8>) throws(InvariantViolation) {
        let target = FuzzTarget.form
        let bytes = Array(input)
        let text = String(validating: bytes, as: UTF8.self)
        let fromBytes = Result { () throws(URLEncodedForm.DecodingError) in try URLEncodedForm.decode(bytes) }
        if let text {
            let fromText = Result { () throws(URLEncodedForm.DecodingError) in try URLEncodedForm.decode(text) }
            switch (fromBytes, fromText) {
            case (.success(let byBytes), .success(let byText)):
                try expect(samePairs(byBytes, byText), target, "decode(String) and decode(bytes) differ")
            case (.failure(let byBytes), .failure(let byText)):
                try expect(byBytes == byText, target, "decode(String) threw \(byText), decode(bytes) \(byBytes)")
            default:
                throw InvariantViolation(target, "decode(bytes) gave \(fromBytes), decode(String) \(fromText)")
            }
        }
        guard case .success(let pairs) = fromBytes else { return }
        let parts = bytes.count { $0 == UInt8(ascii: "&") } + 1
        try expect(pairs.count <= parts, target, "\(pairs.count) pairs from \(parts) &-separated parts")

        for style in EncodingStyle.allCases {
            let encoded = encode(pairs, style)
            try expect(
                encoded.allSatisfy { $0 < 0x80 && $0 > 0x20 }, target, "\(style) encoding is not visible ASCII")
            let again: [(name: String, value: String)]
            do {
                again = try URLEncodedForm.decode(encoded)
            } catch {
                throw InvariantViolation(
                    target,
                    "\(style) re-encoding \(show(String(decoding: encoded, as: UTF8.self))) does not decode: \(error)")
            }
            try expect(
                samePairs(again, pairs), target,
                "\(style) round trip changed \(pairs.map { "\(show($0.name))=\(show($0.value))" }) into "
                    + "\(again.map { "\(show($0.name))=\(show($0.value))" })")
        }
    }

    /// How to percent-encode: the round trip must hold for all of them.
    enum EncodingStyle: CaseIterable {
        /// Unreserved bytes kept, space as `+`, upper-case hex (what browsers send).
        case browser
        /// Every byte `%xx` in lower-case hex, space as `%20`.
        case everything
    }

    static func encode(_ pairs: [(name: String, value: String)], _ style: EncodingStyle) -> [UInt8] {
        var out: [UInt8] = []
        for (index, pair) in pairs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "&")) }
            encode(pair.name, style, into: &out)
            out.append(UInt8(ascii: "="))
            encode(pair.value, style, into: &out)
        }
        return out
    }

    private static func encode(_ text: String, _ style: EncodingStyle, into out: inout [UInt8]) {
        let upper = Array("0123456789ABCDEF".utf8)
        let lower = Array("0123456789abcdef".utf8)
        for byte in text.utf8 {
            switch (style, byte) {
            case (.browser, UInt8(ascii: " ")):
                out.append(UInt8(ascii: "+"))
            case (.browser, UInt8(ascii: "a")...UInt8(ascii: "z")), (.browser, UInt8(ascii: "A")...UInt8(ascii: "Z")),
                (.browser, UInt8(ascii: "0")...UInt8(ascii: "9")), (.browser, UInt8(ascii: "-")),
                (.browser, UInt8(ascii: ".")), (.browser, UInt8(ascii: "_")), (.browser, UInt8(ascii: "~")):
                out.append(byte)
            default:
                let digits = style == .browser ? upper : lower
                out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
            }
        }
    }
}
