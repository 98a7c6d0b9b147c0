import Foundation

/// What happened when a cancellation was asked for.
public enum CancelOutcome: Sendable, Equatable {
    /// The task was still queued; it is now cancelled and will never start.
    case cancelled
    /// The task is running; the process running it has been told to stop.
    case requested
    /// The task had already finished in this state; nothing changed.
    case alreadyFinished(TaskStatus)
    /// No such task (unknown or expired).
    case notFound
}

/// The storage behind the task table.
///
/// Every method is thread-safe and synchronous: route handlers call it on FastCGI threads, which may block.
/// An implementation backed by a server (Redis) blocks for a network round trip; the in-memory one never blocks
/// for long. The queue and the limit on running tasks live here, so a shared store enforces them across processes.
public protocol TaskStore: Sendable {
    /// Stores a new queued task, unless the queue is full, its client has too many tasks in progress, or its
    /// idempotency key already names a task (then that task's id is returned and nothing is stored).
    /// - Parameters:
    ///   - record: a task in the ``TaskStatus/queued`` state.
    ///   - admission: the limits and the idempotency key.
    /// - Returns: the id of the task now answering the request: `record.id`, or the earlier task's.
    /// - Throws: ``TaskStoreError/queueFull``, ``TaskStoreError/clientLimit``,
    ///   ``TaskStoreError/unavailable(_:underlying:)``.
    func enqueue(_ record: TaskRecord, admission: Admission) throws(TaskStoreError) -> TaskID

    /// The task with this id, or `nil` when it is unknown or has expired.
    /// - Parameter id: the task id.
    /// - Returns: a snapshot of the task.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    func record(for id: TaskID) throws(TaskStoreError) -> TaskRecord?

    /// Takes the oldest queued task and marks it running under a new claim, if fewer than `maxRunning` tasks run.
    /// - Parameter maxRunning: the limit on running tasks.
    /// - Returns: the claim (its token fences every later write) and the task, or `nil` when nothing is queued or
    ///   the limit is reached.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    func claimNext(maxRunning: Int) throws(TaskStoreError) -> ClaimedTask?

    /// Appends a chunk of output to a running task, at a known byte offset so that a retry is harmless.
    /// - Parameters:
    ///   - claim: the run writing it.
    ///   - offset: the output's length in UTF-8 bytes before this chunk, as this run knows it.
    ///   - text: the chunk.
    /// - Throws: ``TaskStoreError/leaseLost`` when `claim` is no longer the task's current claim;
    ///   ``TaskStoreError/unavailable(_:underlying:)``.
    func appendOutput(_ claim: TaskClaim, at offset: Int, _ text: String) throws(TaskStoreError)

    /// Records job facts and progress on a running task.
    /// - Parameters:
    ///   - claim: the run writing it.
    ///   - metadata: entries to merge into ``TaskRecord/metadata``.
    ///   - progress: the new progress, or `nil` to leave it.
    /// - Throws: ``TaskStoreError/leaseLost``, ``TaskStoreError/unavailable(_:underlying:)``.
    func update(_ claim: TaskClaim, metadata: [String: String], progress: Double?) throws(TaskStoreError)

    /// Moves a running task to a final state. A task whose cancellation was requested ends cancelled. Finishing
    /// twice under the same claim (a retry after a lost reply) returns the final record again.
    /// - Parameters:
    ///   - claim: the run that ends.
    ///   - status: the final state.
    ///   - failure: why it failed, for ``TaskStatus/failed``.
    /// - Returns: the final record, or `nil` when the task is gone.
    /// - Throws: ``TaskStoreError/leaseLost`` when another claim owns the task now;
    ///   ``TaskStoreError/unavailable(_:underlying:)``.
    @discardableResult
    func finish(_ claim: TaskClaim, status: TaskStatus, failure: TaskFailure?) throws(TaskStoreError) -> TaskRecord?

    /// The task's state and the output it has beyond what a reader already has.
    /// - Parameters:
    ///   - id: the task id.
    ///   - attempt: the attempt whose output the reader has (-1: whichever is current); when the task's attempt
    ///     differs, the output is returned from the start.
    ///   - offset: how many UTF-8 bytes of that attempt's output the reader has.
    /// - Returns: the new output, or `nil` when the task is unknown or has expired.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    func output(of id: TaskID, attempt: Int, from offset: Int) throws(TaskStoreError) -> TaskOutput?

    /// Cancels a queued task, or flags a running one for cancellation.
    /// - Parameter id: the task id.
    /// - Returns: what happened.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    func cancel(_ id: TaskID) throws(TaskStoreError) -> CancelOutcome

    /// Deletes finished tasks whose time to live has passed. Queued and running tasks are never removed.
    /// - Returns: how many were removed.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    @discardableResult
    func sweepExpired() throws(TaskStoreError) -> Int

    /// How many tasks are in each state.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    func countsByStatus() throws(TaskStoreError) -> [TaskStatus: Int]

    /// Keeps this process's claims on its running tasks alive and reports those to stop (a shared store).
    /// - Parameter claims: the runs this process has.
    /// - Returns: the tasks to cancel and the tasks lost to another claim.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    func renewLeases(_ claims: [TaskClaim]) throws(TaskStoreError) -> LeaseReport

    /// Puts running tasks back at the front of the queue (a graceful shutdown of a shared store's process); a
    /// task whose cancellation was requested ends cancelled instead.
    /// - Parameter claims: the runs to hand back.
    /// - Returns: how many went back.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    func requeue(_ claims: [TaskClaim]) throws(TaskStoreError) -> Int

    /// Calls `handler` (on any thread) for changes made by any process sharing the store.
    /// - Parameter handler: the function; it must return quickly.
    func subscribeToChanges(_ handler: @escaping @Sendable (TaskStoreChange) -> Void)

