import Locking

/// Lets one warning of a kind through per interval and counts the rest, so that an outage seen by every request
/// writes a line every few seconds, not one per request, and the line says how many it stands for.
final class WarningRateLimit: Sendable {
    private struct State {
        var lastLogged: ContinuousClock.Instant?
        var suppressed = 0
    }

    private let interval: Duration
    private let state = LockedValue(State())

    /// - Parameter interval: the least time between two warnings let through.
    init(interval: Duration) {
        self.interval = interval
    }

    /// Whether to log this occurrence now.
    /// - Parameter now: the time.
    /// - Returns: how many occurrences were held back since the last one logged, or `nil` to hold this one back.
    func admit(now: ContinuousClock.Instant = .now) -> Int? {
        state.withLock { state in
            if let last = state.lastLogged, now - last < interval {
                state.suppressed += 1
                return nil
            }
            defer { state.suppressed = 0 }
            state.lastLogged = now
            return state.suppressed
        }
    }
}
