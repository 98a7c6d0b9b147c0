public import ServiceLifecycle
public import Tasks

/// A ``TaskTable``'s lease heartbeat as a `Service`: for a shared store it renews the leases of the runs in this
/// process and picks up cancels asked for in other processes, until graceful shutdown reaches it.
///
/// Listed before the ``TaskTableService`` in the group, which shuts services down in reverse order and waits for
/// each: the heartbeat goes on through the table's whole drain (the grace period, the hand-back, the runs recording
/// their end), so that no lease of a run still here runs out meanwhile.
public struct LeaseHeartbeatService: Service, CustomStringConvertible {
    private let table: TaskTable
    /// The name the service group logs.
    public var description: String { "LeaseHeartbeatService" }

    /// - Parameter table: the table whose runs' leases are renewed.
    public init(table: TaskTable) {
        self.table = table
    }

    /// Renews leases until graceful shutdown or cancellation.
    public func run() async {
        await cancelWhenGracefulShutdown { [table] in await table.runHeartbeat() }
        // A store without leases has no heartbeat (it returned at once): wait all the same, since a service that
        // returns before the shutdown stops the group.
        try? await gracefulShutdown()
    }
}
