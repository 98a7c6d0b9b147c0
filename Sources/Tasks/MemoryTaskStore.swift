public import Foundation
import Locking
import StandardExtensions

/// A task store in this process's memory: fast and simple, but tasks live only as long as the process.
///
/// Finished tasks expire `resultTTL` after they finish; ``sweepExpired()`` frees them, and lookups already
/// treat an expired task as gone. Queued and running tasks never expire.
public final class MemoryTaskStore: TaskStore {
    private struct State {
        var records: [TaskID: TaskRecord] = [:]
        /// Queued ids in arrival order; cancelled ones are skipped when claimed.
        var queue: [TaskID] = []
        var queueHead = 0
        var queuedCount = 0
        var runningCount = 0
        /// Finished ids in finishing order. With one TTL this is also expiry order, so sweeping pops from the front.
        var finished: [(id: TaskID, expiresAt: Date)] = []
        var finishedHead = 0
        var counts: [TaskStatus: Int] = [:]
        /// Tasks queued or running per client.
        var inProgress: [String: Int] = [:]
        /// Idempotency key → (task, forgotten at).
        var idempotency: [String: (id: TaskID, expiresAt: Date)] = [:]
        /// The fencing token of each running task's claim, and of the claim that finished it.
        var tokens: [TaskID: String] = [:]
    }

    private let state = LockedValue(State())
    private let resultTTL: Duration
    private let now: @Sendable () -> Date

    /// - Parameters:
    ///   - resultTTL: how long a finished task is kept.
    ///   - now: the wall clock; tests pass a manual one.
    public init(resultTTL: Duration, now: @escaping @Sendable () -> Date = { Date() }) {
        self.resultTTL = resultTTL
        self.now = now
    }

    /// - Parameters:
    ///   - resultTTL: how long a finished task is kept.
    ///   - clock: where the wall-clock time is read (``TaskClock/date``); tests pass a manual one.
    public convenience init(resultTTL: Duration, clock: any TaskClock) {
        self.init(resultTTL: resultTTL) { clock.date }
    }

    public func enqueue(_ record: TaskRecord, admission: Admission) throws(TaskStoreError) -> TaskID {
        let current = now()
        return try state.withLock { state throws(TaskStoreError) in
            // The earlier task must still be readable: an expired result not yet swept does not answer (its id
            // would lead nowhere).
            if let key = admission.idempotencyKey, let earlier = state.idempotency[key], earlier.expiresAt > current,
                let record = state.records[earlier.id], !isExpired(record, at: current)
            {
                return earlier.id
            }
            guard state.queuedCount < admission.maxQueued else { throw .queueFull }
            if let client = record.client, let limit = admission.maxPerClient,
                state.inProgress[client, default: 0] >= limit
            {
                throw .clientLimit
            }
            precondition(state.records[record.id] == nil, "task ids are random and never reused")
            state.records[record.id] = record
            state.queue.append(record.id)
            state.queuedCount += 1
            state.counts[.queued, default: 0] += 1
            if let client = record.client { state.inProgress[client, default: 0] += 1 }
            if let key = admission.idempotencyKey {
                if state.idempotency.count > 100_000 {
                    state.idempotency = state.idempotency.filter { $0.value.expiresAt > current }
                }
                state.idempotency[key] = (record.id, current + admission.idempotencyWindow.timeInterval)
            }
            return record.id
        }
    }

    public func record(for id: TaskID) throws(TaskStoreError) -> TaskRecord? {
        let current = now()
        return state.withLock { state in
            guard let record = state.records[id], !isExpired(record, at: current) else { return nil }
            return record
        }
    }

    /// Calls `body` with a task's record where the store keeps it, under the store's lock, instead of a copy (a
    /// copy retains and releases each of its strings): for a reader that only looks, such as a fragment rendered
    /// on every poll. `body` must be short and must not call the store.
    /// - Parameters:
    ///   - id: the task.
    ///   - body: reads the record.
    /// - Returns: what `body` returns, or `nil` when the task is unknown or expired (as ``record(for:)``).
    public func withRecord(for id: TaskID, _ body: (TaskRecord) -> Bool) -> Bool? {
        state.withLock { state in
            guard let index = state.records.index(forKey: id) else { return nil }
            // Reached through the dictionary's in-place accessor: its getter would hand over a copy.
            return look(at: &state.records.values[index], body)
        }
    }

