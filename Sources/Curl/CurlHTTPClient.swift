internal import CCurl
import Foundation
public import Logging
import Locking

/// An HTTP client over libcurl's multi interface, driven by one dedicated thread.
///
/// Every transfer of the process shares that thread and its connection pool, so thousands of concurrent
/// requests need no more threads. Responses arrive as an `AsyncThrowingStream`; ending the consumer's
/// iteration (or cancelling its task) aborts the transfer on the curl thread.
public final class CurlHTTPClient: Sendable {
    /// Settings shared by every transfer.
    public struct Configuration: Sendable {
        /// A CA bundle to verify servers against; `nil` uses the system's.
        public var caInfoPath: String?
        /// Most connections kept open for reuse.
        public var maxCachedConnections: Int = 64
        /// Most connections open to one host at once; 0 for no limit.
        public var maxConnectionsPerHost: Int = 0

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

    /// The multi handle; touched only on the curl thread, except `curl_multi_wakeup`, which is thread-safe.
    private struct MultiHandle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let configuration: Configuration
    private let logger: Logger
    private let multi: MultiHandle
    private let state = LockedValue(State())

    /// How often silent transfers are looked for, and so the precision of idle timeouts.
    private static let idleScanInterval: Duration = .milliseconds(250)
    private static let pollMilliseconds: Int32 = 250

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()

    /// Starts the client and its thread.
    /// - Parameters:
    ///   - configuration: shared settings.
    ///   - logger: where transfer problems are logged.
    public init(configuration: Configuration = .init(), logger: Logger) {
        _ = Self.globalInit
        self.configuration = configuration
        self.logger = logger
        guard let handle = curl_multi_init() else { fatalError("curl_multi_init failed: out of memory") }
        multi = MultiHandle(pointer: handle)
        ccurl_multi_setopt_long(handle, CURLMOPT_MAXCONNECTS, configuration.maxCachedConnections)
        ccurl_multi_setopt_long(handle, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
        let worker = Thread { [self] in self.loop() }
        worker.name = "longhaul-curl"
        worker.start()
    }

    deinit {
        curl_multi_cleanup(multi.pointer)
    }

    /// Sends a request and streams its response.
    ///
    /// The stream yields ``HTTPResponsePart/head(_:)`` once, then the body; it finishes at the end of the body,
    /// or throws ``CurlError``. An HTTP error status is not an error here: read it from the head.
    /// - Parameter request: the request.
    /// - Returns: the response parts.
    public func stream(_ request: HTTPRequest) -> AsyncThrowingStream<HTTPResponsePart, any Error> {
        let (stream, continuation) = AsyncThrowingStream<HTTPResponsePart, any Error>.makeStream()
        let id: UInt64? = state.withLock { state in
            guard state.running else { return nil }
            defer { state.nextID += 1 }
            return state.nextID
        }
        guard let id else {
            continuation.finish(throwing: CurlError.shutDown)
            return stream
        }
        let transfer = Transfer(id: id, request: request, continuation: continuation)
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.send(.cancel(id)) }
        }
        send(.add(transfer))
        return stream
    }

    /// Aborts every transfer and stops the thread. Later requests fail with ``CurlError/clientShutDown``.
    public func shutdown() {
        state.withLock { $0.running = false }
        curl_multi_wakeup(multi.pointer)
    }

    private func send(_ command: Command) {
        let accepted = state.withLock { state in
            guard state.running else { return false }
            state.commands.append(command)
            return true
        }
        if accepted {
            curl_multi_wakeup(multi.pointer)
        } else if case .add(let transfer) = command {
            transfer.continuation.finish(throwing: CurlError.shutDown)
        }
    }

    // MARK: - The curl thread

    private func loop() {
        var byID: [UInt64: Transfer] = [:]
        var byHandle: [UnsafeMutableRawPointer: Transfer] = [:]
        var stillRunning: Int32 = 0
        var lastIdleScan = ContinuousClock.now

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
                    if let error = transfer.prepare(configuration: configuration) {
                        transfer.complete(error: error, logger: logger)
                        continue
                    }
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
                            "http.transfer_id": "\(transfer.id)", "http.method": "\(transfer.request.method)",
                            "http.url": "\(transfer.request.url)",
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
                return
            }

