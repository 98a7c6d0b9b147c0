/// Counts tasks per state (finished ones not yet expired): `{queued, running, succeeded, failed, cancelled}`.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct CountsScript: RedisScript {
    var arguments: [String] {
        []
    }

    static let body = """
        local now = '(' .. NOW
        return {redis.call('LLEN', P..'queue'), redis.call('ZCARD', P..'running'),
          redis.call('ZCOUNT', P..'done:succeeded', now, '+inf'),
          redis.call('ZCOUNT', P..'done:failed', now, '+inf'),
          redis.call('ZCOUNT', P..'done:cancelled', now, '+inf')}
        """
}
