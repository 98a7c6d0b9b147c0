import Foundation

#if canImport(Glibc)
    import CMalloc
    import Glibc
#endif

/// How many malloc arenas glibc may create in this process.
///
/// glibc gives threads that contend on malloc arenas of their own, up to 8 per core (16 on a 2-core machine).
/// Longhaul has many threads that allocate in short bursts (FastCGI workers, the curl and store threads, the
/// Swift pool), so it ends up with the whole set, and every arena keeps the free chunks a burst of tasks
/// fragmented: after 100,000 tasks created, finished and expired, RSS stayed about 10 % above its earlier steady
/// state (bench/analysis.md, part 5), and `MALLOC_ARENA_MAX=2` made it flat. With glibc's per-thread cache
/// (tcache, glibc 2.26+) most small allocations never touch an arena lock, so a few arenas cost little
/// throughput. The operator keeps the last word: the standard `MALLOC_ARENA_MAX` variable, or the tunable
/// `glibc.malloc.arena_max` in `GLIBC_TUNABLES`, is left to glibc and not overridden.
enum MallocArenas {
    /// The limit for this machine: one arena per core, at least 2 and at most 4 (glibc's own is 8 per core).
    static func defaultLimit(cores: Int) -> Int32 {
        Int32(min(max(cores, 2), 4))
    }

    /// Sets the limit unless the environment sets one; call it first thing in `main`, before threads start (an
    /// arena glibc has already made stays, but none is added past the limit).
    /// - Returns: the limit set, or `nil` when the environment decides (or the platform has no such setting).
    @discardableResult
    static func limit() -> Int32? {
        #if canImport(Glibc)
            if getenv("MALLOC_ARENA_MAX") != nil { return nil }
            if let tunables = getenv("GLIBC_TUNABLES"), String(cString: tunables).contains("glibc.malloc.arena_max") {
                return nil
            }
            let limit = defaultLimit(cores: ProcessInfo.processInfo.activeProcessorCount)
            return mallopt(M_ARENA_MAX, limit) == 1 ? limit : nil
        #else
            return nil
        #endif
    }
}
