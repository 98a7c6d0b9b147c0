import CoreMetrics
import Synchronization

/// Counters the routes keep for the status page and metrics.
final class AppCounters: Sendable {
    /// Times `generate` was refused because the queue was full.
    let queueFull = Atomic<Int>(0)
    /// Times a client was refused because it had too many tasks in progress.
    let clientLimited = Atomic<Int>(0)

    /// Store failures answered with a 503; their warnings are rate-limited, this count is not.
    let storeUnavailableWarnings = WarningRateLimit(interval: .seconds(5))

    static let queueFullCounter = Counter(label: "longhaul_queue_full_total")
    static let storeErrorsCounter = Counter(label: "longhaul_store_errors_total")
}
