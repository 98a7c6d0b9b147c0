import CFastCGI
import Dispatch
import Foundation
public import Logging
import StandardExtensions
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
    private let streamWriter: StreamWriter

    /// Initialises libfcgi and opens (or adopts) the listen socket. Call once per process.
    /// - Parameters:
    ///   - configuration: server settings.
    ///   - logger: for start-up, errors and shutdown.
    /// - Throws: ``FastCGIError`` when the socket cannot be opened or adopted.
    public init(configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.streamWriter = StreamWriter(logger: logger)
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
        start(handler: handler, quickResponder: nil)
    }

    /// Starts the accept threads, with a responder that answers some requests before the general path.
    /// - Parameters:
    ///   - handler: answers each request that `quickResponder` declines, on an accept thread.
    ///   - quickResponder: answers the requests it recognises in place (``QuickResponder``).
    package func start(handler: @escaping Handler, quickResponder: (any QuickResponder)?) {
        for index in 0..<configuration.threadCount {
            threadsDone.enter()
            let thread = Thread { [self] in
                acceptLoop(handler: handler, quickResponder: quickResponder)
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

    private func acceptLoop(handler: Handler, quickResponder: (any QuickResponder)?) {
        var handle = RequestHandle(listenFD: listenFD)
        // The quick responder's answers are written here: one buffer per thread for its life (a pending fragment
        // with a long query still fits; a larger answer is declined into the general path).
        let scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: quickResponder == nil ? 0 : 16_384)
        defer { scratch.deallocate() }
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
            let scan = handle.scanParams()
            if let quickResponder, answerQuickly(quickResponder, scan: scan, scratch: scratch, on: handle) {
                handle.finishAnswered(bodyRead: true)  // the quick path answers only requests without a body
                busy.subtract(1, ordering: .relaxed)
                continue
            }
            let request = read(handle, scan: scan)
            let response = handler(request)
            if case .stream(let producer) = response.body {
                startStream(on: handle, response: response, producer: producer)
                handle = RequestHandle(listenFD: listenFD)
            } else {
                write(response, method: request.method, to: handle)
                handle.finishAnswered(bodyRead: !request.bodyTooLarge)
            }
            busy.subtract(1, ordering: .relaxed)
        }
    }

    /// Lets the quick responder answer into this thread's scratch buffer, then writes the answer in one call;
    /// `false` when it declined (nothing was written).
    private func answerQuickly(
        _ responder: any QuickResponder, scan: ParameterScan, scratch: UnsafeMutableBufferPointer<UInt8>,
        on handle: RequestHandle
    ) -> Bool {
        var answer = QuickAnswer(buffer: scratch)
        let request = handle.parametersInPlace(scan)
        guard responder.respond(to: request, into: &answer), answer.written != nil else { return false }
        _ = handle.write(answer.bytes)
        return true
    }

    private func read(_ handle: RequestHandle, scan: ParameterScan) -> FastCGIRequest {
        let parameters = handle.takeParams(scan)
        let contentLength = parameters.withValueBytes(.contentLength) { Self.decimal($0) } ?? 0
        guard let body = handle.readBody(contentLength: contentLength, limit: configuration.maxBodyBytes) else {
            return FastCGIRequest(parameters: parameters, body: [], bodyTooLarge: true)
        }
        return FastCGIRequest(parameters: parameters, body: body)
    }

    /// Writes a whole response: the header block from one byte buffer, then the body straight from its storage
    /// (each copied once, into libfcgi's output buffer).
    private func write(_ response: FastCGIResponse, method: String, to handle: RequestHandle) {
        switch response.body {
        case .bytes(let body): body.withUnsafeBytes { write(response, body: $0, method: method, to: handle) }
        case .block(let body): body.withUnsafeBytes { write(response, body: $0, method: method, to: handle) }
        case .stream: return
        }
    }

    private func write(
        _ response: FastCGIResponse, body: UnsafeRawBufferPointer, method: String, to handle: RequestHandle
    ) {
        if let encoded = response.encodedHeaders, let line = statusLine(response.status),
            let written = Self.writeHead(line, encoded, contentLength: body.count, to: handle)
        {
            // The common case (a known status, headers encoded ahead): the head is put together on the stack and
            // goes into libfcgi's buffer in one call, the body in a second.
            guard written, method != "HEAD" else { return }
            _ = handle.write(body)
            return
        }
        var head = Self.headerBlock(response)
        head.append(contentsOf: "Content-Length: ".utf8)
        ResponseHeadEnd.append(contentLength: body.count, to: &head)
        guard handle.write(head), method != "HEAD" else { return }
        _ = handle.write(body)
    }

    /// A `CONTENT_LENGTH` value read from its bytes: digits only (at most 18, so that it cannot overflow), else `nil`,
    /// as `Int(String)` reads it for any length a body can have.
    static func decimal(_ bytes: UnsafeBufferPointer<UInt8>?) -> Int? {
        guard let bytes, !bytes.isEmpty else { return nil }  // absent, or empty (nginx sends it empty for a GET)
        guard bytes.count <= 18 else { return Int(String(decoding: bytes, as: UTF8.self)) }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
                return Int(String(decoding: bytes, as: UTF8.self))
            }
            value = value &* 10 &+ Int(byte &- UInt8(ascii: "0"))
        }
        return value
    }

    /// Writes the whole head (the status line, the encoded header fields, `Content-Length: N` and the blank line)
    /// from stack space, in one write; `nil` when it does not fit there (then the caller builds it in an array).
    private static func writeHead(
        _ line: StaticString, _ headers: HeaderBlock, contentLength: Int, to handle: RequestHandle
    ) -> Bool? {
        let prefix: StaticString = "Content-Length: "
        let room = 512
        let fixed = line.utf8CodeUnitCount + headers.bytes.count + prefix.utf8CodeUnitCount
        guard fixed + ResponseHeadEnd.maxCount <= room else { return nil }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: room) { scratch in
            guard let base = scratch.baseAddress else { return false }
            var end = 0
            @inline(__always) func put(_ source: UnsafeRawBufferPointer) {
                guard let start = source.baseAddress else { return }
                UnsafeMutableRawPointer(base + end).copyMemory(from: start, byteCount: source.count)
                end += source.count
            }
            put(UnsafeRawBufferPointer(start: line.utf8Start, count: line.utf8CodeUnitCount))
            headers.bytes.withUnsafeBytes { put($0) }
            put(UnsafeRawBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
            end += ResponseHeadEnd.write(contentLength: contentLength, to: base + end)
            return handle.write(UnsafeRawBufferPointer(start: base, count: end))
        }
    }

    /// The status line and the response's header fields, each line ending in CRLF.
    static func headerBlock(_ response: FastCGIResponse) -> [UInt8] {
        var head: [UInt8] = []
        head.reserveCapacity(256)
        appendStatusLine(response.status, to: &head)
        if let encoded = response.encodedHeaders {
            head.append(contentsOf: encoded.bytes)
        } else {
            HeaderBlock.append(response.headers, to: &head)
        }
        return head
    }

    /// `Status: 200 OK` and CRLF.
    static func appendStatusLine(_ status: Int, to head: inout [UInt8]) {
        if let line = statusLine(status) {
            line.withUTF8Buffer { head.append(contentsOf: $0) }
        } else {
            head.append(contentsOf: "Status: \(status) \(reasonPhrase(status))\r\n".utf8)
        }
    }

    private func startStream(
        on handle: RequestHandle, response: FastCGIResponse,
        producer: @escaping @Sendable (ResponseStream) async -> Void
    ) {
        var head = Self.headerBlock(response)
        head.append(contentsOf: "\r\n".utf8)
        guard handle.write(head), handle.flush() else {
            handle.finish()
            return
        }
        // The header flush left libfcgi's buffer empty: from here the stream writer owns the connection until
        // the producer returns, then hands it back to libfcgi to write the end records and close it.
        let connection = streamWriter.register(
            fd: handle.pointer.pointee.ipcFd, requestID: UInt16(truncatingIfNeeded: handle.pointer.pointee.requestId)
        ) { handle.finish() }
        let stream = ResponseStream(connection: connection)
        streams.add(1, ordering: .relaxed)
        // Unstructured: the producer outlives this accept cycle by design (the thread goes back to accepting);
        // it ends when the producer returns, and SIGTERM's drain ends every task's producer.
        Task {
            await producer(stream)
            await stream.finish()
            self.streams.subtract(1, ordering: .relaxed)
        }
    }
}
