/// Why a Redis call failed: what was being done, and hiredis's own code and message when the failure was its.
///
/// A struct over a private code (compare with the static members: `error == .io`); equality looks at the code
/// only. ``description`` is for logs; ``shortDescription`` is a fixed word, fit for a metric label.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case connect
        case io
        case replyError
        case notMaster
        case backingOff
        case noMasterFound
        case masterChanged
        case pingTimeout
        case poll
    }

    private let code: Code
    /// What was being done: `connect`, `AUTH`, `read reply`, `poll`…
    public let operation: String
    /// hiredis's error code (`REDIS_ERR_IO`, `REDIS_ERR_EOF`…), 0 when the error did not come from hiredis.
    public let hiredisCode: Int32
    /// hiredis's message (`redisContext.errstr`), the server's error reply or other detail; empty when none.
    public let detail: String

    private init(_ code: Code, operation: String, hiredisCode: Int32 = 0, detail: String = "") {
        self.code = code
        self.operation = operation
        self.hiredisCode = hiredisCode
        self.detail = detail
    }

    /// Connecting to a server failed (refused, timed out, name not resolved…).
    public static let connect = RedisError(.connect, operation: "connect")
    /// Reading or writing on an open connection failed (the server closed it, a timeout…).
    public static let io = RedisError(.io, operation: "io")
    /// The server answered a set-up command (AUTH, SELECT) with an error.
    public static let replyError = RedisError(.replyError, operation: "command")
    /// The server is not the master now (a replica after a failover, or still loading its data).
    public static let notMaster = RedisError(.notMaster, operation: "command")
    /// A recent connect failed: new attempts wait out a short backoff instead of a connect timeout each.
    public static let backingOff = RedisError(.backingOff, operation: "connect")
    /// No sentinel named a master.
    public static let noMasterFound = RedisError(.noMasterFound, operation: "sentinel lookup")
    /// Other connections found the master gone or changed: a long-lived connection must reconnect.
    public static let masterChanged = RedisError(.masterChanged, operation: "listen")
    /// A PING on an idle connection went unanswered.
    public static let pingTimeout = RedisError(.pingTimeout, operation: "PING")
    /// `poll` on the connection's socket failed.
    public static let poll = RedisError(.poll, operation: "poll")

    /// A connect failed.
    static func connect(to address: String, hiredisCode: Int32 = 0, _ message: String) -> RedisError {
        RedisError(.connect, operation: "connect to \(address)", hiredisCode: hiredisCode, detail: message)
    }

    /// hiredis reported a failure on an open connection.
    static func io(_ operation: String, hiredisCode: Int32, _ message: String) -> RedisError {
        RedisError(.io, operation: operation, hiredisCode: hiredisCode, detail: message)
    }

    /// The server answered `command` with an error reply.
    static func replyError(_ command: String, _ message: String) -> RedisError {
        RedisError(.replyError, operation: command, detail: message)
    }

    /// The server said it cannot take writes now, or is not the master.
    static func notMaster(_ detail: String) -> RedisError {
        RedisError(.notMaster, operation: "command", detail: detail)
    }

    /// A connect is not tried before the backoff after the last failed one has passed.
    static func backingOff(_ url: String) -> RedisError {
        RedisError(.backingOff, operation: "connect", detail: "Redis at \(url) is unreachable; retrying shortly")
    }

    /// No sentinel named a master.
    static func noMasterFound(_ detail: String) -> RedisError {
        RedisError(.noMasterFound, operation: "sentinel lookup", detail: detail)
    }

    /// `poll` failed with `errno`.
    static func poll(errno: Int32) -> RedisError {
        RedisError(.poll, operation: "poll", detail: "errno \(errno)")
    }

    public static func == (lhs: RedisError, rhs: RedisError) -> Bool {
        lhs.code == rhs.code
    }

    /// What failed, in a sentence for logs (the operation, hiredis's code and message).
    public var message: String {
        let what: String =
            switch code {
            case .connect: "cannot connect to Redis"
            case .io: "Redis connection failed"
            case .replyError: "Redis refused the command"
            case .notMaster: "Redis is not the master now"
            case .backingOff: "Redis is unreachable; retrying shortly"
            case .noMasterFound: "no sentinel named a Redis master"
            case .masterChanged: "the Redis master changed"
            case .pingTimeout: "no answer to PING"
            case .poll: "poll on the Redis connection failed"
            }
        var text = "\(what) (\(operation)"
        if hiredisCode != 0 { text += ", hiredis error \(hiredisCode)" }
        text += ")"
        if !detail.isEmpty { text += ": \(detail)" }
        return text
    }

    public var description: String { message }

    /// A fixed word for the kind of failure alone, fit for a metric label.
    public var shortDescription: String {
        switch code {
        case .connect: "connect"
        case .io: "io"
        case .replyError: "reply_error"
        case .notMaster: "not_master"
        case .backingOff: "backing_off"
        case .noMasterFound: "no_master_found"
        case .masterChanged: "master_changed"
        case .pingTimeout: "ping_timeout"
        case .poll: "poll"
        }
    }
}
