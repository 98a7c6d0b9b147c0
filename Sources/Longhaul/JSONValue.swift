import Foundation
import StandardExtensions

#if canImport(Glibc)
    import Glibc
#endif

/// A JSON value with a small, fast serializer that keeps key order (responses read the same every time).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        lhs.serialized == rhs.serialized
    }

    /// The compact JSON text.
    public var serialized: String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the compact JSON text's UTF-8 bytes.
    /// - Parameter out: the buffer to append to.
    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): out.append(contentsOf: String(value).utf8)
        case .double(let value): out.append(contentsOf: (value.isFinite ? String(value) : "null").utf8)
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (index, (key, value)) in members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Appends a JSON string literal (``JSONStringLiteral/write(_:to:)``).
    static func writeString(_ text: String, to out: inout [UInt8]) {
        JSONStringLiteral.write(text, to: &out)
    }
}

/// A strict check of JSON's grammar (RFC 8259), without building values: no trailing commas, comments, single
/// quotes, `NaN`, leading zeros, raw control characters in strings or more than ``maxDepth`` nested containers
/// (iterative, so deep nesting cannot exhaust the stack). UTF-8 and `\u` escapes are left to the decoder.
enum StrictJSON {
    /// The deepest nesting of arrays and objects accepted.
    static let maxDepth = 512

    /// Whether the bytes are one JSON value, with optional whitespace around it.
    static func isValid(_ bytes: [UInt8]) -> Bool {
        var scanner = Scanner(bytes: bytes)
        return scanner.document()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard current == byte else { return false }
            index += 1
            return true
        }

        mutating func document() -> Bool {
            // The open containers: `{` or `[`.
            var stack: [UInt8] = []
            value: while true {
                skipWhitespace()
                guard let byte = current else { return false }
                switch byte {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    index += 1
                    skipWhitespace()
                    let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                    if !take(close) {
                        guard stack.count < StrictJSON.maxDepth else { return false }
                        stack.append(byte)
                        if byte == UInt8(ascii: "{") { guard member() else { return false } }
                        continue value
                    }
                case UInt8(ascii: "\""):
                    guard string() else { return false }
                case UInt8(ascii: "t"):
                    guard literal("true") else { return false }
                case UInt8(ascii: "f"):
                    guard literal("false") else { return false }
                case UInt8(ascii: "n"):
                    guard literal("null") else { return false }
                default:
                    guard number() else { return false }
                }
                // After a value: a comma, the end of containers, or the end of the text.
                while true {
                    skipWhitespace()
                    guard let open = stack.last else { return index == bytes.count }
                    if take(UInt8(ascii: ",")) {
                        if open == UInt8(ascii: "{") { guard member() else { return false } }
                        continue value
                    }
                    guard take(open == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")) else { return false }
                    stack.removeLast()
                }
            }
        }

        /// A member's name and its colon.
        private mutating func member() -> Bool {
            skipWhitespace()
            guard current == UInt8(ascii: "\""), string() else { return false }
            skipWhitespace()
            return take(UInt8(ascii: ":"))
        }

        private mutating func string() -> Bool {
            index += 1  // the opening quote
            while let byte = current {
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return true
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { return false }
                    index += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        continue
                    case UInt8(ascii: "u"):
                        for _ in 0..<4 {
                            guard let hex = current, hex.isHexDigit else { return false }
                            index += 1
                        }
                    default:
                        return false
                    }
                case 0x00..<0x20:
                    return false
                default:
                    continue
                }
            }
            return false
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let text = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            guard bytes.count - index >= text.count, bytes[index..<index + text.count].elementsEqual(text) else {
                return false
            }
            index += text.count
            return true
        }

        private mutating func number() -> Bool {
            _ = take(UInt8(ascii: "-"))
            guard let first = current, first.isDigit else { return false }
            index += 1
            if first != UInt8(ascii: "0") { while current?.isDigit == true { index += 1 } }
            if take(UInt8(ascii: ".")) {
                guard current?.isDigit == true else { return false }
                while current?.isDigit == true { index += 1 }
            }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard current?.isDigit == true else { return false }
                while current?.isDigit == true { index += 1 }
            }
            return true
        }
    }
}

extension UInt8 {
    fileprivate var isDigit: Bool { (0x30...0x39).contains(self) }
    fileprivate var isHexDigit: Bool { isDigit || (0x41...0x46).contains(self) || (0x61...0x66).contains(self) }
}

