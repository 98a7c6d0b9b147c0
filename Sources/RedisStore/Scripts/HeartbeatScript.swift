import StandardExtensions
import Tasks

/// Renews the leases of a process's claims and reports which were cancelled or lost: `{cancel requested, lost}`.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct HeartbeatScript: RedisScript {
    /// How long each renewed claim lasts.
    var leaseTimeout: Duration
    /// The claims to renew (ARGV from 3 on: id, token pairs).
    var claims: [TaskClaim]

    var arguments: [String] {
        [String(leaseTimeout.wholeMilliseconds)] + claims.flatMap { [$0.id.rawValue, $0.token] }
    }

    static let body = """
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
}
