/// The identifier of a task: 128 bits from the system CSPRNG, written as 22 URL-safe base64 characters.
///
/// Identifiers are unguessable and carry no order, so holding one is what grants access to a task.
public struct TaskID: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The 22-character text form, safe in URLs, HTML attributes and Redis keys.
    public let rawValue: String

    /// The length of every valid identifier.
    public static let length = 22

    /// Makes a new identifier from `SystemRandomNumberGenerator` (getrandom(2) on Linux).
    /// - Returns: a fresh, unguessable identifier.
    public static func random() -> TaskID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// Makes an identifier from the given generator; tests pass a seeded one.
    /// - Parameter generator: the source of 128 random bits.
    /// - Returns: the identifier.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> TaskID {
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: high >> UInt64(shift)))
        }
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: low >> UInt64(shift)))
        }
        return TaskID(uncheckedRawValue: base64URLEncode(bytes))
    }

    /// Parses the text form; anything but exactly 22 characters of `[A-Za-z0-9_-]` is rejected.
    /// - Parameter text: untrusted input, for example a query parameter.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count == Self.length, utf8.allSatisfy(Self.isAlphabetByte) else { return nil }
        // The last character carries only 2 significant bits (128 = 21×6 + 2): the rest must be zero.
        guard let last = utf8.last, let value = Self.sextet(last), value & 0x0F == 0 else { return nil }
        self.rawValue = String(text)
    }

    private init(uncheckedRawValue: String) {
        self.rawValue = uncheckedRawValue
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

    private static func isAlphabetByte(_ byte: UInt8) -> Bool { sextet(byte) != nil }

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

    private static func base64URLEncode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(length)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int((chunk >> UInt32(shift)) & 0x3F)]) }
            index += 3
        }
        // 16 bytes leave one: 8 bits become two characters, no padding.
        let rest = UInt32(bytes[index]) << 16
        out.append(alphabet[Int((rest >> 18) & 0x3F)])
        out.append(alphabet[Int((rest >> 12) & 0x3F)])
        return String(decoding: out, as: UTF8.self)
    }
}
