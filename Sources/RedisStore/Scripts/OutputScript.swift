import Tasks

/// The state and the output past a reader's offset (`run` -1: whichever run is current):
/// `{status, run, start, text, {hash, whole output} once finished, claim tag}` or false. The claim tag is the first
/// 8 characters of the random part of the run's claim token ("" while queued): a failover that loses a claim can
/// give its run number to the next claim, and the tag tells the two apart.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct OutputScript: RedisScript {
    /// The task.
    var id: TaskID
    /// The run whose output the reader has (-1: whichever is current).
    var attempt: Int
    /// How many bytes of it the reader has.
    var offset: Int

    var arguments: [String] {
        [id.rawValue, String(attempt), String(max(offset, 0))]
    }

    static let body = """
        local id, run, offset = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
        local key = P..'task:'..id
        local fields = redis.call('HMGET', key, 'status', 'runs', 'token')
        if not fields[1] then return false end
        local tag = ''
        if fields[3] then
          local colon = string.find(fields[3], ':', 1, true)
          if colon then tag = string.sub(fields[3], colon + 1, colon + 8) end
        end
        local current = tonumber(fields[2] or '0')
        if run >= 0 and current ~= run then offset = 0 end
        local length = redis.call('STRLEN', P..'out:'..id)
        if offset > length then offset = length end
        local text = ''
        if offset < length then text = redis.call('GETRANGE', P..'out:'..id, offset, -1) end
        local final = {}
        if fields[1] ~= 'queued' and fields[1] ~= 'running' then final = snapshot(id) end
        return {fields[1], current, offset, text, final, tag}
        """
}
