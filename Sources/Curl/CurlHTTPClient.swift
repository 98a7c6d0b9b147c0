internal import CCurl
import Foundation
import Locking
public import Logging
import StandardExtensions

/// An HTTP client over libcurl's multi interface, driven by one dedicated thread.
///
/// Every transfer of the process shares that thread and its connection pool, so thousands of concurrent
/// requests need no more threads. The thread waits in `epoll_wait` on the sockets libcurl asks it to watch
/// (`CURLMOPT_SOCKETFUNCTION`), on libcurl's timer (`CURLMOPT_TIMERFUNCTION`) and on an eventfd that other threads
/// write to hand it new or cancelled transfers; it reports ready sockets with `curl_multi_socket_action`, so a wake
/// costs in proportion to the transfers that are ready, not to all of them. Over TLS, HTTP/2 is offered and
/// transfers to one server share its connections (`CURLPIPE_MULTIPLEX`); plain `http://` stays HTTP/1.1.
/// Responses arrive as ``HTTPResponseParts``; ending the consumer's iteration (or cancelling its task) aborts
/// the transfer on the curl thread.
public final class CurlHTTPClient: Sendable {
    /// Settings shared by every transfer.
    public struct Configuration: Sendable {
        /// A CA bundle to verify servers against; `nil` uses the system's.
        public var caInfoPath: String?
        /// Most connections kept open for reuse.
        public var maxCachedConnections: Int = 64
        /// Most connections open to one host at once; 0 for no limit. Applies to every transfer, HTTP/1.1 included
        /// (where each call in flight needs its own connection): leave it at 0 unless the calls may queue.
        public var maxConnectionsPerHost: Int = 0
        /// Most connections open to one host once its transfers are seen to multiplex (HTTP/2); 0 for no limit.
        ///
        /// libcurl opens a new connection for a transfer that finds the host's other connections full or still in
        /// their TLS handshake (a connection being set up counts as holding one stream), so a burst of calls to an
        /// HTTP/2 server opens hundreds. This limit keeps the transfers that do not fit pending inside libcurl until
        /// a stream frees. It is applied from the first response that arrives over HTTP/2 and lifted for good at the
        /// first that arrives over HTTP/1.x (over `http://`, or from a server that does not offer HTTP/2), where it
        /// would throttle: each HTTP/1.1 call needs its own connection. 100 connections of 128 streams (nginx's
        /// default limit) carry 12,800 calls.
        public var maxMultiplexedConnectionsPerHost: Int = 100
        /// Most concurrent streams libcurl puts on one HTTP/2 connection (libcurl's default is 100). 128 is nginx's
        /// default limit; a server that advertises fewer is held to its own limit.
        public var maxConcurrentStreams: Int = 128

        public init() {}
    }

    private enum Command {
        case add(Transfer)
        case cancel(UInt64)
    }

    private struct State {
        var commands: [Command] = []
        var nextID: UInt64 = 1
        var running = true
    }

    /// The multi handle; touched only on the curl thread, which also cleans it up when it stops.
    private struct MultiHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let configuration: Configuration
    private let logger: Logger
    private let multi: MultiHandle
    private let state = LockedValue(State())
    /// An eventfd: any thread writes to it to wake the curl thread; closed in `deinit`, after the thread has ended.
    private let wakeFD: Int32

    /// How often silent transfers are looked for, and so the precision of idle timeouts.
    private static let idleScanInterval: Duration = .milliseconds(250)
    /// Most ready sockets taken from one `epoll_wait`.
    private static let maxEvents = 256

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()

    /// Starts the client and its thread.
    /// - Parameters:
    ///   - configuration: shared settings.
    ///   - logger: where transfers are logged (at debug).
    public init(configuration: Configuration = .init(), logger: Logger) {
        _ = Self.globalInit
        self.configuration = configuration
        self.logger = logger
        guard let handle = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        multi = MultiHandle(pointer: handle)
        ccurl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, configuration.maxCachedConnections)
        ccurl_multi_setopt_long(handle, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        ccurl_multi_setopt_long(handle, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX)
        ccurl_multi_setopt_long(handle, CURLMOPT_MAX_CONCURRENT_STREAMS, max(1, configuration.maxConcurrentStreams))
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else { fatalError("eventfd failed: \(String(cString: strerror(errno)))") }
        let worker = Thread { [self] in self.loop() }
        worker.name = "longhaul-curl"
        worker.start()
    }

