/// The store's Lua scripts, one per transition, each atomic.
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

    /// Returns the id now answering (this one, an earlier one with the same idempotency key, or this one again
    /// when a retry finds it stored), `queue_full` or `client_limit`.
    static let enqueue = """
        local maxQueued, id, kind, input = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
        local client, maxPerClient, idem, window = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
        if redis.call('EXISTS', P..'task:'..id) == 1 then return id end
        if idem ~= '' then
          local earlier = redis.call('GET', P..'idem:'..idem)
          if earlier and redis.call('EXISTS', P..'task:'..earlier) == 1 then return earlier end
        end
        if redis.call('LLEN', P..'queue') >= maxQueued then return 'queue_full' end
        if client ~= '' and maxPerClient ~= '' then
          if tonumber(redis.call('HGET', P..'clients', client) or '0') >= tonumber(maxPerClient) then return 'client_limit' end
        end
        redis.call('HSET', P..'task:'..id, 'kind', kind, 'input', input, 'status', 'queued', 'created', NOW,
          'cancel', '0', 'attempts', '0', 'runs', '0', 'metadata', '{}', 'client', client)
        if client ~= '' then redis.call('HINCRBY', P..'clients', client, 1) end
        if idem ~= '' then redis.call('SET', P..'idem:'..idem, id, 'PX', window) end
        redis.call('RPUSH', P..'queue', id)
        redis.call('PUBLISH', P..'changes', '+')
        return id
        """

    static let read = """
        local id = ARGV[2]
        if redis.call('EXISTS', P..'task:'..id) == 0 then return false end
        return snapshot(id)
        """

    /// Takes over a task whose lease ran out (or ends it), else the oldest queued task, under a new claim.
    /// Returns `{id, token, run, hash, output}` or false.
    static let claim = """
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

    /// Appends at a byte offset: `ok` (also for a retry of a chunk already written, wholly or in part) or `lost`.
    static let append = """
        local id, token, offset, text = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
        if not owns(P..'task:'..id, token) then return 'lost' end
        local length = redis.call('STRLEN', P..'out:'..id)
        if length < offset then return 'lost' end
        -- Only this claim writes, in order: bytes past the offset are a prefix of this text, stored by an
        -- earlier try whose reply was lost. Append what is missing.
        if length < offset + #text then
          redis.call('APPEND', P..'out:'..id, string.sub(text, length - offset + 1))
          redis.call('PUBLISH', P..'changes', id)
        end
        return 'ok'
        """

    static let update = """
        local id, token, metadataJSON, progress = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
        local key = P..'task:'..id
        if not owns(key, token) then return 'lost' end
        local metadata = cjson.decode(redis.call('HGET', key, 'metadata') or '{}')
        for k, v in pairs(cjson.decode(metadataJSON)) do metadata[k] = v end
        if next(metadata) == nil then
          redis.call('HSET', key, 'metadata', '{}')
        else
          redis.call('HSET', key, 'metadata', cjson.encode(metadata))
        end
        if progress ~= '' then redis.call('HSET', key, 'progress', progress) end
        redis.call('PUBLISH', P..'changes', id)
        return 'ok'
        """

    /// Ends the claim's run: `{id, hash, output}` (also for a retry by the same claim), `lost`, or false (gone).
    static let finish = """
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

    /// The state and the output past a reader's offset (`run` -1: whichever run is current):
    /// `{status, run, start, text, {hash, whole output} once finished}` or false.
    static let output = """
        local id, run, offset = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
        local key = P..'task:'..id
        local fields = redis.call('HMGET', key, 'status', 'runs')
        if not fields[1] then return false end
        local current = tonumber(fields[2] or '0')
        if run >= 0 and current ~= run then offset = 0 end
        local length = redis.call('STRLEN', P..'out:'..id)
        if offset > length then offset = length end
        local text = ''
        if offset < length then text = redis.call('GETRANGE', P..'out:'..id, offset, -1) end
        local final = {}
        if fields[1] ~= 'queued' and fields[1] ~= 'running' then final = snapshot(id) end
        return {fields[1], current, offset, text, final}
        """

    static let cancel = """
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

    /// ARGV from 3 on: id, token pairs. Returns `{cancel requested, lost}`.
    static let heartbeat = """
        local lease = tonumber(ARGV[2])
        local cancelled, lost = {}, {}
        for i = 3, #ARGV, 2 do
          local id, token = ARGV[i], ARGV[i + 1]
          local key = P..'task:'..id
          if owns(key, token) then
            redis.call('ZADD', P..'running', 'XX', NOW + lease, id)
            if redis.call('HGET', key, 'cancel') == '1' then table.insert(cancelled, id) end
          else
            table.insert(lost, id)
          end
        end
        return {cancelled, lost}
        """

    /// ARGV from 3 on: id, token pairs. A task whose cancellation was asked for ends cancelled instead.
    static let requeue = """
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

    static let sweep = """
        local removed = 0
        for _, status in ipairs({'succeeded', 'failed', 'cancelled'}) do
          removed = removed + redis.call('ZREMRANGEBYSCORE', P..'done:'..status, '-inf', NOW)
        end
        return removed
        """

    static let counts = """
        local now = '(' .. NOW
        return {redis.call('LLEN', P..'queue'), redis.call('ZCARD', P..'running'),
          redis.call('ZCOUNT', P..'done:succeeded', now, '+inf'),
          redis.call('ZCOUNT', P..'done:failed', now, '+inf'),
          redis.call('ZCOUNT', P..'done:cancelled', now, '+inf')}
        """
}
