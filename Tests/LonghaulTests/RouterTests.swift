import FastCGI
import Longhaul
import Testing

/// `Router` on its own: matching, captures, the base path, HEAD, 405 with `Allow`, 404 and thrown errors.
@Suite(.timeLimit(.minutes(2))) struct RouterTests {
    private static func request(_ method: String, _ uri: String) -> FastCGIRequest {
        let path = String(uri.prefix { $0 != "?" })
        let query = uri.contains("?") ? String(uri.drop { $0 != "?" }.dropFirst()) : ""
        return FastCGIRequest(params: [
            "REQUEST_METHOD": method, "DOCUMENT_URI": path, "REQUEST_URI": uri, "QUERY_STRING": query,
            "SCRIPT_NAME": path,
        ])
    }

    private static func text(_ response: Response) -> String {
        guard let bytes = response.body.completeBytes else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func router(basePath: String = "") -> Router {
        var router = Router(basePath: basePath)
        router.add("GET", "/") { _ in .text("index") }
        router.add("GET", "/api/tasks/:id") { request in .text("get \(request.pathParameters["id"] ?? "-")") }
        router.add("DELETE", "/api/tasks/:id") { request in .text("delete \(request.pathParameters["id"] ?? "-")") }
        router.add("GET", "/api/tasks/:id/events") { request in .text("events \(request.pathParameters["id"] ?? "-")") }
        router.add("POST", "/fails") { _ throws(HTTPError) in throw HTTPError.badRequest("nope") }
        return router
    }

    @Test func aLiteralPathReachesItsHandler() {
        let response = Self.router().respond(to: Self.request("GET", "/"))
        #expect(response.status == 200)
        #expect(Self.text(response) == "index")
    }

    @Test(arguments: [
        ("GET", "/api/tasks/abc", "get abc"), ("DELETE", "/api/tasks/xyz", "delete xyz"),
        ("GET", "/api/tasks/abc/events", "events abc"), ("GET", "/api/tasks/abc/?x=1", "get abc"),
    ])
    func capturesNameTheirSegment(method: String, uri: String, expected: String) {
        let response = Self.router().respond(to: Self.request(method, uri))
        #expect(response.status == 200)
        #expect(Self.text(response) == expected)
    }

    @Test func headIsAnsweredByTheGetHandler() {
        let response = Self.router().respond(to: Self.request("HEAD", "/api/tasks/abc"))
        #expect(response.status == 200)
        #expect(Self.text(response) == "get abc")
    }

    @Test func anotherMethodOnAKnownPathIs405WithAllow() throws {
        let response = Self.router().respond(to: Self.request("PUT", "/api/tasks/abc"))
        #expect(response.status == 405)
        let allow = try #require(response.headers.first { $0.name == "Allow" }?.value)
        for method in ["GET", "HEAD", "DELETE"] { #expect(allow.contains(method)) }
        #expect(!allow.contains("PUT"))
    }

    @Test(arguments: ["/nothing", "/api/tasks", "/api/tasks/a/b/c", "/api/tasks/abc/event"])
    func anUnknownPathIs404(uri: String) {
        #expect(Self.router().respond(to: Self.request("GET", uri)).status == 404)
    }

    @Test func aThrownErrorIsRenderedWithItsStatusAndType() {
        let response = Self.router().respond(to: Self.request("POST", "/fails"))
        #expect(response.status == 400)
        #expect(Self.text(response).contains("\"invalid_request\""))
        #expect(Self.text(response).contains("nope"))
    }

    @Test(arguments: [
        ("/ask", "/ask/api/tasks/q1", 200), ("/ask/", "/ask", 200), ("/ask", "/ask/", 200),
        ("/ask", "/askew/api/tasks/q1", 404),
    ])
    func theBasePathIsStrippedOnlyAtASegmentBoundary(base: String, uri: String, status: Int) {
        let router = Self.router(basePath: base)
        #expect(router.basePath == "/ask")
        #expect(router.respond(to: Self.request("GET", uri)).status == status)
    }

    @Test func aCustomRendererSeesTheRequestAndTheError() {
        var router = Router { error, request in .text("\(error.status) at \(request.path)", status: error.status) }
        router.add("GET", "/x") { _ in .text("x") }
        let response = router.respond(to: Self.request("GET", "/missing"))
        #expect(response.status == 404)
        #expect(Self.text(response) == "404 at /missing")
    }
}
