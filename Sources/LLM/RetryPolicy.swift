import StandardExtensions

/// When and how long to wait before another attempt, as Anthropic's and OpenAI's official SDKs do it.
public struct RetryPolicy: Sendable {
    /// Retries after the first attempt.
    public var maxRetries: Int
    /// The first backoff delay; it doubles on each retry.
    public var initialDelay: Duration = .milliseconds(500)
    /// The longest backoff delay.
    public var maxDelay: Duration = .seconds(8)
    /// The longest server-requested delay that is honoured; longer requests fall back to backoff.
    public var maxRetryAfter: Duration = .seconds(60)

    /// - Parameter maxRetries: retries after the first attempt.
    public init(maxRetries: Int) {
        self.maxRetries = maxRetries
    }

    /// Statuses that are never retried, whatever the server says.
    public static let neverRetriedStatuses: Set<Int> = [400, 401, 403, 404, 413]

    /// Whether an HTTP status may be retried.
    /// - Parameters:
    ///   - status: the status.
    ///   - shouldRetryHeader: the `x-should-retry` header, if any.
    /// - Returns: `true` for 408, 409, 429 and 5xx (529 included), or when the server says so.
    public static func isRetryable(status: Int, shouldRetryHeader: String?) -> Bool {
        if neverRetriedStatuses.contains(status) { return false }
        switch shouldRetryHeader?.lowercased() {
        case "true": return true
        case "false": return false
        default: return status == 408 || status == 409 || status == 429 || status >= 500
        }
    }

    /// The delay before retry number `retry` (0 for the first retry).
    /// - Parameters:
    ///   - retry: how many retries were made before this one.
    ///   - retryAfter: a delay the server asked for, if any.
    ///   - random: a number in `0..<1` (injected, so tests are exact).
    /// - Returns: the server's delay when it is at most ``maxRetryAfter``; otherwise min(initial × 2^retry, max)
    ///   less up to 25 % jitter.
    public func delay(beforeRetry retry: Int, retryAfter: Duration?, random: Double) -> Duration {
        if let retryAfter, retryAfter >= .zero, retryAfter <= maxRetryAfter { return retryAfter }
        let exponent = min(retry, 30)
        let base = min(initialDelay * (1 << exponent), maxDelay)
        return base * (1 - 0.25 * random)
    }

    /// Reads `retry-after-ms` (milliseconds) or `retry-after` (seconds, or an HTTP date is ignored).
    /// - Parameters:
    ///   - retryAfterMilliseconds: the `retry-after-ms` header.
    ///   - retryAfterSeconds: the `retry-after` header.
    /// - Returns: the delay, or `nil`.
    public static func serverDelay(retryAfterMilliseconds: String?, retryAfterSeconds: String?) -> Duration? {
        if let text = retryAfterMilliseconds, let value = Double(text.trimmingWhitespace()), value.isFinite, value >= 0
        {
            return .milliseconds(value)
        }
        if let text = retryAfterSeconds, let value = Double(text.trimmingWhitespace()), value.isFinite, value >= 0 {
            return .milliseconds(value * 1000)
        }
        return nil
    }
}
