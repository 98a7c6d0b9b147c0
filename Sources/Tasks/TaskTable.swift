import Foundation
#if canImport(Glibc)
/// glibc's `malloc_trim` (declared in <malloc.h>, which the Glibc module does not import).
@_silgen_name("malloc_trim") private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
public import Logging
import Locking

/// Runs tasks: accepts submissions into the store's bounded queue, starts them as Swift tasks under the limit on
/// work in flight, enforces the per-task time limit, relays cancellation and sweeps expired results.
///
/// Submissions and lookups are synchronous so that FastCGI threads can call them directly; ``run()`` is the
/// long-running part and belongs to the process's service group.
public final class TaskTable: Sendable {
    /// Limits and timings.
    public struct Configuration: Sendable {
        /// How many jobs may run at once (default 64).
        public var maxInFlight: Int = 64
        /// How many tasks may wait for a slot (default 1000); beyond that, submissions are refused.
        public var maxQueued: Int = 1000
        /// The longest a job may run before it fails as timed out (default 10 minutes).
        public var taskTimeout: Duration = .seconds(600)
        /// How often expired results are swept (default 10 s).
        public var sweepInterval: Duration = .seconds(10)
        /// How often the queue is checked even without a local wake-up, for work submitted elsewhere (default 1 s).
        public var pollInterval: Duration = .seconds(1)
        /// The most tasks one client may have queued or running; `nil` for no limit.
        public var maxTasksPerClient: Int?
        /// How long an idempotency key is remembered.
        public var idempotencyWindow: Duration = .seconds(600)
        /// How often a shared store's leases are renewed and cancellations from other processes picked up.
        public var heartbeatInterval: Duration = .milliseconds(400)

        public init() {}
    }

    /// The store behind the table.
    public let store: any TaskStore
    /// The limits in force.
    public let configuration: Configuration
    private let jobs: [String: any Job]
    private let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let wakeupContinuation: AsyncStream<Void>.Continuation
    private let running = LockedValue<[TaskID: Task<Void, Never>]>([:])
    private let outputObservers = LockedValue<[@Sendable (TaskID) -> Void]>([])
    /// When each running job must have finished (its claim time plus the task timeout).
    private let deadlines = LockedValue<[TaskID: ContinuousClock.Instant]>([:])
    /// Jobs the deadline watcher stopped: they end failed with `task_timeout`.
    private let timedOut = LockedValue<Set<TaskID>>([])
    /// Set by ``failRunning(_:)``: jobs stopped from then on end failed with it instead of cancelled.
    private let interruption = LockedValue<TaskFailure?>(nil)