    deinit {
        close(wakeFD)
    }

    /// Sends a request and streams its response.
    ///
    /// The stream yields ``HTTPResponsePart/head(_:)`` once, then the body; it finishes at the end of the body,
    /// or throws ``CurlError``. An HTTP error status is not an error here: read it from the head.
    /// - Parameter request: the request.
    /// - Returns: the response parts.
    public func stream(_ request: HTTPRequest) -> HTTPResponseParts {
        let channel = ResponsePartChannel()
        let parts = HTTPResponseParts(channel: channel)
        let id: UInt64? = state.withLock { state in
            guard state.running else { return nil }
            defer { state.nextID += 1 }
            return state.nextID
        }
        guard let id else {
            channel.finish(throwing: CurlError.shutDown)
            return parts
        }
        let transfer = Transfer(id: id, request: request, channel: channel)
        channel.setOnCancel { [weak self] in self?.send(.cancel(id)) }
        send(.add(transfer))
        return parts
    }

    /// Aborts every transfer and stops the thread. Later requests fail with ``CurlError/clientShutDown``.
    public func shutdown() {
        state.withLock { $0.running = false }
        wake()
    }

    private func send(_ command: Command) {
        let accepted = state.withLock { state in
            guard state.running else { return false }
            state.commands.append(command)
            return true
        }
        if accepted {
            wake()
        } else if case .add(let transfer) = command {
            transfer.channel.finish(throwing: CurlError.shutDown)
        }
    }

    private func wake() {
        var one: UInt64 = 1
        // EAGAIN means the counter is already non-zero: the thread will wake anyway.
        _ = write(wakeFD, &one, MemoryLayout<UInt64>.size)
    }

    // MARK: - The curl thread

    private func loop() {
        let reactor = Reactor(multi: multi.pointer)
        reactor.watchWakeups(wakeFD)
        let context = Unmanaged.passUnretained(reactor).toOpaque()
        ccurl_multi_setopt_socket_callback(multi.pointer, reactorSocketCallback)
        ccurl_multi_setopt_pointer(multi.pointer, CURLMOPT_SOCKETDATA, context)
        ccurl_multi_setopt_timer_callback(multi.pointer, reactorTimerCallback)
        ccurl_multi_setopt_pointer(multi.pointer, CURLMOPT_TIMERDATA, context)

        var byID: [UInt64: Transfer] = [:]
        var byHandle: [UnsafeMutableRawPointer: Transfer] = [:]
        var stillRunning: Int32 = 0
        var lastIdleScan = ContinuousClock.now
        let versions = VersionsSeen()
        let bodies = ReceivedBodies()
        var hostLimit = HostConnectionLimit(configuration: configuration)
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Self.maxEvents)
        defer { events.deallocate() }

        func remove(_ transfer: Transfer, error: CurlError?) {
            curl_multi_remove_handle(multi.pointer, transfer.easy)
            byID[transfer.id] = nil
            byHandle[transfer.easy] = nil
            transfer.complete(error: error, logger: logger)
        }

