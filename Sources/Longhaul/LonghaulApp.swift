public import FastCGI
import CoreMetrics
import Foundation
import HTML
import Synchronization
public import Logging
public import Tasks

/// The web app: the page, `generate`, `check`, the no-JavaScript task page, cancel and the JSON API, over a
/// ``TaskTable``. It answers FastCGI requests and never waits on the model: every route returns at once.
public final class LonghaulApp: Sendable {
    /// Settings of the routes.
    public struct Configuration: Sendable {
        /// The prefix the app is mounted under (`""` at the root, or `/tools/ask`).
        public var basePath: String = ""
        /// The longest query accepted, in UTF-8 bytes.
        public var maxQueryBytes: Int = 32_768
        /// The `Retry-After` sent when the queue is full, in seconds.
        public var retryAfterSeconds: Int = 5
        /// Health, status, metrics and the access log.
        public var operations = OperationsConfiguration()

        public init() {}
    }

    /// The task table the routes use.
    public let table: TaskTable
    private let configuration: Configuration
    private let views: Views
    private let logger: Logger
    private let router: Router
    /// Wakes open event streams when their task changes.
    public let changes: TaskChangeHub
    private let counters = AppCounters()

    /// - Parameters:
    ///   - table: the task table, with a job registered for every kind the routes submit.
    ///   - configuration: route settings.
    ///   - logger: for request failures and the access log.
    ///   - addRoutes: adds the app's own routes (its page, the routes that start its jobs) beside the shared ones
    ///     (`check`, `task`, `stream`, `cancel`, `/api/tasks/ID`…, `ping`, `status`, `metrics`). The default adds
    ///     the LLM demo's: ``llmRoutes(_:_:)``.
    public init(
        table: TaskTable, configuration: Configuration = .init(), logger: Logger,
        addRoutes: (inout Router, AppContext) -> Void = LonghaulApp.llmRoutes
    ) {
        self.table = table
        self.configuration = configuration
        self.logger = logger
        let views = Views(basePath: Router(basePath: configuration.basePath).basePath)
        self.views = views
        let hub = TaskChangeHub()
        table.observeChanges { change in hub.notify(change) }
        self.changes = hub
        var router = Router(basePath: configuration.basePath) { error, request in
            Self.render(error, for: request, views: views)
        }
        Self.addRoutes(
            to: &router, table: table, views: views, hub: hub, configuration: configuration, counters: counters,
            logger: logger)
        addRoutes(
            &router,
            AppContext(table: table, views: views, basePath: router.basePath, configuration: configuration, counters: counters))
        self.router = router
    }

    /// Answers one request.
    /// - Parameter request: the FastCGI request.
    /// - Returns: the response.
    public func respond(to request: FastCGIRequest) -> FastCGIResponse {
        guard configuration.operations.accessLog else { return router.respond(to: request) }
        let started = ContinuousClock.now
        let response = router.respond(to: request)
        let elapsed = ContinuousClock.now - started
        var metadata: Logger.Metadata = [
            "http.method": "\(request.method)", "http.path": "\(request.path)", "http.status": "\(response.status)",
            "duration_us": "\(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)",
        ]
        if let taskID = Self.taskID(in: request, response) { metadata["task.id"] = "\(taskID)" }
        logger.info("request", metadata: metadata)
        return response
    }

    /// The task a request is about: its `task_id` parameter, its `/api/tasks/ID` path, or the task it created.
    private static func taskID(in request: FastCGIRequest, _ response: FastCGIResponse) -> Substring? {
        if let range = request.queryString.range(of: "task_id=") {
            return request.queryString[range.upperBound...].prefix { $0 != "&" }
        }
        if let range = request.path.range(of: "/api/tasks/") {
            return request.path[range.upperBound...].prefix { $0 != "/" }
        }
        if let location = response.headers.first(where: { $0.name == "Location" })?.value,
            let range = location.range(of: "task_id=") ?? location.range(of: "/api/tasks/")
        {
            return location[range.upperBound...].prefix { $0 != "&" && $0 != "/" }
        }
        return nil
    }

    // MARK: - Routes

