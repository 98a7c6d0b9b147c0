/// The identifier of a task: 128 bits from the system CSPRNG, written as 22 URL-safe base64 characters.
///
/// Identifiers are unguessable and carry no order, so holding one is what grants access to a task.
public struct TaskID: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The 22-character text form, safe in URLs, HTML attributes and Redis keys.
    public let rawValue: String

    /// The length of every valid identifier.
    public static let length = 22

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

    /// The 128 bits `high` then `low`, big-endian, in URL-safe base64 without padding: 21 characters of 6 bits,
    /// then one of the last 2 bits.
    private init(high: UInt64, low: UInt64) {
        let value = UInt128(high) << 64 | UInt128(low)
        rawValue = String(unsafeUninitializedCapacity: Self.length) { out in
            Self.alphabet.withUnsafeBufferPointer { alphabet in
                for index in 0..<21 {
                    out[index] = alphabet[Int(truncatingIfNeeded: value >> (122 - 6 * index)) & 0x3F]
                }
                out[21] = alphabet[Int(truncatingIfNeeded: value & 0x3) << 4]
            }
            return Self.length
        }
    }

    /// Parses the text form; anything but exactly 22 characters of `[A-Za-z0-9_-]` is rejected.
    /// - Parameter text: untrusted input, for example a query parameter.
    public init?(_ text: some StringProtocol) {
        self.init(String(text))
    }

    /// ``init(_:)`` for a `String`, the common case (a query parameter): its bytes read in place.
    /// - Parameter text: untrusted input.
    public init?(_ text: String) {
        var contiguous = text
        let valid = text.utf8.withContiguousStorageIfAvailable(Self.isValid) ?? contiguous.withUTF8(Self.isValid)
        guard valid else { return nil }
        self.rawValue = text
    }

    /// Exactly 22 characters of `[A-Za-z0-9_-]`, the last with only its 2 significant bits.
    private static func isValid(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        guard utf8.count == length else { return false }
        for byte in utf8 where sextet(byte) == nil { return false }
        // The last character carries only 2 significant bits (128 = 21×6 + 2): the rest must be zero.
        guard let value = sextet(utf8[length - 1]), value & 0x0F == 0 else { return false }
        return true
    }

    /// Hashes the first 16 of the 22 characters: an id is 128 random bits, so those 96 bits spread ids as well
    /// as all of them, with a fraction of the work (a `String` is hashed byte by byte). Equal ids have equal
    /// first characters, as `Hashable` requires.
    public func hash(into hasher: inout Hasher) {
        if rawValue.utf8.withContiguousStorageIfAvailable({ Self.hash($0, into: &hasher) }) != nil { return }
        var contiguous = rawValue
        contiguous.withUTF8 { Self.hash($0, into: &hasher) }
    }

    private static func hash(_ utf8: UnsafeBufferPointer<UInt8>, into hasher: inout Hasher) {
        guard utf8.count >= 16, let base = utf8.baseAddress else {
            hasher.combine(bytes: UnsafeRawBufferPointer(utf8))
            return
        }
        hasher.combine(UnsafeRawPointer(base).loadUnaligned(as: UInt64.self))
        hasher.combine(UnsafeRawPointer(base + 8).loadUnaligned(as: UInt64.self))
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

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x41...0x5A: byte - 0x41
        case 0x61...0x7A: byte - 0x61 + 26
        case 0x30...0x39: byte - 0x30 + 52
        case 0x2D: 62
        case 0x5F: 63
        default: nil
        }
    }
}

/// getrandom(2) (declared in <sys/random.h>, which the Glibc module does not import).
@_silgen_name("getrandom") private func systemGetRandom(
    _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ flags: UInt32
)
    -> Int
