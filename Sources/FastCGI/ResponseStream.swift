import Dispatch

/// Writes a streamed response body, such as server-sent events, after the request left its accept thread.
///
/// Writes run on a serial dispatch queue, not on the Swift cooperative pool, because libfcgi's writes block while
/// the client is slow. A write that fails means the client has gone away.
public final class ResponseStream: Sendable {
    private let handle: RequestHandle
    private let queue: DispatchQueue

    init(handle: RequestHandle, queue: DispatchQueue) {
        self.handle = handle
        self.queue = queue
    }

    /// Writes and flushes a chunk.
    /// - Parameter text: the chunk, sent as UTF-8.
    /// - Returns: `false` when the client has gone away; stop writing then.
    public func write(_ text: String) async -> Bool {
        let bytes = Array(text.utf8)
        let handle = self.handle
        return await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: handle.write(bytes) && handle.flush())
            }
        }
    }

    /// Ends the response. Called by the server when the producer returns.
    func finish() async {
        let handle = self.handle
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                handle.finish()
                continuation.resume()
            }
        }
    }
}