    private static func addRoutes(
        to router: inout Router, table: TaskTable, views: Views, hub: TaskChangeHub, configuration: Configuration,
        counters: AppCounters, logger: Logger
    ) {
        let base = router.basePath
        let operations = configuration.operations

        @Sendable func snapshot() -> StatusSnapshot {
            StatusSnapshot(
                start: operations.processStart, statistics: operations.serverStatistics(),
                counts: try? table.store.countsByStatus(), runningHere: table.runningCount,
                maxInFlight: table.configuration.maxInFlight, maxQueued: table.configuration.maxQueued,
                queueFull: counters.queueFull.load(ordering: .relaxed), streams: hub.watcherCount,
                store: operations.storeName)
        }

        router.add("GET", "/ping") { _ in .text("pong\n") }

        router.add("GET", "/status") { request throws(HTTPError) in
            let status = snapshot()
            let wantsJSON = try request.queryParameters().contains { $0.name == "json" }
            return wantsJSON ? .json(status.json) : .text(status.text)
        }

        if let metricsText = operations.metricsText {
            router.add("GET", "/metrics") { _ in
                snapshot().recordGauges()
                return Response(
                    status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", text: metricsText(),
                    headers: [HeaderField("Cache-Control", "no-store")])
            }
        }

        router.add("GET", "/check") { request throws(HTTPError) in
            .html(views.taskFragment(try existingTask(try request.queryParameter("task_id"), in: table)))
        }

        router.add("GET", "/task") { request throws(HTTPError) in
            .html(views.taskPage(try existingTask(try request.queryParameter("task_id"), in: table)))
        }

        router.add("GET", "/stream") { request throws(HTTPError) in
            let record = try existingTask(try request.queryParameter("task_id"), in: table)
            let start = try resumeOffset(request, fallback: try request.queryParameter("from"))
            return TaskEventStream(id: record.id, start: start, format: .html(views), table: table, hub: hub, logger: logger).response()
        }

        router.add("GET", "/api/tasks/:id/events") { request throws(HTTPError) in
            let record = try existingTask(request.pathParameters["id"], in: table)
            let start = try resumeOffset(request, fallback: try request.queryParameter("from"))
            return TaskEventStream(id: record.id, start: start, format: .json, table: table, hub: hub, logger: logger).response()
        }

        router.add("POST", "/cancel") { request throws(HTTPError) in
            let (record, _) = try cancel(try request.queryParameter("task_id"), in: table)
            if request.isHTMX { return .html(views.taskFragment(record)) }
            return .redirect(to: "\(base)/task?task_id=\(record.id)")
        }

        router.add("GET", "/api/tasks/:id") { request throws(HTTPError) in
            .json(try existingTask(request.pathParameters["id"], in: table).json)
        }

        router.add("DELETE", "/api/tasks/:id") { request throws(HTTPError) in
            let (record, outcome) = try cancel(request.pathParameters["id"], in: table)
            guard case .object(var members) = record.json else { return .json(record.json) }
            members.append(("cancel", .string(outcome)))
            return .json(.object(members))
        }
    }

    /// The LLM demo's own routes: the page with its form, `POST /generate` (a form) and `POST /api/tasks` (JSON), each
    /// starting an ``LLMJob``, and `GET /api/openapi.json`, the OpenAPI 3.1 description of this JSON API (generated
    /// from the repository's `openapi.yaml`).
    /// - Parameters:
    ///   - router: the router to add them to.
    ///   - context: what routes need: the table, the views, submission with the app's limits.
    public static func llmRoutes(_ router: inout Router, _ context: AppContext) {
        router.add("GET", "/") { _ in .html(context.views.indexPage()) }

        router.add("POST", "/generate") { request throws(HTTPError) in
            let fields = try request.formFields()
            let query = try context.validQuery(fields.first { $0.name == "query" }?.value)
            let key = fields.first { $0.name == "idempotency_key" }?.value
            let record = try context.submit(kind: LLMJob.kind, input: query, for: request, idempotencyKey: key)
            return context.taskCreated(record, for: request)
        }

        let openAPI = OpenAPIDocument.text(basePath: context.basePath)
        router.add("GET", "/api/openapi.json") { _ in OpenAPIDocument.response(openAPI) }

        router.add("POST", "/api/tasks") { request throws(HTTPError) in
            let query = try TaskRequest.decode(request, configuration: context.configuration)
            let record = try context.submit(
                kind: LLMJob.kind, input: query, for: request, idempotencyKey: request.header("Idempotency-Key"))
            return context.taskCreated(record, for: request)
        }
    }

