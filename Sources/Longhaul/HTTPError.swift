public import FastCGI

/// An error that becomes an HTTP answer: a status, a short type, and a message safe to show.
///
/// Routes under `/api/` render it as JSON `{"error":{"type","message"}}`; the others as an HTML fragment (htmx)
/// or a page.
public struct HTTPError: Error, Sendable, Equatable {
    /// The HTTP status code.
    public var status: Int
    /// A short machine-readable type, for example `not_found`.
    public var type: String
    /// A message for people; never contains secrets.
    public var message: String
    /// Extra headers, such as `Allow` or `Retry-After`.
    public var headers: [HeaderField]

    /// - Parameters:
    ///   - status: the HTTP status code.
    ///   - type: a short machine-readable type.
    ///   - message: a message safe to show.
    ///   - headers: extra headers.
    public init(status: Int, type: String, message: String, headers: [HeaderField] = []) {
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
    public static func badRequest(_ message: String, type: String = "invalid_request") -> HTTPError {
        HTTPError(status: 400, type: type, message: message)
    }

    /// 404: no such resource.
    public static func notFound(_ message: String) -> HTTPError {
        HTTPError(status: 404, type: "not_found", message: message)
    }

    /// 405 with the methods the resource allows.
    public static func methodNotAllowed(allowed: [String]) -> HTTPError {
        HTTPError(
            status: 405, type: "method_not_allowed",
            message: "This resource allows \(allowed.joined(separator: ", ")) only.",
            headers: [HeaderField("Allow", allowed.joined(separator: ", "))])
    }

    /// 413: the body or a field is too large.
    public static func contentTooLarge(_ message: String) -> HTTPError {
        HTTPError(status: 413, type: "content_too_large", message: message)
    }

    /// 415: the body has the wrong media type.
    public static func unsupportedMediaType(_ message: String) -> HTTPError {
        HTTPError(status: 415, type: "unsupported_media_type", message: message)
    }

    /// 503 with `Retry-After`: the service is busy or a dependency is down.
    public static func unavailable(_ message: String, type: String = "unavailable", retryAfterSeconds: Int) -> HTTPError {
        HTTPError(
            status: 503, type: type, message: message, headers: [HeaderField("Retry-After", String(retryAfterSeconds))])
    }
}
