/// Writes a streamed response body, such as server-sent events, after the request left its accept thread.
///
/// The body goes through the server's ``StreamWriter``: a write frames the text as FastCGI records into this
/// stream's buffer and sends what the socket takes without blocking; the writer's thread sends the rest as the
/// client reads. A write returns at once unless the client is far behind (then once it catches up), so a slow or
/// vanished client holds up neither other streams nor any thread. Callers await each write before the next.
public final class ResponseStream: Sendable {
    private let connection: StreamConnection

    init(connection: StreamConnection) {
        self.connection = connection
    }

    /// Writes a chunk; it is on its way to the client (not buffered in the server) as soon as the socket has room.
    /// - Parameter text: the chunk, sent as UTF-8.
    /// - Returns: `false` when the client has gone away; stop writing then.
    public func write(_ text: String) async -> Bool {
        await connection.write(text)
    }

    /// Writes a chunk of UTF-8 bytes, as ``write(_:)-(String)`` does.
    /// - Parameter bytes: the chunk.
    /// - Returns: `false` when the client has gone away; stop writing then.
    public func write(_ bytes: [UInt8]) async -> Bool {
        await connection.write(bytes)
    }

    /// Ends the response: sends what is left, then completes the request. Called by the server when the producer
    /// returns.
    func finish() async {
        await connection.finish()
    }
}