    /// Where a stream starts: `Last-Event-ID` (a reconnect), else the `from` parameter, else the beginning.
    private static func resumeOffset(_ request: Request, fallback: String?) throws(HTTPError) -> TaskEventStream.Position {
        guard let text = request.header("Last-Event-ID") ?? fallback, !text.isEmpty else { return .beginning }
        guard let position = TaskEventStream.Position(text) else {
            throw HTTPError.badRequest(
                "The stream position (Last-Event-ID or from) must be an event id such as 1-20, or a whole number.")
        }
        return position
    }

    /// The query, trimmed of surrounding whitespace, or the reason it is refused.
    static func validQuery(_ raw: String?, configuration: Configuration) throws(HTTPError) -> String {
        // Character.isWhitespace (Unicode-aware, no Foundation bridge): a query of only spaces is blank.
        let text = raw ?? ""
        let start = text.firstIndex { !$0.isWhitespace } ?? text.endIndex
        let end = text.lastIndex { !$0.isWhitespace }.map { text.index(after: $0) } ?? start
        let query = start < end ? String(text[start..<end]) : ""
        guard !query.isEmpty else { throw HTTPError.badRequest("No query provided", type: "missing_query") }
        guard query.utf8.count <= configuration.maxQueryBytes else {
            throw HTTPError.contentTooLarge(
                "The query is too long: at most \(configuration.maxQueryBytes) bytes are accepted.")
        }
        return query
    }

    /// A client's idempotency key, scoped to the client's address so that two clients never share one.
    fileprivate static func idempotencyKey(_ raw: String?, for request: Request) throws(HTTPError) -> String? {
        guard let raw, !raw.isEmpty else { return nil }
        guard raw.utf8.count <= 200, raw.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPError.badRequest("The idempotency key must be 1 to 200 visible ASCII characters.")
        }
        return "\(request.raw.remoteAddress ?? "-")|\(raw)"
    }

    fileprivate static func submit(
        kind: String, input: String, to table: TaskTable, request: Request, key: String?,
        configuration: Configuration, counters: AppCounters
    ) throws(HTTPError) -> TaskRecord {
        do {
            return try table.submit(
                kind: kind, input: input, client: request.raw.remoteAddress, idempotencyKey: key)
        } catch .clientLimit {
            counters.clientLimited.add(1, ordering: .relaxed)
            let limit = table.configuration.maxTasksPerClient ?? 0
            throw HTTPError(
                status: 429, type: "too_many_tasks",
                message: "You already have \(limit) questions in progress. Please wait for one to finish.",
                headers: [HeaderField("Retry-After", String(configuration.retryAfterSeconds))])
        } catch .queueFull {
            counters.queueFull.add(1, ordering: .relaxed)
            AppCounters.queueFullCounter.increment()
            throw HTTPError.unavailable(
                "The server is busy: too many questions are waiting. Please try again in a few seconds.",
                type: "queue_full", retryAfterSeconds: configuration.retryAfterSeconds)
        } catch {
            throw storeUnavailable(error)
        }
    }

    /// The task for an id parameter; a missing, malformed, unknown or expired id is one 404.
    fileprivate static func existingTask(_ rawID: String?, in table: TaskTable) throws(HTTPError) -> TaskRecord {
        guard let rawID, let id = TaskID(rawID) else { throw unknownTask }
        let found: TaskRecord?
        do {
            found = try table.record(id)
        } catch {
            throw storeUnavailable(error)
        }
        guard let found else { throw unknownTask }
        return found
    }

    private static func cancel(_ rawID: String?, in table: TaskTable) throws(HTTPError) -> (TaskRecord, String) {
        guard let rawID, let id = TaskID(rawID) else { throw unknownTask }
        do {
            let outcome = try table.cancel(id)
            guard let record = try table.record(id) else { throw unknownTask }
            switch outcome {
            case .cancelled: return (record, "cancelled")
            case .requested: return (record, "requested")
            case .alreadyFinished: return (record, "already_finished")
            case .notFound: throw unknownTask
            }
        } catch let error as HTTPError {
            throw error
        } catch {
            throw storeUnavailable(error)
        }
    }

    private static let unknownTask = HTTPError(
        status: 404, type: "unknown_task",
        message: "Unknown or expired task. Results are kept for a limited time; please submit your question again.")

    private static func storeUnavailable(_ error: any Error) -> HTTPError {
        HTTPError.unavailable(
            "The task store is unavailable right now (\(error)). Please try again shortly.", type: "store_unavailable",
            retryAfterSeconds: 2)
    }

    // MARK: - Errors

    /// JSON under `/api/`, an htmx fragment for htmx, a whole page otherwise.
    private static func render(_ error: HTTPError, for request: Request, views: Views) -> Response {
        if request.path == "/api" || request.path.hasPrefix("/api/") { return Router.jsonError(error) }
        let fragment = error.type == "unknown_task" ? views.unknownTaskFragment() : views.errorFragment(error)
        if request.isHTMX { return .html(fragment, status: error.status, headers: error.headers) }
        return .html(views.messagePage(fragment), status: error.status, headers: error.headers)
    }
}

