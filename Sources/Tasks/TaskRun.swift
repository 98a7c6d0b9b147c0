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
    enum Fence: Sendable, Equatable {
        /// The store refused a write: another claim owns the task.
        case leaseLost
        /// The lease was not renewed in time: another process may take the task over soon.
        case renewalOverdue
    }

    private enum Write: Sendable {
        case output(PendingOutput)
        case update([String: String], progress: Double?)
    }

    /// Chunks waiting to be written as one, appended to in place (a new string per chunk would copy the backlog
    /// each time). Only touched under the run's lock until it is taken for writing.
    private final class PendingOutput: @unchecked Sendable {
        var text: String
        let offset: Int

        init(_ text: String, offset: Int) {
            self.text = text
            self.offset = offset
        }
    }

    private struct State {
        var task: Task<Void, Never>?
        var pending: [Write] = []
        var writing = false
        /// Output bytes emitted by the job (stored or pending): the offset of the next chunk.
        var emittedBytes = 0
        var fence: Fence?
        var lastRenewal: ContinuousClock.Instant
        var deadline: ContinuousClock.Instant
        var timedOut = false
        var cancelRequested = false
        var retryDelay: Duration = .milliseconds(50)
        var drained: [CheckedContinuation<Void, Never>] = []
    }

    /// The claim this run writes under.
    let claim: TaskClaim
    /// The task as it was claimed.
    let record: TaskRecord
    private let store: any TaskStore
    private let executor: BlockingExecutor?
    private let onChange: @Sendable (TaskID) -> Void
    private let onFence: @Sendable (TaskRun, Fence) -> Void
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

    /// Attaches the Swift task running the job (cancelled at once if the run was already told to stop).
    func attach(_ task: Task<Void, Never>) {
        let stop = state.withLock { state in
            state.task = task
            return state.fence != nil || state.cancelRequested || state.timedOut
        }
        if stop { task.cancel() }
    }

    /// The Swift task running the job.
    var task: Task<Void, Never>? { state.withLock { $0.task } }

    /// Why the run stopped writing, if it did.
    var fence: Fence? { state.withLock { $0.fence } }

    /// Whether the deadline watcher stopped the job.
    var timedOut: Bool { state.withLock { $0.timedOut } }

    // MARK: - Writes from the job

    /// Queues a chunk of output.
    /// - Throws: `CancellationError` once the run is fenced: its job must stop.
    func emit(_ text: String) throws {
        guard !text.isEmpty else { return }
        try enqueue { state in
            let offset = state.emittedBytes
            state.emittedBytes += text.utf8.count
            // Consecutive chunks not yet being written travel as one write.
            if case .output(let pending)? = state.pending.last {
                pending.text += text
            } else {
                state.pending.append(.output(PendingOutput(text, offset: offset)))
            }
        }
    }

    /// Queues metadata and progress.
    /// - Throws: `CancellationError` once the run is fenced.
    func update(metadata: [String: String], progress: Double?) throws {
        try enqueue { $0.pending.append(.update(metadata, progress: progress)) }
    }

    private func enqueue(_ change: (inout State) -> Void) throws {
        let startWriter = try state.withLock { state throws(CancellationError) -> Bool in
            guard state.fence == nil else { throw CancellationError() }
            change(&state)
            guard !state.writing else { return false }
            state.writing = true
            return true
        }
        guard startWriter else { return }
        if let executor { executor.submit { self.writePending() } } else { writePending() }
    }

    /// Waits until every queued write is stored (or the run is fenced).
    func drain() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if !state.writing || state.fence != nil { return true }
                state.drained.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Stores the queue in order, one write at a time; on a store error, tries again after a backoff (up to 1 s
    /// between tries) until the write lands or the run is fenced.
    private func writePending() {
        while true {
            let next: Write? = state.withLock { state in
                guard state.fence == nil, !state.pending.isEmpty else {
                    state.writing = false
                    return nil
                }
                return state.pending.removeFirst()
            }
            guard let write = next else { return resumeDrained() }
            do {
                switch write {
                case .output(let pending): try store.appendOutput(claim, at: pending.offset, pending.text)
                case .update(let metadata, let progress):
                    try store.update(claim, metadata: metadata, progress: progress)
                }
                state.withLock { $0.retryDelay = .milliseconds(50) }
                onChange(claim.id)
            } catch .leaseLost {
                fence(.leaseLost)
                return resumeDrained()
            } catch {
                // Put it back first in line and try again later; later chunks may join it meanwhile.
                let delay = state.withLock { state in
                    if case .output(let failed) = write, case .output(let later)? = state.pending.first {
                        failed.text += later.text
                        state.pending[0] = write
                    } else {
                        state.pending.insert(write, at: 0)
                    }
                    let delay = state.retryDelay
                    state.retryDelay = min(state.retryDelay * 2, .seconds(1))
                    return delay
                }
                DispatchQueue.global().asyncAfter(deadline: .now() + delay.timeInterval) {
                    if let executor = self.executor {
                        executor.submit { self.writePending() }
                    } else {
                        self.writePending()
                    }
                }
                return
            }
        }
    }

    private func resumeDrained() {
        let waiters = state.withLock { state in
            defer { state.drained = [] }
            return state.drained
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: - Control from the table

    /// Stops the run's writes and its job; the first fence wins.
    func fence(_ reason: Fence) {
        let (task, first) = state.withLock { state in
            let first = state.fence == nil
            if first {
                state.fence = reason
                state.pending = []
            }
            return (state.task, first)
        }
        guard first else { return }
        task?.cancel()
        resumeDrained()
        onFence(self, reason)
    }

    /// Someone asked to cancel the task: stop the job (the store records it as cancelled).
    func cancelRequested() {
        let task = state.withLock { state in
            state.cancelRequested = true
            return state.task
        }
        task?.cancel()
    }

    /// The lease was renewed by a request sent at `sentAt`.
    func renewed(sentAt: ContinuousClock.Instant) {
        state.withLock { $0.lastRenewal = max($0.lastRenewal, sentAt) }
    }

    /// When the lease was last known to be renewed (the send time of the request that renewed it).
    var lastRenewal: ContinuousClock.Instant { state.withLock { $0.lastRenewal } }

    /// Stops the job if its deadline has passed.
    /// - Returns: whether it was stopped now.
    func stopIfOverdue(now: ContinuousClock.Instant) -> Bool {
        let task: Task<Void, Never>? = state.withLock { state in
            guard !state.timedOut, state.deadline <= now else { return nil }
            state.timedOut = true
            return state.task
        }
        task?.cancel()
        return task != nil
    }
}
