import CFastCGI
import Dispatch
import Foundation
public import Logging
import Synchronization

/// A long-lived FastCGI responder on libfcgi: a fixed set of dedicated threads accept requests and answer them.
///
/// Handlers run on those threads (never on the Swift cooperative pool), so they may block briefly, for example on
/// a store round trip. A handler that streams hands its request off to a ``ResponseStream`` so that the thread
/// goes back to accepting at once.
public final class FastCGIServer: Sendable {
    /// Where requests come from.
    public enum Listener: Sendable, Equatable {
        /// The listen socket on file descriptor 0, as spawn-fcgi and systemd socket units pass it.
        case inherited
        /// A unix socket this process creates at `path` with permission bits `mode` (for example `0o660`).
        case unixSocket(path: String, mode: UInt32)
    }

    /// Server settings.
    public struct Configuration: Sendable {
        /// Where requests come from.
        public var listener: Listener = .inherited
        /// How many accept threads (default 16). Keep it well above nginx's upstream keepalive × workers.
        public var threadCount: Int = 16
        /// The largest request body read; larger ones are flagged ``FastCGIRequest/bodyTooLarge`` (default 1 MiB).
        public var maxBodyBytes: Int = 1 << 20
        /// The listen backlog for a socket this process creates (default 1024).
        public var backlog: Int = 1024

        public init() {}
    }

    /// Counters for the status page.
    public struct Statistics: Sendable, Equatable {
        /// Requests accepted since start.
        public var acceptedRequests: Int
        /// Accept threads now handling a request.
        public var busyThreads: Int
        /// Accept threads waiting for a request.
        public var idleThreads: Int
        /// Streams handed off and still open.
        public var activeStreams: Int
    }

    /// A request handler. It runs on an accept thread.
    public typealias Handler = @Sendable (FastCGIRequest) -> FastCGIResponse

    private let configuration: Configuration
    private let logger: Logger
    private let listenFD: Int32
    private let stopping = Atomic<Bool>(false)
    private let accepted = Atomic<Int>(0)
    private let busy = Atomic<Int>(0)
    private let streams = Atomic<Int>(0)
    private let threadsDone = DispatchGroup()
    private let writerQueues: [DispatchQueue]
    private let nextWriter = Atomic<Int>(0)

