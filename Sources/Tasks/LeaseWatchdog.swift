import Foundation
import Locking
import StandardExtensions

/// A thread that calls a function at a fixed interval until stopped.
final class LeaseWatchdog: Sendable {
    private let stopped = LockedValue(false)

    init(interval: Duration, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [stopped] in
            while !stopped.withLock({ $0 }) {
                Thread.sleep(forTimeInterval: interval.timeInterval)
                body()
            }
        }
        thread.name = "longhaul-lease-watchdog"
        thread.start()
    }

    func stop() { stopped.withLock { $0 = true } }
}
