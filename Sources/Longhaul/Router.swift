public import FastCGI
import Glibc

/// Maps a method and a path to a handler, and turns thrown ``HTTPError``s into answers.
///
/// Patterns are literal paths whose segments may be `:name` captures (`/api/tasks/:id`). `HEAD` is answered by
/// the `GET` handler (the server drops the body). A path that matches with another method gets 405 with `Allow`.
public struct Router: Sendable {
    /// Answers one request. Runs on a FastCGI thread: it may block briefly but never for long.
    public typealias Handler = @Sendable (Request) throws(HTTPError) -> Response
    /// Renders an error for a request (JSON for APIs, HTML for pages).
    public typealias ErrorRenderer = @Sendable (HTTPError, Request) -> Response

    private struct Route: Sendable {
        let method: String
        let segments: [Substring]
        let handler: Handler
    }

    /// The path prefix the app is mounted under, without a trailing slash (`""` at the root).
    public let basePath: String
    private var routes: [Route] = []
    /// The routes without captures, by path (`/check`), each list in the order added: a request's canonical path
    /// finds its route by comparing paths of its length only, instead of walking every pattern (a dozen paths:
    /// cheaper than hashing the path for a dictionary).
    private var literalRoutes: [(path: String, utf8: [UInt8], routes: [Route])] = []
    /// ``basePath``'s bytes.
    private let baseUTF8: [UInt8]
    private let renderError: ErrorRenderer

    /// - Parameters:
    ///   - basePath: the prefix the app is mounted under (for example `/tools/ask`), or `""`.
    ///   - renderError: how errors are shown.
    public init(basePath: String = "", renderError: @escaping ErrorRenderer = Router.defaultErrorRenderer) {
        self.basePath = Self.normalized(basePath: basePath)
        self.baseUTF8 = Array(self.basePath.utf8)
        self.renderError = renderError
    }

    /// A base path as the router keeps it: without trailing slashes.
    /// - Parameter basePath: the prefix as configured (`/tools/ask/`, `/`, `""`).
    /// - Returns: the prefix without trailing slashes (`/tools/ask`, `""`).
    public static func normalized(basePath: String) -> String {
        var base = basePath
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    /// Adds a route.
    /// - Parameters:
    ///   - method: the HTTP method (`GET`, `POST`, `DELETE`…).
    ///   - pattern: the path below the base path, segments starting with `:` capture.
    ///   - handler: the handler.
    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let route = Route(method: method, segments: Self.split(pattern), handler: handler)
        if !route.segments.contains(where: { $0.first == ":" }) {
            // A capturing route added earlier for the same method that matches this path answers it in the walk
            // (routes are tried in the order added): leave the path to the walk then.
            let shadowed = routes.contains { earlier in
                earlier.method == method && earlier.segments.contains { $0.first == ":" }
                    && Self.match(earlier.segments, route.segments) != nil
            }
            if !shadowed {
                let path = "/" + route.segments.joined(separator: "/")
                if let index = literalRoutes.firstIndex(where: { $0.path == path }) {
                    literalRoutes[index].routes.append(route)
                } else {
                    literalRoutes.append((path, Array(path.utf8), [route]))
                }
            }
        }
        routes.append(route)
    }

    /// Answers a request.
    /// - Parameter raw: the FastCGI request.
    /// - Returns: the handler's answer, or an error answer.
    public func respond(to raw: FastCGIRequest) -> Response {
        let method = raw.method == "HEAD" ? "GET" : raw.method
        // A literal route answers a canonical path at once (the same route the walk would find: see `add`), found
        // from the path's bytes, its `String` the route's own; other paths, other methods (405) and captures take
        // the walk below.
        if let (path, route) = literalRoute(for: raw, method: method) {
            let request = Request(raw: raw, path: path)
            do {
                return try route.handler(request)
            } catch {
                return renderError(error, request)
            }
        }
        let fullPath = raw.path
        let relative: String
        if basePath.isEmpty {
            relative = fullPath
        } else if fullPath == basePath {
            relative = "/"
        } else if fullPath.hasPrefix(basePath + "/") {
            relative = String(fullPath.dropFirst(basePath.count))
        } else {
            relative = fullPath
        }
        var request = Request(raw: raw, path: relative)
        let segments = Self.split(relative)
        var allowed: [String] = []
        for route in routes {
            guard let captures = Self.match(route.segments, segments) else { continue }
            guard route.method == method else {
                allowed.append(route.method)
                continue
            }
            request.pathParameters = captures
            do {
                return try route.handler(request)
            } catch {
                return renderError(error, request)
            }
        }
        if !allowed.isEmpty {
            if allowed.contains("GET") { allowed.append("HEAD") }
            return renderError(.methodNotAllowed(allowed: allowed), request)
        }
        return renderError(.notFound("There is nothing at this address."), request)
    }

