import Glibc

/// One request as nginx passed it over FastCGI: the CGI parameters and the body.
public struct FastCGIRequest: Sendable {
    /// The parameters as libfcgi handed them over, read in place by name.
    package var parameters: FastCGIParameters {
        didSet { method = Self.method(of: parameters) }
    }
    /// The request body, read up to the server's size limit.
    public var body: [UInt8]
    /// Whether the body was larger than the server's limit (then ``body`` is empty).
    public var bodyTooLarge: Bool

    /// - Parameters:
    ///   - params: the FastCGI parameters.
    ///   - body: the request body.
    ///   - bodyTooLarge: whether the body exceeded the limit.
    public init(params: [String: String], body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.init(parameters: FastCGIParameters(params), body: body, bodyTooLarge: bodyTooLarge)
    }

    /// - Parameters:
    ///   - parameters: the FastCGI parameters.
    ///   - body: the request body.
    ///   - bodyTooLarge: whether the body exceeded the limit.
    package init(parameters: FastCGIParameters, body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.parameters = parameters
        self.body = body
        self.bodyTooLarge = bodyTooLarge
        self.method = Self.method(of: parameters)
    }

    /// Every FastCGI parameter (CGI/1.1 meta-variables and `HTTP_*` headers), as a dictionary. Builds it on each
    /// call: the accessors below (``method``, ``path``, ``header(_:)``…) read single parameters without it.
    public var params: [String: String] {
        get { parameters.dictionary }
        set { parameters = FastCGIParameters(newValue) }
    }

    /// Maps CGI environment entries (`NAME=VALUE`, as libfcgi hands them over) to parameters.
    ///
    /// The name ends at the first `=`; an entry without one is skipped; a later entry wins over an earlier one with
    /// the same name; bytes that are not UTF-8 become U+FFFD. Pure, so that the fuzz targets can call it.
    /// - Parameter entries: the entries' bytes, without their terminating NUL.
    /// - Returns: the parameters.
    package static func params(fromEnvironment entries: some Sequence<UnsafeBufferPointer<UInt8>>) -> [String: String] {
        FastCGIParameters(environment: entries).dictionary
    }

    /// The HTTP method (`REQUEST_METHOD`), `GET` when absent. Read once: every request asks several times.
    public private(set) var method: String

    private static func method(of parameters: FastCGIParameters) -> String {
        parameters.withValueBytes(.requestMethod) { bytes -> String in
            guard let bytes else { return "GET" }
            // The common methods as literals: no `String` is made from the bytes.
            func isLiteral(_ literal: StaticString) -> Bool {
                bytes.count == literal.utf8CodeUnitCount
                    && memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0
            }
            switch bytes.count {
            case 3 where isLiteral("GET"): return "GET"
            case 3 where isLiteral("PUT"): return "PUT"
            case 4 where isLiteral("POST"): return "POST"
            case 4 where isLiteral("HEAD"): return "HEAD"
            case 6 where isLiteral("DELETE"): return "DELETE"
            default: return parameters[.requestMethod] ?? "GET"
            }
        }
    }

    /// Calls `body` with a well-known parameter's value as bytes (not UTF-8 checked, valid only during the call),
    /// or `nil` when it is absent: found without a search, read without a copy.
    /// - Parameters:
    ///   - name: the parameter.
    ///   - body: what to do with the bytes.
    package func withParameterBytes<Result>(
        _ name: FastCGIParameters.WellKnown, _ body: (UnsafeBufferPointer<UInt8>?) -> Result
    ) -> Result {
        parameters.withValueBytes(name, body)
    }

    /// The decoded, normalised path nginx matched (`DOCUMENT_URI`), else the path part of `REQUEST_URI`.
    public var path: String {
        if let uri = parameters[.documentURI], !uri.isEmpty { return uri }
        let requestURI = parameters[.requestURI] ?? "/"
        return String(requestURI.prefix { $0 != "?" })
    }

    /// The raw, still percent-encoded query string.
    public var queryString: String { parameters[.queryString] ?? "" }

    /// The client's address as nginx saw it (`REMOTE_ADDR`).
    public var remoteAddress: String? { parameters["REMOTE_ADDR"] }

    /// The request's `Content-Type`, if any.
    public var contentType: String? {
        guard let value = parameters[.contentType], !value.isEmpty else { return nil }
        return value
    }

    /// A request header by its HTTP name, case-insensitively (`header("HX-Request")` reads `HTTP_HX_REQUEST`).
    /// - Parameter name: the header name.
    /// - Returns: its value, or `nil`.
    public func header(_ name: String) -> String? {
        parameters.header(name)
    }
}
