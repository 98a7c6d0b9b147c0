public import Logging
public import StandardExtensions

/// A response header field.
public struct HeaderField: Sendable, Equatable {
    /// The header name, as it should be sent.
    public var name: String
    /// The header value; must not contain CR or LF.
    public var value: String

    /// - Parameters:
    ///   - name: the header name.
    ///   - value: the header value.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// What a handler answers: a status, headers, and a body sent whole or streamed.
public struct FastCGIResponse: Sendable {
    /// How the body is produced.
    public enum Body: Sendable {
        /// A complete body, sent with a `Content-Length`.
        case bytes([UInt8])
        /// A complete body in a ``StandardExtensions/ByteBlock`` (a fragment rendered on every poll), sent as
        /// ``bytes(_:)`` is.
        case block(ByteBlock)
        /// A body written over time (server-sent events). The request is handed off the accept thread, so a stream
        /// does not hold one of the server's threads for its whole life.
        case stream(@Sendable (ResponseStream) async -> Void)

        /// A complete body's bytes (copied from a block); `nil` for a stream.
        public var completeBytes: [UInt8]? {
            switch self {
            case .bytes(let bytes): bytes
            case .block(let block): block.array
            case .stream: nil
            }
        }
    }

    /// The HTTP status code.
    public var status: Int
    /// Header fields, in order. `Status` and `Content-Length` are added by the server.
    public var headers: [HeaderField] {
        didSet { encodedHeaders = nil }
    }
    /// ``headers`` already encoded (``HeaderBlock``), for the header sets an app answers with on every request.
    package private(set) var encodedHeaders: HeaderBlock?
    /// The body.
    public var body: Body
    /// What the handler knows that the access log should say (for example `task.id`); never sent to the client.
    public var logMetadata: Logger.Metadata = [:]
    /// What the response is about (a task id), for the access log; never sent to the client. A plain field rather
    /// than ``logMetadata``, and its text made only when the log asks: routes set it on every request, and the log
    /// is usually off.
    public var subject: (any CustomStringConvertible & Sendable)?

    /// ``subject``'s text.
    public var subjectID: String? { subject?.description }

    /// - Parameters:
    ///   - status: the HTTP status code.
    ///   - headers: header fields.
    ///   - body: the body.
    public init(status: Int, headers: [HeaderField] = [], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response whose header fields come encoded once, ahead of time.
    /// - Parameters:
    ///   - status: the HTTP status code.
    ///   - headers: the header fields, encoded.
    ///   - body: the body.
    package init(status: Int, headers: HeaderBlock, body: Body) {
        self.status = status
        self.headers = headers.fields
        self.body = body
        self.encodedHeaders = headers
    }

    /// A complete response with a text body.
    /// - Parameters:
    ///   - status: the HTTP status code.
    ///   - contentType: the `Content-Type` value.
    ///   - text: the body, sent as UTF-8.
    ///   - headers: more header fields.
    public init(status: Int, contentType: String, text: String, headers: [HeaderField] = []) {
        self.init(
            status: status, headers: [HeaderField("Content-Type", contentType)] + headers,
            body: .bytes(Array(text.utf8)))
    }
}

/// The standard reason phrase for a status code.
func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 200: "OK"
    case 201: "Created"
    case 202: "Accepted"
    case 204: "No Content"
    case 286: "Stop Polling"
    case 303: "See Other"
    case 304: "Not Modified"
    case 400: "Bad Request"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 409: "Conflict"
    case 413: "Content Too Large"
    case 414: "URI Too Long"
    case 415: "Unsupported Media Type"
    case 422: "Unprocessable Content"
    case 429: "Too Many Requests"
    case 500: "Internal Server Error"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    default: "Status \(status)"
    }
}

/// The whole `Status:` line, CRLF included, for the codes of ``reasonPhrase(_:)`` (written as they are, without
/// building a string per response); `nil` for others.
func statusLine(_ status: Int) -> StaticString? {
    switch status {
    case 200: "Status: 200 OK\r\n"
    case 201: "Status: 201 Created\r\n"
    case 202: "Status: 202 Accepted\r\n"
    case 204: "Status: 204 No Content\r\n"
    case 286: "Status: 286 Stop Polling\r\n"
    case 303: "Status: 303 See Other\r\n"
    case 304: "Status: 304 Not Modified\r\n"
    case 400: "Status: 400 Bad Request\r\n"
    case 403: "Status: 403 Forbidden\r\n"
    case 404: "Status: 404 Not Found\r\n"
    case 405: "Status: 405 Method Not Allowed\r\n"
    case 409: "Status: 409 Conflict\r\n"
    case 413: "Status: 413 Content Too Large\r\n"
    case 414: "Status: 414 URI Too Long\r\n"
    case 415: "Status: 415 Unsupported Media Type\r\n"
    case 422: "Status: 422 Unprocessable Content\r\n"
    case 429: "Status: 429 Too Many Requests\r\n"
    case 500: "Status: 500 Internal Server Error\r\n"
    case 502: "Status: 502 Bad Gateway\r\n"
    case 503: "Status: 503 Service Unavailable\r\n"
    case 504: "Status: 504 Gateway Timeout\r\n"
    default: nil
    }
}

/// Header fields and their encoding (`Name: value` and CRLF each, CR and LF removed from values), made once for
/// header sets that answer many requests.
package struct HeaderBlock: Sendable {
    /// The fields.
    package let fields: [HeaderField]
    /// Their encoding.
    package let bytes: [UInt8]

    /// - Parameter fields: the header fields.
    package init(_ fields: [HeaderField]) {
        self.fields = fields
        var bytes: [UInt8] = []
        Self.append(fields, to: &bytes)
        self.bytes = bytes
    }

    /// Appends header fields' encoding.
    static func append(_ fields: [HeaderField], to head: inout [UInt8]) {
        for field in fields {
            head.append(contentsOf: field.name.utf8)
            head.append(contentsOf: ": ".utf8)
            // A header value never carries a line break: that would let a value inject headers.
            for byte in field.value.utf8 where byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") {
                head.append(byte)
            }
            head.append(contentsOf: "\r\n".utf8)
        }
    }
}
