/// Removes expired ids from the finished sets; returns how many.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct SweepScript: RedisScript {
    var arguments: [String] {
        []
    }

    static let body = """
        local removed = 0
        for _, status in ipairs({'succeeded', 'failed', 'cancelled'}) do
          removed = removed + redis.call('ZREMRANGEBYSCORE', P..'done:'..status, '-inf', NOW)
        end
        return removed
        """
}
