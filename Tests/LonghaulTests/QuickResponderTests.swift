import Foundation
import Logging
import LonghaulTestSupport
import Tasks
import Testing

@testable import FastCGI
@testable import Longhaul

#if canImport(Glibc)
    import Glibc
#endif

/// The quick path of `GET /check` (``TaskPollResponder``) answers exactly what the router answers, byte for byte on
/// the wire, or declines: the pending fragments it recognises, and every other form of the request left to the
/// router.
@Suite(.timeLimit(.minutes(1))) struct QuickResponderTests {
    /// An app over a memory store whose tasks never run (the table is not started): each stays as stored.
    struct Fixture {
        let app: LonghaulApp
        let store: MemoryTaskStore
        let pending: [TaskRecord]
        let finished: TaskRecord
        let large: TaskRecord

        init(basePath: String, logger: Logger = Logger(label: "test"), accessLog: Bool = false) throws {
            store = MemoryTaskStore(resultTTL: .seconds(60))
            let table = TaskTable(store: store, jobs: ["echo": EchoJob()], logger: Logger(label: "test"))
            var configuration = LonghaulApp.Configuration()
            configuration.basePath = basePath
            configuration.operations.accessLog = accessLog
            app = LonghaulApp(table: table, configuration: configuration, logger: logger) { _, _ in }
            let created = Date(timeIntervalSince1970: 1_764_800_000.25)
            var queued = TaskRecord(id: .random(), kind: "echo", input: "plain question", createdAt: created)
            var running = TaskRecord(
                id: .random(), kind: "echo", input: #"<script>"quotes" & 'apostrophes' é 🚀</script>"#,
                createdAt: Date().addingTimeInterval(-125))
            running.status = .running
            running.startedAt = running.createdAt
            running.output = "partial <b>answer</b> & more é"
            running.cancelRequested = true
            queued.status = .queued
            var done = TaskRecord(id: .random(), kind: "echo", input: "done", createdAt: created)
            done.status = .succeeded
            done.finishedAt = Date()
            done.output = "the answer"
            // A fragment larger than the quick path's buffer: the router answers it.
            let big = TaskRecord(
                id: .random(), kind: "echo", input: String(repeating: "<>", count: 4000), createdAt: created)
            for record in [queued, running, done, big] {
                _ = try store.enqueue(record, admission: Admission(maxQueued: 100))
            }
            pending = [queued, running]
            finished = done
            large = big
        }

        var responder: TaskPollResponder {
            get throws { try #require(app.quickResponder as? TaskPollResponder) }
        }
    }

    /// The bytes the server writes for a response from the router (``FastCGIServer``'s head, then the body).
    static func wireBytes(_ response: FastCGIResponse) -> [UInt8] {
        let body = response.body.completeBytes ?? []
        var head = FastCGIServer.headerBlock(response)
        head += Array("Content-Length: \(body.count)\r\n\r\n".utf8)
        return head + body
    }

    /// The quick responder's answer to a request with these parameters, as the server would take it from its
    /// scratch buffer; `nil` when it declines.
    static func quickAnswer(_ responder: TaskPollResponder, _ params: [(String, String)]) -> [UInt8]? {
        let entries = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: params.count + 1)
        defer { entries.deallocate() }
        for (index, (name, value)) in params.enumerated() { entries[index] = strdup("\(name)=\(value)") }
        entries[params.count] = nil
        defer { for index in 0..<params.count { free(entries[index]) } }
        let scratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 16_384)
        defer { scratch.deallocate() }
        var answer = QuickAnswer(buffer: scratch)
        let request = FastCGIRequestInPlace(entries: entries, scan: ParameterScan(entries))
        guard responder.respond(to: request, into: &answer) else {
            #expect(answer.written == nil, "a declined request wrote nothing")
            return nil
        }
        return Array(answer.bytes)
    }

    static func routerAnswer(_ app: LonghaulApp, _ params: [(String, String)]) -> FastCGIResponse {
        app.respond(to: FastCGIRequest(params: Dictionary(params, uniquingKeysWith: { _, last in last })))
    }

    /// nginx's parameters for a request (its `fastcgi_params`, in its order).
    static func params(_ method: String, _ path: String, _ query: String, extra: [(String, String)] = [])
        -> [(String, String)]
    {
        [
            ("QUERY_STRING", query), ("REQUEST_METHOD", method), ("CONTENT_TYPE", ""), ("CONTENT_LENGTH", ""),
            ("SCRIPT_NAME", path), ("REQUEST_URI", query.isEmpty ? path : "\(path)?\(query)"),
            ("DOCUMENT_URI", path), ("DOCUMENT_ROOT", "/usr/share/nginx/html"), ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "https"), ("REMOTE_ADDR", "127.0.0.1"), ("HTTP_HX_REQUEST", "true"),
        ] + extra
    }

    /// Every pending task's poll is answered quickly, with the router's bytes, at the root and under a base path.
    @Test(arguments: ["", "/tools/ask"])
    func pendingPollsAreAnsweredWithTheRoutersBytes(basePath: String) throws {
        let fixture = try Fixture(basePath: basePath)
        let responder = try fixture.responder
        for record in fixture.pending {
            let params = Self.params("GET", "\(basePath)/check", "task_id=\(record.id)")
            let quick = try #require(Self.quickAnswer(responder, params), "a pending poll is answered quickly")
            let routed = Self.routerAnswer(fixture.app, params)
            #expect(routed.status == 200)
            // The two answers' current times may fall in different milliseconds or seconds: they are compared apart.
            #expect(Self.withoutTimes(quick) != String(decoding: quick, as: UTF8.self))
            #expect(Self.withoutTimes(quick) == Self.withoutTimes(Self.wireBytes(routed)))
            #expect(String(decoding: quick, as: UTF8.self).contains("task-\(record.id)"))
        }
    }

    /// Every other form of the request is declined, so that the router answers it.
    @Test func everythingElseIsDeclined() throws {
        let fixture = try Fixture(basePath: "")
        let responder = try fixture.responder
        let id = fixture.pending[0].id
        let declined: [[(String, String)]] = [
            Self.params("HEAD", "/check", "task_id=\(id)"),
            Self.params("POST", "/check", "task_id=\(id)"),
            Self.params("GETS", "/check", "task_id=\(id)"),
            Self.params("GET", "/checks", "task_id=\(id)"),
            Self.params("GET", "/chec", "task_id=\(id)"),
            Self.params("GET", "/task", "task_id=\(id)"),
            Self.params("GET", "/check", "task_id=\(id)&x=1"),
            Self.params("GET", "/check", "x=1&task_id=\(id)"),
            Self.params("GET", "/check", "task_id=\(id)x"),
            Self.params("GET", "/check", "task_id=\(String(id.rawValue.dropLast()))"),
            Self.params("GET", "/check", "task_id=%41\(String(id.rawValue.dropFirst()))"),
            Self.params("GET", "/check", "task_id=\(TaskID.random())"),
            Self.params("GET", "/check", "task_id=\(fixture.finished.id)"),
            Self.params("GET", "/check", "task_id=\(fixture.large.id)"),
            Self.params("GET", "/check", "task_id="),
            Self.params("GET", "/check", ""),
            Self.params("GET", "/check", "task_id=\(id)", extra: [("CONTENT_LENGTH", "3")]),
            Self.params("GET", "/check", "task_id=\(id)", extra: [("REQUEST_METHOD", "DELETE")]),
            Self.params("GET", "/check", "task_id=\(TaskID.random())", extra: [("QUERY_STRING", "task_id=\(id)&")]),
            [("DOCUMENT_URI", "/check"), ("QUERY_STRING", "task_id=\(id)")],  // no method
        ]
        for params in declined {
            #expect(Self.quickAnswer(responder, params) == nil, "\(params)")
        }
        // The last entry of a name wins, as the router reads it: these are polls of a pending task.
        let other = TaskID.random()
        let lastWins: [[(String, String)]] = [
            Self.params("GET", "/check", "task_id=\(other)", extra: [("QUERY_STRING", "task_id=\(id)")]),
            Self.params("POST", "/check", "task_id=\(id)", extra: [("REQUEST_METHOD", "GET")]),
            Self.params("GET", "/check", "task_id=\(id)", extra: [("CONTENT_LENGTH", "0")]),
        ]
        for params in lastWins {
            let quick = try #require(Self.quickAnswer(responder, params), "\(params)")
            #expect(
                Self.withoutTimes(quick) == Self.withoutTimes(Self.wireBytes(Self.routerAnswer(fixture.app, params))))
        }
    }

    /// With the access log on, a quick answer logs the line the router's answer logs (the duration aside).
    @Test(arguments: ["", "/tools/ask"])
    func quickAnswersWriteTheRoutersAccessLogLine(basePath: String) throws {
        let (logger, entries) = CapturingLogHandler.logger()
        let fixture = try Fixture(basePath: basePath, logger: logger, accessLog: true)
        let responder = try fixture.responder
        let params = Self.params("GET", basePath + "/check", "task_id=\(fixture.pending[0].id)")
        _ = Self.routerAnswer(fixture.app, params)
        _ = try #require(Self.quickAnswer(responder, params))
        let lines = entries.all.filter { $0.message == "request" }.map { entry in
            entry.metadata.filter { $0.key != "http.duration_us" }.mapValues { "\($0)" }
        }
        try #require(lines.count == 2)
        #expect(lines[0] == lines[1])
        #expect(lines[1]["task.id"] == "\(fixture.pending[0].id)")
        #expect(lines[1]["http.path"] == basePath + "/check")
        #expect(entries.all.filter { $0.message == "request" }.allSatisfy { $0.metadata["http.duration_us"] != nil })
    }

    /// The bytes as text, with what depends on the current time blanked: the server's time and the time elapsed.
    static func withoutTimes(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
            .replacingOccurrences(
                of: #"data-server-time="[^"]*""#, with: #"data-server-time="""#, options: .regularExpression
            )
            .replacingOccurrences(
                of: #"role="timer">[^<]*<"#, with: #"role="timer"><"#, options: .regularExpression)
    }
}