    /// Initialises libfcgi and opens (or adopts) the listen socket. Call once per process.
    /// - Parameters:
    ///   - configuration: server settings.
    ///   - logger: for start-up, errors and shutdown.
    /// - Throws: ``FastCGIError`` when the socket cannot be opened or adopted.
    public init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.writerQueues = (0..<4).map { DispatchQueue(label: "longhaul.fastcgi.stream-writer.\($0)") }
        guard FCGX_Init() == 0 else { throw FastCGIError.initFailed("FCGX_Init returned an error") }
        switch configuration.listener {
        case .inherited:
            var accepting: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting == 1 else {
                throw FastCGIError.notASocket(String(cString: strerror(errno)))
            }
            listenFD = 0
        case .unixSocket(let path, let mode):
            let fd = FCGX_OpenSocket(path, Int32(configuration.backlog))
            guard fd >= 0 else { throw FastCGIError.openSocketFailed("\(path): \(String(cString: strerror(errno)))") }
            guard chmod(path, mode_t(mode)) == 0 else {
                close(fd)
                throw FastCGIError.chmodFailed("\(path): \(String(cString: strerror(errno)))")
            }
            listenFD = fd
        }
    }

    /// Starts the accept threads.
    /// - Parameter handler: answers each request, on an accept thread.
    public func start(handler: @escaping Handler) {
        for index in 0..<configuration.threadCount {
            threadsDone.enter()
            let thread = Thread { [self] in
                acceptLoop(handler: handler)
                threadsDone.leave()
            }
            thread.name = "fastcgi-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        logger.debug("FastCGI threads started", metadata: ["fastcgi.threads": "\(configuration.threadCount)"])
    }

    /// Stops accepting new requests. Requests being answered finish; open streams continue until they end.
    public func stopAccepting() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        // On Linux, shutdown(2) on a listening socket wakes every thread blocked in accept(2).
        shutdown(listenFD, Int32(SHUT_RDWR))
        if case .unixSocket(let path, _) = configuration.listener { unlink(path) }
    }

    /// Waits until every accept thread has returned (after ``stopAccepting()``).
    public func waitForThreads() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            threadsDone.notify(queue: .global()) { continuation.resume() }
        }
    }

    /// Current counters.
    public var statistics: Statistics {
        let busyNow = busy.load(ordering: .relaxed)
        return Statistics(
            acceptedRequests: accepted.load(ordering: .relaxed),
            busyThreads: busyNow,
            idleThreads: max(0, configuration.threadCount - busyNow),
            activeStreams: streams.load(ordering: .relaxed))
    }

    private func acceptLoop(handler: Handler) {
        var handle = RequestHandle(listenFD: listenFD)
        while !stopping.load(ordering: .relaxed) {
            guard handle.accept() else {
                if stopping.load(ordering: .relaxed) { break }
                // A failed accept on a live socket (EMFILE, ECONNABORTED): back off briefly instead of spinning.
                logger.warning(
                    "FastCGI accept failed", metadata: ["error.message": "\(String(cString: strerror(errno)))"])
                usleep(10_000)
                continue
            }
            accepted.add(1, ordering: .relaxed)
            busy.add(1, ordering: .relaxed)
            let request = read(handle)
            let response = handler(request)
            if case .stream(let producer) = response.body {
                startStream(on: handle, response: response, producer: producer)
                handle = RequestHandle(listenFD: listenFD)
            } else {
                write(response, method: request.method, to: handle)
                handle.finish()
            }
            busy.subtract(1, ordering: .relaxed)
        }
    }

    private func read(_ handle: RequestHandle) -> FastCGIRequest {
        let params = handle.readParams()
        let contentLength = params["CONTENT_LENGTH"].flatMap { Int($0) } ?? 0
        guard let body = handle.readBody(contentLength: contentLength, limit: configuration.maxBodyBytes) else {
            return FastCGIRequest(params: params, body: [], bodyTooLarge: true)
        }
        return FastCGIRequest(params: params, body: body)
    }

    private func write(_ response: FastCGIResponse, method: String, to handle: RequestHandle) {
        guard case .bytes(let body) = response.body else { return }
        var head = headerBlock(response)
        head += "Content-Length: \(body.count)\r\n\r\n"
        var bytes = Array(head.utf8)
        if method != "HEAD" { bytes += body }
        _ = handle.write(bytes)
    }

    private func headerBlock(_ response: FastCGIResponse) -> String {
        var head = "Status: \(response.status) \(reasonPhrase(response.status))\r\n"
        for field in response.headers {
            head += field.name
            head += ": "
            // A header value never carries a line break: that would let a value inject headers.
            head +=
                field.value.contains(where: { $0 == "\r" || $0 == "\n" })
                ? field.value.filter { $0 != "\r" && $0 != "\n" } : field.value
            head += "\r\n"
        }
        return head
    }

    private func startStream(
        on handle: RequestHandle, response: FastCGIResponse,
        producer: @escaping @Sendable (ResponseStream) async -> Void
    ) {
        let head = headerBlock(response) + "\r\n"
        guard handle.write(Array(head.utf8)), handle.flush() else {
            handle.finish()
            return
        }
        let queue = writerQueues[nextWriter.add(1, ordering: .relaxed).newValue % writerQueues.count]
        let stream = ResponseStream(handle: handle, queue: queue)
        streams.add(1, ordering: .relaxed)
        // The stream outlives this accept cycle by design; it ends when the producer returns.
        Task {
            await producer(stream)
            await stream.finish()
            self.streams.subtract(1, ordering: .relaxed)
        }
    }
}
