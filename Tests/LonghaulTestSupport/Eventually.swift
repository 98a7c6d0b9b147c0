import Dispatch

/// Polls `condition` every 20 ms, up to `attempts` times. The condition runs on a Dispatch thread: it may block on
/// Redis, and blocking the cooperative pool (two threads here) would stall the code under test.
public func eventually(_ attempts: Int = 500, _ condition: @escaping @Sendable () throws -> Bool) async throws -> Bool {
    for _ in 0..<attempts {
        let met: Bool = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: (try? condition()) ?? false) }
        }
        if met { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return false
}