    private func look(at record: inout TaskRecord, _ body: (TaskRecord) -> Bool) -> Bool? {
        // The clock is read only for a finished task: nothing else expires.
        if record.finishedAt != nil, isExpired(record, at: now()) { return nil }
        return body(record)
    }

    public func output(of id: TaskID, attempt: Int, from offset: Int) throws(TaskStoreError) -> TaskOutput? {
        let current = now()
        return state.withLock { state in
            guard let record = state.records[id], !isExpired(record, at: current) else { return nil }
            let utf8 = record.output.utf8
            let start = attempt < 0 || record.attempt == attempt ? min(max(offset, 0), utf8.count) : 0
            return TaskOutput(
                status: record.status, attempt: record.attempt, offset: start,
                text: String(decoding: utf8.dropFirst(start), as: UTF8.self),
                finalRecord: record.status.isFinished ? record : nil)
        }
    }

    public func claimNext(maxRunning: Int) throws(TaskStoreError) -> ClaimedTask? {
        let current = now()
        return state.withLock { state in
            guard state.runningCount < maxRunning else { return nil }
            while state.queueHead < state.queue.count {
                let id = state.queue[state.queueHead]
                state.queueHead += 1
                guard var record = state.records[id], record.status == .queued else { continue }
                record.status = .running
                record.startedAt = current
                record.attempt += 1
                state.records[id] = record
                let claim = TaskClaim(
                    id: id, token: TaskClaim.newToken(attempt: record.attempt), attempt: record.attempt)
                state.tokens[id] = claim.token
                state.queuedCount -= 1
                state.runningCount += 1
                state.counts[.queued, default: 0] -= 1
                state.counts[.running, default: 0] += 1
                Self.compactQueue(&state)
                return ClaimedTask(claim: claim, record: record)
            }
            Self.compactQueue(&state)
            return nil
        }
    }

    public func appendOutput(_ claim: TaskClaim, at offset: Int, _ text: String) throws(TaskStoreError) {
        try state.withLock { state throws(TaskStoreError) in
            // No local copy of the record: the output is appended in place (a copy would make every append copy
            // the whole output, quadratic in its length).
            guard state.records[claim.id]?.status == .running, state.tokens[claim.id] == claim.token else {
                throw .leaseLost
            }
            let length = state.records[claim.id]?.output.utf8.count ?? 0
            guard length >= offset else { throw .leaseLost }
            // A retry of a chunk already written (wholly or in part) adds only what is missing.
            guard length < offset + text.utf8.count else { return }
            if length == offset {
                state.records[claim.id]?.output += text
            } else {
                state.records[claim.id]?.output += String(decoding: text.utf8.dropFirst(length - offset), as: UTF8.self)
            }
        }
    }

    public func update(_ claim: TaskClaim, metadata: [String: String], progress: Double?) throws(TaskStoreError) {
        try state.withLock { state throws(TaskStoreError) in
            guard var record = state.records[claim.id], record.status == .running,
                state.tokens[claim.id] == claim.token
            else { throw .leaseLost }
            record.metadata.merge(metadata) { _, new in new }
            if let progress { record.progress = progress }
            state.records[claim.id] = record
        }
    }

    @discardableResult
    public func finish(_ claim: TaskClaim, status: TaskStatus, failure: TaskFailure?) throws(TaskStoreError)
        -> TaskRecord?
    {
        precondition(status.isFinished, "finish needs a final state")
        let current = now()
        return try state.withLock { state throws(TaskStoreError) in
            guard var record = state.records[claim.id] else { return nil }
            guard state.tokens[claim.id] == claim.token else { throw .leaseLost }
            // Finished already by this claim: a retry.
            guard record.status == .running else { return record }
            record.status = record.cancelRequested ? .cancelled : status
            record.failure = record.status == .failed ? failure : nil
            record.finishedAt = current
            state.records[claim.id] = record
            state.runningCount -= 1
            state.counts[.running, default: 0] -= 1
            state.counts[record.status, default: 0] += 1
            Self.release(record, in: &state)
            state.finished.append((claim.id, current + ttlSeconds))
            return record
        }
    }

