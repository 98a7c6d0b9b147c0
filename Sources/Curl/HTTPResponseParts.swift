import Locking
import StandardExtensions

/// A response's parts as the consumer reads them: ``HTTPResponsePart/head(_:)`` once, then the body, then the end
/// (or a ``CurlError``).
///
/// One consumer reads them (copies of an iterator read the same parts). Ending the iteration early, by dropping the
/// sequence and its iterators or by cancelling the reading task, aborts the transfer. A concrete type rather than
/// an `AsyncThrowingStream`, whose unspecialized generic code looks type metadata up on every part.
public struct HTTPResponseParts: AsyncSequence, Sendable {
    public typealias Element = HTTPResponsePart

    /// Cancels the channel when the last copy of the sequence and of its iterators is gone.
    fileprivate final class Reader: Sendable {
        let channel: ResponsePartChannel
        init(channel: ResponsePartChannel) { self.channel = channel }
        deinit { channel.cancel() }
    }

    private let reader: Reader

    init(channel: ResponsePartChannel) {
        reader = Reader(channel: channel)
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(reader: reader)
    }

    /// Reads the parts.
    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate let reader: Reader

        /// The next part; `nil` at the end of the response, or once the reading task is cancelled.
        public mutating func next() async throws -> HTTPResponsePart? {
            try await reader.channel.next()
        }
    }
}

/// Where the curl thread puts a transfer's parts and the consumer takes them, under one lock.
final class ResponsePartChannel: Sendable {
    private struct State {
        var parts = ConsumingQueue<HTTPResponsePart>()
        /// The transfer has ended.
        var ended = false
        /// How it ended: `nil` for success, else its error (handed out once, then the end).
        var failure: (any Error)?
        /// The consumer went away or was cancelled: parts are dropped, reads end.
        var cancelled = false
        var waiter: UnsafeContinuation<HTTPResponsePart?, any Error>?
        var onCancel: (@Sendable () -> Void)?
    }

    private let state = LockedValue(State())

    /// Sets what cancelling does (abort the transfer); called once, before the transfer starts.
    func setOnCancel(_ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.onCancel = action }
    }

    /// Hands a part to the consumer (the curl thread); dropped once the consumer is gone.
    func yield(_ part: HTTPResponsePart) {
        let waiter: UnsafeContinuation<HTTPResponsePart?, any Error>? = state.withLock { state in
            guard !state.ended, !state.cancelled else { return nil }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.parts.append(part)
            return nil
        }
        waiter?.resume(returning: part)
    }

    /// Ends the parts, with an error or without.
    func finish(throwing error: (any Error)? = nil) {
        let waiter: UnsafeContinuation<HTTPResponsePart?, any Error>? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            state.failure = error
            guard let waiter = state.waiter else { return nil }
            state.waiter = nil
            state.failure = nil
            return waiter
        }
        guard let waiter else { return }
        if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
    }

    /// The consumer is gone or cancelled: ends its reads and runs the cancel action, once, unless already ended.
    func cancel() {
        let (waiter, action): (UnsafeContinuation<HTTPResponsePart?, any Error>?, (@Sendable () -> Void)?) =
            state.withLock { state in
                guard !state.cancelled else { return (nil, nil) }
                state.cancelled = true
                state.parts.removeAll()
                defer {
                    state.waiter = nil
                    state.onCancel = nil
                }
                return (state.waiter, state.ended ? nil : state.onCancel)
            }
        waiter?.resume(returning: nil)
        action?()
    }

    func next() async throws -> HTTPResponsePart? {
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation {
                (continuation: UnsafeContinuation<HTTPResponsePart?, any Error>) in
                let now: Result<HTTPResponsePart?, any Error>? = state.withLock { state in
                    if let part = state.parts.takeFirst() { return .success(part) }
                    if state.cancelled { return .success(nil) }
                    if state.ended {
                        defer { state.failure = nil }
                        return state.failure.map { .failure($0) } ?? .success(nil)
                    }
                    state.waiter = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            cancel()
        }
    }
}
