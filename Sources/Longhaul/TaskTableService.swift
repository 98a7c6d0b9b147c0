public import Logging
public import ServiceLifecycle
public import Tasks

/// A ``TaskTable`` as a `Service`: it runs jobs until graceful shutdown, then drains.
///
/// The drain: stop claiming work, let running jobs go on for the grace period (or until they have all ended),
/// then hand the rest back to a shared store's queue (``TaskTable/requeueRunning()``) and fail what remains as
/// `interrupted`. ``skipGracePeriod()`` (a second stop signal) or cancelling the service ends the grace period at
/// once; the running tasks are still handed back or failed, never left unaccounted for.
public final class TaskTableService: Service, Sendable, CustomStringConvertible {
    /// How long running tasks may go on after a stop signal unless told otherwise.
    public static let defaultShutdownGrace: Duration = .seconds(10)
    /// The failure recorded for a task still running at the end of the grace period.
    public static let interrupted = TaskFailure(
        kind: .interrupted, message: "The task was interrupted by a shutdown of the server. Please try again.")

    /// The table.
    public let table: TaskTable
    private let shutdownGrace: Duration
    private let runsSweeperAndHeartbeat: Bool
    private let logger: Logger
    private let hurry: AsyncStream<Void>
    private let hurryContinuation: AsyncStream<Void>.Continuation
    /// The name the service group logs.
    public var description: String { "TaskTableService" }

    /// - Parameters:
    ///   - table: the table.
    ///   - shutdownGrace: how long running tasks may go on after graceful shutdown begins.
    ///   - runsSweeperAndHeartbeat: whether this service also sweeps results and renews a shared store's leases
    ///     (``TaskTable/run()``); `false` when ``TaskSweeperService`` and ``LeaseHeartbeatService`` run before it in
    ///     the same group (``LonghaulRunner``), so this one runs only ``TaskTable/runJobs()``.
    ///   - logger: for the drain.
    public init(
        table: TaskTable, shutdownGrace: Duration = TaskTableService.defaultShutdownGrace,
        runsSweeperAndHeartbeat: Bool = true, logger: Logger
    ) {
        self.table = table
        self.shutdownGrace = shutdownGrace
        self.runsSweeperAndHeartbeat = runsSweeperAndHeartbeat
        self.logger = logger
        (hurry, hurryContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Ends the grace period now (or as soon as it begins): running tasks are handed back or failed at once.
    public func skipGracePeriod() {
        hurryContinuation.yield()
    }

    /// Runs the table's jobs (its poller and time-limit watcher are child tasks of ``TaskTable/runJobs()``; the
    /// sweeper and a shared store's heartbeat too unless they are services of their own) until graceful shutdown or
    /// cancellation, then drains it.
    public func run() async {
        let table = self.table
        let everything = runsSweeperAndHeartbeat
        // Unstructured on purpose: cancelling this service must not cancel the jobs as if a user had (they would
        // end `cancelled`); the drain below stops them, handed back or `interrupted`, and then awaits this task.
        let running = Task { [hurryContinuation] in
            if everything { await table.run() } else { await table.runJobs() }
            // Every job has ended: no grace period left to wait for.
            hurryContinuation.yield()
        }
        await withTaskCancellationHandler {
            // Returns on graceful shutdown, throws on cancellation: either way, drain (cancellation skips the grace).
            try? await gracefulShutdown()
            await drain(running)
        } onCancel: {
            hurryContinuation.yield()
        }
    }

    private func drain(_ running: Task<Void, Never>) async {
        table.stopClaiming()
        // The first of: the grace period passes, every running job has ended, the grace period is skipped. (Each
        // child must end on cancellation: awaiting `running.value` here would hold the group until the jobs end.)
        await withTaskGroup(of: Void.self) { race in
            race.addTask { [shutdownGrace] in try? await Task.sleep(for: shutdownGrace) }
            race.addTask { [hurry] in
                for await _ in hurry { return }
            }
            await race.next()
            race.cancelAll()
        }
        // A shared store's tasks go back to its queue for another process; private ones end here, failed.
        let handedBack = await table.requeueRunning()
        if handedBack > 0 {
            logger.info("handed running tasks back to the queue", metadata: ["tasks.handed_back": "\(handedBack)"])
        }
        table.failRunning(Self.interrupted)
        await running.value
    }
}
