import CFastCGI
import Dispatch
import Foundation
import Glibc
import Locking
import Logging
import Synchronization

/// Writes every streamed response body after its headers, without blocking any thread: one thread waits in
/// `epoll_wait` on the connections that have bytes pending.
///
/// Each stream (a ``StreamConnection``) has an outbound buffer of FastCGI records, and its socket is non-blocking
/// while the writer owns it. A write frames the bytes into the buffer and, when nothing was pending, sends them at
/// once from the caller's thread (a non-blocking `send`, so it may run on the cooperative pool). Whatever the socket
/// does not take stays buffered, and the connection is watched for `EPOLLOUT` until the buffer drains: the writer's
/// thread sends the rest as the client reads. A writer whose buffer is above ``highWater`` waits until it drains
/// below it. `EPOLLRDHUP`, `EPOLLHUP` and `EPOLLERR` (nginx closed the connection: the client went away) are watched
/// always, so a stream learns of a gone client even while it writes nothing.
///
/// At the end the buffer is drained, the socket made blocking again and the request completed through libfcgi
/// (`FCGX_Finish_r`, which writes the end records and closes the connection) on ``finishQueue``: it may block.
final class StreamWriter: Sendable {
    /// Bytes a stream may have unsent before its writer waits.
    static let highWater = 64 * 1024
    /// Most ready connections taken from one `epoll_wait`.
    private static let maxEvents = 256

    private let epollFD: Int32
    /// The connections being written, by the token in their epoll registration. A pthread mutex (`LockedValue`), not
    /// `Synchronization.Mutex`, whose futex ThreadSanitizer cannot see on Linux (see `Locking`).
    private let connections = LockedValue<[UInt64: StreamConnection]>([:])
    private let nextToken = Atomic<UInt64>(0)
    /// Where requests are completed (`FCGX_Finish_r` may block briefly: it writes, then closes and drains).
    let finishQueue = DispatchQueue(label: "longhaul.fastcgi.finish", attributes: .concurrent)
    private let logger: Logger

    /// Starts the writer thread. It runs for the life of the process.
    /// - Parameter logger: for failures of the epoll set.
    init(logger: Logger) {
        self.logger = logger
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { fatalError("epoll_create1 failed: \(String(cString: strerror(errno)))") }
        let thread = Thread { [self] in loop() }
        thread.name = "fastcgi-writer"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Takes over a connection whose response headers are written and flushed (nothing buffered in libfcgi).
    /// - Parameters:
    ///   - fd: the connection to nginx; made non-blocking until the stream ends.
    ///   - requestID: the request's FastCGI id, for the records.
    ///   - complete: ends the request once the body is sent (or the client is gone); runs on ``finishQueue``,
    ///     with `fd` blocking again.
    /// - Returns: the stream's connection.
    func register(fd: Int32, requestID: UInt16, complete: @escaping @Sendable () -> Void) -> StreamConnection {
        let token = nextToken.add(1, ordering: .relaxed).newValue
        let connection = StreamConnection(writer: self, token: token, fd: fd, requestID: requestID, complete: complete)
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            connection.markGone()
            return connection
        }
        connections.withLock { $0[token] = connection }
        var event = epoll_event()
        event.events = EPOLLRDHUP.rawValue
        event.data.u64 = token
        if epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) != 0 {
            logger.warning(
                "epoll_ctl ADD failed for a stream", metadata: ["error.message": "\(String(cString: strerror(errno)))"])
            connection.markGone()
        }
        return connection
    }

    /// Watches a registered connection for room to write, or stops.
    func watchWritable(token: UInt64, fd: Int32, _ writable: Bool) {
        var event = epoll_event()
        event.events = EPOLLRDHUP.rawValue | (writable ? EPOLLOUT.rawValue : 0)
        event.data.u64 = token
        _ = epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event)
    }

    /// Forgets a connection (before it is completed, or once its client is gone).
    func forget(token: UInt64, fd: Int32) {
        // ENOENT is fine: a connection that failed to register.
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        _ = connections.withLock { $0.removeValue(forKey: token) }
    }

    /// The number of connections being written, for tests.
    var connectionCount: Int { connections.withLock { $0.count } }

    private func loop() {
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Self.maxEvents)
        defer { events.deallocate() }
        while true {
            let count = epoll_wait(epollFD, events, Int32(Self.maxEvents), -1)
            if count < 0 {
                if errno == EINTR { continue }
                logger.error("epoll_wait failed", metadata: ["error.message": "\(String(cString: strerror(errno)))"])
                usleep(10_000)
                continue
            }
            for index in 0..<Int(count) {
                let event = events[index]
                let token = event.data.u64
                guard let connection = connections.withLock({ $0[token] }) else { continue }
                if event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue | EPOLLRDHUP.rawValue) != 0 {
                    connection.markGone()
                } else if event.events & EPOLLOUT.rawValue != 0 {
                    connection.sendPending()
                }
            }
        }
    }
}
