internal import CHiredis
import Foundation
import Locking

/// A Redis reply.
public enum RedisValue: Sendable, Equatable {
    /// A bulk or simple string, as bytes.
    case string([UInt8])
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
        case .string(let bytes): String(decoding: bytes, as: UTF8.self)
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

/// Why a Redis command failed.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    public var description: String { message }
}

/// Where Redis is: `redis://[:password@]host[:port][/db]`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var password: String?
    public var database: Int

    /// Parses a URL.
    /// - Parameter text: the URL.
    /// - Returns: `nil` when it is not a `redis://` URL.
    public init?(_ text: String) {
        guard let components = URLComponents(string: text), components.scheme == "redis",
            let host = components.host, !host.isEmpty
        else { return nil }
        self.host = host
        port = components.port ?? 6379
        let secret = components.password ?? components.user
        password = (secret?.isEmpty ?? true) ? nil : secret?.removingPercentEncoding
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if path.isEmpty {
            database = 0
        } else if let database = Int(path), database >= 0 {
            self.database = database
        } else {
            return nil
        }
    }

    /// The URL without the password, for logs.
    public var description: String { "redis://\(password == nil ? "" : ":***@")\(host):\(port)/\(database)" }
}

/// One connection (a hiredis context). Not thread-safe: ``RedisClient`` lends it to one thread at a time.
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>

    init(url: RedisURL, timeout: Duration) throws(RedisError) {
        let tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        guard let context = redisConnectWithTimeout(url.host, Int32(url.port), tv) else {
            throw RedisError(message: "cannot allocate a Redis connection")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(message: "cannot connect to \(url): \(message)")
        }
        self.context = context
        redisSetTimeout(context, tv)
        redisEnableKeepAlive(context)
        if let password = url.password {
            let reply = try command(["AUTH", password])
            if case .error(let message) = reply { throw RedisError(message: "Redis AUTH failed: \(message)") }
        }
        if url.database != 0 {
            let reply = try command(["SELECT", String(url.database)])
            if case .error(let message) = reply { throw RedisError(message: "Redis SELECT failed: \(message)") }
        }
    }

    deinit { redisFree(context) }

    /// Whether the connection has failed (it must then be dropped).
    var isBroken: Bool { context.pointee.err != 0 }

    /// Sends a command and reads its reply.
    func command(_ arguments: [String]) throws(RedisError) -> RedisValue {
        try send(arguments)
        return try readReply()
    }

    /// Sends a command without reading its reply (pipelining, SUBSCRIBE).
    func send(_ arguments: [String]) throws(RedisError) {
        let bytes = arguments.map { Array($0.utf8) }
        let status: Int32 = withPointers(bytes) { pointers, lengths in
            redisAppendCommandArgv(context, Int32(bytes.count), pointers, lengths)
        }
        guard status == REDIS_OK else { throw RedisError(message: "Redis: \(Self.errorText(context))") }
    }

    /// Reads the next reply, blocking up to the timeout.
    func readReply() throws(RedisError) -> RedisValue {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw RedisError(message: "Redis: \(Self.errorText(context))")
        }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Sets how long a read may block (the subscriber waits longer than commands do).
    func setTimeout(_ timeout: Duration) {
        let tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        redisSetTimeout(context, tv)
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS:
            guard let str = value.str else { return .string([]) }
            return .string(Array(UnsafeRawBufferPointer(start: str, count: Int(value.len))))
        case REDIS_REPLY_ERROR:
            guard let str = value.str else { return .error("unknown error") }
            return .error(String(decoding: UnsafeRawBufferPointer(start: str, count: Int(value.len)), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(value.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(Int(value.elements))
            for index in 0..<Int(value.elements) {
                if let element = value.element[index] { elements.append(convert(element)) } else { elements.append(.null) }
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { buffer in
            let bytes = buffer.prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.isEmpty ? "connection error \(context.pointee.err)" : text
        }
    }

    private func withPointers<R>(
        _ arguments: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(1, arguments.count))
        defer { pointers.deallocate() }
        var lengths = arguments.map(\.count)
        var storage: [UnsafeMutablePointer<CChar>] = []
        defer { storage.forEach { $0.deallocate() } }
        for (index, argument) in arguments.enumerated() {
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, argument.count))
            argument.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress { UnsafeMutableRawPointer(copy).copyMemory(from: base, byteCount: argument.count) }
            }
            storage.append(copy)
            pointers[index] = UnsafePointer(copy)
        }
        return lengths.withUnsafeMutableBufferPointer { body(pointers, UnsafePointer($0.baseAddress!)) }
    }
}

/// A small pool of connections to one Redis server, safe to use from any thread.
///
/// A broken connection is dropped and a new one made on the next call; after a failed connect, new attempts wait
/// out a backoff (up to 2 s) so that a Redis outage costs callers a fast error, not a connect timeout each.
public final class RedisClient: Sendable {
    /// The server.
    public let url: RedisURL
    private let timeout: Duration
    private let idle = LockedValue<[RedisConnection]>([])
    private let backoff = LockedValue<(until: ContinuousClock.Instant, delay: Duration)>((.now, .milliseconds(50)))

    /// - Parameters:
    ///   - url: the server.
    ///   - timeout: the connect and command timeout.
    public init(url: RedisURL, timeout: Duration = .seconds(2)) {
        self.url = url
        self.timeout = timeout
    }

    /// Runs one command.
    /// - Parameter arguments: the command and its arguments.
    /// - Returns: the reply (an error reply is returned, not thrown).
    /// - Throws: ``RedisError`` when Redis cannot be reached.
    @discardableResult
    public func command(_ arguments: [String]) throws(RedisError) -> RedisValue {
        let connection = try borrow()
        do {
            let reply = try connection.command(arguments)
            giveBack(connection)
            return reply
        } catch {
            // A failed command leaves the protocol state unknown: never reuse the connection.
            throw error
        }
    }

    /// Opens a dedicated connection (for SUBSCRIBE).
    func dedicatedConnection() throws(RedisError) -> RedisConnection {
        try RedisConnection(url: url, timeout: timeout)
    }

    private func borrow() throws(RedisError) -> RedisConnection {
        if let connection = idle.withLock({ $0.popLast() }) { return connection }
        let now = ContinuousClock.now
        let waitUntil = backoff.withLock { $0.until }
        if now < waitUntil {
            throw RedisError(message: "Redis at \(url) is unreachable; retrying shortly")
        }
        do {
            let connection = try RedisConnection(url: url, timeout: timeout)
            backoff.withLock { $0 = (.now, .milliseconds(50)) }
            return connection
        } catch {
            backoff.withLock { state in
                state.until = .now + state.delay
                state.delay = min(state.delay * 2, .seconds(2))
            }
            throw error
        }
    }

    private func giveBack(_ connection: RedisConnection) {
        guard !connection.isBroken else { return }
        idle.withLock { if $0.count < 32 { $0.append(connection) } }
    }
}
