import Foundation
import Locking
import StandardExtensions

/// One run of a task in this process: its claim, its Swift task, the writes it has not yet stored, and how
/// recently its lease was renewed.
///
/// A job's output goes through the run, never straight to a store that may block: ``emit(_:)`` queues the chunk
/// and returns, and one writer at a time stores the queue in order (on the table's ``BlockingExecutor`` for a
/// shared store), retrying while the store is briefly unavailable. Each chunk carries the byte offset it starts at,
/// so a retry after a lost reply never writes it twice. Once the run is fenced (its claim was lost, or its lease
/// could not be renewed in time) it writes nothing more and its job is cancelled.
final class TaskRun: Sendable {
    /// Why a run stopped writing.
    typealias Fence = TaskRunState<UnsafeCurrentTask, CheckedContinuation<Void, Never>>.Fence
    private typealias State = TaskRunState<UnsafeCurrentTask, CheckedContinuation<Void, Never>>

    /// The claim this run writes under.
    let claim: TaskClaim
    /// The task as it was claimed.
    let record: TaskRecord
    private let store: any TaskStore
    private let executor: BlockingExecutor?
    private let onChange: @Sendable (TaskID) -> Void
    private let onFence: @Sendable (TaskRun, Fence) -> Void
    /// The run's one lock: every operation below is one transition under it, then the action it returns.
    private let state: LockedValue<State>

    /// - Parameters:
    ///   - claimed: the claim and the task.
    ///   - store: where the writes go.
    ///   - executor: where blocking writes run; `nil` writes inline (a store that never blocks).
    ///   - claimedAt: when the claim was asked for (its lease counts from no earlier).
    ///   - deadline: when the job must have finished.
    ///   - onChange: called after each stored write.
    ///   - onFence: called once when the run is fenced.
    init(
        _ claimed: ClaimedTask, store: any TaskStore, executor: BlockingExecutor?, claimedAt: ContinuousClock.Instant,
        deadline: ContinuousClock.Instant, onChange: @escaping @Sendable (TaskID) -> Void,
        onFence: @escaping @Sendable (TaskRun, Fence) -> Void
    ) {
        claim = claimed.claim
        record = claimed.record
        self.store = store
        self.executor = executor
        self.onChange = onChange
        self.onFence = onFence
        state = LockedValue(State(lastRenewal: claimedAt, deadline: deadline))
    }

    var id: TaskID { claim.id }

    /// Runs `body` (the job and the recording of its end) in the calling task, which can be cancelled through the
    /// run meanwhile (``cancelRequested()``, ``fence(_:)``, ``stopIfOverdue(now:)``, ``stopJob()``); at once if the
    /// run was already told to stop. Returns only once no cancel of the task is in flight, so none reaches a task that
    /// has ended.
    func whileAttached(_ body: () async -> Void) async {
        // Always inside a task here (the table runs jobs in task group children), so the handle is not `nil`.
        let action: State.AttachAction = withUnsafeCurrentTask { task in
            guard let task else { return State.AttachAction.none }
            return state.withLock { $0.attach(task) }
        }
        if action == .cancelSelf { withUnsafeCurrentTask { $0?.cancel() } }
        await body()
        guard state.withLock({ $0.detach() }) else { return }
        await withCheckedContinuation { continuation in
            state.withLock { $0.waitForCancellers(continuation) }?.resume()
        }
    }

    /// Why the run stopped writing, if it did.
    var fence: Fence? { state.withLock { $0.fence } }

    /// Whether the deadline watcher stopped the job.
    var timedOut: Bool { state.withLock { $0.timedOut } }

    // MARK: - Writes from the job

    /// Queues a chunk of output.
    /// - Throws: `CancellationError` once the run is fenced: its job must stop.
    func emit(_ text: String) throws {
        try perform(state.withLock { $0.emit(text) })
    }

    /// Queues metadata and progress.
    /// - Throws: `CancellationError` once the run is fenced.
    func update(metadata: [String: String], progress: Double?) throws {
        try perform(state.withLock { $0.update(metadata: metadata, progress: progress) })
    }

    private func perform(_ action: State.EmitAction) throws {
        switch action {
        case .none: return
        case .refuse: throw CancellationError()
        case .startWriter: startWriter()
        }
    }

    private func startWriter() {
        if let executor { executor.submit { self.writePending() } } else { writePending() }
    }

    /// Waits until every queued write is stored (or the run is fenced).
    func drain() async {
        await withCheckedContinuation { continuation in
            state.withLock { $0.drain(continuation) }?.resume()
        }
    }

    /// Stores the queue in order, one write at a time; on a store error, tries again after a backoff (up to 1 s
    /// between tries) until the write lands or the run is fenced.
    private func writePending() {
        while true {
            let write: State.Write
            switch state.withLock({ $0.nextWrite() }) {
            case .idle(let waiters):
                for waiter in waiters { waiter.resume() }
                return
            case .write(let next): write = next
            }
            do {
                switch write {
                case .output(let pending): try store.appendOutput(claim, at: pending.offset, pending.text)
                case .update(let metadata, let progress):
                    try store.update(claim, metadata: metadata, progress: progress)
                }
                state.withLock { $0.writeSucceeded() }
                onChange(claim.id)
            } catch .leaseLost {
                // The fence empties the queue: the next turn finds nothing and stops the writer.
                fence(.leaseLost)
            } catch {
                // Put it back first in line and try again later; later chunks may join it meanwhile.
                let delay = state.withLock { $0.writeFailed(write) }
                DispatchQueue.global().asyncAfter(deadline: .now() + delay.timeInterval) { self.startWriter() }
                return
            }
        }
    }

    // MARK: - Control from the table

    /// Stops the run's writes and its job; the first fence wins.
    func fence(_ reason: Fence) {
        guard case .fenced(let cancel, let waiters) = state.withLock({ $0.fence(reason) }) else { return }
        perform(cancel)
        for waiter in waiters { waiter.resume() }
        onFence(self, reason)
    }

    /// Someone asked to cancel the task: stop the job (the store records it as cancelled).
    func cancelRequested() {
        perform(state.withLock { $0.requestCancel() })
    }

    /// Stops the job (a shutdown deadline has passed).
    func stopJob() {
        perform(state.withLock { $0.stopJob() })
    }

    /// The lease was renewed by a request sent at `sentAt`.
    func renewed(sentAt: ContinuousClock.Instant) {
        state.withLock { $0.renewed(sentAt: sentAt) }
    }

    /// When the lease was last known to be renewed (the send time of the request that renewed it).
    var lastRenewal: ContinuousClock.Instant { state.withLock { $0.lastRenewal } }

    /// Stops the job if its deadline has passed.
    /// - Returns: whether the deadline passed now (it passes once).
    @discardableResult
    func stopIfOverdue(now: ContinuousClock.Instant) -> Bool {
        guard let cancel = state.withLock({ $0.deadlinePassed(now: now) }) else { return false }
        perform(cancel)
        return true
    }

    /// Cancels the job's task, which cannot return until ``TaskRunState/cancelPerformed()`` says so.
    private func perform(_ action: State.CancelAction) {
        guard case .cancel(let task) = action else { return }
        task.cancel()
        state.withLock { $0.cancelPerformed() }?.resume()
    }
}
