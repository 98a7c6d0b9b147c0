/// Why the store could not do what was asked.
///
/// A struct over a private code, so that a new reason never breaks a `switch` elsewhere: compare with the static
/// members (`error == .queueFull`, or `catch .queueFull` on a `throws(TaskStoreError)` call). Equality looks at the
/// reason only, never at the details of ``unavailable(_:underlying:)``.
public struct TaskStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case queueFull
        case clientLimit
        case leaseLost
        case unavailable
    }

    private let code: Code
    /// Why the store is unavailable, for logs.
    private let reason: String?
    /// The error beneath, when there was one (a `RedisError`…), for logs.
    private let underlying: (any Error & Sendable)?

    private init(_ code: Code, reason: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.reason = reason
        self.underlying = underlying
    }

    /// The queue holds as many tasks as it may; try again later.
    public static let queueFull = TaskStoreError(.queueFull)

    /// The task's client already has as many tasks queued or running as it may.
    public static let clientLimit = TaskStoreError(.clientLimit)

    /// The write came from a claim that no longer owns the task (its lease ran out and the task was claimed
    /// again): the run that made it must stop without writing anything more.
    public static let leaseLost = TaskStoreError(.leaseLost)

    /// The store cannot be reached or answered something it should not (for example, Redis is down).
    /// - Parameters:
    ///   - reason: what went wrong, for logs (never shown to users).
    ///   - underlying: the error beneath, if any.
    /// - Returns: the error.
    public static func unavailable(_ reason: String, underlying: (any Error & Sendable)? = nil) -> TaskStoreError {
        TaskStoreError(.unavailable, reason: reason, underlying: underlying)
    }

    /// Whether this is an ``unavailable(_:underlying:)`` error, whatever its reason.
    public var isUnavailable: Bool { code == .unavailable }

    /// The error beneath an ``unavailable(_:underlying:)`` error, if it had one.
    public var underlyingError: (any Error & Sendable)? { underlying }

    public static func == (lhs: TaskStoreError, rhs: TaskStoreError) -> Bool {
        lhs.code == rhs.code
    }

    /// A sentence for logs, with the reason an unavailable store gave.
    public var description: String {
        switch code {
        case .queueFull: "the task queue is full"
        case .clientLimit: "this client has too many tasks in progress"
        case .leaseLost: "the task's lease was lost to another claim"
        case .unavailable: "the task store is unavailable: \(reason ?? "unknown reason")"
        }
    }

    /// A fixed word for the reason alone (no details), fit for a metric label: `queue_full`, `client_limit`,
    /// `lease_lost` or `unavailable`.
    public var shortDescription: String {
        switch code {
        case .queueFull: "queue_full"
        case .clientLimit: "client_limit"
        case .leaseLost: "lease_lost"
        case .unavailable: "unavailable"
        }
    }
}
