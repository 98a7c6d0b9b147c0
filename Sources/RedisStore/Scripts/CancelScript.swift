import StandardExtensions
import Tasks

/// Cancels a queued task or flags a running one: `cancelled`, `requested`, `done:STATUS` or `notfound`.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct CancelScript: RedisScript {
    /// The task.
    var id: TaskID
    /// How long a task cancelled here is kept.
    var resultTTL: Duration

    var arguments: [String] {
        [id.rawValue, String(resultTTL.wholeMilliseconds)]
    }

    static let body = """
        local id, ttl = ARGV[2], tonumber(ARGV[3])
        local key = P..'task:'..id
        local status = redis.call('HGET', key, 'status')
        if not status then return 'notfound' end
        if status == 'queued' then
          redis.call('LREM', P..'queue', 1, id)
          finish(id, 'cancelled', ttl)
          return 'cancelled'
        elseif status == 'running' then
          redis.call('HSET', key, 'cancel', '1')
          redis.call('PUBLISH', P..'changes', id)
          return 'requested'
        end
        return 'done:'..status
        """
}
