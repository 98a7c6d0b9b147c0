import StandardExtensions

/// A JSON document read without Foundation, for the few events of each call that are not text deltas (a message's
/// start, a block's start and end, the stop reason and usage): `JSONDecoder` costs some 50,000 instructions for
/// each, which is more than a whole delta's path.
///
/// It accepts only what it reads exactly as `JSONDecoder` would: strict JSON (RFC 8259), strings through
/// ``JSONStringLiteral``, at most ``maxDepth`` levels. Anything else gives `nil` (so does a lookup that meets a
/// duplicate key or a value of an unexpected type), and the caller decodes the event with `JSONDecoder` instead,
/// which then accepts or rejects it as before.
enum EventJSON: Equatable {
    case null
    case bool(Bool)
    /// A number, as its literal text (a member's reader decides what it may be).
    case number(String)
    case string(String)
    case array([EventJSON])
    case object([(String, EventJSON)])

    /// The deepest nesting read; deeper documents are left to `JSONDecoder`.
    static let maxDepth = 32

    static func == (lhs: EventJSON, rhs: EventJSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.elementsEqual(b) { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// Reads a whole document; `nil` when it is not strict JSON or goes deeper than ``maxDepth``.
    static func parse(_ text: String) -> EventJSON? {
        var text = text
        return text.withUTF8 { bytes in
            var reader = Reader(bytes: bytes)
            guard let value = reader.value(depth: 0) else { return nil }
            reader.skipSpace()
            return reader.index == bytes.count ? value : nil
        }
    }

    /// A member of an object: `.some(nil)` when absent or `null`; `nil` (leave it to `JSONDecoder`) when this is not
    /// an object or the key appears more than once.
    subscript(key: String) -> EventJSON?? {
        guard case .object(let members) = self else { return nil }
        var found: EventJSON?
        for (name, value) in members where name == key {
            guard found == nil else { return nil }
            found = value
        }
        if let found, found != .null { return .some(found) }
        return .some(nil)
    }

    /// A member that must be a string when present: `.some(nil)` when absent or `null`, `nil` for another type.
    func string(_ key: String) -> String?? {
        guard let member = self[key] else { return nil }
        guard let member else { return .some(nil) }
        guard case .string(let value) = member else { return nil }
        return .some(value)
    }

    /// A member that must be an integer when present (digits, an optional minus, within `Int`): as ``string(_:)``.
    func int(_ key: String) -> Int?? {
        guard let member = self[key] else { return nil }
        guard let member else { return .some(nil) }
        guard case .number(let literal) = member, let value = Int(literal) else { return nil }
        return .some(value)
    }

    /// A member that must be an object when present: as ``string(_:)``.
    func object(_ key: String) -> EventJSON?? {
        guard let member = self[key] else { return nil }
        guard let member else { return .some(nil) }
        guard case .object = member else { return nil }
        return .some(member)
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard bytes.count - index >= count else { return false }
            for offset in 0..<count where bytes[index + offset] != text.utf8Start[offset] { return false }
            index += count
            return true
        }

        mutating func value(depth: Int) -> EventJSON? {
            guard depth <= EventJSON.maxDepth else { return nil }
            skipSpace()
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"):
                index += 1
                var members: [(String, EventJSON)] = []
                skipSpace()
                if take(UInt8(ascii: "}")) { return .object(members) }
                repeat {
                    skipSpace()
                    guard take(UInt8(ascii: "\"")), let key = JSONStringLiteral.read(bytes, at: &index) else {
                        return nil
                    }
                    skipSpace()
                    guard take(UInt8(ascii: ":")), let member = value(depth: depth + 1) else { return nil }
                    members.append((key, member))
                    skipSpace()
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "}")) ? .object(members) : nil
            case UInt8(ascii: "["):
                index += 1
                var elements: [EventJSON] = []
                skipSpace()
                if take(UInt8(ascii: "]")) { return .array(elements) }
                repeat {
                    guard let element = value(depth: depth + 1) else { return nil }
                    elements.append(element)
                    skipSpace()
                } while take(UInt8(ascii: ","))
                return take(UInt8(ascii: "]")) ? .array(elements) : nil
            case UInt8(ascii: "\""):
                index += 1
                return JSONStringLiteral.read(bytes, at: &index).map { .string($0) }
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            default: return number()
            }
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
        mutating func number() -> EventJSON? {
            let start = index
            _ = take(UInt8(ascii: "-"))
            if take(UInt8(ascii: "0")) {
                // No leading zeros.
            } else {
                guard digits() else { return nil }
            }
            if take(UInt8(ascii: ".")) {
                guard digits() else { return nil }
            }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard digits() else { return nil }
            }
            return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
        }

        /// One or more digits.
        mutating func digits() -> Bool {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index > start
        }
    }
}