extension Date {
    /// RFC 3339 in UTC with milliseconds, as the JSON API writes times.
    ///
    /// Written digit by digit (a pending task's fragment carries two per poll): the same text as
    /// `Date.ISO8601FormatStyle(includingFractionalSeconds: true)` in UTC, milliseconds rounded down, which it
    /// falls back to outside the years 1970...9999.
    var rfc3339: String {
        let text = String(unsafeUninitializedCapacity: 24) { writeRFC3339(into: $0) ? 24 : 0 }
        guard text.isEmpty else { return text }
        return formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!))
    }

    /// Writes ``rfc3339``'s bytes at `start`, where there is room for 64: between the years 1970 and 9999, its 24
    /// bytes digit by digit, with this thread's ``RFC3339SecondCache`` (the date of the last day written and, for
    /// the current time, the text up to the second: the "format the date once per second"); Foundation's
    /// text otherwise.
    /// - Parameter keepingSecond: whether the date is the current time, whose text up to the second is kept.
    /// - Returns: how many bytes were written.
    func writeRFC3339(to start: UnsafeMutablePointer<UInt8>, keepingSecond: Bool) -> Int {
        let buffer = UnsafeMutableBufferPointer(start: start, count: 24)
        if writeRFC3339(into: buffer, cache: RFC3339SecondCache.forThisThread(), keepingSecond: keepingSecond) {
            return 24
        }
        var text = rfc3339
        return text.withUTF8 { bytes in
            let count = min(bytes.count, 64)
            if let source = bytes.baseAddress { start.update(from: source, count: count) }
            return count
        }
    }

    /// Writes the 24 bytes of ``rfc3339`` into `buffer` (at least 24 bytes); `false` outside the years 1970...9999.
    /// With a cache, the date is copied from it when it holds this day, and the text up to the second when it
    /// holds this second (`keepingSecond`); each is kept there once written.
    private func writeRFC3339(
        into buffer: UnsafeMutableBufferPointer<UInt8>, cache: UnsafeMutablePointer<RFC3339SecondCache>? = nil,
        keepingSecond: Bool = false
    ) -> Bool {
        let interval = timeIntervalSinceReferenceDate
        let whole = interval.rounded(.down)
        // 1970-01-01 is 978,307,200 s before the reference date; 253,402,300,800 s after 1970 is the year 10000.
        guard buffer.count >= 24, whole >= -978_307_200, whole < 253_402_300_800 - 978_307_200,
            let base = buffer.baseAddress
        else { return false }
        let milliseconds = UInt(min(999, Int(((interval - whole) * 1000).rounded(.down))))
        // Unsigned from here on (the range was checked): divisions by constants become multiplications.
        let seconds = UInt(Int(whole) + 978_307_200)
        /// Two decimal digits (0...99) at `offset`.
        @inline(__always) func putTwo(_ value: UInt, at offset: Int) {
            base[offset] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / 10)
            base[offset + 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
        }
        @inline(__always) func putMilliseconds() {
            base[19] = UInt8(ascii: ".")
            base[20] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: milliseconds / 100)
            putTwo(milliseconds % 100, at: 21)
            base[23] = UInt8(ascii: "Z")
        }
        if keepingSecond, let cache, cache.pointee.second == seconds {
            withUnsafeBytes(of: &cache.pointee.text) {
                base.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: 19)
            }
            putMilliseconds()
            return true
        }
        let days = seconds / 86_400
        let secondOfDay = seconds - days * 86_400
        if let cache, cache.pointee.day == days {
            withUnsafeBytes(of: &cache.pointee.date) {
                base.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: 10)
            }
        } else {
            // Days to a civil date (Howard Hinnant's days_from_civil inverse, for days >= 0).
            let shifted = days + 719_468
            let era = shifted / 146_097
            let dayOfEra = shifted - era * 146_097
            let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let shiftedMonth = (5 * dayOfYear + 2) / 153
            let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
            let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
            let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
            putTwo(year / 100, at: 0)
            putTwo(year % 100, at: 2)
            base[4] = UInt8(ascii: "-")
            putTwo(month, at: 5)
            base[7] = UInt8(ascii: "-")
            putTwo(day, at: 8)
            if let cache {
                cache.pointee.day = days
                withUnsafeMutableBytes(of: &cache.pointee.date) {
                    $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: 10))
                }
            }
        }
        base[10] = UInt8(ascii: "T")
        putTwo(secondOfDay / 3600, at: 11)
        base[13] = UInt8(ascii: ":")
        putTwo(secondOfDay / 60 % 60, at: 14)
        base[16] = UInt8(ascii: ":")
        putTwo(secondOfDay % 60, at: 17)
        putMilliseconds()
        if keepingSecond, let cache {
            cache.pointee.second = seconds
            withUnsafeMutableBytes(of: &cache.pointee.text) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: 19))
            }
        }
        return true
    }
}

/// The RFC 3339 text up to the second (`2026-12-04T18:26:14`) of the last current time one thread wrote, and the
/// date (`2026-12-04`) of the last day it wrote: per thread, so it needs no lock.
struct RFC3339SecondCache {
    /// Seconds since 1970 the text is of (`UInt.max`: none yet).
    var second = UInt.max
    /// The 19 bytes.
    var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
    /// Days since 1970 the date is of (`UInt.max`: none yet).
    var day = UInt.max
    /// The 10 bytes.
    var date: (UInt64, UInt64) = (0, 0)

    /// This thread's cache (made on first use, freed when the thread ends); `nil` if it cannot be made.
    static func forThisThread() -> UnsafeMutablePointer<RFC3339SecondCache>? {
        guard let key = threadKey else { return nil }
        if let existing = pthread_getspecific(key) { return existing.assumingMemoryBound(to: RFC3339SecondCache.self) }
        guard let raw = malloc(MemoryLayout<RFC3339SecondCache>.size) else { return nil }
        let cache = raw.bindMemory(to: RFC3339SecondCache.self, capacity: 1)
        cache.initialize(to: RFC3339SecondCache())
        guard pthread_setspecific(key, raw) == 0 else {
            free(raw)
            return nil
        }
        return cache
    }

    /// The thread-specific key, made once; its destructor frees a thread's cache when the thread ends.
    private static let threadKey: pthread_key_t? = {
        var key = pthread_key_t()
        return pthread_key_create(&key) { free($0) } == 0 ? key : nil
    }()
}