    /// Whether other processes share this store (so tasks outlive this process). A shared store's calls may
    /// block for a network round trip.
    var isShared: Bool { get }

    /// How long a claim lasts without renewal before another process may take the task over; `nil` when claims
    /// never expire (a private store).
    var leaseTimeout: Duration? { get }
}

/// What renewing the leases of a process's running tasks found.
public struct LeaseReport: Sendable, Equatable {
    /// Tasks whose cancellation was requested (through any process): stop them.
    public var cancelRequested: [TaskID]
    /// Tasks this process no longer owns (its lease ran out and another process took them over): stop them
    /// without recording anything.
    public var lost: [TaskID]

    public init(cancelRequested: [TaskID] = [], lost: [TaskID] = []) {
        self.cancelRequested = cancelRequested
        self.lost = lost
    }
}

/// A change another process (or this one) made to a shared store.
public enum TaskStoreChange: Sendable, Equatable {
    /// A task's output or state changed.
    case task(TaskID)
    /// A task was queued or a running slot freed up: there may be work to claim.
    case workAvailable
    /// Changes may have been missed (the change feed reconnected): every watched task should be read again.
    case resync
}

/// One run's hold on a task: the token every write of that run carries, so a stale run's writes are refused.
public struct TaskClaim: Sendable, Hashable {
    /// The task.
    public let id: TaskID
    /// The fencing token: the attempt number and a random part, stored with the task while this claim owns it.
    public let token: String
    /// Which run of the task this is (1 for the first).
    public let attempt: Int

    /// - Parameters:
    ///   - id: the task.
    ///   - token: the fencing token.
    ///   - attempt: the run's number.
    public init(id: TaskID, token: String, attempt: Int) {
        self.id = id
        self.token = token
        self.attempt = attempt
    }

    /// A new token for a run: its attempt number and 64 random bits.
    public static func newToken(attempt: Int) -> String {
        "\(attempt):\(String(UInt64.random(in: .min ... .max), radix: 16))"
    }
}

/// A claimed task: the claim, and the task as it was when claimed.
public struct ClaimedTask: Sendable, Equatable {
    /// The run's claim.
    public var claim: TaskClaim
    /// The task, now running.
    public var record: TaskRecord
    /// The task id.
    public var id: TaskID { record.id }

    /// - Parameters:
    ///   - claim: the run's claim.
    ///   - record: the task as claimed.
    public init(claim: TaskClaim, record: TaskRecord) {
        self.claim = claim
        self.record = record
    }
}

/// What a reader of a task's output gets: the state, and the output past its offset.
public struct TaskOutput: Sendable, Equatable {
    /// The task's state.
    public var status: TaskStatus
    /// The attempt the output belongs to (0 while queued).
    public var attempt: Int
    /// Where `text` starts, in UTF-8 bytes of the attempt's output (0 when the reader's attempt was stale).
    public var offset: Int
    /// The output from `offset` on.
    public var text: String
    /// The whole record, when the task has finished (for the final event).
    public var finalRecord: TaskRecord?
    /// A short tag of the claim that made this attempt's output, or "" where an attempt number is never given twice
    /// (a private store). A shared store can give a number twice: a Redis failover that loses a claim's writes makes
    /// the next claim of the task take the same number, with another text.
    public var claim: String

    public init(
        status: TaskStatus, attempt: Int, offset: Int, text: String, finalRecord: TaskRecord?, claim: String = ""
    ) {
        self.status = status
        self.attempt = attempt
        self.offset = offset
        self.text = text
        self.finalRecord = finalRecord
        self.claim = claim
    }
}

/// What only a store shared between processes needs; a private store keeps these defaults.
extension TaskStore {
    /// No leases in a private store: nothing to renew, nothing lost.
    public func renewLeases(_ claims: [TaskClaim]) throws(TaskStoreError) -> LeaseReport { LeaseReport() }

    /// A private store's tasks end with its process: nothing to hand back.
    public func requeue(_ claims: [TaskClaim]) throws(TaskStoreError) -> Int { 0 }

    /// No other process changes a private store.
    public func subscribeToChanges(_ handler: @escaping @Sendable (TaskStoreChange) -> Void) {}

    /// A private store is not shared.
    public var isShared: Bool { false }

    /// A private store's claims never expire.
    public var leaseTimeout: Duration? { nil }
}

/// What a new task must pass to be queued.
public struct Admission: Sendable, Equatable {
    /// The queue's capacity.
    public var maxQueued: Int
    /// The most tasks one client (``TaskRecord/client``) may have queued or running; `nil` for no limit.
    public var maxPerClient: Int?
    /// A key the client sent so that a resubmission returns the same task, with how long it is remembered.
    public var idempotencyKey: String?
    /// How long an idempotency key is remembered.
    public var idempotencyWindow: Duration

    public init(
        maxQueued: Int, maxPerClient: Int? = nil, idempotencyKey: String? = nil,
        idempotencyWindow: Duration = .seconds(600)
    ) {
        self.maxQueued = maxQueued
        self.maxPerClient = maxPerClient
        self.idempotencyKey = idempotencyKey
        self.idempotencyWindow = idempotencyWindow
    }
}

extension TaskStore {
    /// Stores a new queued task with only the queue bound (no client limit, no idempotency key).
    /// - Throws: ``TaskStoreError/queueFull``, ``TaskStoreError/unavailable(_:underlying:)``.
    public func enqueue(_ record: TaskRecord, maxQueued: Int) throws(TaskStoreError) {
        _ = try enqueue(record, admission: Admission(maxQueued: maxQueued))
    }
}