/// What an app's own routes need: the task table, the views, and submission with the app's limits, so that a new
/// job kind gets the same queue, limits, idempotency, polling, streaming and cancel as the LLM demo.
public struct AppContext: Sendable {
    /// The task table.
    public let table: TaskTable
    /// The HTML views (page frame, task fragments), prefixed with the base path.
    public let views: Views
    /// The prefix the app is mounted under (`""` at the root).
    public let basePath: String
    fileprivate let configuration: LonghaulApp.Configuration
    fileprivate let counters: AppCounters

    init(
        table: TaskTable, views: Views, basePath: String, configuration: LonghaulApp.Configuration,
        counters: AppCounters
    ) {
        self.table = table
        self.views = views
        self.basePath = basePath
        self.configuration = configuration
        self.counters = counters
    }

    /// Starts a task of any registered kind for a request, with the app's limits.
    /// - Parameters:
    ///   - kind: the job kind.
    ///   - input: the job's input.
    ///   - request: the request (its client address counts against the per-client limit).
    ///   - idempotencyKey: the client's key, if it sent one: a resubmission returns the same task.
    /// - Returns: the task (queued), or the earlier one with the same key.
    /// - Throws: ``HTTPError`` 503 (queue full, store down), 429 (client limit), 400 (bad key).
    public func submit(kind: String, input: String, for request: Request, idempotencyKey: String? = nil)
        throws(HTTPError) -> TaskRecord
    {
        let key = try LonghaulApp.idempotencyKey(idempotencyKey, for: request)
        return try LonghaulApp.submit(
            kind: kind, input: input, to: table, request: request, key: key, configuration: configuration,
            counters: counters)
    }

    /// The answer to a request that started a task: the polling fragment for htmx, `202` with the task's JSON and
    /// `Location` under `/api/`, else `303` to the no-JavaScript task page.
    /// - Parameters:
    ///   - record: the task.
    ///   - request: the request.
    /// - Returns: the response.
    public func taskCreated(_ record: TaskRecord, for request: Request) -> Response {
        if request.path.hasPrefix("/api/") {
            return .json(
                record.json, status: 202, headers: [HeaderField("Location", "\(basePath)/api/tasks/\(record.id)")])
        }
        if request.isHTMX { return .html(views.taskFragment(record)) }
        return .redirect(to: "\(basePath)/task?task_id=\(record.id)")
    }

    /// A text input trimmed, or 400 "No query provided" when blank, 413 when over the app's limit.
    /// - Parameter raw: the input.
    /// - Returns: the trimmed input.
    public func validQuery(_ raw: String?) throws(HTTPError) -> String {
        try LonghaulApp.validQuery(raw, configuration: configuration)
    }

    /// The task named by an id parameter; a missing, malformed, unknown or expired id is 404.
    /// - Parameter rawID: the id text.
    /// - Returns: the task.
    public func task(_ rawID: String?) throws(HTTPError) -> TaskRecord {
        try LonghaulApp.existingTask(rawID, in: table)
    }
}
