import StandardExtensions

/// A parser for the one JSON shape a task's hash keeps in `metadata`: an object whose values are all strings
/// (`{"model":"…","request_id":"…"}`, as the update script's `cjson.encode` writes it).
///
/// Foundation's `JSONDecoder` costs more than the rest of a record's decoding together, on every poll of a task;
/// this reads the bytes in one pass. Anything else (numbers, nesting, malformed text) gives `nil`, and the caller
/// falls back to `JSONDecoder`, so no valid document is read differently.
enum FlatJSONObject {
    /// The object's entries, or `nil` when the text is not a flat object of strings.
    /// - Parameter bytes: the JSON text, in UTF-8.
    /// - Returns: the entries.
    static func parse(_ bytes: [UInt8]) -> [String: String]? {
        bytes.withUnsafeBufferPointer { parse($0) }
    }

    /// ``parse(_:)-([UInt8])`` of bytes lent for the call.
    static func parse(_ buffer: UnsafeBufferPointer<UInt8>) -> [String: String]? {
        var reader = Reader(bytes: buffer)
        return reader.object()
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
        }

        mutating func object() -> [String: String]? {
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            var entries: [String: String] = [:]
            skipSpace()
            if !take(UInt8(ascii: "}")) {
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard take(UInt8(ascii: ":")) else { return nil }
                    skipSpace()
                    // A repeated key is left to JSONDecoder (cjson never writes one).
                    guard let value = string(), entries.updateValue(value, forKey: key) == nil else { return nil }
                    skipSpace()
                    if take(UInt8(ascii: ",")) { continue }
                    guard take(UInt8(ascii: "}")) else { return nil }
                    break
                }
            }
            skipSpace()
            return index == bytes.count ? entries : nil
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        private mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): index += 1
                default: return
                }
            }
        }

        /// A string literal (``JSONStringLiteral``); `nil` if malformed.
        private mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            return JSONStringLiteral.read(bytes, at: &index)
        }
    }
}
