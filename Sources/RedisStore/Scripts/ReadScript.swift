import Tasks

/// Reads a task's snapshot: `{hash as flat array, output}`, or false.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct ReadScript: RedisScript {
    /// The task.
    var id: TaskID

    var arguments: [String] {
        [id.rawValue]
    }

    static let body = """
        local id = ARGV[2]
        if redis.call('EXISTS', P..'task:'..id) == 0 then return false end
        return snapshot(id)
        """
}
