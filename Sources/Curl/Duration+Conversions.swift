extension Duration {
    /// Whole milliseconds, rounded down: libcurl's `long` options, log fields (`retry.delay_ms`).
    ///
    /// The `Tasks` module has its own `wholeMilliseconds`; Curl and LLM do not depend on it, and a different name
    /// keeps a file that imports both modules unambiguous.
    package var inWholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Milliseconds, rounded up: a wait that must not wake before its deadline (`epoll_wait`).
    package var inWholeMillisecondsRoundedUp: Int {
        let (seconds, attoseconds) = components
        let perMillisecond: Int64 = 1_000_000_000_000_000
        return Int(seconds) * 1000 + Int((attoseconds + perMillisecond - 1) / perMillisecond)
    }

    /// Whole nanoseconds, rounded down: swift-metrics timers.
    package var inWholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
