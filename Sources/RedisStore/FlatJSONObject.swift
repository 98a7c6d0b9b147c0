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
        bytes.withUnsafeBufferPointer { buffer in
            var reader = Reader(bytes: buffer)
            return reader.object()
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0
        var scratch: [UInt8] = []

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

        /// A string literal; `nil` if malformed (an unknown escape, a raw control character, a lone surrogate).
        private mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            // The common case: no escapes, so the text is the bytes as they are.
            while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
                guard bytes[index] >= 0x20 else { return nil }
                index += 1
            }
            guard index < bytes.count else { return nil }
            if bytes[index] == UInt8(ascii: "\"") {
                index += 1
                return validUTF8(UnsafeBufferPointer(rebasing: bytes[start..<index - 1]))
            }
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: bytes[start..<index])
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return scratch.withUnsafeBufferPointer { validUTF8($0) }
                case UInt8(ascii: "\\"):
                    guard escape() else { return nil }
                case 0..<0x20:
                    return nil
                default:
                    scratch.append(byte)
                }
            }
            return nil
        }

        /// One escape sequence after its backslash, appended to `scratch` as UTF-8.
        private mutating func escape() -> Bool {
            guard index < bytes.count else { return false }
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(byte)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                guard let unit = hex4() else { return false }
                var scalar = UInt32(unit)
                if (0xD800..<0xDC00).contains(unit) {
                    guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(),
                        (0xDC00..<0xE000).contains(low)
                    else { return false }
                    scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                } else if (0xDC00..<0xE000).contains(unit) {
                    return false
                }
                guard let character = Unicode.Scalar(scalar) else { return false }
                scratch.append(contentsOf: UTF8.encode(character)!)
            default:
                return false
            }
            return true
        }

        private mutating func hex4() -> UInt16? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt16 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                index += 1
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt16(digit)
            }
            return value
        }

        /// The bytes as a String, or `nil` when they are not valid UTF-8 (left to `JSONDecoder` to judge).
        private func validUTF8(_ buffer: UnsafeBufferPointer<UInt8>) -> String? {
            String(validating: buffer, as: UTF8.self)
        }
    }
}
