import Dispatch
import Glibc
import Locking

/// One streamed response owned by the ``StreamWriter``: its outbound buffer of FastCGI records and its state.
///
/// Writers (the producer's task) and the writer thread touch it under its lock; the socket is non-blocking, so
/// nothing done under the lock blocks. Continuations are resumed after the lock is released.
final class StreamConnection: Sendable {
    private struct State {
        /// FastCGI records; the first `sent` bytes are written.
        var pending: [UInt8] = []
        var sent = 0
        /// Watched for `EPOLLOUT` (exactly while bytes are unsent and the client is there).
        var watchingWritable = false
        /// The client went away (or the connection failed): writes fail, the buffer is dropped.
        var gone = false
        /// In the writer's epoll set.
        var registered = true
        /// `finish()` was called: complete once the buffer is drained (or the client is gone).
        var finishing = false
        /// Completion was handed to the finish queue.
        var completed = false
        /// A write waiting for the buffer to drain below the high-water mark.
        var writeWaiter: CheckedContinuation<Bool, Never>?
        /// `finish()` waiting for the request to be completed.
        var finishWaiter: CheckedContinuation<Void, Never>?

        var unsent: Int { pending.count - sent }
    }

    private enum SendResult {
        case drained
        case wouldBlock
        case failed
    }

    private let writer: StreamWriter
    private let token: UInt64
    private let fd: Int32
    private let requestID: UInt16
    private let complete: @Sendable () -> Void
    /// A pthread mutex (`LockedValue`), not `Synchronization.Mutex`, so ThreadSanitizer sees the lock.
    private let state = LockedValue(State())

    init(writer: StreamWriter, token: UInt64, fd: Int32, requestID: UInt16, complete: @escaping @Sendable () -> Void) {
        self.writer = writer
        self.token = token
        self.fd = fd
        self.requestID = requestID
        self.complete = complete
    }

    /// Queues bytes as `FCGI_STDOUT` records and sends what the socket takes now.
    /// - Parameter text: the chunk, sent as UTF-8.
    /// - Returns: `false` when the client has gone away; stop writing then. Returns at once unless more than
    ///   ``StreamWriter/highWater`` bytes are unsent; then once they drain below it.
    func write(_ text: String) async -> Bool {
        var text = text
        let mustWait: Bool? = text.withUTF8 { utf8 in
            state.withLock { state in append(UnsafeRawBufferPointer(utf8), to: &state) }
        }
        return await settle(mustWait)
    }

    /// Queues bytes as `FCGI_STDOUT` records, as ``write(_:)-(String)`` does.
    func write(_ bytes: [UInt8]) async -> Bool {
        let mustWait: Bool? = bytes.withUnsafeBytes { raw in
            state.withLock { state in append(raw, to: &state) }
        }
        return await settle(mustWait)
    }

    /// After an append: `false` when the client is gone, else once the buffer is below the high-water mark.
    private func settle(_ mustWait: Bool?) async -> Bool {
        guard let mustWait else { return false }
        guard mustWait else { return true }
        return await withCheckedContinuation { continuation in
            let now: Bool? = state.withLock { state in
                if state.gone { return false }
                if state.unsent <= StreamWriter.highWater { return true }
                state.writeWaiter = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// Appends and, when nothing was pending, sends at once. `nil` when the client is gone, else whether the writer
    /// must wait for the buffer to drain.
    private func append(_ bytes: UnsafeRawBufferPointer, to state: inout State) -> Bool? {
        guard !state.gone, !state.finishing else { return nil }
        let wasIdle = state.unsent == 0
        if state.sent > 0 {
            state.pending.removeFirst(state.sent)
            state.sent = 0
        }
        FastCGIRecord.appendStdout(bytes, requestID: requestID, to: &state.pending)
        if wasIdle {
            switch send(&state) {
            case .drained: return false
            case .wouldBlock:
                state.watchingWritable = true
                writer.watchWritable(token: token, fd: fd, true)
            case .failed:
                _ = becomeGone(&state)
                return nil
            }
        }
        return state.unsent > StreamWriter.highWater
    }

    /// Ends the stream: sends what is left, then completes the request through libfcgi off the writer thread.
    /// Returns once the request is completed.
    func finish() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let start: Bool = state.withLock { state in
                state.finishing = true
                state.finishWaiter = continuation
                return (state.gone || state.unsent == 0) && beginCompletion(&state)
            }
            if start { runCompletion() }
        }
    }

    /// The writer thread: the socket has room; sends what is pending.
    func sendPending() {
        var waiter: (CheckedContinuation<Bool, Never>, Bool)?
        let start: Bool = state.withLock { state in
            guard !state.gone, state.unsent > 0 else { return false }
            var start = false
            switch send(&state) {
            case .drained:
                state.watchingWritable = false
                writer.watchWritable(token: token, fd: fd, false)
                start = state.finishing && beginCompletion(&state)
            case .wouldBlock: break
            case .failed: start = becomeGone(&state)
            }
            if state.gone || state.unsent <= StreamWriter.highWater, let continuation = state.writeWaiter {
                state.writeWaiter = nil
                waiter = (continuation, !state.gone)
            }
            return start
        }
        if let (continuation, result) = waiter { continuation.resume(returning: result) }
        if start { runCompletion() }
    }

    /// The client is gone (the writer thread saw the connection close, or registering failed).
    func markGone() {
        var waiter: CheckedContinuation<Bool, Never>?
        let start: Bool = state.withLock { state in
            guard !state.gone else { return false }
            let start = becomeGone(&state)
            waiter = state.writeWaiter
            state.writeWaiter = nil
            return start
        }
        waiter?.resume(returning: false)
        if start { runCompletion() }
    }

    /// Marks the client gone and drops the buffer; whether completion should start now.
    private func becomeGone(_ state: inout State) -> Bool {
        state.gone = true
        state.pending = []
        state.sent = 0
        state.watchingWritable = false
        if state.registered {
            state.registered = false
            writer.forget(token: token, fd: fd)
        }
        return state.finishing && beginCompletion(&state)
    }

    /// Takes the connection back from the writer (once): out of the epoll set, blocking again for libfcgi.
    private func beginCompletion(_ state: inout State) -> Bool {
        guard !state.completed else { return false }
        state.completed = true
        if state.registered {
            state.registered = false
            writer.forget(token: token, fd: fd)
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return true
    }

    private func runCompletion() {
        let waiter = state.withLock { state in
            defer { state.finishWaiter = nil }
            return state.finishWaiter
        }
        let complete = self.complete
        writer.finishQueue.async {
            complete()
            waiter?.resume()
        }
    }

    /// Writes pending bytes until none are left or the socket is full.
    private func send(_ state: inout State) -> SendResult {
        while state.sent < state.pending.count {
            let offset = state.sent
            let count = state.pending.withUnsafeBytes { buffer in
                Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
            }
            if count > 0 {
                state.sent += count
                continue
            }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .wouldBlock }
            return .failed
        }
        // Keep a small buffer for the next write; give a large one back.
        state.pending.removeAll(keepingCapacity: state.pending.capacity <= 4096)
        state.sent = 0
        return .drained
    }
}
