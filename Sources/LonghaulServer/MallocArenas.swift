import Foundation

#if canImport(Glibc)
    import CMalloc
    import Glibc
#endif

/// How many malloc arenas glibc may create in this process: one.
///
/// glibc gives threads that contend on malloc arenas of their own, up to 8 per core (16 on a 2-core machine).
/// Longhaul has many threads that allocate in short bursts (FastCGI workers, the curl and store threads, the
/// Swift pool), so it ends up with many, and every arena keeps the free chunks a burst of tasks fragmented. In the
/// benchmark's soak (100,000 tasks, bench/analysis.md part 5), with two arenas RSS at quiet moments wandered within
/// about ±15 % around ~50 MiB while the heap in use stayed flat; with one it stayed within ~5 % around ~45 MiB
/// (three runs: +5.3 %, +2.6 % and +0.8 % after against before), because everything lives in the main heap, which
/// `malloc_trim` gives back more completely. The price, measured in the same soak: ~9 % more CPU per task (one
/// lock for the allocations glibc's per-thread cache does not serve); the request paths' ratios did not move.
/// Long-lived processes whose tasks wait seconds on a model gain more from flat memory than they lose in CPU. The
/// operator keeps the last word: the standard `MALLOC_ARENA_MAX` variable, or the tunable
/// `glibc.malloc.arena_max` in `GLIBC_TUNABLES`, is left to glibc and not overridden.
enum MallocArenas {
    /// The limit: one arena, whatever the number of cores.
    static let defaultLimit: Int32 = 1

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
            return mallopt(M_ARENA_MAX, defaultLimit) == 1 ? defaultLimit : nil
        #else
            return nil
        #endif
    }
}
