public import ServiceLifecycle
public import Tasks

/// A ``TaskTable``'s sweeper as a `Service`: it removes expired results every
/// ``TaskTable/Configuration/sweepInterval`` until graceful shutdown.
///
/// Listed before the ``TaskTableService`` in the group, so that it stops after the table has drained.
public struct TaskSweeperService: Service, CustomStringConvertible {
    private let table: TaskTable
    /// The name the service group logs.
    public var description: String { "TaskSweeperService" }

    /// - Parameter table: the table whose store is swept.
    public init(table: TaskTable) {
        self.table = table
    }

    /// Sweeps until graceful shutdown or cancellation.
    public func run() async {
        await cancelWhenGracefulShutdown { [table] in await table.runSweeper() }
    }
}
