internal import CHiredis
import Foundation
import Glibc
import Locking
import Tasks

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

extension RedisValue {
    /// Whether this error reply means the server cannot take writes now (a replica after a failover, a server
    /// loading its data): the connection must be dropped and the master found again.
    var isNotMasterError: Bool {
        guard case .error(let message) = self else { return false }
        return message.hasPrefix("READONLY") || message.hasPrefix("LOADING") || message.hasPrefix("MASTERDOWN")
    }
}

/// One connection (a hiredis context). Not thread-safe: ``RedisClient`` lends it to one thread at a time.
final class RedisConnection: @unchecked Sendable {
    private let context: UnsafeMutablePointer<redisContext>

    /// Connects, authenticates and selects the database.
    /// - Parameters:
    ///   - address: the server.
    ///   - password: sent with AUTH when set.
    ///   - database: selected when not 0.
    ///   - timeout: the connect timeout and every read's and write's.
    init(address: RedisAddress, password: String?, database: Int, timeout: Duration) throws(RedisError) {
        let tv = Self.timeval(timeout)
        guard let context = redisConnectWithTimeout(address.host, Int32(address.port), tv) else {
            throw RedisError.connect(to: "\(address)", "cannot allocate a hiredis context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            let code = context.pointee.err
            redisFree(context)
            throw RedisError.connect(to: "\(address)", hiredisCode: code, message)
        }
        self.context = context
        redisSetTimeout(context, tv)
        redisEnableKeepAlive(context)
        if let password {
            let reply = try command(["AUTH", password])
            if case .error(let message) = reply { throw RedisError.replyError("AUTH", message) }
        }
        if database != 0 {
            let reply = try command(["SELECT", String(database)])
            if case .error(let message) = reply { throw RedisError.replyError("SELECT", message) }
        }
    }

    private static func timeval(_ duration: Duration) -> Glibc.timeval {
        let microseconds = duration.wholeMicroseconds
        return Glibc.timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
    }

    /// The socket, for `poll`.
    var fileDescriptor: Int32 { context.pointee.fd }

    /// Reads what the socket has (call when `poll` says it is readable) without waiting for a whole reply.
    /// - Throws: when the connection has failed or the server closed it.
    func readAvailable() throws(RedisError) {
        guard redisBufferRead(context) == REDIS_OK else {
            throw RedisError.io("read", hiredisCode: context.pointee.err, Self.errorText(context))
        }
    }

    /// The next complete reply already read, if any (never touches the socket).
    func bufferedReply() throws(RedisError) -> RedisValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReplyFromReader(context, &raw) == REDIS_OK else {
            throw RedisError.io("read reply", hiredisCode: context.pointee.err, Self.errorText(context))
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Writes the commands queued by ``send(_:)``.
    func flush() throws(RedisError) {
        var done: Int32 = 0
        while done == 0 {
            guard redisBufferWrite(context, &done) == REDIS_OK else {
                throw RedisError.io("write", hiredisCode: context.pointee.err, Self.errorText(context))
            }
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
        guard status == REDIS_OK else {
            throw RedisError.io("send", hiredisCode: context.pointee.err, Self.errorText(context))
        }
    }

    /// Reads the next reply, blocking up to the timeout.
    func readReply() throws(RedisError) -> RedisValue {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw RedisError.io("read reply", hiredisCode: context.pointee.err, Self.errorText(context))
        }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Sets how long a read may block (the subscriber waits longer than commands do).
    func setTimeout(_ timeout: Duration) {
        redisSetTimeout(context, Self.timeval(timeout))
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

/// A small pool of connections to the Redis master, safe to use from any thread.
///
/// After any failed command every pooled connection is dropped (after a Redis restart they are all stale) and,
/// with Sentinel, the master is looked up again on the next connect; so is it after an error reply saying the
/// server is no longer the master (`READONLY`) or not ready (`LOADING`). After a failed connect, new attempts
/// wait out a short backoff (up to 0.5 s) so that an outage costs callers a fast error, not a connect timeout each.
public final class RedisClient: Sendable {
    private struct State {
        var idle: [RedisConnection] = []
        var master: RedisAddress?
        /// Bumped whenever connections are dropped; a long-lived connection made before must reconnect.
        var generation = 0
        var retryAt: ContinuousClock.Instant = .now
        var delay: Duration = .milliseconds(25)
    }

    /// The server, or the sentinels.
    public let url: RedisURL
    private let timeout: Duration
    private let state = LockedValue(State())

    /// - Parameters:
    ///   - url: the server, or the sentinels.
    ///   - timeout: the connect and command timeout.
    public init(url: RedisURL, timeout: Duration = .seconds(2)) {
        self.url = url
        self.timeout = timeout
    }

    /// Runs one command, once.
    /// - Parameter arguments: the command and its arguments.
    /// - Returns: the reply (an error reply is returned, not thrown).
    /// - Throws: ``RedisError`` when Redis cannot be reached.
    @discardableResult
    public func command(_ arguments: [String]) throws(RedisError) -> RedisValue {
        try pipeline([arguments])[0]
    }

    /// Runs commands on one connection, sending them all before reading the replies.
    /// - Parameter commands: the commands.
    /// - Returns: one reply each.
    /// - Throws: ``RedisError`` when Redis cannot be reached or is not the master.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisValue] {
        let connection = try borrow()
        do throws(RedisError) {
            for arguments in commands { try connection.send(arguments) }
            var replies: [RedisValue] = []
            for _ in commands { replies.append(try connection.readReply()) }
            if let notMaster = replies.first(where: \.isNotMasterError), case .error(let message) = notMaster {
                dropConnections()
                throw RedisError.notMaster(message)
            }
            giveBack(connection)
            return replies
        } catch {
            // A failed command leaves the protocol state unknown, and the others are likely stale too.
            dropConnections()
            throw error
        }
    }

    /// Runs commands that are safe to repeat, trying again on a fresh connection after a failure, up to
    /// `attempts` times with a short backoff (about 0.4 s in all), so a Redis restart or failover costs no error.
    /// - Parameters:
    ///   - commands: the commands, sent as one pipeline.
    ///   - attempts: the most tries.
    /// - Returns: one reply each.
    /// - Throws: the last ``RedisError``.
    public func pipelineRetrying(_ commands: [[String]], attempts: Int = 4) throws(RedisError) -> [RedisValue] {
        var delay = Duration.milliseconds(40)
        var tries = 0
        while true {
            do {
                return try pipeline(commands)
            } catch {
                tries += 1
                guard tries < attempts else { throw error }
                Thread.sleep(forTimeInterval: delay.timeInterval)
                delay *= 2
            }
        }
    }

    /// Drops every pooled connection and forgets the master (a Sentinel lookup happens on the next connect).
    public func dropConnections() {
        let dropped = state.withLock { state in
            defer {
                state.idle = []
                state.master = nil
                state.generation += 1
            }
            return state.idle
        }
        _ = dropped  // freed here, outside the lock
    }

    /// Bumped whenever connections are dropped: a long-lived connection made under an older one reconnects.
    public var generation: Int { state.withLock { $0.generation } }

    /// Opens a connection of its own to the master (for SUBSCRIBE).
    func dedicatedConnection() throws(RedisError) -> RedisConnection {
        try connectToMaster()
    }

    private func borrow() throws(RedisError) -> RedisConnection {
        if let connection = state.withLock({ $0.idle.popLast() }) { return connection }
        let retryAt = state.withLock { $0.retryAt }
        if ContinuousClock.now < retryAt {
            throw RedisError.backingOff("\(url)")
        }
        do {
            let connection = try connectToMaster()
            state.withLock { $0.delay = .milliseconds(25) }
            return connection
        } catch {
            state.withLock { state in
                state.retryAt = .now + state.delay
                state.delay = min(state.delay * 2, .milliseconds(500))
            }
            throw error
        }
    }

    private func giveBack(_ connection: RedisConnection) {
        guard !connection.isBroken else { return }
        state.withLock { if $0.idle.count < 32 { $0.idle.append(connection) } }
    }

    /// A connection to the server (plain URL) or to the master the sentinels name, checked with ROLE.
    private func connectToMaster() throws(RedisError) -> RedisConnection {
        guard url.usesSentinel else {
            return try RedisConnection(
                address: RedisAddress(host: url.host, port: url.port), password: url.password, database: url.database,
                timeout: timeout)
        }
        let known = state.withLock { $0.master }
        let master: RedisAddress
        if let known { master = known } else { master = try askSentinels() }
        let connection = try RedisConnection(
            address: master, password: url.password, database: url.database, timeout: timeout)
        let role = try connection.command(["ROLE"])
        guard role.elements.first?.text == "master" else {
            state.withLock { $0.master = nil }
            throw RedisError.notMaster("\(master) has the role \(role.elements.first?.text ?? "none")")
        }
        state.withLock { $0.master = master }
        return connection
    }

    /// Asks each sentinel in turn for the master's address.
    private func askSentinels() throws(RedisError) -> RedisAddress {
        var failures: [String] = []
        for sentinel in url.sentinels {
            do {
                let connection = try RedisConnection(address: sentinel, password: nil, database: 0, timeout: timeout)
                var reply = try connection.command(["SENTINEL", "get-master-addr-by-name", url.masterName ?? ""])
                if case .error(let message) = reply, message.hasPrefix("NOAUTH"), let password = url.password {
                    _ = try connection.command(["AUTH", password])
                    reply = try connection.command(["SENTINEL", "get-master-addr-by-name", url.masterName ?? ""])
                }
                let parts = reply.elements.compactMap(\.text)
                if parts.count == 2, let port = Int(parts[1]) { return RedisAddress(host: parts[0], port: port) }
                failures.append("\(sentinel): \(reply)")
            } catch {
                failures.append("\(sentinel): \(error.message)")
            }
        }
        throw RedisError.noMasterFound("'\(url.masterName ?? "")': \(failures.joined(separator: "; "))")
    }
}
