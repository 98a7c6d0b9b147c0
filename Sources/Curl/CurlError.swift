internal import CCurl

/// Why a transfer failed below HTTP (an HTTP error status is not a ``CurlError``).
///
/// Compare with the static members (`error == .operationTimedOut`), or `switch` over them; two errors are equal when
/// their codes are, whatever their messages. The libcurl result code and its text are kept for logs.
public struct CurlError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Equatable, Sendable {
        case couldNotConnect
        case connectTimedOut
        case operationTimedOut
        case idleTimedOut
        case transferFailed
        case invalidRequest
        case clientShutDown
    }

    private let code: Code
    /// libcurl's result code (a `CURLcode`, or a `CURLMcode` when ``operation`` is a `curl_multi_*` call); `nil` when
    /// the failure was not reported by libcurl (the client was shut down).
    public let curlCode: Int?
    /// libcurl's text for ``curlCode`` (`curl_easy_strerror`, `curl_multi_strerror`); empty without one.
    public let curlMessage: String
    /// The specific explanation, libcurl's error buffer when it filled it (`Failed to connect to … port …`); may be
    /// empty.
    public let detail: String
    /// What was being done: the libcurl call (`curl_multi_add_handle`, `curl_easy_setopt`) or `transfer`.
    public let operation: String

    private init(
        _ code: Code, curlCode: Int? = nil, curlMessage: String = "", detail: String = "", operation: String = ""
    ) {
        self.code = code
        self.curlCode = curlCode
        self.curlMessage = curlMessage
        self.detail = detail
        self.operation = operation
    }

    /// The connection could not be made: refused, host not resolved, TLS handshake or certificate check failed.
    public static let couldNotConnect = CurlError(.couldNotConnect)
    /// The connection (DNS, TCP, TLS) took longer than the request's connect timeout.
    public static let connectTimedOut = CurlError(.connectTimedOut)
    /// The whole transfer took longer than the request's total timeout.
    public static let operationTimedOut = CurlError(.operationTimedOut)
    /// No byte arrived for longer than the request's idle timeout.
    public static let idleTimedOut = CurlError(.idleTimedOut)
    /// The transfer broke after it started (connection reset, bad framing…).
    public static let transferFailed = CurlError(.transferFailed)
    /// The request could not be set up (bad URL, unsupported protocol, an option refused).
    public static let invalidRequest = CurlError(.invalidRequest)
    /// The client was shut down before or during the transfer.
    public static let clientShutDown = CurlError(.clientShutDown)

    public static func == (lhs: CurlError, rhs: CurlError) -> Bool { lhs.code == rhs.code }

    /// A readable message: ``detail`` when there is one, else ``curlMessage``.
    public var message: String {
        if !detail.isEmpty { return detail }
        if !curlMessage.isEmpty { return curlMessage }
        return shortDescription
    }

    /// The code alone, without messages, for metric labels (`could_not_connect`, `idle_timed_out`…).
    public var shortDescription: String {
        switch code {
        case .couldNotConnect: "could_not_connect"
        case .connectTimedOut: "connect_timed_out"
        case .operationTimedOut: "operation_timed_out"
        case .idleTimedOut: "idle_timed_out"
        case .transferFailed: "transfer_failed"
        case .invalidRequest: "invalid_request"
        case .clientShutDown: "client_shut_down"
        }
    }

    /// For logs: the code, the operation, the message and libcurl's code and text.
    public var description: String {
        var text = "\(shortDescription)"
        if !operation.isEmpty { text += " in \(operation)" }
        text += ": \(message)"
        if let curlCode { text += " (curl code \(curlCode): \(curlMessage))" }
        return text
    }
}

extension CurlError {
    /// The error for a transfer that libcurl ended with `result`.
    /// - Parameters:
    ///   - result: the transfer's result (not `CURLE_OK`).
    ///   - detail: the transfer's error buffer, possibly empty.
    ///   - connected: whether the connection had been made (libcurl has one code for every timeout).
    static func transfer(_ result: CURLcode, detail: String, connected: Bool) -> CurlError {
        let code: Code
        switch result {
        case CURLE_OPERATION_TIMEDOUT:
            code = connected ? .operationTimedOut : .connectTimedOut
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SSL_CONNECT_ERROR,
            CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE:
            code = .couldNotConnect
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            code = .invalidRequest
        default:
            code = .transferFailed
        }
        return CurlError(
            code, curlCode: Int(result.rawValue), curlMessage: String(cString: curl_easy_strerror(result)),
            detail: detail, operation: "transfer")
    }

    /// The error for an option libcurl refused while the request was set up.
    static func setup(_ result: CURLcode, detail: String) -> CurlError {
        CurlError(
            .invalidRequest, curlCode: Int(result.rawValue), curlMessage: String(cString: curl_easy_strerror(result)),
            detail: detail, operation: "curl_easy_setopt")
    }

    /// The error for a multi-interface call that failed.
    static func multi(_ result: CURLMcode, operation: String) -> CurlError {
        CurlError(
            .transferFailed, curlCode: Int(result.rawValue), curlMessage: String(cString: curl_multi_strerror(result)),
            operation: operation)
    }

    /// The error for a transfer that stayed silent longer than `limit`.
    static func idle(limit: Duration) -> CurlError {
        CurlError(
            .idleTimedOut, curlCode: Int(CURLE_OPERATION_TIMEDOUT.rawValue),
            curlMessage: String(cString: curl_easy_strerror(CURLE_OPERATION_TIMEDOUT)),
            detail: "no data received for \(limit)", operation: "transfer")
    }

    /// The error for a request made to, or still running in, a client that was shut down.
    static let shutDown = CurlError(.clientShutDown, detail: "the HTTP client is shut down")
}
