import Tasks

/// Merges metadata into a running task and sets its progress: `ok` or `lost`.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct UpdateScript: RedisScript {
    /// The task.
    var id: TaskID
    /// The writing claim's token.
    var token: String
    /// The entries to merge, as a JSON object.
    var metadataJSON: String
    /// The new progress, or `nil` to leave it.
    var progress: Double?

    var arguments: [String] {
        [
            id.rawValue,
            token,
            metadataJSON,
            progress.map { String($0) } ?? "",
        ]
    }

    static let body = """
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
}
