/// The identifier of a task: 128 bits from the system CSPRNG, written as 22 URL-safe base64 characters.
///
/// Identifiers are unguessable and carry no order, so holding one is what grants access to a task. The value
/// keeps the bits, not the text: comparing and hashing an id is two words, and a lookup by an id read from a
/// request makes no `String`.
public struct TaskID: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The first 64 of the 128 bits.
    private let high: UInt64
    /// The last 64 bits.
    private let low: UInt64

    /// The length of every valid identifier.
    public static let length = 22

    /// The 22-character text form, safe in URLs, HTML attributes and Redis keys.
    public var rawValue: String {
        String(unsafeUninitializedCapacity: Self.length) { out in
            encode(into: out.baseAddress!)
            return Self.length
        }
    }

    /// Calls `body` with the text form's bytes, from stack space (no `String` is made).
    /// - Parameter body: reads the 22 bytes; they are valid only during the call.
    /// - Returns: what `body` returns.
    public func withUTF8<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes, room for the 22
        return try withUnsafeMutableBytes(of: &text) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            encode(into: bytes.baseAddress!)
            return try body(UnsafeBufferPointer(start: bytes.baseAddress, count: Self.length))
        }
    }

    /// Writes the text form's 22 bytes at `start` (a buffer being filled in place).
    /// - Parameter start: where the bytes go; room for ``length`` bytes.
    public func writeUTF8(to start: UnsafeMutablePointer<UInt8>) {
        encode(into: start)
    }

    /// Makes a new identifier from the kernel's CSPRNG: one getrandom(2) call for all 128 bits, falling back to
    /// `SystemRandomNumberGenerator`.
    /// - Returns: a fresh, unguessable identifier.
    public static func random() -> TaskID {
        var bits: (UInt64, UInt64) = (0, 0)
        let filled = withUnsafeMutableBytes(of: &bits) { systemGetRandom($0.baseAddress, $0.count, 0) == $0.count }
        guard filled else {
            var generator = SystemRandomNumberGenerator()
            return random(using: &generator)
        }
        return TaskID(high: bits.0, low: bits.1)
    }

    /// Makes an identifier from the given generator; tests pass a seeded one.
    /// - Parameter generator: the source of 128 random bits.
    /// - Returns: the identifier.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> TaskID {
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return TaskID(high: high, low: low)
    }

    private init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The 128 bits `high` then `low`, big-endian, in URL-safe base64 without padding: 21 characters of 6 bits,
    /// then one of the last 2 bits. Ten characters come from each word's top 60 bits, one from the 4 bits between.
    private func encode(into out: UnsafeMutablePointer<UInt8>) {
        let alphabet = Self.alphabet.utf8Start
        for index in 0..<10 {
            out[index] = alphabet[Int(truncatingIfNeeded: (high &>> (58 - 6 * index)) & 0x3F)]
            out[11 + index] = alphabet[Int(truncatingIfNeeded: (low &>> (56 - 6 * index)) & 0x3F)]
        }
        out[10] = alphabet[Int(truncatingIfNeeded: (high & 0xF) &<< 2 | low &>> 62)]
        out[21] = alphabet[Int(truncatingIfNeeded: (low & 0x3) &<< 4)]
    }

    /// Parses the text form; anything but exactly 22 characters of `[A-Za-z0-9_-]` is rejected.
    /// - Parameter text: untrusted input, for example a query parameter.
    public init?(_ text: some StringProtocol) {
        var text = String(text)
        guard let id = text.withUTF8({ TaskID(utf8: $0) }) else { return nil }
        self = id
    }

    /// ``init(_:)`` for a `String`, the common case: its bytes read in place.
    /// - Parameter text: untrusted input.
    public init?(_ text: String) {
        let parsed = text.utf8.withContiguousStorageIfAvailable { TaskID(utf8: $0) }
        if let parsed {
            guard let parsed else { return nil }
            self = parsed
            return
        }
        var contiguous = text
        guard let id = contiguous.withUTF8({ TaskID(utf8: $0) }) else { return nil }
        self = id
    }

    /// Parses the text form from bytes (a query parameter read in place): exactly 22 characters of
    /// `[A-Za-z0-9_-]`, the last with only its 2 significant bits (128 = 21×6 + 2), so that each id has one text.
    /// - Parameter utf8: untrusted input.
    public init?(utf8: UnsafeBufferPointer<UInt8>) {
        guard utf8.count == Self.length, let text = utf8.baseAddress else { return nil }
        // Two 60-bit halves in 64-bit words, the inverse of `encode`; 0x40 marks a byte outside the alphabet.
        let sextets = Self.sextets
        var first: UInt64 = 0
        var second: UInt64 = 0
        var invalid: UInt8 = 0
        for index in 0..<10 {
            let upper = sextets[Int(text[index])]
            let lower = sextets[Int(text[11 + index])]
            invalid |= upper | lower
            first = first &<< 6 | UInt64(upper & 0x3F)
            second = second &<< 6 | UInt64(lower & 0x3F)
        }
        let middle = sextets[Int(text[10])]
        let last = sextets[Int(text[21])]
        // The last character's low 4 bits carry nothing and must be zero: each id has one text.
        guard (invalid | middle) & 0x40 == 0, last & 0x4F == 0 else { return nil }
        high = first &<< 4 | UInt64(middle &>> 2)
        low = UInt64(middle & 0x3) &<< 62 | second &<< 2 | UInt64(last &>> 4)
    }

    /// Hashes the first 64 bits: an id is 128 random bits, so those spread ids as well as all of them. Equal ids
    /// have equal bits, as `Hashable` requires.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(high)
    }

    /// What a `Set` or `Dictionary` of ids hashes by: the first 64 bits, mixed with the table's seed, without
    /// SipHash (~150 instructions per lookup). Sound because an id's bits come from the CSPRNG: a table only ever
    /// stores ids this process made, so no one can choose ids that collide, which is what SipHash guards against.
    public func _rawHashValue(seed: Int) -> Int {
        Int(truncatingIfNeeded: high ^ UInt64(truncatingIfNeeded: seed))
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = TaskID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a task id"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// The characters for 0 to 63 (a literal: read in place, no array or lazy global).
    private static var alphabet: StaticString { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" }

    /// ``sextet(_:)`` for every byte value, one load per character when parsing. Written once, then only read.
    private nonisolated(unsafe) static let sextets: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for byte in 0...255 { table[byte] = sextet(UInt8(byte)) }
        return UnsafePointer(table)
    }()

    /// The 6 bits a character stands for, or 0x40 for a byte outside the alphabet.
    private static func sextet(_ byte: UInt8) -> UInt8 {
        switch byte {
        case 0x41...0x5A: byte &- 0x41
        case 0x61...0x7A: byte &- 0x61 &+ 26
        case 0x30...0x39: byte &- 0x30 &+ 52
        case 0x2D: 62
        case 0x5F: 63
        default: 0x40
        }
    }
}

/// getrandom(2) (declared in <sys/random.h>, which the Glibc module does not import).
@_silgen_name("getrandom") private func systemGetRandom(
    _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: UInt32
)
    -> Int
