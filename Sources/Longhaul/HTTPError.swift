public import FastCGI

/// An error that becomes an HTTP answer: a status, a machine-readable code, and a message safe to show.
///
/// It is the only error routes throw. Routes under `/api/` render it as JSON `{"error":{"type","message"}}`; the
/// others as an HTML fragment (htmx) or a page. Its message is public: it never carries an internal error's text
/// (log that, and give the client a fixed sentence).
public struct HTTPError: Error, Sendable, Equatable {
    /// A machine-readable error code: the `type` of the JSON error body (`unknown_task`, `queue_full`…).
    ///
    /// A struct over the wire string, so that the codes are typed (`.unknownTask`) and an app can add its own
    /// (`HTTPError.Code(rawValue: "report_too_big")`) while the JSON stays the same string.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The code as the JSON body carries it, for example `unknown_task`.
        public let rawValue: String

        /// - Parameter rawValue: the code as the JSON body carries it (lower-case words joined by `_`).
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        public var description: String { rawValue }

        /// The request is malformed (400).
        public static let invalidRequest = Code(rawValue: "invalid_request")
        /// No route answers at this address (404).
        public static let notFound = Code(rawValue: "not_found")
        /// The route exists but not with this method (405).
        public static let methodNotAllowed = Code(rawValue: "method_not_allowed")
        /// The body or a field is too large (413).
        public static let contentTooLarge = Code(rawValue: "content_too_large")
        /// The body has the wrong media type (415).
        public static let unsupportedMediaType = Code(rawValue: "unsupported_media_type")
        /// The service cannot answer right now (503).
        public static let unavailable = Code(rawValue: "unavailable")
        /// The task id is missing, malformed, unknown or expired (404).
        public static let unknownTask = Code(rawValue: "unknown_task")
        /// The queue of waiting tasks is full (503).
        public static let queueFull = Code(rawValue: "queue_full")
        /// The client already has as many tasks in progress as it may (429).
        public static let tooManyTasks = Code(rawValue: "too_many_tasks")
        /// The task store does not answer (503).
        public static let storeUnavailable = Code(rawValue: "store_unavailable")
        /// The form or JSON field `query` is missing or blank (400).
        public static let missingQuery = missing("query")

        /// A required text field is missing or blank (400): `missing_<field>`.
        /// - Parameter field: the field's name.
        /// - Returns: the code.
        public static func missing(_ field: String) -> Code {
            Code(rawValue: "missing_\(field)")
        }
    }

    /// The HTTP status code.
    public var status: Int
    /// The machine-readable code (the JSON error's `type`).
    public var type: Code
    /// A message for people; never contains secrets or an internal error's text.
    public var message: String
    /// Extra headers, such as `Allow` or `Retry-After`.
    public var headers: [HeaderField]

    /// - Parameters:
    ///   - status: the HTTP status code.
    ///   - type: the machine-readable code.
    ///   - message: a message safe to show.
    ///   - headers: extra headers.
    public init(status: Int, type: Code, message: String, headers: [HeaderField] = []) {
        self.status = status
        self.type = type
        self.message = message
        self.headers = headers
    }

    /// Names to quote in a message: the first five (each cut to 40 characters), then how many there are in all, so that a
    /// request with thousands of bad names gets a short, readable answer rather than all of them echoed back.
    /// - Parameter names: the names.
    /// - Returns: `a, b, c` or `a, b, c, d, e... (5000 in all)`.
    public static func listing(_ names: [String]) -> String {
        let shown = names.prefix(5).map { $0.count > 40 ? "\($0.prefix(40))..." : $0 }.joined(separator: ", ")
        return names.count > 5 ? "\(shown)... (\(names.count) in all)" : shown
    }

    /// 400: the request is malformed.
    /// - Parameters:
    ///   - message: a message safe to show.
    ///   - type: the code, ``Code/invalidRequest`` unless a more precise one fits.
    /// - Returns: the error.
    public static func badRequest(_ message: String, type: Code = .invalidRequest) -> HTTPError {
        HTTPError(status: 400, type: type, message: message)
    }

    /// 404: no such resource.
    /// - Parameter message: a message safe to show.
    /// - Returns: the error.
    public static func notFound(_ message: String) -> HTTPError {
        HTTPError(status: 404, type: .notFound, message: message)
    }

    /// 405 with the methods the resource allows.
    /// - Parameter allowed: the methods, for the message and `Allow`.
    /// - Returns: the error.
    public static func methodNotAllowed(allowed: [String]) -> HTTPError {
        HTTPError(
            status: 405, type: .methodNotAllowed,
            message: "This resource allows \(allowed.joined(separator: ", ")) only.",
            headers: [HeaderField("Allow", allowed.joined(separator: ", "))])
    }

    /// 413: the body or a field is too large.
    /// - Parameter message: a message safe to show.
    /// - Returns: the error.
    public static func contentTooLarge(_ message: String) -> HTTPError {
        HTTPError(status: 413, type: .contentTooLarge, message: message)
    }

    /// 415: the body has the wrong media type.
    /// - Parameter message: a message safe to show.
    /// - Returns: the error.
    public static func unsupportedMediaType(_ message: String) -> HTTPError {
        HTTPError(status: 415, type: .unsupportedMediaType, message: message)
    }

    /// 503 with `Retry-After`: the service is busy or a dependency is down.
    /// - Parameters:
    ///   - message: a message safe to show (a fixed sentence: never an internal error's text).
    ///   - type: the code.
    ///   - retryAfterSeconds: the `Retry-After` value.
    /// - Returns: the error.
    public static func unavailable(_ message: String, type: Code = .unavailable, retryAfterSeconds: Int) -> HTTPError {
        HTTPError(
            status: 503, type: type, message: message, headers: [HeaderField("Retry-After", String(retryAfterSeconds))])
    }
}
