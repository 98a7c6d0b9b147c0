import Dispatch
public import FastCGI
import Foundation
public import Logging
import Tasks

/// Runs an app in a FastCGI server until SIGTERM, SIGINT or SIGQUIT, then stops in order: stop accepting, stop
/// claiming tasks, give running tasks a grace period, hand them back to a shared store's queue or fail them as
/// interrupted, wait for the server's threads.
///
/// ```swift
/// let server = try FastCGIServer(configuration: .init(), logger: logger)   // fd 0 under spawn-fcgi
/// let runner = LonghaulRunner(server: server, logger: logger)               // signals handled from here on
/// let table = TaskTable(store: MemoryTaskStore(resultTTL: .seconds(3600)), jobs: ["report": ReportJob()], logger: logger)
/// let app = LonghaulApp(table: table, logger: logger) { router, context in /* the app's own routes */ }
/// await runner.run(app)
/// ```
public struct LonghaulRunner: Sendable {
    private let server: FastCGIServer
    private let logger: Logger
    private let shutdownGrace: Duration

    /// How long running tasks may go on after a stop signal unless told otherwise.
    public static let defaultShutdownGrace: Duration = .seconds(10)
    private let signals: AsyncStream<String>

    /// Takes over SIGTERM, SIGINT and SIGQUIT. Create it after the ``FastCGIServer`` (libfcgi installs its own
    /// SIGTERM handler when it starts, which this replaces).
    /// - Parameters:
    ///   - server: the FastCGI server.
    ///   - shutdownGrace: how long running tasks may go on after a stop signal.
    ///   - logger: for start and stop.
    public init(server: FastCGIServer, shutdownGrace: Duration = LonghaulRunner.defaultShutdownGrace, logger: Logger) {
        self.server = server
        self.shutdownGrace = shutdownGrace
        self.logger = logger
        signals = Self.stopSignals()
    }

    /// Serves `app` until a stop signal, then stops in order and returns.
    /// - Parameter app: the app.
    public func run(_ app: LonghaulApp) async {
        let table = app.table
        let tasks = Task { await table.run() }
        server.start { request in app.respond(to: request) }
        var iterator = signals.makeAsyncIterator()
        let received = await iterator.next() ?? "end"
        logger.notice(
            "stopping", metadata: ["process.signal": "\(received)", "tasks.running": "\(table.runningCount)"])
        server.stopAccepting()
        table.stopClaiming()
        let interrupted = TaskFailure(
            type: "interrupted", message: "The task was interrupted by a shutdown of the server. Please try again.")
        let logger = self.logger
        let grace = Task { [shutdownGrace] in
            try? await Task.sleep(for: shutdownGrace)
            // A shared store's tasks go back to its queue for another process; private ones end here, failed.
            let handedBack = await table.requeueRunning()
            if handedBack > 0 {
                logger.info("handed running tasks back to the queue", metadata: ["tasks.handed_back": "\(handedBack)"])
            }
            table.failRunning(interrupted)
        }
        // A second signal does not wait for the grace period.
        let secondSignal = Task { [signals] in
            var more = signals.makeAsyncIterator()
            if await more.next() != nil {
                _ = await table.requeueRunning()
                table.failRunning(interrupted)
            }
        }
        await tasks.value
        grace.cancel()
        secondSignal.cancel()
        await server.waitForThreads()
    }

    /// SIGTERM, SIGINT and SIGQUIT (php-fpm's graceful stop) as an async sequence of signal names.
    private static func stopSignals() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT"), (SIGQUIT, "SIGQUIT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
        let retained = SignalSources(sources: sources)
        continuation.onTermination = { _ in retained.cancel() }
        return stream
    }
}

/// Keeps the signal sources alive for as long as the stream is.
private final class SignalSources: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    init(sources: [any DispatchSourceSignal]) { self.sources = sources }
    func cancel() { for source in sources { source.cancel() } }
}
