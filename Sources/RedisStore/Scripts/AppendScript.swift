import Tasks

/// Appends at a byte offset: `ok` (also for a retry of a chunk already written, wholly or in part) or `lost`.
///
/// Its arguments are named here and sent in the order the Lua reads them, after the key prefix (`ARGV[1]`).
struct AppendScript: RedisScript {
    /// The task.
    var id: TaskID
    /// The writing claim's token.
    var token: String
    /// The output's length in bytes before this chunk, as the writer knows it.
    var offset: Int
    /// The chunk.
    var text: String

    var arguments: [String] {
        [
            id.rawValue,
            token,
            String(offset),
            text,
        ]
    }

    static let body = """
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
}
