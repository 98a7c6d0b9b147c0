/// One request as nginx passed it over FastCGI: the CGI parameters and the body.
public struct FastCGIRequest: Sendable {
    /// Every FastCGI parameter (CGI/1.1 meta-variables and `HTTP_*` headers), copied out of libfcgi.
    public var params: [String: String]
    /// The request body, read up to the server's size limit.
    public var body: [UInt8]
    /// Whether the body was larger than the server's limit (then ``body`` is empty).
    public var bodyTooLarge: Bool

    /// - Parameters:
    ///   - params: the FastCGI parameters.
    ///   - body: the request body.
    ///   - bodyTooLarge: whether the body exceeded the limit.
    public init(params: [String: String], body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.params = params
        self.body = body
        self.bodyTooLarge = bodyTooLarge
    }

    /// Maps CGI environment entries (`NAME=VALUE`, as libfcgi hands them over) to parameters.
    ///
    /// The name ends at the first `=`; an entry without one is skipped; a later entry wins over an earlier one with
    /// the same name; bytes that are not UTF-8 become U+FFFD. Pure, so that the fuzz targets can call it.
    /// - Parameter entries: the entries' bytes, without their terminating NUL.
    /// - Returns: the parameters.
    package static func params(fromEnvironment entries: some Sequence<UnsafeBufferPointer<UInt8>>) -> [String: String] {
        var params = [String: String](minimumCapacity: 32)
        for entry in entries {
            guard let equals = entry.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let name = String(decoding: UnsafeBufferPointer(rebasing: entry[..<equals]), as: UTF8.self)
            let value = String(decoding: UnsafeBufferPointer(rebasing: entry[(equals + 1)...]), as: UTF8.self)
            params[name] = value
        }
        return params
    }

    /// The HTTP method (`REQUEST_METHOD`), `GET` when absent.
    public var method: String { params["REQUEST_METHOD"] ?? "GET" }

    /// The decoded, normalised path nginx matched (`DOCUMENT_URI`), else the path part of `REQUEST_URI`.
    public var path: String {
        if let uri = params["DOCUMENT_URI"], !uri.isEmpty { return uri }
        let requestURI = params["REQUEST_URI"] ?? "/"
        return String(requestURI.prefix { $0 != "?" })
    }

    /// The raw, still percent-encoded query string.
    public var queryString: String { params["QUERY_STRING"] ?? "" }

    /// The client's address as nginx saw it (`REMOTE_ADDR`).
    public var remoteAddress: String? { params["REMOTE_ADDR"] }

    /// The request's `Content-Type`, if any.
    public var contentType: String? {
        guard let value = params["CONTENT_TYPE"], !value.isEmpty else { return nil }
        return value
    }

    /// A request header by its HTTP name, case-insensitively (`header("HX-Request")` reads `HTTP_HX_REQUEST`).
    /// - Parameter name: the header name.
    /// - Returns: its value, or `nil`.
    public func header(_ name: String) -> String? {
        var key = "HTTP_"
        key.reserveCapacity(5 + name.utf8.count)
        for scalar in name.unicodeScalars {
            key.unicodeScalars.append(scalar == "-" ? "_" : Unicode.Scalar(UInt8(ascii: scalar).uppercasedASCII))
        }
        return params[key]
    }
}

extension UInt8 {
    init(ascii scalar: Unicode.Scalar) {
        self = scalar.isASCII ? UInt8(scalar.value) : UInt8(ascii: "?")
    }

    var uppercasedASCII: UInt8 { (0x61...0x7A).contains(self) ? self - 0x20 : self }
}
