public import FastCGI
public import HTML
import Logging
public import Tasks

/// The answer to a request.
public typealias Response = FastCGIResponse

extension FastCGIResponse {
    /// Headers every dynamic answer carries: it is per-user and changes, so no cache may keep it.
    static let dynamicHeaders = [HeaderField("Cache-Control", "no-store")]
    /// An HTML answer's headers, built once.
    static let htmlHeaders = [HeaderField("Content-Type", "text/html; charset=utf-8")] + dynamicHeaders
    /// ``htmlHeaders``, encoded once.
    static let htmlHeaderBlock = HeaderBlock(htmlHeaders)

    /// An HTML page or fragment.
    /// - Parameters:
    ///   - html: the markup.
    ///   - status: the HTTP status code.
    ///   - headers: extra headers.
    /// - Returns: a `text/html; charset=utf-8` response.
    public static func html(_ html: HTML, status: Int = 200, headers: [HeaderField] = []) -> Response {
        // The rendered bytes become the body as they are.
        guard headers.isEmpty else {
            return Response(status: status, headers: htmlHeaders + headers, body: .bytes(html.utf8))
        }
        return Response(status: status, headers: htmlHeaderBlock, body: .bytes(html.utf8))
    }

    /// An HTML page or fragment already rendered into a body (``Views/taskFragmentBody(_:)``).
    /// - Parameter body: the markup's bytes.
    /// - Returns: a `200`, `text/html; charset=utf-8` response.
    public static func html(body: Body) -> Response {
        Response(status: 200, headers: htmlHeaderBlock, body: body)
    }

    /// A JSON document.
    /// - Parameters:
    ///   - value: the document.
    ///   - status: the HTTP status code.
    ///   - headers: extra headers.
    /// - Returns: an `application/json` response.
    public static func json(_ value: JSONValue, status: Int = 200, headers: [HeaderField] = []) -> Response {
        Response(
            status: status, contentType: "application/json", text: value.serialized, headers: dynamicHeaders + headers)
    }

    /// A redirect, `303 See Other` by default (the answer to a form POST).
    /// - Parameters:
    ///   - location: where to go.
    ///   - status: the redirect status code.
    /// - Returns: the response.
    public static func redirect(to location: String, status: Int = 303) -> Response {
        Response(
            status: status, contentType: "text/plain; charset=utf-8", text: "See \(location)\n",
            headers: dynamicHeaders + [HeaderField("Location", location)])
    }

    /// Plain text.
    /// - Parameters:
    ///   - text: the body.
    ///   - status: the HTTP status code.
    /// - Returns: a `text/plain; charset=utf-8` response.
    public static func text(_ text: String, status: Int = 200) -> Response {
        Response(status: status, contentType: "text/plain; charset=utf-8", text: text, headers: dynamicHeaders)
    }

    /// The same response, naming the task it is about for the access log (`task.id`), which then needs no guessing
    /// from the query string or the `Location` header.
    /// - Parameter id: the task.
    /// - Returns: the response.
    public consuming func about(_ id: TaskID) -> Response {
        // Consuming: the response is handed on, not copied (a copy retains each of its parts).
        subject = id
        return self
    }
}