        while true {
            let (commands, running) = state.withLock { state in
                defer { state.commands.removeAll(keepingCapacity: true) }
                return (state.commands, state.running)
            }
            for command in commands {
                switch command {
                case .add(let transfer):
                    if let error = transfer.prepare(configuration: configuration, versions: versions, bodies: bodies) {
                        transfer.complete(error: error, logger: logger)
                        continue
                    }
                    // libcurl answers through the timer callback (a 0 ms timeout): the transfer starts below.
                    let code = curl_multi_add_handle(multi.pointer, transfer.easy)
                    guard code == CURLM_OK else {
                        transfer.complete(error: .multi(code, operation: "curl_multi_add_handle"), logger: logger)
                        continue
                    }
                    byID[transfer.id] = transfer
                    byHandle[transfer.easy] = transfer
                    transfer.markStarted()
                    logger.debug(
                        "HTTP transfer started",
                        metadata: [
                            "http.transfer_id": "\(transfer.id)", "http.method": "\(transfer.method)",
                            "http.url": "\(transfer.url)",
                        ])
                case .cancel(let id):
                    // The consumer has gone: nobody reads the error, only the handle must go.
                    if let transfer = byID[id] {
                        logger.debug("HTTP transfer cancelled", metadata: ["http.transfer_id": "\(id)"])
                        remove(transfer, error: nil)
                    }
                }
            }
            if !running {
                for transfer in Array(byID.values) {
                    remove(transfer, error: .shutDown)
                }
                // Closes the cached connections, whose sockets are still reported to the reactor.
                curl_multi_cleanup(multi.pointer)
                withExtendedLifetime(reactor) {}
                return
            }

            // Sleep until a socket is ready, libcurl's timer is due, a command arrives or (with transfers running)
            // the next idle scan.
            let now = ContinuousClock.now
            var wait = reactor.timeUntilTimer(now: now)
            if !byID.isEmpty {
                let untilScan = max(.zero, Self.idleScanInterval - (now - lastIdleScan))
                wait = min(wait ?? untilScan, untilScan)
            }
            let timeout = wait.map { Int32(clamping: $0.wholeMillisecondsRoundedUp) } ?? -1
            let count = epoll_wait(reactor.epollFD, events, Int32(Self.maxEvents), timeout)
            if count < 0 && errno != EINTR {
                logger.error("epoll_wait failed", metadata: ["error.message": "\(String(cString: strerror(errno)))"])
            }
            for index in 0..<max(0, Int(count)) {
                let event = events[index]
                let fd = event.data.fd
                if fd == wakeFD {
                    var counter: UInt64 = 0
                    _ = read(wakeFD, &counter, MemoryLayout<UInt64>.size)
                    continue
                }
                curl_multi_socket_action(multi.pointer, fd, Reactor.curlFlags(event.events), &stillRunning)
            }
            if reactor.takeExpiredTimer(now: .now) {
                ccurl_multi_socket_timeout(multi.pointer, &stillRunning)
            }
            bodies.flush()

            if let limit = hostLimit.update(versions) {
                ccurl_multi_setopt_long(multi.pointer, CURLMOPT_MAX_HOST_CONNECTIONS, limit)
                logger.debug("HTTP connections per host limited", metadata: ["http.max_host_connections": "\(limit)"])
            }

            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi.pointer, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                    let transfer = byHandle[easy]
                else { continue }
                let result = message.pointee.data.result
                remove(transfer, error: result == CURLE_OK ? nil : transfer.error(for: result))
            }
            let scanTime = ContinuousClock.now
            if scanTime - lastIdleScan >= Self.idleScanInterval {
                lastIdleScan = scanTime
                for transfer in byID.values where transfer.isIdle(at: scanTime) {
                    remove(transfer, error: .idle(limit: transfer.idleTimeout ?? .zero))
                }
            }
        }
    }
}

/// The transfers that received body bytes during this wake-up of the loop (the curl thread only).
///
/// libcurl calls the write callback once per piece it decodes (one per HTTP/1.1 chunk, often one per event of a
/// stream); each piece handed on alone would cost the consumer a wake-up. A transfer keeps what one wake-up gave
/// and hands it on as one part when the loop has handled every ready socket (or when the transfer ends first).
private final class ReceivedBodies {
    private var transfers: [Transfer] = []

    func add(_ transfer: Transfer) {
        transfers.append(transfer)
    }

    func flush() {
        guard !transfers.isEmpty else { return }
        for transfer in transfers { transfer.flushBody() }
        transfers.removeAll(keepingCapacity: true)
    }
}

/// Which HTTP versions responses have arrived over; set by transfers, read by the loop (the curl thread only).
private final class VersionsSeen {
    var multiplexed = false
    var http1 = false
}

/// `CURLMOPT_MAX_HOST_CONNECTIONS` as it should be, from the versions seen (see
/// ``CurlHTTPClient/Configuration/maxMultiplexedConnectionsPerHost``).
private struct HostConnectionLimit {
    private let base: Int
    private let multiplexed: Int
    private var applied: Bool = false
    private var lifted: Bool = false

    init(configuration: CurlHTTPClient.Configuration) {
        base = max(0, configuration.maxConnectionsPerHost)
        multiplexed = max(0, configuration.maxMultiplexedConnectionsPerHost)
    }

    /// The new limit to set, or `nil` when it stays.
    mutating func update(_ versions: VersionsSeen) -> Int? {
        if lifted { return nil }
        if versions.http1 {
            lifted = true
            return applied ? base : nil
        }
        guard versions.multiplexed, !applied, multiplexed > 0, base == 0 || multiplexed < base else { return nil }
        applied = true
        return multiplexed
    }
}