    /// - Parameters:
    ///   - store: where tasks live.
    ///   - jobs: the job for each kind name.
    ///   - configuration: limits and timings.
    ///   - logger: for task transitions (debug) and failures.
    public init(store: any TaskStore, jobs: [String: any Job], configuration: Configuration = .init(), logger: Logger) {
        self.store = store
        self.jobs = jobs
        self.configuration = configuration
        self.logger = logger
        (self.wakeups, self.wakeupContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        store.subscribeToChanges { [weak self] change in
            switch change {
            case .task(let id): self?.notifyOutput(id)
            case .workAvailable: self?.wakeupContinuation.yield()
            }
        }
    }

    /// Accepts a task. Returns at once: the work starts in the background.
    /// - Parameters:
    ///   - kind: a registered job kind.
    ///   - input: the job's input.
    ///   - client: who asks (the client address), for the per-client limit.
    ///   - idempotencyKey: a key from the client: a resubmission with it returns the same task.
    /// - Returns: the new task, queued, or the earlier task with the same idempotency key.
    /// - Throws: ``TaskStoreError/queueFull``, ``TaskStoreError/clientLimit``, ``TaskStoreError/unavailable(_:)``.
    public func submit(
        kind: String, input: String, client: String? = nil, idempotencyKey: String? = nil
    ) throws(TaskStoreError) -> TaskRecord {
        precondition(jobs[kind] != nil, "job kind '\(kind)' is not registered")
        var record = TaskRecord(id: TaskID.random(), kind: kind, input: input, createdAt: Date())
        record.client = client
        let admission = Admission(
            maxQueued: configuration.maxQueued, maxPerClient: configuration.maxTasksPerClient,
            idempotencyKey: idempotencyKey, idempotencyWindow: configuration.idempotencyWindow)
        let id = try store.enqueue(record, admission: admission)
        guard id == record.id else {
            // A resubmission: the earlier task answers it.
            logger.debug("idempotent resubmission", metadata: ["task.id": "\(id)"])
            return try store.record(for: id) ?? record
        }
        logger.debug("task queued", metadata: ["task.id": "\(record.id)", "task.kind": "\(kind)"])
        wakeupContinuation.yield()
        return record
    }

    /// The task with this id, or `nil` when unknown or expired.
    /// - Parameter id: the task id.
    /// - Returns: a snapshot.
    /// - Throws: ``TaskStoreError/unavailable(_:)``.
    public func record(_ id: TaskID) throws(TaskStoreError) -> TaskRecord? {
        try store.record(for: id)
    }

    /// Cancels a task: a queued one never starts; a running one is stopped (its upstream transfer aborted).
    /// - Parameter id: the task id.
    /// - Returns: what happened.
    /// - Throws: ``TaskStoreError/unavailable(_:)``.
    public func cancel(_ id: TaskID) throws(TaskStoreError) -> CancelOutcome {
        let outcome = try store.cancel(id)
        if outcome == .requested {
            running.withLock { $0[id] }?.cancel()
        }
        if outcome == .cancelled { notifyOutput(id) }
        return outcome
    }

    /// Registers a function called (on any thread) whenever a task's output, progress or state changes.
    /// - Parameter observer: the function; it must return quickly.
    public func observeChanges(_ observer: @escaping @Sendable (TaskID) -> Void) {
        outputObservers.withLock { $0.append(observer) }
    }

    /// Stops taking new work from the queue; ``run()`` returns once running jobs have finished.
    public func stopClaiming() {
        wakeupContinuation.finish()
    }

    /// Stops every running job and records it as failed with `failure` (a shutdown deadline has passed).
    /// - Parameter failure: why they failed, for example "interrupted by shutdown".
    public func failRunning(_ failure: TaskFailure) {
        interruption.withLock { $0 = failure }
        cancelRunning()
    }

    /// Cancels every running job (for example when a shutdown deadline has passed).
    public func cancelRunning() {
        for task in running.withLock({ Array($0.values) }) { task.cancel() }
    }

    /// The number of jobs running in this process.
    public var runningCount: Int { running.withLock { $0.count } }

    /// Runs jobs and sweeps results until ``stopClaiming()`` is called (then waits for running jobs) or the
    /// calling task is cancelled (then running jobs are cancelled too).
    public func run() async {
        await withTaskGroup(of: Void.self) { background in
            background.addTask { await self.sweepLoop() }
            background.addTask { await self.pollLoop() }
            background.addTask { await self.deadlineLoop() }
            if store.isShared { background.addTask { await self.heartbeatLoop() } }
            await withDiscardingTaskGroup { jobs in
                for await _ in wakeups {
                    claimAvailable(into: &jobs)
                }
            }
            background.cancelAll()
        }
    }

    private func claimAvailable(into group: inout DiscardingTaskGroup) {
        while true {
            let claimed: TaskRecord?
            do {
                claimed = try store.claimNext(maxRunning: configuration.maxInFlight)
            } catch {
                logger.warning("cannot claim tasks", metadata: ["error": "\(error)"])
                return
            }
            guard let record = claimed else { return }
            // An unstructured task per job so that one job can be cancelled alone; the group child waits for it,
            // which keeps its lifetime inside run().
            deadlines.withLock { $0[record.id] = .now + configuration.taskTimeout }
            let task = Task { await self.execute(record) }
            // This process may take back a task whose lease it let run out (it was stalled): stop the old run.
            running.withLock { $0.updateValue(task, forKey: record.id) }?.cancel()
            group.addTask {
                await withTaskCancellationHandler {
                    await task.value
                } onCancel: {
                    task.cancel()
                }
                self.running.withLock { if $0[record.id] == task { $0[record.id] = nil } }
                self.wakeupContinuation.yield()
            }
        }
    }

    private func execute(_ record: TaskRecord) async {
        let started = ContinuousClock.now
        var log = logger
        log[metadataKey: "task.id"] = "\(record.id)"
        log.debug("task running", metadata: ["task.kind": "\(record.kind)"])
        notifyOutput(record.id)
        var status: TaskStatus
        var failure: TaskFailure?
        do {
            guard let job = jobs[record.kind] else {
                throw JobFailure(TaskFailure(type: "unknown_job", message: "No job is registered for '\(record.kind)'."))
            }
            let context = JobContext(taskID: record.id, store: store) { [weak self] id in self?.notifyOutput(id) }
            try await job.run(input: record.input, context: context)
            status = Task.isCancelled ? .cancelled : .succeeded
        } catch let error as JobFailure {
            (status, failure) = Task.isCancelled ? (.cancelled, nil) : (.failed, error.failure)
        } catch {
            if Task.isCancelled || error is CancellationError {
                status = .cancelled
            } else {
                status = .failed
                failure = TaskFailure(type: "internal_error", message: "The job failed: \(error)")
            }
        }
        deadlines.withLock { _ = $0.removeValue(forKey: record.id) }
        if timedOut.withLock({ $0.remove(record.id) }) != nil {
            status = .failed
            failure = TaskFailure(
                type: "task_timeout",
                message: "The task did not finish within \(configuration.taskTimeout.formatted(.units(allowed: [.minutes, .seconds]))).")
        } else if status == .cancelled, let interrupted = interruption.withLock({ $0 }) {
            (status, failure) = (.failed, interrupted)
        }
        do {
            let final = try store.finish(record.id, status: status, failure: failure)
            let elapsed = ContinuousClock.now - started
            var facts: Logger.Metadata = [:]
            for (key, field) in [
                ("upstream.request_id", "request_id"), ("llm.attempts", "attempts"),
                ("llm.input_tokens", "usage.input_tokens"), ("llm.output_tokens", "usage.output_tokens"),
            ] {
                if let value = final?.metadata[field] ?? (field == "request_id" ? final?.failure?.requestID : nil) {
                    facts[key] = "\(value)"
                }
            }
            log.info(
                "task finished",
                metadata: facts.merging([
                    "task.status": "\(final?.status.rawValue ?? status.rawValue)",
                    "task.duration_ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
                    "error.type": "\(failure?.type ?? "")",
                ]) { _, new in new })
        } catch {
            log.error("cannot record the end of a task", metadata: ["error": "\(error)"])
        }
        notifyOutput(record.id)
    }

    private func notifyOutput(_ id: TaskID) {
        for observer in outputObservers.withLock({ $0 }) { observer(id) }
    }

    private func sweepLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.sweepInterval)
            do {
                let removed = try store.sweepExpired()
                if removed > 0 { logger.debug("swept expired tasks", metadata: ["tasks.removed": "\(removed)"]) }
                #if canImport(Glibc)
                // glibc keeps freed memory in its arenas; after a large sweep, give it back to the system.
                if removed > 1000 { _ = glibcMallocTrim(0) }
                #endif
            } catch {
                logger.warning("cannot sweep expired tasks", metadata: ["error": "\(error)"])
            }
        }
    }

    /// One watcher for every job's time limit: a sleeping child per job would keep a dispatch timer alive until its
    /// deadline even after the job ended (swiftlang/swift#60441), growing memory with the task rate.
    private func deadlineLoop() async {
        let interval = min(.seconds(1), configuration.taskTimeout / 4)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = ContinuousClock.now
            let overdue = deadlines.withLock { deadlines in deadlines.filter { $0.value <= now }.map(\.key) }
            for id in overdue {
                guard let task = running.withLock({ $0[id] }) else { continue }
                deadlines.withLock { _ = $0.removeValue(forKey: id) }
                timedOut.withLock { _ = $0.insert(id) }
                task.cancel()
            }
        }
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.heartbeatInterval)
            let ids = running.withLock { Array($0.keys) }
            guard !ids.isEmpty else { continue }
            do {
                let report = try store.renewLeases(ids)
                for id in report.cancelRequested + report.lost {
                    running.withLock { $0[id] }?.cancel()
                }
                if !report.lost.isEmpty {
                    logger.warning("tasks taken over by another process", metadata: ["task.ids": "\(report.lost)"])
                }
            } catch {
                logger.warning("cannot renew task leases", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Hands running tasks back to a shared store's queue so another process finishes them, then cancels them
    /// here. Returns how many were handed back (none for a private store).
    @discardableResult
    public func requeueRunning() -> Int {
        let ids = running.withLock { Array($0.keys) }
        guard store.isShared, !ids.isEmpty else { return 0 }
        do {
            let count = try store.requeue(ids)
            cancelRunning()
            return count
        } catch {
            logger.warning("cannot hand running tasks back to the queue", metadata: ["error": "\(error)"])
            return 0
        }
    }

    private func pollLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.pollInterval)
            wakeupContinuation.yield()
        }
    }
}
