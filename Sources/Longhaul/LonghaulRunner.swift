public import FastCGI
import Foundation
import Locking
public import Logging
public import ServiceLifecycle
import Synchronization
import Tasks
public import UnixSignals

/// Runs an app as one `ServiceGroup` until SIGTERM, SIGINT or SIGQUIT, then shuts its services down in reverse
/// order: the FastCGI server stops accepting and finishes its requests (``FastCGIService``); the task table stops
/// claiming, gives running tasks a grace period, hands them back to a shared store's queue or fails them as
/// interrupted (``TaskTableService``); then the table's sweeper and lease heartbeat (``TaskSweeperService``,
/// ``LeaseHeartbeatService``) and the services the jobs depend on stop. A second signal skips the grace
/// period.
///
/// ```swift
/// let server = try FastCGIServer(configuration: .init(), logger: logger)   // fd 0 under spawn-fcgi
/// let runner = LonghaulRunner(server: server, logger: logger)               // signals handled from here on
/// let table = TaskTable(store: MemoryTaskStore(resultTTL: .seconds(3600)), jobs: ["report": ReportJob()], logger: logger)
/// let app = LonghaulApp(table: table, logger: logger) { router, context in /* the app's own routes */ }
/// try await runner.run(app)
/// ```
public struct LonghaulRunner: Sendable {
    private let server: FastCGIServer
    private let logger: Logger
    private let shutdownGrace: Duration

    /// How long running tasks may go on after a stop signal unless told otherwise.
    public static let defaultShutdownGrace: Duration = TaskTableService.defaultShutdownGrace

    /// The signals that stop the process gracefully: SIGQUIT is php-fpm's graceful stop.
    public static let stopSignals: [UnixSignal] = [.sigterm, .sigint, .sigquit]

    /// Takes over SIGTERM, SIGINT and SIGQUIT. Create it after the ``FastCGIServer``: libfcgi's `FCGX_Init` installs
    /// a SIGTERM handler that only sets a flag (after which every accept fails); this replaces it. A stop signal
    /// between here and ``run(_:dependencies:)`` is remembered, and the run then stops at once, gracefully.
    /// - Parameters:
    ///   - server: the FastCGI server.
    ///   - shutdownGrace: how long running tasks may go on after a stop signal.
    ///   - logger: for start and stop.
    public init(server: FastCGIServer, shutdownGrace: Duration = LonghaulRunner.defaultShutdownGrace, logger: Logger) {
        self.server = server
        self.shutdownGrace = shutdownGrace
        self.logger = logger
        // Remembered until the signal sources of `run` take them over (Dispatch installs its own handler): a
        // service manager that stops the process while it starts must not wait for its kill timeout.
        for stopSignal in Self.stopSignals { _ = signal(stopSignal.rawValue, rememberEarlyStopSignal) }
    }

    /// Serves `app` until a stop signal, then shuts down in order and returns.
    /// - Parameters:
    ///   - app: the app.
    ///   - dependencies: services the app's jobs use (an HTTP client): they start first and stop after the task
    ///     table has drained, in reverse order of this list.
    /// - Throws: what the service group throws (`ServiceGroupError` when a service ends before the shutdown).
    public func run(_ app: LonghaulApp, dependencies: [any Service] = []) async throws {
        let tasks = TaskTableService(
            table: app.table, shutdownGrace: shutdownGrace, runsSweeperAndHeartbeat: false, logger: logger)
        let heartbeat = LeaseHeartbeatService(table: app.table)
        let sweeper = TaskSweeperService(table: app.table)
        // Registered before the group's own, so that it sees every signal the group sees.
        let signals = await UnixSignalsSequence(trapping: Self.stopSignals)
        // The group starts listening to signals only inside `run()`: the watcher, listening already, starts the
        // shutdown itself, so that a signal in between is not lost.
        let groupReference = LockedValue<ServiceGroup?>(nil)
        let watcher = StopSignalService(signals: signals, tasks: tasks, logger: logger) {
            await groupReference.withLock { $0 }?.triggerGracefulShutdown()
        }
        let fastCGI = FastCGIService(server: server, quickResponder: app.quickResponder) { request in
            app.respond(to: request)
        }
        // Dependency order: the group starts them in this order and shuts them down in reverse, each once the one
        // after it has ended: the FastCGI server stops accepting, the table drains, and only then do the sweeper and
        // the heartbeat stop (the heartbeat renews the leases of the runs still draining), then the dependencies.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [watcher] + dependencies + [heartbeat, sweeper, tasks, fastCGI],
                gracefulShutdownSignals: Self.stopSignals,
                logger: logger))
        groupReference.withLock { $0 = group }
        let early = earlyStopSignal.exchange(0, ordering: .relaxed)
        if early != 0 {
            logger.notice("stopping", metadata: ["process.signal": "\(early)", "process.signal.when": "starting"])
            await group.triggerGracefulShutdown()
        }
        try await group.run()
    }
}

/// The stop signal received before ``LonghaulRunner/run(_:dependencies:)`` listens (0: none).
private let earlyStopSignal = Atomic<Int32>(0)

/// A signal handler: only an atomic store, which is async-signal-safe.
private func rememberEarlyStopSignal(_ signal: Int32) {
    earlyStopSignal.store(signal, ordering: .relaxed)
}
