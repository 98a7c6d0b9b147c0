#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Decodes `application/x-www-form-urlencoded` text: form bodies and query strings.
public enum URLEncodedForm {
    /// Why a form could not be decoded.
    public enum DecodingError: Error, Equatable, Sendable {
        /// A `%` not followed by two hexadecimal digits.
        case invalidPercentEncoding
        /// The decoded bytes are not UTF-8.
        case notUTF8
    }

    /// Splits and decodes name/value pairs, in order, keeping repeated names.
    /// - Parameter bytes: the encoded form.
    /// - Returns: the pairs.
    /// - Throws: ``DecodingError`` on broken percent-encoding or bytes that are not UTF-8.
    public static func decode(_ bytes: some Collection<UInt8>) throws(DecodingError) -> [(name: String, value: String)]
    {
        var pairs: [(name: String, value: String)] = []
        var name: [UInt8] = []
        var value: [UInt8] = []
        var inValue = false
        var iterator = bytes.makeIterator()
        func flush() throws(DecodingError) {
            defer {
                name.removeAll(keepingCapacity: true)
                value.removeAll(keepingCapacity: true)
                inValue = false
            }
            guard !name.isEmpty || !value.isEmpty else { return }
            guard let decodedName = utf8String(name), let decodedValue = utf8String(value) else { throw .notUTF8 }
            pairs.append((decodedName, decodedValue))
        }
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "&"):
                try flush()
            case UInt8(ascii: "=") where !inValue:
                inValue = true
            default:
                var decoded = byte
                if byte == UInt8(ascii: "+") {
                    decoded = UInt8(ascii: " ")
                } else if byte == UInt8(ascii: "%") {
                    guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue)
                    else {
                        throw .invalidPercentEncoding
                    }
                    decoded = high << 4 | low
                }
                if inValue { value.append(decoded) } else { name.append(decoded) }
            }
        }
        try flush()
        return pairs
    }

    /// The first value of `name` in a form that needs no decoding (ASCII without `%` or `+`), found without
    /// splitting the whole form; `nil` for a form that needs decoding, whose answer ``decode(_:)-swift.type.method``
    /// gives. For such a form it is the same answer: no escape to check, nothing to decode.
    /// - Parameters:
    ///   - name: the field name.
    ///   - text: the encoded form.
    /// - Returns: `.some(value)`, `.some(nil)` when the field is absent, or `nil` when the form needs decoding.
    public static func firstValueIfPlain(named name: String, in text: String) -> String?? {
        var text = text
        return text.withUTF8 { firstValueIfPlain(named: name, inUTF8: $0) }
    }

    /// ``firstValueIfPlain(named:in:)`` on the form's bytes.
    /// - Parameters:
    ///   - name: the field name.
    ///   - bytes: the encoded form's bytes.
    /// - Returns: `.some(value)`, `.some(nil)` when the field is absent, or `nil` when the form needs decoding.
    public static func firstValueIfPlain(named name: String, inUTF8 bytes: UnsafeBufferPointer<UInt8>) -> String?? {
        firstValueIfPlain(named: name, inUTF8: bytes) { String(decoding: $0, as: UTF8.self) }
    }

    /// ``firstValueIfPlain(named:inUTF8:)`` that hands the value's bytes to `read` instead of making a `String`
    /// (a task id is parsed from them in place).
    /// - Parameters:
    ///   - name: the field name.
    ///   - bytes: the encoded form's bytes.
    ///   - read: makes the value from its bytes, valid only during the call.
    /// - Returns: `.some(value)`, `.some(nil)` when the field is absent, or `nil` when the form needs decoding.
    public static func firstValueIfPlain<Value>(
        named name: String, inUTF8 bytes: UnsafeBufferPointer<UInt8>, _ read: (UnsafeBufferPointer<UInt8>) -> Value
    ) -> Value?? {
        guard !name.isEmpty else { return nil }
        guard let base = bytes.baseAddress else { return .some(nil) }
        if needsDecoding(bytes) { return nil }
        var start = 0
        while start <= bytes.count {
            let end =
                memchr(base + start, Int32(UInt8(ascii: "&")), bytes.count - start).map {
                    UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) - base
                } ?? bytes.count
            if let found = valueRange(of: name, in: bytes, field: start..<end) {
                return .some(read(UnsafeBufferPointer(rebasing: bytes[found])))
            }
            start = end + 1
        }
        return .some(nil)
    }

    /// Whether a form has a byte that decoding changes or checks (`%`, `+`, or one beyond ASCII): eight bytes at a
    /// time, then one by one.
    private static func needsDecoding(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        // Non-zero when some byte of `word` is `byte` (exact as a whole: the high bit of a byte equal to it is set).
        @inline(__always) func has(_ word: UInt64, _ byte: UInt8) -> UInt64 {
            let x = word ^ (ones &* UInt64(byte))
            return (x &- ones) & ~x & highs
        }
        var index = 0
        while bytes.count - index >= 8 {
            let word = UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self)
            if word & highs | has(word, UInt8(ascii: "%")) | has(word, UInt8(ascii: "+")) != 0 { return true }
            index += 8
        }
        while index < bytes.count {
            let byte = base[index]
            if byte >= 0x80 || byte == UInt8(ascii: "%") || byte == UInt8(ascii: "+") { return true }
            index += 1
        }
        return false
    }

    /// The range of the value of `field` (a `name=value` or `name` segment) when its name is `name`.
    private static func valueRange(of name: String, in bytes: UnsafeBufferPointer<UInt8>, field: Range<Int>) -> Range<
        Int
    >? {
        guard let base = bytes.baseAddress else { return nil }
        let nameEnd =
            memchr(base + field.lowerBound, Int32(UInt8(ascii: "=")), field.count).map {
                UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) - base
            } ?? field.upperBound
        guard nameEnd - field.lowerBound == name.utf8.count,
            Self.sameBytes(name, UnsafeBufferPointer(rebasing: bytes[field.lowerBound..<nameEnd]))
        else { return nil }
        return nameEnd == field.upperBound ? field.upperBound..<field.upperBound : (nameEnd + 1)..<field.upperBound
    }

    /// Whether `name`'s UTF-8 is `bytes` (of the same length): one `memcmp` for a native string.
    private static func sameBytes(_ name: String, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let compared = name.utf8.withContiguousStorageIfAvailable { stored -> Bool in
            guard stored.count == bytes.count else { return false }
            guard let left = stored.baseAddress, let right = bytes.baseAddress else { return true }
            return memcmp(left, right, bytes.count) == 0
        }
        return compared ?? name.utf8.elementsEqual(bytes)
    }

    /// Decodes text (a query string).
    /// - Parameter text: the encoded form.
    /// - Returns: the pairs.
    /// - Throws: ``DecodingError``.
    public static func decode(_ text: String) throws(DecodingError) -> [(name: String, value: String)] {
        try decode(Array(text.utf8))
    }

    /// The bytes as a String, or `nil` when they are not UTF-8. ASCII (nearly every name and value) is UTF-8 as it is
    /// and skips the generic validation.
    private static func utf8String(_ bytes: [UInt8]) -> String? {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
