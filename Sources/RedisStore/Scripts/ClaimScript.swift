import StandardExtensions
import Tasks

/// Takes over a task whose lease ran out (or ends it), else the oldest queued task, under a new claim.
/// Returns `{id, token, run, hash, output}` or false.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct ClaimScript: RedisScript {
    /// The limit on running tasks.
    var maxRunning: Int
    /// The random part of the new claim's token.
    var nonce: String
    /// How long the claim lasts without renewal.
    var leaseTimeout: Duration
    /// The most claims a task may have before it fails.
    var maxAttempts: Int
    /// How long a task that ends here is kept.
    var resultTTL: Duration
    /// The failure (JSON) kept on a task whose attempts are used up.
    var lostFailure: String

    var arguments: [String] {
        [
            String(maxRunning),
            nonce,
            String(leaseTimeout.wholeMilliseconds),
            String(maxAttempts),
            String(resultTTL.wholeMilliseconds),
            lostFailure,
        ]
    }

    static let body = """
        local maxRunning, nonce, lease = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
        local maxAttempts, ttl, lostFailure = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
        local function take(id)
          local key = P..'task:'..id
          local run = redis.call('HINCRBY', key, 'runs', 1)
          redis.call('HINCRBY', key, 'attempts', 1)
          local token = run..':'..nonce
          redis.call('HSET', key, 'status', 'running', 'token', token)
          redis.call('ZADD', P..'running', NOW + lease, id)
          redis.call('PUBLISH', P..'changes', id)
          local s = snapshot(id)
          return {id, token, run, s[1], s[2]}
        end
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', P..'running', '-inf', NOW, 'LIMIT', 0, 10)) do
          local key = P..'task:'..id
          if redis.call('HGET', key, 'status') ~= 'running' then
            redis.call('ZREM', P..'running', id)
          elseif redis.call('HGET', key, 'cancel') == '1' then
            finish(id, 'cancelled', ttl)
          elseif tonumber(redis.call('HGET', key, 'attempts') or '0') >= maxAttempts then
            redis.call('HSET', key, 'failure', lostFailure)
            finish(id, 'failed', ttl)
          else
            -- Its process stopped renewing: start again from nothing (streams get a reset).
            redis.call('DEL', P..'out:'..id)
            return take(id)
          end
        end
        if redis.call('ZCARD', P..'running') >= maxRunning then return false end
        while true do
          local id = redis.call('LPOP', P..'queue')
          if not id then return false end
          local key = P..'task:'..id
          local status = redis.call('HGET', key, 'status')
          if status == 'queued' and redis.call('HGET', key, 'cancel') == '1' then
            finish(id, 'cancelled', ttl)
          elseif status == 'queued' then
            if not redis.call('HGET', key, 'started') then redis.call('HSET', key, 'started', NOW) end
            return take(id)
          end
        end
        """
}
