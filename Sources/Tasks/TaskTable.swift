import CMalloc
import Foundation
import Locking
public import Logging
import StandardExtensions

/// Runs tasks: accepts submissions into the store's bounded queue, starts them as Swift tasks under the limit on
/// work in flight, enforces the per-task time limit, relays cancellation and sweeps expired results.
///
/// Submissions and lookups are synchronous so that FastCGI threads can call them directly. The long-running parts
/// belong to the process's service group: ``runJobs()`` (claims and runs jobs), ``runSweeper()`` and
/// ``runHeartbeat()``; ``run()`` runs all three for a table used on its own.
///
/// What the table knows of its runs is one ``TaskTableState`` under one lock, and each run's is one
/// ``TaskRunState``: transitions return what to do, done after the lock is left.
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
        /// How often a shared store's leases are renewed and cancellations from other processes picked up
        /// (at most a fifth of the store's lease timeout).
        public var heartbeatInterval: Duration = .milliseconds(400)
        /// The share of a shared store's lease timeout after which a run whose lease could not be renewed stops
        /// itself, so that it has ended before another process may take the task over.
        public var selfFenceFraction: Double = 0.6
        /// Threads for a shared store's blocking calls (claims, writes, heartbeats, stream reads).
        public var storeThreads: Int = 8

        public init() {}
    }

    /// The store behind the table.
    public let store: any TaskStore
    /// The limits in force.
    public let configuration: Configuration
    private let jobs: [String: any Job]
    private let logger: Logger
    private let clock: any TaskClock
    private let wakeups: AsyncStream<Void>
    private let wakeupContinuation: AsyncStream<Void>.Continuation
    /// Where a shared store's blocking calls run (`nil` for a store that never blocks: calls run inline).
    private let executor: BlockingExecutor?
    /// A thread for lease renewals alone, so that they never wait behind other store calls.
    private let heartbeatExecutor: BlockingExecutor?
    /// The runs in this process, early cancels and the shutdown's interruption, under one lock.
    private let state = LockedValue(TaskTableState<TaskRun>())
    /// Kept apart from ``state``: observers are called on every write, and their list only grows at startup.
    private let outputObservers = LockedValue<[@Sendable (TaskChange) -> Void]>([])

    /// - Parameters:
    ///   - store: where tasks live.
    ///   - jobs: the job for each kind name.
    ///   - configuration: limits and timings.
    ///   - clock: where deadlines, leases and the background loops' waits read the time (tests pass a manual one).
    ///   - logger: for task transitions (debug) and failures.
    public init(
        store: any TaskStore, jobs: [String: any Job], configuration: Configuration = .init(),
        clock: any TaskClock = SystemTaskClock(), logger: Logger
    ) {
        self.store = store
        self.jobs = jobs
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        executor = store.isShared ? BlockingExecutor(name: "longhaul-store", threads: configuration.storeThreads) : nil
        heartbeatExecutor = store.leaseTimeout != nil ? BlockingExecutor(name: "longhaul-heartbeat", threads: 1) : nil
        (self.wakeups, self.wakeupContinuation) = AsyncStream.makeStream(
            of: Void.self, bufferingPolicy: .bufferingNewest(1))
        store.subscribeToChanges { [weak self] change in
            switch change {
            case .task(let id): self?.notify(.task(id))
            case .workAvailable: self?.wakeupContinuation.yield()
            case .resync:
                self?.notify(.all)
                self?.wakeupContinuation.yield()
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
    /// - Throws: ``TaskStoreError/queueFull``, ``TaskStoreError/clientLimit``,
    ///   ``TaskStoreError/unavailable(_:underlying:)``.
    public func submit(
        kind: String, input: String, client: String? = nil, idempotencyKey: String? = nil
    ) throws(TaskStoreError) -> TaskRecord {
        precondition(jobs[kind] != nil, "job kind '\(kind)' is not registered")
        var record = TaskRecord(id: TaskID.random(), kind: kind, input: input, createdAt: clock.date)
        record.client = client
        let admission = Admission(
            maxQueued: configuration.maxQueued, maxPerClient: configuration.maxTasksPerClient,
            idempotencyKey: idempotencyKey, idempotencyWindow: configuration.idempotencyWindow)
        var id = try store.enqueue(record, admission: admission)
        if id != record.id {
            // A resubmission: the earlier task answers it, unless it expired in between; then this one is new.
            if let earlier = try store.record(for: id) {
                logger.debug("idempotent resubmission", metadata: ["task.id": "\(id)"])
                return earlier
            }
            id = try store.enqueue(
                record,
                admission: Admission(
                    maxQueued: admission.maxQueued, maxPerClient: admission.maxPerClient, idempotencyKey: nil,
                    idempotencyWindow: admission.idempotencyWindow))
        }
        logger.debug("task queued", metadata: ["task.id": "\(record.id)", "task.kind": "\(kind)"])
        wakeupContinuation.yield()
        return record
    }

    /// The task with this id, or `nil` when unknown or expired.
    /// - Parameter id: the task id.
    /// - Returns: a snapshot.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    public func record(_ id: TaskID) throws(TaskStoreError) -> TaskRecord? {
        try store.record(for: id)
    }

    /// The task's state and output past what a reader has, read off the cooperative pool when the store may block.
    /// - Parameters:
    ///   - id: the task id.
    ///   - attempt: the attempt whose output the reader has.
    ///   - offset: how many UTF-8 bytes of it the reader has.
    /// - Returns: the new output, or `nil` when the task is unknown or expired.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    public func output(of id: TaskID, attempt: Int, from offset: Int) async throws(TaskStoreError) -> TaskOutput? {
        try await onStoreThread { [store] () throws(TaskStoreError) in
            try store.output(of: id, attempt: attempt, from: offset)
        }
    }

    /// Runs a store call on the executor (a shared store) or inline (a store that never blocks).
    private func onStoreThread<T: Sendable>(
        _ body: @escaping @Sendable () throws(TaskStoreError) -> T
    ) async throws(TaskStoreError) -> T {
        guard let executor else { return try body() }
        return try await executor.run(body)
    }

    /// Cancels a task: a queued one never starts; a running one is stopped (its job's Swift task is cancelled).
    /// - Parameter id: the task id.
    /// - Returns: what happened.
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    public func cancel(_ id: TaskID) throws(TaskStoreError) -> CancelOutcome {
        let outcome = try store.cancel(id)
        if outcome == .requested {
            // Claimed but not registered yet (a private store): the registration picks it up. (A shared store's
            // heartbeat reports the request to whichever process runs the task.)
            let now = clock.now
            let rememberEarly = !store.isShared
            state.withLock { $0.requestCancel(id, now: now, rememberEarly: rememberEarly) }?.cancelRequested()
        }
        if outcome == .cancelled { notify(.task(id)) }
        return outcome
    }

    /// Registers a function called (on any thread) whenever a task's output, progress or state changes.
    /// - Parameter observer: the function; it must return quickly.
    public func observeChanges(_ observer: @escaping @Sendable (TaskChange) -> Void) {
        outputObservers.withLock { $0.append(observer) }
    }

    /// Stops taking new work from the queue; ``run()`` returns once running jobs have finished.
    public func stopClaiming() {
        wakeupContinuation.finish()
    }

    /// Stops every running job and records it as failed with `failure` (a shutdown deadline has passed).
    /// - Parameter failure: why they failed, for example "interrupted by shutdown".
    public func failRunning(_ failure: TaskFailure) {
        for run in state.withLock({ $0.interrupt(with: failure) }) { run.stopJob() }
    }

    /// Cancels every running job (for example when a shutdown deadline has passed).
    public func cancelRunning() {
        for run in runningRuns { run.stopJob() }
    }

    /// The number of jobs running in this process.
    public var runningCount: Int { state.withLock { $0.runs.count } }

    /// The runs in this process, at this instant.
    private var runningRuns: [TaskRun] { state.withLock { Array($0.runs.values) } }

    /// Runs jobs, sweeps results and (a shared store) renews leases until ``stopClaiming()`` is called (then waits
    /// for running jobs) or the calling task is cancelled (then running jobs are cancelled too).
    ///
    /// ``runJobs()``, ``runSweeper()`` and ``runHeartbeat()`` in one call, for a table used without a service group
    /// (tests, embedding); a service group runs them as services of their own.
    public func run() async {
        await withTaskGroup(of: Void.self) { background in
            background.addTask { await self.runSweeper() }
            background.addTask { await self.runHeartbeat() }
            await runJobs()
            background.cancelAll()
        }
    }

    /// Claims and runs jobs until ``stopClaiming()`` is called (then waits for running jobs) or the calling task is
    /// cancelled (then running jobs are cancelled too). The poller and the time-limit watcher run as its children
    /// and end with it: they serve the claiming and the running jobs.
    ///
    /// Each job runs in a child of one discarding task group, cancellable alone through its ``TaskRun``: no other
    /// Swift task per job.
    public func runJobs() async {
        // Self-fencing must fire on time even when the cooperative pool is busy: it runs on a thread of its own.
        let watchdog = store.leaseTimeout.map { lease in
            LeaseWatchdog(interval: min(.milliseconds(250), lease / 12)) { [weak self] in self?.fenceOverdueRuns() }
        }
        defer { watchdog?.stop() }
        await withTaskGroup(of: Void.self) { background in
            background.addTask { await self.pollLoop() }
            background.addTask { await self.watchLoop() }
            await withDiscardingTaskGroup { jobs in
                for await _ in wakeups {
                    await claimAvailable(into: &jobs)
                }
            }
            background.cancelAll()
        }
    }

    private func claimAvailable(into group: inout DiscardingTaskGroup) async {
        while true {
            let claimed: ClaimedTask?
            let claimedAt = clock.now
            do {
                claimed = try await onStoreThread { [store, configuration] () throws(TaskStoreError) in
                    try store.claimNext(maxRunning: configuration.maxInFlight)
                }
            } catch {
                logger.warning("cannot claim tasks", metadata: ["error.message": "\(error)"])
                return
            }
            guard let claimed else { return }
            let run = TaskRun(
                claimed, store: store, executor: executor, claimedAt: claimedAt,
                deadline: claimedAt + configuration.taskTimeout,
                onChange: { [weak self] id in self?.notify(.task(id)) },
                onFence: { [weak self] run, reason in self?.fenced(run, reason) })
            let registered = state.withLock { $0.register(run, id: run.id) }
            // This process may take back a task whose lease it let run out (it was stalled): stop the old run.
            registered.replaced?.fence(.leaseLost)
            // Remembered by the run: its job's task is cancelled as it attaches.
            if registered.cancelRequested { run.cancelRequested() }
            // The job runs in the group child itself, which the run can cancel alone while it is attached.
            group.addTask {
                await run.whileAttached { await self.execute(run) }
                self.state.withLock { $0.unregister(run, id: run.id) }
                self.wakeupContinuation.yield()
            }
        }
    }

    private func fenced(_ run: TaskRun, _ reason: TaskRun.Fence) {
        let message =
            switch reason {
            case .leaseLost: "task taken over by another claim; this run stops without writing"
            case .renewalOverdue: "task lease not renewed in time; this run stops before another process may take it"
            }
        logger.warning(
            "\(message)", metadata: ["task.id": "\(run.id)", "task.attempt": "\(run.claim.attempt)"])
    }

    // `execute` is split so that its async frame holds only what crosses an `await` (the run, its start, the
    // outcome): the work before and after is in synchronous helpers, whose locals live on the thread's stack. Every
    // task in flight keeps its frames in slabs of at least 1 KiB until it ends; written as one function (the log
    // metadata, the failures, the record) it took 3.6 KiB per task in flight.

    private func execute(_ run: TaskRun) async {
        let started = clock.now
        var (status, failure) = await runJob(of: run)
        (status, failure) = settle(run, status: status, failure: failure)
        // Everything the job wrote must be stored before the task is final.
        await run.drain()
        guard run.fence == nil else {
            abandoned(run)
            return
        }
        guard let final = await finish(run, status: status, failure: failure) else {
            notify(.task(run.id))
            return
        }
        finished(run, final, failure: failure, started: started)
    }

    /// Runs the job; its outcome, as a status and a failure.
    private func runJob(of run: TaskRun) async -> (TaskStatus, TaskFailure?) {
        do {
            guard let job = begin(run) else {
                throw JobFailure(
                    TaskFailure(kind: .unknownJob, message: "No job is registered for '\(run.record.kind)'."))
            }
            try await job.run(input: run.record.input, context: JobContext(run: run))
            return (Task.isCancelled ? .cancelled : .succeeded, nil)
        } catch {
            return outcome(of: error)
        }
    }

    /// Logs and announces the start; the run's job, if one is registered for its kind.
    @inline(never)
    private func begin(_ run: TaskRun) -> (any Job)? {
        let record = run.record
        logger(for: run).debug(
            "task running", metadata: ["task.kind": "\(record.kind)", "task.attempt": "\(run.claim.attempt)"])
        notify(.task(record.id))
        return jobs[record.kind]
    }

    @inline(never)
    private func outcome(of error: any Error) -> (TaskStatus, TaskFailure?) {
        if let error = error as? JobFailure {
            return Task.isCancelled ? (.cancelled, nil) : (.failed, error.failure)
        }
        if Task.isCancelled || error is CancellationError { return (.cancelled, nil) }
        return (.failed, TaskFailure(kind: .internalError, message: "The job failed: \(error)"))
    }

    /// The deadline and a shutdown's interruption override the job's own outcome.
    @inline(never)
    private func settle(
        _ run: TaskRun, status: TaskStatus, failure: TaskFailure?
    ) -> (TaskStatus, TaskFailure?) {
        if run.timedOut {
            let limit = configuration.taskTimeout.formatted(.units(allowed: [.minutes, .seconds]))
            return (.failed, TaskFailure(kind: .taskTimeout, message: "The task did not finish within \(limit)."))
        }
        if status == .cancelled, let interrupted = state.withLock({ $0.interruption }) {
            return (.failed, interrupted)
        }
        return (status, failure)
    }

    @inline(never)
    private func abandoned(_ run: TaskRun) {
        logger(for: run).info("task run abandoned", metadata: ["task.attempt": "\(run.claim.attempt)"])
        notify(.task(run.id))
    }

    @inline(never)
    private func finished(_ run: TaskRun, _ final: Ending, failure: TaskFailure?, started: ContinuousClock.Instant) {
        let elapsed = clock.now - started
        // The job's own facts, under its own names: the table knows nothing of what they mean.
        var metadata: Logger.Metadata = [:]
        for (key, value) in final.metadata { metadata["job.\(key)"] = "\(value)" }
        if let requestID = final.requestID { metadata["upstream.request_id"] = "\(requestID)" }
        metadata["task.status"] = "\(final.status.rawValue)"
        metadata["task.attempt"] = "\(run.claim.attempt)"
        metadata["task.duration_ms"] = "\(elapsed.wholeMilliseconds)"
        metadata["error.type"] = "\(failure?.type ?? "")"
        logger(for: run).info("task finished", metadata: metadata)
        notify(.task(run.id))
    }

    /// The table's logger with the task's id.
    private func logger(for run: TaskRun) -> Logger {
        var log = logger
        log[metadataKey: "task.id"] = "\(run.id)"
        return log
    }

    /// What the log line of a finished task needs of its final record (a small value to carry across an `await`).
    private struct Ending: Sendable {
        var status: TaskStatus
        var requestID: String?
        var metadata: [String: String]

        init(_ record: TaskRecord) {
            status = record.status
            requestID = record.failure?.requestID
            metadata = record.metadata
        }
    }

    /// Records the end of a run, retrying while the store is unavailable until it lands, the claim is refused, or
    /// the run is fenced (its lease can no longer be counted on: another process will take the task over).
    private func finish(_ run: TaskRun, status: TaskStatus, failure: TaskFailure?) async -> Ending? {
        var delay = Duration.milliseconds(50)
        while true {
            do {
                return try await onStoreThread { [store] () throws(TaskStoreError) in
                    try store.finish(run.claim, status: status, failure: failure).map(Ending.init)
                }
            } catch {
                guard retryFinish(run, after: error, delay: delay) else { return nil }
                // Not cancellable: a shutdown still wants the result stored.
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
                if let overdue = overdueRenewal(run), overdue { run.fence(.renewalOverdue) }
            }
        }
    }

    /// Whether recording the end of a run is worth another try after `error`, which it logs.
    @inline(never)
    private func retryFinish(_ run: TaskRun, after error: TaskStoreError, delay: Duration) -> Bool {
        if case .leaseLost = error {
            run.fence(.leaseLost)
            return false
        }
        guard run.fence == nil, store.isShared else {
            logger(for: run).error("cannot record the end of a task", metadata: ["error.message": "\(error)"])
            return false
        }
        logger(for: run).warning(
            "cannot record the end of a task yet; retrying",
            metadata: ["error.message": "\(error)", "retry.delay_ms": "\(delay.wholeMilliseconds)"])
        return true
    }

    /// Whether the run's lease is older than the self-fencing limit (`nil` for a store without leases).
    private func overdueRenewal(_ run: TaskRun, now: ContinuousClock.Instant? = nil) -> Bool? {
        guard let lease = store.leaseTimeout else { return nil }
        return (now ?? clock.now) - run.lastRenewal > lease * configuration.selfFenceFraction
    }

    private func notify(_ change: TaskChange) {
        for observer in outputObservers.withLock({ $0 }) { observer(change) }
    }

    /// Sweeps expired results every ``Configuration/sweepInterval`` until the calling task is cancelled.
    public func runSweeper() async {
        while !Task.isCancelled {
            try? await clock.sleep(for: configuration.sweepInterval)
            do {
                let removed = try await onStoreThread { [store] () throws(TaskStoreError) in try store.sweepExpired() }
                if removed > 0 { logger.debug("swept expired tasks", metadata: ["tasks.removed": "\(removed)"]) }
                #if canImport(Glibc)
                    // glibc keeps freed memory in its arenas; after a large sweep, give it back to the system.
                    if removed > 1000 { _ = malloc_trim(0) }
                #endif
            } catch {
                logger.warning("cannot sweep expired tasks", metadata: ["error.message": "\(error)"])
            }
        }
    }

    /// One watcher for every job's time limit: a sleeping child per job would keep a dispatch timer alive until its
    /// deadline even after the job ended (swiftlang/swift#60441), growing memory with the task rate.
    private func watchLoop() async {
        let interval = min(.seconds(1), configuration.taskTimeout / 4)
        while !Task.isCancelled {
            try? await clock.sleep(for: interval)
            let now = clock.now
            for run in runningRuns { run.stopIfOverdue(now: now) }
        }
    }

    /// A run whose lease was not renewed for ``Configuration/selfFenceFraction`` of the lease timeout stops itself
    /// (its job's Swift task is cancelled), so two runs of one task never overlap across a pause or a partition.
    private func fenceOverdueRuns() {
        let now = clock.now
        for run in runningRuns where run.fence == nil {
            if overdueRenewal(run, now: now) == true { run.fence(.renewalOverdue) }
        }
    }

    /// Renews a shared store's leases of the runs in this process and picks up cancels asked for in other processes,
    /// until the calling task is cancelled (at once for a store without leases). Run it until the table's drain has
    /// finished: a run handed back or recording its end still needs its lease.
    public func runHeartbeat() async {
        guard store.isShared, let heartbeatExecutor else { return }
        var interval = configuration.heartbeatInterval
        if let lease = store.leaseTimeout { interval = min(interval, lease / 5) }
        while !Task.isCancelled {
            try? await clock.sleep(for: interval)
            let active = runningRuns.filter { $0.fence == nil }
            guard !active.isEmpty else { continue }
            let sentAt = clock.now
            do {
                let report = try await heartbeatExecutor.run { [store] () throws(TaskStoreError) in
                    try store.renewLeases(active.map(\.claim))
                }
                let lost = Set(report.lost)
                let cancelled = Set(report.cancelRequested)
                for run in active {
                    if lost.contains(run.id) {
                        run.fence(.leaseLost)
                    } else {
                        run.renewed(sentAt: sentAt)
                        if cancelled.contains(run.id) { run.cancelRequested() }
                    }
                }
            } catch {
                logger.warning("cannot renew task leases", metadata: ["error.message": "\(error)"])
            }
        }
    }

    /// Hands running tasks back to a shared store's queue so another process finishes them, then cancels them
    /// here. Returns how many were handed back (none for a private store).
    @discardableResult
    public func requeueRunning() async -> Int {
        let active = runningRuns.filter { $0.fence == nil }
        guard store.isShared, !active.isEmpty else { return 0 }
        do {
            let count = try await onStoreThread { [store] () throws(TaskStoreError) in
                try store.requeue(active.map(\.claim))
            }
            // Their claims are void now: the runs stop without writing.
            for run in active { run.fence(.leaseLost) }
            return count
        } catch {
            logger.warning("cannot hand running tasks back to the queue", metadata: ["error.message": "\(error)"])
            return 0
        }
    }

    private func pollLoop() async {
        while !Task.isCancelled {
            try? await clock.sleep(for: configuration.pollInterval)
            wakeupContinuation.yield()
        }
    }
}
