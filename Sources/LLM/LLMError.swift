/// Why an LLM call failed. Never contains the API key.
///
/// Equality compares every field, not only the ``code``: an `LLMError` is data that ends up in a task's record, and
/// tests check all of it. Compare ``code`` alone to ask what kind of failure it was.
public struct LLMError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A machine-readable error type: the provider's (`authentication_error`, `overloaded_error`…), which is an open
    /// set (static members name the known ones, ``init(rawValue:)`` keeps any other), or Longhaul's own
    /// (`connection_error`, `connect_timeout`, `idle_timeout`…).
    ///
    /// The raw value is what users see as the task's `error.type`: it never changes for a known member.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The type as the provider or Longhaul spells it.
        public let rawValue: String

        /// - Parameter rawValue: a type as the provider sent it.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        public var description: String { rawValue }

        // Longhaul's own, for failures below HTTP or in the answer.

        /// The connection could not be made, or broke (refused, DNS, TLS, reset, closed without an answer).
        public static let connectionError = Code(rawValue: "connection_error")
        /// The connection (DNS, TCP, TLS) was not made within the connect timeout.
        public static let connectTimeout = Code(rawValue: "connect_timeout")
        /// The server went silent for longer than the idle timeout.
        public static let idleTimeout = Code(rawValue: "idle_timeout")
        /// The whole call took longer than its total timeout.
        public static let timeout = Code(rawValue: "timeout")
        /// The answer could not be read (malformed JSON, an event or document over its bound, not a Message).
        public static let invalidResponse = Code(rawValue: "invalid_response")
        /// The stream ended before the answer was complete.
        public static let incompleteResponse = Code(rawValue: "incomplete_response")
        /// The request could not be set up (a bad base URL).
        public static let invalidConfiguration = Code(rawValue: "invalid_configuration")
        /// The HTTP client was shut down.
        public static let shutdown = Code(rawValue: "shutdown")
        /// The caller cancelled the call.
        public static let cancelled = Code(rawValue: "cancelled")

        // The providers' (Anthropic's and OpenAI's documented types; HTTP statuses without a JSON body map to them).

        /// 400.
        public static let invalidRequestError = Code(rawValue: "invalid_request_error")
        /// 401: a missing or wrong API key.
        public static let authenticationError = Code(rawValue: "authentication_error")
        /// 402 (Anthropic).
        public static let billingError = Code(rawValue: "billing_error")
        /// 403.
        public static let permissionError = Code(rawValue: "permission_error")
        /// 404.
        public static let notFoundError = Code(rawValue: "not_found_error")
        /// 413 (Anthropic).
        public static let requestTooLarge = Code(rawValue: "request_too_large")
        /// 429.
        public static let rateLimitError = Code(rawValue: "rate_limit_error")
        /// 500 and other 5xx (Anthropic).
        public static let apiError = Code(rawValue: "api_error")
        /// 504 (Anthropic).
        public static let timeoutError = Code(rawValue: "timeout_error")
        /// 529 (Anthropic), or an `error` event mid-stream: retryable.
        public static let overloadedError = Code(rawValue: "overloaded_error")
        /// 5xx (OpenAI): retryable when it comes mid-stream.
        public static let serverError = Code(rawValue: "server_error")

        /// Every named code, for bounded metric labels.
        static let known: Set<Code> = [
            .connectionError, .connectTimeout, .idleTimeout, .timeout, .invalidResponse, .incompleteResponse,
            .invalidConfiguration, .shutdown, .cancelled, .invalidRequestError, .authenticationError, .billingError,
            .permissionError, .notFoundError, .requestTooLarge, .rateLimitError, .apiError, .timeoutError,
            .overloadedError, .serverError,
        ]
    }

    /// What kind of failure it was.
    public var code: Code
    /// A readable message, the provider's when there is one.
    public var message: String
    /// The HTTP status, when the failure was an HTTP error.
    public var httpStatus: Int?
    /// The provider's request id, when known.
    public var requestID: String?
    /// HTTP attempts made.
    public var attempts: Int
    /// Whether another attempt could succeed (before retry limits are applied).
    public var isRetryable: Bool
    /// A delay the provider asked for before retrying (`retry-after-ms`, `retry-after`).
    public var retryAfter: Duration?

    /// - Parameters:
    ///   - code: what kind of failure it was.
    ///   - message: a readable message (never the API key).
    ///   - httpStatus: the HTTP status, for an HTTP error.
    ///   - requestID: the provider's request id.
    ///   - attempts: HTTP attempts made.
    ///   - isRetryable: whether another attempt could succeed.
    ///   - retryAfter: the delay the provider asked for.
    public init(
        code: Code, message: String, httpStatus: Int? = nil, requestID: String? = nil, attempts: Int = 1,
        isRetryable: Bool = false, retryAfter: Duration? = nil
    ) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.requestID = requestID
        self.attempts = attempts
        self.isRetryable = isRetryable
        self.retryAfter = retryAfter
    }

    /// The code's raw value (`overloaded_error`, `connect_timeout`…), as a task failure's type shows it.
    public var type: String { code.rawValue }

    /// The code for a metric label: its raw value when it is a named one, `other` for a type only some provider or
    /// gateway sends (an open set would make the label's cardinality unbounded).
    public var shortDescription: String {
        Code.known.contains(code) ? code.rawValue : "other"
    }

    public var description: String {
        var text = "\(type): \(message)"
        if let httpStatus { text += " (HTTP \(httpStatus))" }
        if let requestID { text += " [request id \(requestID)]" }
        return text
    }
}
