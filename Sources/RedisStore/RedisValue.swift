/// A Redis reply.
public enum RedisValue: Sendable, Equatable {
    /// A bulk or simple string, as text: everything Longhaul keeps in Redis is UTF-8 text (bytes that are not would
    /// read as U+FFFD). Text rather than bytes: a reply's short fields (a status, a time, a count) then fit in the
    /// `String` itself, and a `[UInt8]` per field cost an allocation that looks the array's storage type up at
    /// run time on this toolchain (~450 instructions; a record read has a dozen fields).
    case string(String)
    /// An integer.
    case integer(Int)
    /// An array of replies.
    case array([RedisValue])
    /// Nil.
    case null
    /// An error reply from the server.
    case error(String)

    /// The value as UTF-8 text, for string and integer replies.
    public var text: String? {
        switch self {
        case .string(let text): text
        case .integer(let value): String(value)
        default: nil
        }
    }

    /// The value as an integer, for integer replies and numeric strings.
    public var integer: Int? {
        switch self {
        case .integer(let value): value
        case .string: text.flatMap { Int($0) }
        default: nil
        }
    }

    /// The elements of an array reply (empty otherwise).
    public var elements: [RedisValue] {
        if case .array(let values) = self { return values }
        return []
    }
}

extension RedisValue {
    /// Whether this error reply means the server cannot take writes now (a replica after a failover, a server
    /// loading its data): the connection must be dropped and the master found again.
    var isNotMasterError: Bool {
        guard case .error(let message) = self else { return false }
        return message.hasPrefix("READONLY") || message.hasPrefix("LOADING") || message.hasPrefix("MASTERDOWN")
    }
}