/// The epoll set of the sockets libcurl asks to watch, and libcurl's one timer.
///
/// Created, used and dropped on the curl thread only; libcurl's callbacks (which run inside `curl_multi_*` calls on
/// that thread) reach it through an unretained pointer while the loop keeps it alive.
private final class Reactor {
    let epollFD: Int32
    private let multi: UnsafeMutableRawPointer
    /// When libcurl wants `curl_multi_socket_action(CURL_SOCKET_TIMEOUT)`; `nil` when it has no timer.
    private var timerDeadline: ContinuousClock.Instant?

    init(multi: UnsafeMutableRawPointer) {
        self.multi = multi
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { fatalError("epoll_create1 failed: \(String(cString: strerror(errno)))") }
    }

    deinit {
        close(epollFD)
    }

    /// Watches the eventfd other threads write to.
    func watchWakeups(_ fd: Int32) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = fd
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
            fatalError("epoll_ctl failed: \(String(cString: strerror(errno)))")
        }
    }

    /// `CURLMOPT_SOCKETFUNCTION`: watch `fd` for what libcurl waits for, or stop watching it.
    func update(_ fd: Int32, what: Int32) {
        if what == CURL_POLL_REMOVE {
            // The socket may already be closed (then epoll forgot it by itself): ENOENT and EBADF are fine.
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
            return
        }
        var event = epoll_event()
        event.events =
            (what == CURL_POLL_IN || what == CURL_POLL_INOUT ? EPOLLIN.rawValue : 0)
            | (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? EPOLLOUT.rawValue : 0)
        event.data.fd = fd
        // Level-triggered, as libcurl expects: a socket stays ready until libcurl has read or written enough.
        if epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &event) != 0 && errno == ENOENT {
            _ = epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
        }
    }

    /// `CURLMOPT_TIMERFUNCTION`: -1 removes the timer, 0 asks for a call at once, more sets a deadline.
    func setTimer(milliseconds: Int) {
        timerDeadline = milliseconds < 0 ? nil : .now + .milliseconds(milliseconds)
    }

    /// How long until the timer is due (zero when overdue); `nil` without a timer.
    func timeUntilTimer(now: ContinuousClock.Instant) -> Duration? {
        timerDeadline.map { max(.zero, $0 - now) }
    }

    /// Whether the timer is due; if so it is cleared (libcurl sets the next one while it handles this one).
    func takeExpiredTimer(now: ContinuousClock.Instant) -> Bool {
        guard let deadline = timerDeadline, deadline <= now else { return false }
        timerDeadline = nil
        return true
    }

    /// libcurl's `CURL_CSELECT_*` bits for epoll's event bits.
    static func curlFlags(_ events: UInt32) -> Int32 {
        var flags: Int32 = 0
        if events & EPOLLIN.rawValue != 0 { flags |= CURL_CSELECT_IN }
        if events & EPOLLOUT.rawValue != 0 { flags |= CURL_CSELECT_OUT }
        if events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { flags |= CURL_CSELECT_ERR }
        return flags
    }
}

private func reactorSocketCallback(
    _ easy: UnsafeMutableRawPointer?, _ socket: curl_socket_t, _ what: Int32, _ context: UnsafeMutableRawPointer?,
    _ socketContext: UnsafeMutableRawPointer?
) -> Int32 {
    guard let context else { return -1 }
    Unmanaged<Reactor>.fromOpaque(context).takeUnretainedValue().update(socket, what: what)
    return 0
}

private func reactorTimerCallback(
    _ multi: UnsafeMutableRawPointer?, _ timeoutMilliseconds: Int, _ context: UnsafeMutableRawPointer?
) -> Int32 {
    guard let context else { return -1 }
    Unmanaged<Reactor>.fromOpaque(context).takeUnretainedValue().setTimer(milliseconds: timeoutMilliseconds)
    return 0
}

