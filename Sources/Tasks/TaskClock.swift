public import Foundation

/// Where the task table and the in-memory store read the time and wait: the real clocks in production, a manual
/// clock in tests, so that deadlines, leases and expiry can be tested without waiting for them.
///
/// Retry backoffs do not go through it: they are real waits for a real store, never an expiry being tested.
public protocol TaskClock: Sendable {
    /// The monotonic time now, for deadlines and leases.
    var now: ContinuousClock.Instant { get }

    /// The wall-clock time now, for the timestamps kept on tasks and their expiry.
    var date: Date { get }

    /// Waits until `duration` has passed on this clock.
    /// - Parameter duration: how long to wait.
    /// - Throws: `CancellationError` when the calling task is cancelled first.
    func sleep(for duration: Duration) async throws
}

/// The real clocks: `ContinuousClock` and `Date()`.
public struct SystemTaskClock: TaskClock {
    public init() {}

    public var now: ContinuousClock.Instant { ContinuousClock.now }

    public var date: Date { Date() }

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}
