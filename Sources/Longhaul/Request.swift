public import FastCGI
import Foundation
public import Tasks

/// An HTTP request as the app's routes see it: the FastCGI request plus decoding helpers.
public struct Request: Sendable {
    /// The request as it came over FastCGI.
    public let raw: FastCGIRequest
    /// The path below the app's base path, for example `/check`.
    public let path: String
    /// Path parameters captured by the route pattern (`/api/tasks/:id` gives `id`).
    public internal(set) var pathParameters: [String: String] = [:]

    /// - Parameters:
    ///   - raw: the FastCGI request.
    ///   - path: the path relative to the app's base path.
    public init(raw: FastCGIRequest, path: String) {
        self.raw = raw
        self.path = path
    }

    /// The HTTP method.
    public var method: String { raw.method }

    /// Whether htmx sent it (`HX-Request: true`), so the answer is a fragment rather than a page.
    public var isHTMX: Bool { raw.header("HX-Request") == "true" }

    /// A request header, case-insensitively.
    /// - Parameter name: the header name.
    /// - Returns: its value.
    public func header(_ name: String) -> String? { raw.header(name) }

    /// The decoded query parameters.
    /// - Throws: ``HTTPError`` 400 on broken percent-encoding or bytes that are not UTF-8.
    public func queryParameters() throws(HTTPError) -> [(name: String, value: String)] {
        do {
            return try URLEncodedForm.decode(raw.queryString)
        } catch {
            throw HTTPError.badRequest("The query string is not valid: \(Self.explain(error)).")
        }
    }

    /// The first value of a query parameter.
    /// - Parameter name: the parameter name.
    /// - Returns: its first value, or `nil`.
    /// - Throws: ``HTTPError`` 400 when the query string cannot be decoded.
    public func queryParameter(_ name: String) throws(HTTPError) -> String? {
        // Nearly every query string (`task_id=…`) needs no decoding: look the name up in place.
        let plain = raw.withParameterBytes(.queryString) { query -> String?? in
            guard let query else { return .some(nil) }  // no query string at all: the field is absent
            return URLEncodedForm.firstValueIfPlain(named: name, inUTF8: query)
        }
        if let found = plain { return found }
        return try queryParameters().first { $0.name == name }?.value
    }

    /// A query parameter that names a task, read as a ``TaskID`` in place when the query needs no decoding (the
    /// polls of `check`): no `String` is made for it.
    /// - Parameter name: the parameter name.
    /// - Returns: the id, or `nil` when the parameter is absent or is not a task id.
    /// - Throws: ``HTTPError`` 400 when the query string cannot be decoded.
    public func queryTaskID(_ name: String) throws(HTTPError) -> TaskID? {
        let plain = raw.withParameterBytes(.queryString) { query -> TaskID??? in
            guard let query else { return .some(.some(nil)) }
            return URLEncodedForm.firstValueIfPlain(named: name, inUTF8: query) { TaskID(utf8: $0) }
        }
        if let found = plain { return found ?? nil }
        return try queryParameter(name).flatMap { TaskID($0) }
    }

    /// The decoded fields of a `application/x-www-form-urlencoded` body.
    /// - Throws: ``HTTPError`` 413 for a body over the limit, 415 for another content type, 400 when undecodable.
    public func formFields() throws(HTTPError) -> [(name: String, value: String)] {
        if raw.bodyTooLarge { throw HTTPError.contentTooLarge("The request body is too large.") }
        if !raw.body.isEmpty || raw.contentType != nil {
            guard mediaType == "application/x-www-form-urlencoded" else {
                throw HTTPError.unsupportedMediaType("Send the form as application/x-www-form-urlencoded.")
            }
        }
        do {
            return try URLEncodedForm.decode(raw.body)
        } catch {
            throw HTTPError.badRequest("The form could not be read: \(Self.explain(error)).")
        }
    }

    /// The body decoded as JSON into a `Decodable` type, after a strict check of JSON's grammar (RFC 8259: no
    /// trailing commas, comments, `NaN`… that Foundation's decoder would let through).
    ///
    /// The type's `init(from:)` may throw an ``HTTPError`` to refuse a well-formed body (an unknown field, a field of
    /// the wrong type); it comes back as it is.
    /// - Parameter type: the body's type; its top level must be a JSON object (a keyed container).
    /// - Returns: the decoded body.
    /// - Throws: ``HTTPError`` 413 (too large), 415 (not `application/json`), 400 (not JSON, not an object, or
    ///   refused by the type).
    public func jsonBody<Body: Decodable>(_ type: Body.Type) throws(HTTPError) -> Body {
        if raw.bodyTooLarge { throw HTTPError.contentTooLarge("The request body is too large.") }
        guard mediaType == "application/json" else {
            throw HTTPError.unsupportedMediaType("Send the body as application/json.")
        }
        guard StrictJSON.isValid(raw.body) else { throw HTTPError.badRequest("The body is not valid JSON (UTF-8).") }
        do {
            return try JSONDecoder().decode(Body.self, from: Data(raw.body))
        } catch let error as HTTPError {
            throw error
        } catch DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw HTTPError.badRequest("The body must be a JSON object.")
        } catch DecodingError.valueNotFound(_, let context) where context.codingPath.isEmpty {
            throw HTTPError.badRequest("The body must be a JSON object.")  // `null`
        } catch DecodingError.dataCorrupted {
            throw HTTPError.badRequest("The body is not valid JSON (UTF-8).")
        } catch {
            throw HTTPError.badRequest("The body does not have the expected fields.")
        }
    }

    /// The media type of the body, lower-cased, without parameters.
    public var mediaType: String? {
        guard let contentType = raw.contentType else { return nil }
        // The common case, an ASCII header, read as bytes: `Character`s would run grapheme breaking on every POST.
        if contentType.utf8.allSatisfy({ $0 < 0x80 }) {
            var type: [UInt8] = []
            for byte in contentType.utf8 {
                if byte == UInt8(ascii: ";") { break }
                switch byte {
                case 0x09...0x0D, 0x20: continue
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): type.append(byte | 0x20)
                default: type.append(byte)
                }
            }
            return type.isEmpty ? nil : String(decoding: type, as: UTF8.self)
        }
        let type = String(contentType.prefix { $0 != ";" }.filter { !$0.isWhitespace }).lowercased()
        return type.isEmpty ? nil : type
    }

    private static func explain(_ error: URLEncodedForm.DecodingError) -> String {
        switch error {
        case .invalidPercentEncoding: "a % is not followed by two hexadecimal digits"
        case .notUTF8: "it is not UTF-8"
        }
    }
}