    public func cancel(_ id: TaskID) throws(TaskStoreError) -> CancelOutcome {
        let current = now()
        return state.withLock { state in
            guard var record = state.records[id], !isExpired(record, at: current) else { return .notFound }
            switch record.status {
            case .queued:
                record.status = .cancelled
                record.finishedAt = current
                state.records[id] = record
                state.queuedCount -= 1
                state.counts[.queued, default: 0] -= 1
                state.counts[.cancelled, default: 0] += 1
                Self.release(record, in: &state)
                state.finished.append((id, current + ttlSeconds))
                return .cancelled
            case .running:
                record.cancelRequested = true
                state.records[id] = record
                return .requested
            case .succeeded, .failed, .cancelled:
                return .alreadyFinished(record.status)
            }
        }
    }

    @discardableResult
    public func sweepExpired() throws(TaskStoreError) -> Int {
        let current = now()
        return state.withLock { state in
            var removed = 0
            while state.finishedHead < state.finished.count, state.finished[state.finishedHead].expiresAt <= current {
                let id = state.finished[state.finishedHead].id
                state.finishedHead += 1
                if let record = state.records.removeValue(forKey: id) {
                    state.tokens[id] = nil
                    state.counts[record.status, default: 0] -= 1
                    removed += 1
                }
            }
            if state.finishedHead > 1024, state.finishedHead * 2 > state.finished.count {
                state.finished.removeFirst(state.finishedHead)
                state.finishedHead = 0
            }
            if removed > 0 { Self.shrinkIfSparse(&state) }
            return removed
        }
    }

    public func countsByStatus() throws(TaskStoreError) -> [TaskStatus: Int] {
        state.withLock { $0.counts }
    }

    /// A task has left the queued and running states: it no longer counts against its client.
    private static func release(_ record: TaskRecord, in state: inout State) {
        guard let client = record.client, let count = state.inProgress[client] else { return }
        state.inProgress[client] = count > 1 ? count - 1 : nil
    }

    private func isExpired(_ record: TaskRecord, at current: Date) -> Bool {
        guard let finishedAt = record.finishedAt else { return false }
        return finishedAt + ttlSeconds <= current
    }

    private var ttlSeconds: TimeInterval { resultTTL.timeInterval }

    /// After a sweep, gives back the storage a peak left behind: `Dictionary.removeValue` and `Array.removeFirst`
    /// keep their capacity, so without this the tables stay sized for the busiest minute (rate × (TTL + sweep
    /// interval) records) for the life of the process. Each is rebuilt only when it is under a quarter full and
    /// bigger than ``sparseFloor``; rebuilt with room for half as many again, it must lose at least a quarter of
    /// what is left before the next rebuild, so the copying is amortised over the removals.
    private static func shrinkIfSparse(_ state: inout State) {
        state.records.shrinkIfSparse(floor: sparseFloor)
        state.tokens.shrinkIfSparse(floor: sparseFloor)
        state.idempotency.shrinkIfSparse(floor: sparseFloor)
        state.inProgress.shrinkIfSparse(floor: sparseFloor)
        let finishedLeft = state.finished.count - state.finishedHead
        if state.finished.capacity > sparseFloor, finishedLeft < state.finished.capacity / 4 {
            state.finished = Array(state.finished[state.finishedHead...])
            state.finishedHead = 0
        }
        if state.queue.capacity > sparseFloor, state.queue.count - state.queueHead < state.queue.capacity / 4 {
            state.queue = Array(state.queue[state.queueHead...])
            state.queueHead = 0
        }
    }

    /// The capacity below which a table is never rebuilt (small ones cost little and churn most).
    static let sparseFloor = 1024

    /// How full the records table is, for tests: its count and capacity.
    var recordStorage: (count: Int, capacity: Int) {
        state.withLock { ($0.records.count, $0.records.capacity) }
    }

    /// Drops claimed ids from the front of the queue once they are the larger part, so it does not grow forever.
    private static func compactQueue(_ state: inout State) {
        if state.queueHead > 1024, state.queueHead * 2 > state.queue.count {
            state.queue.removeFirst(state.queueHead)
            state.queueHead = 0
        }
    }
}

extension Dictionary {
    /// Rebuilds the dictionary with room for half as many entries again as it has, when it is under a quarter full
    /// and its capacity is above `floor` (see ``MemoryTaskStore``'s sweep).
    /// - Parameter floor: the capacity at or below which it is left as it is.
    fileprivate mutating func shrinkIfSparse(floor: Int) {
        guard capacity > floor, count < capacity / 4 else { return }
        var smaller = Dictionary(minimumCapacity: count + count / 2)
        for (key, value) in self { smaller[key] = value }
        self = smaller
    }
}