/// One request in flight. Created by any thread, then owned and touched only by the curl thread.
private final class Transfer: @unchecked Sendable {
    let id: UInt64
    let method: String
    let url: String
    let idleTimeout: Duration?
    /// Until ``prepare(configuration:versions:bodies:)`` has handed it to libcurl, which copies what it keeps (the
    /// URL, the header list, the body): its headers and body need not stay for the whole transfer.
    private var request: HTTPRequest?
    let channel: ResponsePartChannel
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    private var headers: [HTTPHeader] = []
    private var sentHead = false
    private var versions: VersionsSeen?
    private var bodies: ReceivedBodies?
    /// Body bytes received in this wake-up of the loop, not yet handed on (see ``ReceivedBodies``).
    private var pendingBody: [UInt8] = []
    /// When a byte last arrived (or the transfer started): libcurl's low-speed check averages over seconds and
    /// counts the upload, so silence is measured here instead.
    private(set) var lastActivity = ContinuousClock.now

    init(id: UInt64, request: HTTPRequest, channel: ResponsePartChannel) {
        self.id = id
        self.method = request.method
        self.url = request.url
        self.idleTimeout = request.idleTimeout
        self.request = request
        self.channel = channel
        guard let easy = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.easy = easy
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// Sets the options; returns an error when libcurl refuses one.
    func prepare(
        configuration: CurlHTTPClient.Configuration, versions: VersionsSeen, bodies: ReceivedBodies
    ) -> CurlError? {
        self.versions = versions
        self.bodies = bodies
        guard let request else { return nil }
        defer { self.request = nil }
        let context = Unmanaged.passUnretained(self).toOpaque()
        var codes: [CURLcode] = [
            ccurl_easy_setopt_string(easy, CURLOPT_URL, request.url),
            ccurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1),
            ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer),
            ccurl_easy_setopt_long(easy, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS)),
            ccurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout.wholeMilliseconds)),
            ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context),
            ccurl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, transferWrite),
            ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context),
            ccurl_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, transferHeader),
            ccurl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1),
            // HTTP/2 when the server offers it in the TLS handshake (ALPN); plain http:// stays HTTP/1.1.
            ccurl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)),
            // Server-sent events come a few hundred bytes at a time: libcurl's smallest receive buffer (1 KiB) instead
            // of its default 16 KiB saves 15 KiB per call in flight; a larger body only takes more callbacks.
            ccurl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 1024),
            // Over HTTP/2 libcurl sends the body from a per-transfer upload buffer (64 KiB by default, held until the
            // transfer ends; HTTP/1.1 sends a small body with the headers instead): its smallest, 16 KiB, is plenty
            // for a prompt. Seen with heaptrack: 64 KiB of address space per call in flight over HTTP/2.
            ccurl_easy_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, 16384),
        ]
        if request.url.lowercased().hasPrefix("https://") {
            // Wait for a connection being set up to this server to say (by ALPN) whether it multiplexes, rather than
            // open one more: thousands of calls then share a few HTTP/2 connections. Not for http://, where the
            // answer comes only with the first response's status line, so a slow first answer would hold the rest.
            codes.append(ccurl_easy_setopt_long(easy, CURLOPT_PIPEWAIT, 1))
        }
        if let total = request.totalTimeout {
            codes.append(ccurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(total.wholeMilliseconds)))
        }
        if let caInfo = configuration.caInfoPath {
            codes.append(ccurl_easy_setopt_string(easy, CURLOPT_CAINFO, caInfo))
        }
        if request.method == "POST" || !request.body.isEmpty {
            codes.append(ccurl_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)))
            // COPYPOSTFIELDS copies, so the body need not outlive this call.
            if request.body.isEmpty {
                codes.append(ccurl_easy_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, ""))
            } else {
                codes.append(
                    request.body.withUnsafeBytes { bytes in
                        ccurl_easy_setopt_pointer(
                            easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
                    })
            }
        }
        if request.method != "GET" && request.method != "POST" {
            codes.append(ccurl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method))
        }
        // curl adds "Expect: 100-continue" for large bodies, which costs a round trip; no server here needs it.
        for header in request.headers + [HTTPHeader("Expect", "")] {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        codes.append(ccurl_easy_setopt_pointer(easy, CURLOPT_HTTPHEADER, headerList))
        if let failed = codes.first(where: { $0 != CURLE_OK }) {
            return .setup(failed, detail: String(cString: errorBuffer))
        }
        return nil
    }

    /// The error for the result libcurl ended the transfer with.
    func error(for result: CURLcode) -> CurlError {
        // libcurl has one code for every timeout; a transfer that never connected hit the connect timeout.
        var connectMicroseconds: curl_off_t = 0
        if result == CURLE_OPERATION_TIMEDOUT {
            ccurl_easy_getinfo_off(easy, CURLINFO_CONNECT_TIME_T, &connectMicroseconds)
        }
        return .transfer(result, detail: String(cString: errorBuffer), connected: connectMicroseconds != 0)
    }

    /// Ends the consumer's stream: with the head (if not sent yet) and the end, or with the error.
    func complete(error: CurlError?, logger: Logger) {
        flushBody()
        if let error {
            logger.debug(
                "HTTP transfer failed",
                metadata: [
                    "http.transfer_id": "\(id)", "error.type": "\(error.shortDescription)",
                    "error.message": "\(error)",
                ])
            channel.finish(throwing: error)
        } else {
            sendHeadIfNeeded()
            logger.debug("HTTP transfer finished", metadata: ["http.transfer_id": "\(id)", "http.status": "\(status)"])
            channel.finish()
        }
    }

    /// Whether the server has been silent for longer than the request's idle timeout.
    func markStarted() { lastActivity = .now }

    func isIdle(at now: ContinuousClock.Instant) -> Bool {
        guard let limit = idleTimeout else { return false }
        return now - lastActivity > limit
    }

    /// One header line as libcurl hands it over (with its CRLF): a status line, a header field, or the blank line
    /// that ends the head. Read as bytes: HTTP's whitespace around a value is spaces and tabs.
    func receiveHeader(_ line: UnsafeBufferPointer<UInt8>) {
        lastActivity = .now
        let trimmed = Self.trimmingHTTPWhitespace(line[...])
        if trimmed.starts(with: "HTTP/".utf8) {
            headers.removeAll()  // a new response (after 1xx or a redirect) starts
        } else if trimmed.isEmpty {
            if status >= 200 { sendHeadIfNeeded() }
        } else if let colon = trimmed.firstIndex(of: UInt8(ascii: ":")) {
            let name = String(decoding: UnsafeBufferPointer(rebasing: trimmed[..<colon]), as: UTF8.self)
            let value = Self.trimmingHTTPWhitespace(trimmed[(colon + 1)...])
            headers.append(HTTPHeader(name, String(decoding: UnsafeBufferPointer(rebasing: value), as: UTF8.self)))
        }
    }

    private static func trimmingHTTPWhitespace(
        _ bytes: Slice<UnsafeBufferPointer<UInt8>>
    ) -> Slice<UnsafeBufferPointer<UInt8>> {
        func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
        guard let first = bytes.firstIndex(where: { !isWhitespace($0) }),
            let last = bytes.lastIndex(where: { !isWhitespace($0) })
        else { return bytes[bytes.endIndex...] }
        return bytes[first...last]
    }

    func receiveBody(_ bytes: UnsafeBufferPointer<UInt8>) {
        lastActivity = .now
        sendHeadIfNeeded()
        if pendingBody.isEmpty { bodies?.add(self) }
        pendingBody.append(contentsOf: bytes)
    }

    /// Hands on the body bytes received since the last time, as one part.
    func flushBody() {
        guard !pendingBody.isEmpty else { return }
        channel.yield(.body(pendingBody))
        pendingBody = []
    }

    private func sendHeadIfNeeded() {
        guard !sentHead else { return }
        sentHead = true
        var version = 0
        ccurl_easy_getinfo_long(easy, CURLINFO_HTTP_VERSION, &version)
        if version == Int(CURL_HTTP_VERSION_2_0) || version == Int(CURL_HTTP_VERSION_3) {
            versions?.multiplexed = true
        } else if version == Int(CURL_HTTP_VERSION_1_1) || version == Int(CURL_HTTP_VERSION_1_0) {
            versions?.http1 = true
        }
        // The consumer owns the headers from here: the transfer keeps no copy for the rest of a long response.
        let head = HTTPResponseHead(status: status, headers: headers)
        headers = []
        channel.yield(.head(head))
    }

    /// The last response's status code so far (0 before one arrived).
    private var status: Int {
        var status = 0
        ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        return status
    }
}

private func transferWrite(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    data.withMemoryRebound(to: UInt8.self, capacity: length) {
        transfer.receiveBody(UnsafeBufferPointer(start: $0, count: length))
    }
    return length
}

private func transferHeader(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    data.withMemoryRebound(to: UInt8.self, capacity: length) {
        transfer.receiveHeader(UnsafeBufferPointer(start: $0, count: length))
    }
    return length
}
