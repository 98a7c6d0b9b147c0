import FastCGI
import Foundation
import HTML
import Logging
import LonghaulLLM
import LonghaulTestSupport
import RedisStore
import Synchronization
import Tasks
import Testing

@testable import Longhaul

/// The core app without the LLM: an app's own route over ``AppContext``, the generic wording, the store's errors
/// kept from clients, the access log's task id, and the typed error codes.
@Suite(.timeLimit(.minutes(2))) struct AppContextTests {
    private static func request(_ method: String, _ uri: String, body: String = "", contentType: String? = nil)
        -> FastCGIRequest
    {
        let parts = uri.split(separator: "?", maxSplits: 1)
        var params = [
            "REQUEST_METHOD": method, "DOCUMENT_URI": String(parts[0]),
            "QUERY_STRING": parts.count > 1 ? String(parts[1]) : "",
        ]
        if let contentType { params["CONTENT_TYPE"] = contentType }
        return FastCGIRequest(params: params, body: Array(body.utf8))
    }

    private static func text(_ response: FastCGIResponse) -> String {
        guard let bytes = response.body.completeBytes else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A report-like app: `POST /api/reports` with a form field `title`.
    private static func reportApp(store: any TaskStore = MemoryTaskStore(resultTTL: .seconds(60)), logger: Logger)
        -> LonghaulApp
    {
        let table = TaskTable(store: store, jobs: ["echo": EchoJob()], logger: logger)
        var configuration = LonghaulApp.Configuration()
        configuration.maxQueryBytes = 8
        configuration.operations.accessLog = true
        return LonghaulApp(table: table, configuration: configuration, logger: logger) { router, context in
            router.add("POST", "/api/reports") { request throws(HTTPError) in
                let fields = try request.formFields()
                let title = try context.requiredText(fields.first { $0.name == "title" }?.value, field: "title")
                return context.taskCreated(try context.submit(kind: "echo", input: title, for: request), for: request)
            }
        }
    }

    @Test func aRequiredFieldNamesItselfWhenBlankOrTooLong() {
        let app = Self.reportApp(logger: Logger(label: "test"))
        let form = "application/x-www-form-urlencoded"
        let blank = app.respond(to: Self.request("POST", "/api/reports", body: "title=+%09", contentType: form))
        #expect(blank.status == 400)
        #expect(Self.text(blank) == #"{"error":{"type":"missing_title","message":"No title provided"}}"#)
        let long = app.respond(to: Self.request("POST", "/api/reports", body: "title=123456789", contentType: form))
        #expect(long.status == 413)
        #expect(Self.text(long).contains("The title is too long: at most 8 bytes are accepted."))
        let fine = app.respond(to: Self.request("POST", "/api/reports", body: "title=+Q3+", contentType: form))
        #expect(fine.status == 202)
        #expect(Self.text(fine).contains(#""query":"Q3""#))
    }

    @Test func theCoreWordingSpeaksOfTasksAndTheLLMPresetOfQuestions() {
        let generic = Views(basePath: "")
        #expect(generic.unknownTaskFragment().rendered.contains("please submit your task again"))
        #expect(!generic.unknownTaskFragment().rendered.contains("question"))
        let llm = Views(basePath: "", presentation: .llm)
        #expect(llm.unknownTaskFragment().rendered.contains("please submit your question again"))
        #expect(
            TaskPresentation.llm.clientLimitMessage(3)
                == "You already have 3 questions in progress. Please wait for one to finish.")
    }

    @Test func aStoreErrorIsLoggedButNeverShownToTheClient() throws {
        let url = try #require(RedisURL("redis://127.0.0.1:1/0"))
        let (logger, log) = CapturingLogHandler.logger()
        let store = RedisTaskStore(configuration: .init(url: url), logger: logger)
        let app = Self.reportApp(store: store, logger: logger)
        let form = "application/x-www-form-urlencoded"
        for response in [
            app.respond(to: Self.request("POST", "/api/reports", body: "title=x", contentType: form)),
            app.respond(to: Self.request("GET", "/api/tasks/\(TaskID.random())")),
        ] {
            #expect(response.status == 503)
            let message = "The task store is unavailable right now. Please try again shortly."
            #expect(Self.text(response) == #"{"error":{"type":"store_unavailable","message":"\#(message)"}}"#)
        }
        // One warning stands for both failures: an outage seen by every request must not flood the log.
        let warnings = log.all.filter { $0.level == .warning && $0.message == "task store unavailable" }
        #expect(warnings.count == 1)
        #expect(warnings.allSatisfy { $0.metadata["error.message"] != nil && $0.metadata["log.suppressed"] == "0" })
    }

    @Test func aWarningRateLimitLetsOneThroughPerIntervalAndCountsTheRest() {
        let limit = WarningRateLimit(interval: .seconds(5))
        let start = ContinuousClock.now
        #expect(limit.admit(now: start) == 0)
        #expect(limit.admit(now: start + .seconds(1)) == nil)
        #expect(limit.admit(now: start + .seconds(4)) == nil)
        #expect(limit.admit(now: start + .seconds(5)) == 2)
        #expect(limit.admit(now: start + .seconds(6)) == nil)
        #expect(limit.admit(now: start + .seconds(11)) == 1)
    }

    @Test func theAccessLogNamesTheTaskTheRouteFound() throws {
        let (logger, log) = CapturingLogHandler.logger()
        let app = Self.reportApp(logger: logger)
        let created = app.respond(
            to: Self.request("POST", "/api/reports", body: "title=x", contentType: "application/x-www-form-urlencoded"))
        let id = try #require(created.subjectID)
        _ = app.respond(to: Self.request("GET", "/api/tasks/\(id)"))
        _ = app.respond(to: Self.request("GET", "/check?task_id=\(id)&x=1"))
        let requests = log.all.filter { $0.message == "request" }
        #expect(requests.count == 3)
        #expect(requests.allSatisfy { $0.metadata["task.id"].map { "\($0)" } == id })
        #expect(requests.allSatisfy { $0.metadata["http.duration_us"] != nil && $0.level == .info })
    }

    @Test func errorCodesKeepTheirWireNames() {
        let codes: [(HTTPError.Code, String)] = [
            (.invalidRequest, "invalid_request"), (.notFound, "not_found"), (.methodNotAllowed, "method_not_allowed"),
            (.contentTooLarge, "content_too_large"), (.unsupportedMediaType, "unsupported_media_type"),
            (.unavailable, "unavailable"), (.unknownTask, "unknown_task"), (.queueFull, "queue_full"),
            (.tooManyTasks, "too_many_tasks"), (.storeUnavailable, "store_unavailable"),
            (.missingQuery, "missing_query"),
        ]
        for (code, wire) in codes { #expect(code.rawValue == wire) }
    }
}
