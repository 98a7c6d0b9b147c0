extension Duration {
    /// The duration in seconds, as Foundation and Dispatch take it.
    public var timeInterval: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, rounded down: libcurl's `long` options, log fields (`retry.delay_ms`).
    public var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// The duration in milliseconds, rounded up: a wait that must not wake before its deadline (`epoll_wait`).
    public var wholeMillisecondsRoundedUp: Int64 {
        let perMillisecond: Int64 = 1_000_000_000_000_000
        return components.seconds * 1000 + (components.attoseconds + perMillisecond - 1) / perMillisecond
    }

    /// The duration in whole microseconds, rounded down (a C `timeval`'s unit, the access log's `http.duration_us`).
    public var wholeMicroseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }

    /// The duration in whole nanoseconds, rounded down: swift-metrics timers.
    public var wholeNanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
