public import FastCGI
public import Foundation

/// What the operations routes (`/ping`, `/status`, `/metrics`) and the access log need from the process.
public struct OperationsConfiguration: Sendable {
    /// The FastCGI server's counters, when the app runs in one.
    public var serverStatistics: @Sendable () -> FastCGIServer.Statistics? = { nil }
    /// Renders the process's metrics in the Prometheus text format, or `nil` for no `/metrics`.
    public var metricsText: (@Sendable () -> String)?
    /// When the process started.
    public var processStart = Date()
    /// The store's name for the status page (`memory`, or the Redis URL without password).
    public var storeName = "memory"
    /// Whether each request is logged (at `info`) with its route, status, duration and task id.
    public var accessLog = false

    public init() {}
}