            curl_multi_perform(multi.pointer, &stillRunning)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi.pointer, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                    let transfer = byHandle[easy]
                else { continue }
                let result = message.pointee.data.result
                remove(transfer, error: result == CURLE_OK ? nil : transfer.error(for: result))
            }
            let now = ContinuousClock.now
            if now - lastIdleScan >= Self.idleScanInterval {
                lastIdleScan = now
                for transfer in byID.values where transfer.isIdle(at: now) {
                    remove(transfer, error: .idle(limit: transfer.request.idleTimeout ?? .zero))
                }
            }
            curl_multi_poll(multi.pointer, nil, 0, Self.pollMilliseconds, nil)
        }
    }
}

/// One request in flight. Created by any thread, then owned and touched only by the curl thread.
private final class Transfer: @unchecked Sendable {
    let id: UInt64
    let request: HTTPRequest
    let continuation: AsyncThrowingStream<HTTPResponsePart, any Error>.Continuation
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    private var headers: [HTTPHeader] = []
    private var sentHead = false
    /// When a byte last arrived (or the transfer started): libcurl's low-speed check averages over seconds and
    /// counts the upload, so silence is measured here instead.
    private(set) var lastActivity = ContinuousClock.now

    init(
        id: UInt64, request: HTTPRequest,
        continuation: AsyncThrowingStream<HTTPResponsePart, any Error>.Continuation
    ) {
        self.id = id
        self.request = request
        self.continuation = continuation
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
    func prepare(configuration: CurlHTTPClient.Configuration) -> CurlError? {
        let context = Unmanaged.passUnretained(self).toOpaque()
        var codes: [CURLcode] = [
            ccurl_easy_setopt_string(easy, CURLOPT_URL, request.url),
            ccurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1),
            ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer),
            ccurl_easy_setopt_long(easy, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS)),
            ccurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, request.connectTimeout.inWholeMilliseconds),
            ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context),
            ccurl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, transferWrite),
            ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context),
            ccurl_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, transferHeader),
            ccurl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1),
            // Server-sent events come a few hundred bytes at a time: 4 KiB instead of 16 saves 12 KiB per call.
            ccurl_easy_setopt_long(easy, CURLOPT_BUFFERSIZE, 4096),
        ]
        if let total = request.totalTimeout {
            codes.append(ccurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, total.inWholeMilliseconds))
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
                codes.append(request.body.withUnsafeBytes { bytes in
                    ccurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress))
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
        if let error {
            logger.debug(
                "HTTP transfer failed",
                metadata: [
                    "http.transfer_id": "\(id)", "error.type": "\(error.shortDescription)",
                    "error.message": "\(error)",
                ])
            continuation.finish(throwing: error)
        } else {
            sendHeadIfNeeded()
            logger.debug("HTTP transfer finished", metadata: ["http.transfer_id": "\(id)", "http.status": "\(status)"])
            continuation.finish()
        }
    }

    /// Whether the server has been silent for longer than the request's idle timeout.
    func markStarted() { lastActivity = .now }

    func isIdle(at now: ContinuousClock.Instant) -> Bool {
        guard let limit = request.idleTimeout else { return false }
        return now - lastActivity > limit
    }

    func receiveHeader(_ line: String) {
        lastActivity = .now
        let trimmed = line.trimmedWhitespace
        if trimmed.hasPrefix("HTTP/") {
            headers.removeAll()  // a new response (after 1xx or a redirect) starts
        } else if trimmed.isEmpty {
            if status >= 200 { sendHeadIfNeeded() }
        } else if let colon = trimmed.firstIndex(of: ":") {
            let name = String(trimmed[..<colon])
            let value = String(trimmed[trimmed.index(after: colon)...]).trimmedWhitespace
            headers.append(HTTPHeader(name, value))
        }
    }

    func receiveBody(_ bytes: UnsafeBufferPointer<UInt8>) {
        lastActivity = .now
        sendHeadIfNeeded()
        continuation.yield(.body(Array(bytes)))
    }

    private func sendHeadIfNeeded() {
        guard !sentHead else { return }
        sentHead = true
        continuation.yield(.head(HTTPResponseHead(status: status, headers: headers)))
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
    let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
    transfer.receiveHeader(line)
    return length
}

extension String {
    /// Without leading and trailing whitespace; the standard library's `isWhitespace`, not Foundation's bridge.
    fileprivate var trimmedWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