    /// The literal route for a request's path (`DOCUMENT_URI`, below the base path) and method, with the path as
    /// the route was added: `nil` when the path is not canonical or no literal route has it (the walk decides then).
    private func literalRoute(for raw: FastCGIRequest, method: String) -> (path: String, route: Route)? {
        raw.withParameterBytes(.documentURI) { uri -> (path: String, route: Route)? in
            guard let uri, !uri.isEmpty else { return nil }
            let relative: UnsafeBufferPointer<UInt8>
            if baseUTF8.isEmpty {
                relative = uri
            } else if uri.elementsEqual(baseUTF8) {
                return nil  // the base itself: "/" below it, left to the walk
            } else if uri.count > baseUTF8.count, uri[baseUTF8.count] == UInt8(ascii: "/"),
                uri.starts(with: baseUTF8)
            {
                relative = UnsafeBufferPointer(rebasing: uri[baseUTF8.count...])
            } else {
                relative = uri
            }
            guard Self.isCanonical(relative) else { return nil }
            guard let start = relative.baseAddress else { return nil }
            for entry in literalRoutes where entry.utf8.count == relative.count {
                // Not empty (the same length as a canonical path): the array has storage.
                guard entry.utf8.withUnsafeBytes({ memcmp($0.baseAddress!, start, $0.count) == 0 }) else { continue }
                guard let route = entry.routes.first(where: { $0.method == method }) else { return nil }
                return (entry.path, route)
            }
            return nil
        }
    }

    /// JSON `{"error":{"type","message"}}` with the error's status and headers.
    public static let defaultErrorRenderer: ErrorRenderer = { error, _ in
        jsonError(error)
    }

    /// Renders an error as the JSON API does.
    /// - Parameter error: the error.
    /// - Returns: the JSON response.
    public static func jsonError(_ error: HTTPError) -> Response {
        .json(
            .object([
                ("error", .object([("type", .string(error.type.rawValue)), ("message", .string(error.message))]))
            ]), status: error.status, headers: error.headers)
    }

    /// Whether a path is the one its segments spell (`/a/b`, `/`): ASCII, a leading slash, no empty segment.
    private static func isCanonical(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.first == UInt8(ascii: "/") else { return false }
        guard bytes.count > 1 else { return true }
        var previous: UInt8 = 0
        for byte in bytes {
            if byte >= 0x80 || (byte == UInt8(ascii: "/") && previous == byte) { return false }
            previous = byte
        }
        return previous != UInt8(ascii: "/")
    }

    /// The non-empty segments between slashes. An ASCII path (every routed one) is cut by its bytes; any other
    /// by Characters, as before (a "/" followed by a combining mark is no separator there).
    private static func split(_ path: String) -> [Substring] {
        let utf8 = path.utf8
        guard utf8.allSatisfy({ $0 < 0x80 }) else { return path.split(separator: "/", omittingEmptySubsequences: true) }
        var segments: [Substring] = []
        var start = utf8.startIndex
        var index = start
        while index != utf8.endIndex {
            if utf8[index] == UInt8(ascii: "/") {
                if start != index { segments.append(path[start..<index]) }
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        if start != index { segments.append(path[start..<index]) }
        return segments
    }

    private static func match(_ pattern: [Substring], _ path: [Substring]) -> [String: String]? {
        guard pattern.count == path.count else { return nil }
        var captures: [String: String] = [:]
        for (expected, actual) in zip(pattern, path) {
            if expected.first == ":" {
                captures[String(expected.dropFirst())] = String(actual)
            } else if expected != actual {
                return nil
            }
        }
        return captures
    }
}
