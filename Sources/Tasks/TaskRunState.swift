/// Everything about one run of a task that changes while it runs, as one value: its job's Swift task, the writes it
/// has not yet stored, the bytes it has emitted, its fence, its lease renewal and deadline, the cancel requests and
/// who waits for its writes to drain.
///
/// Each `mutating` method is one transition, made under the run's lock (``TaskRun`` keeps exactly one
/// `LockedValue<TaskRunState>`). It changes the value and returns what the caller must do once it has left the lock
/// (cancel the job, start the writer, resume waiters): no transition has a side effect of its own.
///
/// Generic over the job's task handle and the waiters so that tests can drive it with plain values; ``TaskRun`` uses
/// `UnsafeCurrentTask` and `CheckedContinuation<Void, Never>`.
///
/// The handle is only valid while the job's task has not returned. A cancel returned by a transition counts as in
/// flight (``cancellersInFlight``) until the caller reports it done with ``cancelPerformed()``; ``detach()`` clears
/// the handle, and the job's task waits (``waitForCancellers(_:)``) until no cancel is in flight before returning.
/// So no one ever cancels a task that has ended.
struct TaskRunState<Handle, Waiter> {
    /// Why a run stopped writing.
    enum Fence: Sendable, Equatable {
        /// The store refused a write: another claim owns the task.
        case leaseLost
        /// The lease was not renewed in time: another process may take the task over soon.
        case renewalOverdue
    }

    /// A write waiting to be stored.
    enum Write {
        case output(PendingOutput)
        case update([String: String], progress: Double?)
    }

    /// Chunks waiting to be written as one, appended to in place (a new string per chunk would copy the backlog
    /// each time). Only touched under the run's lock until the writer takes it.
    final class PendingOutput: @unchecked Sendable {
        var text: String
        let offset: Int

        init(_ text: String, offset: Int) {
            self.text = text
            self.offset = offset
        }
    }

    /// What the caller of ``emit(_:)`` or ``update(metadata:progress:)`` does next.
    enum EmitAction: Equatable {
        /// Queued behind a writer already at work.
        case none
        /// Queued, and no writer is at work: start one.
        case startWriter
        /// The run is fenced: nothing was queued; the job must stop (`CancellationError`).
        case refuse
    }

    /// What the writer does next.
    enum NextWrite {
        /// Store this write.
        case write(Write)
        /// Nothing left (or the run is fenced): the writer stops; resume these drain waiters.
        case idle(resume: [Waiter])
    }

    /// A cancel of the job's task for the caller to perform, then report with ``cancelPerformed()``.
    enum CancelAction {
        case none
        case cancel(Handle)
    }

    /// What the caller of ``fence(_:)`` does next.
    enum FenceAction {
        /// Already fenced: the first fence won; nothing to do.
        case none
        /// Fenced now: cancel the job (if attached), resume the drain waiters, report the fence.
        case fenced(cancel: CancelAction, resume: [Waiter])
    }

    /// What the job's task does when it attaches itself.
    enum AttachAction: Equatable {
        case none
        /// The run was already told to stop (cancel request, fence, deadline): cancel the current task.
        case cancelSelf
    }

    private(set) var handle: Handle?
    private(set) var pending: [Write] = []
    private(set) var writing = false
    /// Output bytes emitted by the job (stored or pending): the offset of the next chunk.
    private(set) var emittedBytes = 0
    private(set) var fence: Fence?
    private(set) var lastRenewal: ContinuousClock.Instant
    private(set) var deadline: ContinuousClock.Instant
    private(set) var timedOut = false
    private(set) var cancelRequested = false
    /// The table stopped every job (a shutdown deadline passed), maybe before this one attached.
    private(set) var jobStopped = false
    private(set) var retryDelay: Duration = Self.firstRetryDelay
    private(set) var drainWaiters: [Waiter] = []
    /// Cancels handed out and not yet reported done: the job's task must not return before they are.
    private(set) var cancellersInFlight = 0
    private var detachWaiter: Waiter?

    /// The first wait before a failed write is tried again (it doubles up to ``maxRetryDelay``).
    static var firstRetryDelay: Duration { .milliseconds(50) }
    /// The longest wait between tries of a failed write.
    static var maxRetryDelay: Duration { .seconds(1) }

    /// - Parameters:
    ///   - lastRenewal: when the claim was asked for (its lease counts from no earlier).
    ///   - deadline: when the job must have finished.
    init(lastRenewal: ContinuousClock.Instant, deadline: ContinuousClock.Instant) {
        self.lastRenewal = lastRenewal
        self.deadline = deadline
    }

    /// Whether the run was told to stop one way or another.
    var stopped: Bool { fence != nil || cancelRequested || timedOut || jobStopped }

    // MARK: - The job's task

    /// The job's task starts: it can be cancelled through `handle` from now until ``detach()``.
    mutating func attach(_ handle: Handle) -> AttachAction {
        self.handle = handle
        return stopped ? .cancelSelf : .none
    }

