internal import CHiredis
import Glibc
import StandardExtensions
import Tasks

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

    /// Queues a command (sent with the next read).
    ///
    /// The command is written in Redis's wire format (RESP: `*N`, then `$length` and the bytes of each argument)
    /// into one buffer that hiredis copies into its output buffer as it is: hiredis's own formatting
    /// (`redisAppendCommandArgv`, `sdscatfmt`) cost ~3,500 instructions a command, most of a record read.
    func send(_ arguments: [String]) throws(RedisError) {
        var total = 1 + DecimalText.digitCount(UInt(arguments.count)) + 2
        for argument in arguments {
            let length = argument.utf8.count
            total += 1 + DecimalText.digitCount(UInt(length)) + 2 + length + 2
        }
        let status: Int32 = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: total) { buffer in
            let base = buffer.baseAddress!
            var end = 0
            @inline(__always) func put(_ byte: UInt8) {
                base[end] = byte
                end += 1
            }
            @inline(__always) func putDecimal(_ value: Int) {
                end += DecimalText.write(UInt(value), to: base + end)
            }
            put(UInt8(ascii: "*"))
            putDecimal(arguments.count)
            put(UInt8(ascii: "\r"))
            put(UInt8(ascii: "\n"))
            for argument in arguments {
                put(UInt8(ascii: "$"))
                putDecimal(argument.utf8.count)
                put(UInt8(ascii: "\r"))
                put(UInt8(ascii: "\n"))
                var text = argument
                text.withUTF8 { utf8 in
                    guard let source = utf8.baseAddress else { return }
                    (base + end).update(from: source, count: utf8.count)
                    end += utf8.count
                }
                put(UInt8(ascii: "\r"))
                put(UInt8(ascii: "\n"))
            }
            return UnsafeRawPointer(base).withMemoryRebound(to: CChar.self, capacity: end) {
                redisAppendFormattedCommand(context, $0, end)
            }
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
            guard let str = value.str else { return .string("") }
            return .string(String(decoding: UnsafeRawBufferPointer(start: str, count: Int(value.len)), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            guard let str = value.str else { return .error("unknown error") }
            return .error(String(decoding: UnsafeRawBufferPointer(start: str, count: Int(value.len)), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(value.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(Int(value.elements))
            for index in 0..<Int(value.elements) {
                if let element = value.element[index] {
                    elements.append(convert(element))
                } else {
                    elements.append(.null)
                }
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
}
