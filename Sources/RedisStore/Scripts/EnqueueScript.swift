import StandardExtensions
import Tasks

/// Returns the id now answering (this one, an earlier one with the same idempotency key, or this one again
/// when a retry finds it stored), `queue_full` or `client_limit`.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct EnqueueScript: RedisScript {
    /// The queue's capacity.
    var maxQueued: Int
    /// The new task's id.
    var id: TaskID
    /// Its job kind.
    var kind: String
    /// Its input.
    var input: String
    /// Who asked, for the per-client limit.
    var client: String?
    /// The per-client limit, if any.
    var maxPerClient: Int?
    /// The client's idempotency key, if any.
    var idempotencyKey: String?
    /// How long the key is remembered.
    var idempotencyWindow: Duration

    var arguments: [String] {
        [
            String(maxQueued),
            id.rawValue,
            kind,
            input,
            client ?? "",
            maxPerClient.map(String.init) ?? "",
            idempotencyKey ?? "",
            String(idempotencyWindow.wholeMilliseconds),
        ]
    }

    static let body = """
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
}
