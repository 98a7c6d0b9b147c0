import StandardExtensions
import Tasks

/// Ends the claim's run: `{id, hash, output}` (also for a retry by the same claim), `lost`, or false (gone).
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct FinishScript: RedisScript {
    /// The task.
    var id: TaskID
    /// The ending claim's token.
    var token: String
    /// The final state.
    var status: TaskStatus
    /// The failure as JSON, empty for none.
    var failureJSON: String
    /// How long the finished task is kept.
    var resultTTL: Duration

    var arguments: [String] {
        [
            id.rawValue,
            token,
            status.rawValue,
            failureJSON,
            String(resultTTL.wholeMilliseconds),
        ]
    }

    static let body = """
        local id, token, status, failureJSON, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
        local key = P..'task:'..id
        if redis.call('EXISTS', key) == 0 then return false end
        if redis.call('HGET', key, 'token') ~= token then return 'lost' end
        if redis.call('HGET', key, 'status') == 'running' then
          if redis.call('HGET', key, 'cancel') == '1' then status = 'cancelled' end
          if status == 'failed' and failureJSON ~= '' then redis.call('HSET', key, 'failure', failureJSON) end
          finish(id, status, ttl)
        end
        local s = snapshot(id)
        return {id, s[1], s[2]}
        """
}