    /// The job's task is about to return: no new cancel may use its handle.
    /// - Returns: whether a cancel is still in flight; then the task must ``waitForCancellers(_:)`` first.
    mutating func detach() -> Bool {
        handle = nil
        return cancellersInFlight > 0
    }

    /// The job's task waits for the cancels in flight to be done.
    /// - Returns: the waiter to resume now when none is in flight any more; otherwise ``cancelPerformed()`` returns it.
    mutating func waitForCancellers(_ waiter: Waiter) -> Waiter? {
        guard cancellersInFlight > 0 else { return waiter }
        detachWaiter = waiter
        return nil
    }

    /// A cancel handed out by a transition has been performed.
    /// - Returns: the job's task to resume if it waits for this one to return.
    mutating func cancelPerformed() -> Waiter? {
        precondition(cancellersInFlight > 0, "cancelPerformed() without a cancel in flight")
        cancellersInFlight -= 1
        guard cancellersInFlight == 0, let waiter = detachWaiter else { return nil }
        detachWaiter = nil
        return waiter
    }

    /// Hands out the handle for one cancel, counted in flight.
    private mutating func cancelJob() -> CancelAction {
        guard let handle else { return .none }
        cancellersInFlight += 1
        return .cancel(handle)
    }

    // MARK: - Writes from the job

    /// The job emits a chunk of output.
    mutating func emit(_ text: String) -> EmitAction {
        guard !text.isEmpty else { return .none }
        guard fence == nil else { return .refuse }
        let offset = emittedBytes
        emittedBytes += text.utf8.count
        // Consecutive chunks not yet being written travel as one write.
        if case .output(let pending)? = pending.last {
            pending.text += text
        } else {
            pending.append(.output(PendingOutput(text, offset: offset)))
        }
        return startWriterIfIdle()
    }

    /// The job reports metadata and progress.
    mutating func update(metadata: [String: String], progress: Double?) -> EmitAction {
        guard fence == nil else { return .refuse }
        pending.append(.update(metadata, progress: progress))
        return startWriterIfIdle()
    }

    private mutating func startWriterIfIdle() -> EmitAction {
        guard !writing else { return .none }
        writing = true
        return .startWriter
    }

    /// The writer asks for the next write, in order.
    mutating func nextWrite() -> NextWrite {
        guard fence == nil, !pending.isEmpty else {
            writing = false
            defer { drainWaiters = [] }
            return .idle(resume: drainWaiters)
        }
        return .write(pending.removeFirst())
    }

    /// The writer stored a write.
    mutating func writeSucceeded() {
        retryDelay = Self.firstRetryDelay
    }

    /// The store refused a write for a reason other than a lost lease: it goes back first in line (later output
    /// joins it) and the writer tries again after the returned delay, which doubles each time up to
    /// ``maxRetryDelay``.
    mutating func writeFailed(_ write: Write) -> Duration {
        if case .output(let failed) = write, case .output(let later)? = pending.first {
            failed.text += later.text
            pending[0] = write
        } else {
            pending.insert(write, at: 0)
        }
        let delay = retryDelay
        retryDelay = min(retryDelay * 2, Self.maxRetryDelay)
        return delay
    }

    /// Someone waits until every queued write is stored (or the run is fenced).
    /// - Returns: the waiter to resume now when there is nothing to wait for; otherwise a later transition returns it.
    mutating func drain(_ waiter: Waiter) -> Waiter? {
        if !writing || fence != nil { return waiter }
        drainWaiters.append(waiter)
        return nil
    }

    // MARK: - Control from the table

    /// Stops the run's writes and its job; the first fence wins.
    mutating func fence(_ reason: Fence) -> FenceAction {
        guard fence == nil else { return .none }
        fence = reason
        pending = []
        defer { drainWaiters = [] }
        return .fenced(cancel: cancelJob(), resume: drainWaiters)
    }

    /// Someone asked to cancel the task: stop the job (the store records it as cancelled). Before the job's task
    /// attaches, it is remembered and ``attach(_:)`` cancels it.
    mutating func requestCancel() -> CancelAction {
        cancelRequested = true
        return cancelJob()
    }

    /// The table stops every job (a shutdown deadline has passed). Before the job's task attaches, it is remembered
    /// and ``attach(_:)`` cancels it.
    mutating func stopJob() -> CancelAction {
        jobStopped = true
        return cancelJob()
    }

    /// The lease was renewed by a request sent at `sentAt` (replies may arrive out of order: the latest send wins).
    mutating func renewed(sentAt: ContinuousClock.Instant) {
        lastRenewal = max(lastRenewal, sentAt)
    }

    /// The deadline watcher looks at the run.
    /// - Returns: `nil` when the deadline has not passed or already passed before; otherwise what to cancel.
    mutating func deadlinePassed(now: ContinuousClock.Instant) -> CancelAction? {
        guard !timedOut, deadline <= now else { return nil }
        timedOut = true
        return cancelJob()
    }
}

extension TaskRunState.CancelAction: Equatable where Handle: Equatable {}
