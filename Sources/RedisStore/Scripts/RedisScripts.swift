/// The store's Lua scripts, one per transition, each atomic (one file each under `Scripts/`).
///
/// Every script gets the key prefix as `ARGV[1]`; its own arguments follow and are named at its top. Every time
/// is Redis's own (`TIME`), so no machine's clock decides a lease or an expiry that another machine reads.
/// Keys: `task:ID` (hash: the record, its claim `token`, `runs` = claims so far, `attempts` = claims that count
/// against the limit), `out:ID` (the current run's output), `queue` (list), `running` (sorted set: id → lease
/// end), `done:STATUS` (sorted set: id → expiry), `clients` (hash: tasks in progress per client), `idem:KEY`.
enum RedisScripts {
    /// Shared helpers: the prefix, Redis's time now, a task's snapshot, and the move to a final state.
    static let prelude = """
        local P = ARGV[1]
        local clock = redis.call('TIME')
        local NOW = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        local function snapshot(id)
          return {redis.call('HGETALL', P..'task:'..id), redis.call('GET', P..'out:'..id) or ''}
        end
        local function finish(id, status, ttl)
          local key = P..'task:'..id
          local client = redis.call('HGET', key, 'client')
          if client and client ~= '' then
            if redis.call('HINCRBY', P..'clients', client, -1) <= 0 then redis.call('HDEL', P..'clients', client) end
          end
          redis.call('HSET', key, 'status', status, 'finished', NOW)
          redis.call('ZREM', P..'running', id)
          redis.call('ZADD', P..'done:'..status, NOW + ttl, id)
          redis.call('PEXPIRE', key, ttl)
          redis.call('PEXPIRE', P..'out:'..id, ttl)
          redis.call('PUBLISH', P..'changes', id)
          redis.call('PUBLISH', P..'changes', '+')
        end
        local function owns(key, token)
          return redis.call('HGET', key, 'status') == 'running' and redis.call('HGET', key, 'token') == token
        end

        """
}

/// One of the store's Lua scripts, with its arguments by name: a struct per script builds its own `ARGV`, so no
/// caller passes a positional array.
protocol RedisScript: Sendable {
    /// The script's Lua, run after ``RedisScripts/prelude``; it names its arguments at its top.
    static var body: String { get }
    /// `ARGV` from 2 on (`ARGV[1]` is the key prefix), in the order ``body`` reads them.
    var arguments: [String] { get }
}
