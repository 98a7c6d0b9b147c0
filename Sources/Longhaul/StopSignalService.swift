import Logging
import ServiceLifecycle
import Tasks
import UnixSignals

/// Watches the stop signals next to the service group: on the first it logs and asks the group to shut down
/// gracefully (the group does so on its own once its signal handling runs; this covers a signal before that), on
/// the second it tells the task table to skip its grace period.
///
/// Listed before the task table in the group, so that it is still listening while the table drains.
struct StopSignalService: Service, CustomStringConvertible {
    let signals: UnixSignalsSequence
    let tasks: TaskTableService
    let logger: Logger
    /// Begins the group's graceful shutdown.
    let shutDownGroup: @Sendable () async -> Void
    var description: String { "StopSignalService" }

    func run() async {
        var received = 0
        for await signal in signals.cancelOnGracefulShutdown() {
            received += 1
            let metadata: Logger.Metadata = [
                "process.signal": "\(String(describing: signal).uppercased())",
                "tasks.running": "\(tasks.table.runningCount)",
            ]
            if received == 1 {
                logger.notice("stopping", metadata: metadata)
                await shutDownGroup()
            } else {
                logger.notice("stopping now: the grace period is skipped", metadata: metadata)
                tasks.skipGracePeriod()
            }
        }
    }
}
