import StandardExtensions
import Tasks

/// Puts running tasks back at the front of the queue; one whose cancellation was asked for ends cancelled
/// instead. Returns how many went back.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct RequeueScript: RedisScript {
    /// How long a task cancelled here is kept.
    var resultTTL: Duration
    /// The claims to hand back (ARGV from 3 on: id, token pairs).
    var claims: [TaskClaim]

    var arguments: [String] {
        [String(resultTTL.wholeMilliseconds)] + claims.flatMap { [$0.id.rawValue, $0.token] }
    }

    static let body = """
        local ttl = tonumber(ARGV[2])
        local count = 0
        for i = 3, #ARGV, 2 do
          local id, token = ARGV[i], ARGV[i + 1]
          local key = P..'task:'..id
          if owns(key, token) then
            if redis.call('HGET', key, 'cancel') == '1' then
              finish(id, 'cancelled', ttl)
            else
              redis.call('HSET', key, 'status', 'queued', 'token', '')
              redis.call('HINCRBY', key, 'attempts', -1)
              redis.call('DEL', P..'out:'..id)
              redis.call('ZREM', P..'running', id)
              redis.call('LPUSH', P..'queue', id)
              redis.call('PUBLISH', P..'changes', id)
              count = count + 1
            end
          end
        end
        if count > 0 then redis.call('PUBLISH', P..'changes', '+') end
        return count
        """
}
