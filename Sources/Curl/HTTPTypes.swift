/// One HTTP request for ``CurlHTTPClient``.
public struct HTTPRequest: Sendable {
    /// The method (`GET`, `POST`…).
    public var method: String
    /// The absolute URL.
    public var url: String
    /// Request headers, in order.
    public var headers: [HTTPHeader]
    /// The request body (sent when non-empty or when the method is `POST`).
    public var body: [UInt8]
    /// Longest time to establish the connection (TCP and TLS).
    public var connectTimeout: Duration
    /// Longest time without receiving a single byte, headers included; `nil` for no limit.
    public var idleTimeout: Duration?
    /// Longest time for the whole transfer; `nil` for no limit.
    public var totalTimeout: Duration?

    /// - Parameters:
    ///   - method: the method.
    ///   - url: the absolute URL.
    ///   - headers: request headers.
    ///   - body: the body.
    ///   - connectTimeout: connection timeout (default 10 s).
    ///   - idleTimeout: the longest silence allowed (default 60 s).
    ///   - totalTimeout: the longest transfer allowed (default none).
    public init(
        method: String = "GET", url: String, headers: [HTTPHeader] = [], body: [UInt8] = [],
        connectTimeout: Duration = .seconds(10), idleTimeout: Duration? = .seconds(60), totalTimeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.totalTimeout = totalTimeout
    }
}

/// One header line.
public struct HTTPHeader: Sendable, Equatable {
    /// The name, as sent or received.
    public var name: String
    /// The value, without surrounding whitespace.
    public var value: String

    /// - Parameters:
    ///   - name: the name.
    ///   - value: the value.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The status line and headers of a response.
public struct HTTPResponseHead: Sendable {
    /// The status code.
    public var status: Int
    /// The headers of the final response (not of any `100 Continue`).
    public var headers: [HTTPHeader]

    /// - Parameters:
    ///   - status: the status code.
    ///   - headers: the headers.
    public init(status: Int, headers: [HTTPHeader]) {
        self.status = status
        self.headers = headers
    }

    /// The first value of a header, compared case-insensitively.
    /// - Parameter name: the header name.
    /// - Returns: its value, or `nil`.
    public func header(_ name: String) -> String? {
        // Field names are ASCII tokens: compared byte by byte, ASCII letters folded, without making strings (a
        // lower-cased copy of every name on every look-up cost ~12,000 instructions a look-up).
        headers.first { Self.sameName($0.name, name) }?.value
    }

    static func sameName(_ left: String, _ right: String) -> Bool {
        guard left.utf8.count == right.utf8.count else { return false }
        @inline(__always) func folded(_ byte: UInt8) -> UInt8 {
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
        }
        return zip(left.utf8, right.utf8).allSatisfy { folded($0) == folded($1) }
    }
}

/// A piece of a streamed response: the head once, then body chunks as they arrive.
public enum HTTPResponsePart: Sendable {
    /// The status and headers.
    case head(HTTPResponseHead)
    /// Some body bytes.
    case body([UInt8])
}
