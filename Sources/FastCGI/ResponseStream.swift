import CFastCGI
import Dispatch
import Glibc

/// Writes a streamed response body, such as server-sent events, after the request left its accept thread.
///
/// Writes run on dispatch queues, not on the Swift cooperative pool, because libfcgi's writes block while the
/// client is slow. A write that fails means the client has gone away.
///
/// A client that stops reading fills nginx's buffers, then the socket to nginx, and a write blocks until nginx
/// reads again or closes the connection (its `send_timeout`, 60 s by default, after the client stopped). Such a
/// write must hold up no other stream: a write that cannot block (the socket has room for it) runs on the shared
/// writer queue; any other runs on this stream's own queue, which gets a thread of its own while it waits.
/// Callers await each write before the next, so the order of the bytes does not depend on the queue.
public final class ResponseStream: Sendable {
    private let handle: RequestHandle
    private let queue: DispatchQueue
    private let ownQueue: DispatchQueue

    /// The largest write sent on the shared queue. A unix socket polls writable while at most a quarter of its
    /// send buffer (208 KiB by default) is in use, so this much always fits, record overhead included.
    static let sharedWriteLimit = 16 * 1024

    init(handle: RequestHandle, queue: DispatchQueue) {
        self.handle = handle
        self.queue = queue
        self.ownQueue = DispatchQueue(label: "longhaul.fastcgi.stream-writer.slow")
    }

    /// Writes and flushes a chunk.
    /// - Parameter text: the chunk, sent as UTF-8.
    /// - Returns: `false` when the client has gone away; stop writing then.
    public func write(_ text: String) async -> Bool {
        let bytes = Array(text.utf8)
        let handle = self.handle
        return await perform(byteCount: bytes.count) { handle.write(bytes) && handle.flush() }
    }

    /// Ends the response. Called by the server when the producer returns.
    func finish() async {
        let handle = self.handle
        _ = await perform(byteCount: 0) {
            handle.finish()
            return true
        }
    }

    /// Runs a write on the shared queue when it cannot block, else on this stream's own queue.
    private func perform(byteCount: Int, _ work: @escaping @Sendable () -> Bool) async -> Bool {
        let handle = self.handle
        let ownQueue = self.ownQueue
        return await withCheckedContinuation { continuation in
            queue.async {
                if byteCount <= Self.sharedWriteLimit && Self.cannotBlock(handle) {
                    continuation.resume(returning: work())
                } else {
                    ownQueue.async { continuation.resume(returning: work()) }
                }
            }
        }
    }

    /// Whether a write of up to ``sharedWriteLimit`` bytes returns at once: the socket has room, or it is broken
    /// (the write then fails at once).
    private static func cannotBlock(_ handle: RequestHandle) -> Bool {
        let fd = handle.pointer.pointee.ipcFd
        guard fd >= 0 else { return true }
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let ready = poll(&entry, 1, 0)
        return ready > 0 && entry.revents != 0
    }
}
