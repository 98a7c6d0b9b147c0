import CoreMetrics
public import FastCGI
import Logging
import StandardExtensions
import Synchronization
public import Tasks

/// What an app's own routes need: the task table, the views, validation, and submission with the app's limits, so
/// that a new job kind gets the same queue, limits, idempotency, polling, streaming and cancel as any other.
///
/// It owns submission and task look-up for the shared routes too: every path from a request to the table goes
/// through here, and so does every store error (logged here, shown to the client as a fixed 503).
public struct AppContext: Sendable {
    /// The task table.
    public let table: TaskTable
    /// The HTML views (page frame, task fragments), prefixed with the base path.
    public let views: Views
    /// The prefix the app is mounted under (`""` at the root).
    public let basePath: String
    /// The app's settings (limits, `Retry-After`, operations).
    public let configuration: LonghaulApp.Configuration
    let counters: AppCounters
    let logger: Logger

    init(
        table: TaskTable, views: Views, configuration: LonghaulApp.Configuration, counters: AppCounters,
        logger: Logger
    ) {
        self.table = table
        self.views = views
        self.basePath = views.basePath
        self.configuration = configuration
        self.counters = counters
        self.logger = logger
    }

    // MARK: - Submission

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
        let key = try Self.scopedIdempotencyKey(idempotencyKey, for: request)
        do {
            return try table.submit(kind: kind, input: input, client: request.raw.remoteAddress, idempotencyKey: key)
        } catch .clientLimit {
            counters.clientLimited.add(1, ordering: .relaxed)
            let limit = table.configuration.maxTasksPerClient ?? 0
            throw HTTPError(
                status: 429, type: .tooManyTasks, message: views.presentation.clientLimitMessage(limit),
                headers: [HeaderField("Retry-After", String(configuration.retryAfterSeconds))])
        } catch .queueFull {
            counters.queueFull.add(1, ordering: .relaxed)
            AppCounters.queueFullCounter.increment()
            throw HTTPError.unavailable(
                views.presentation.queueFullMessage, type: .queueFull,
                retryAfterSeconds: configuration.retryAfterSeconds)
        } catch {
            throw storeUnavailable(error, operation: "submit")
        }
    }

    /// A client's idempotency key, scoped to the client's address so that two clients never share one.
    private static func scopedIdempotencyKey(_ raw: String?, for request: Request) throws(HTTPError) -> String? {
        guard let raw, !raw.isEmpty else { return nil }
        guard raw.utf8.count <= 200, raw.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPError.badRequest("The idempotency key must be 1 to 200 visible ASCII characters.")
        }
        return "\(request.raw.remoteAddress ?? "-")|\(raw)"
    }

    /// The answer to a request that started a task: the polling fragment for htmx, `202` with the task's JSON and
    /// `Location` under `/api/`, else `303` to the no-JavaScript task page. The access log names the task.
    /// - Parameters:
    ///   - record: the task.
    ///   - request: the request.
    /// - Returns: the response.
    public func taskCreated(_ record: TaskRecord, for request: Request) -> Response {
        let response: Response
        if request.path.hasPrefix("/api/") {
            response = .json(
                record.json, status: 202, headers: [HeaderField("Location", "\(basePath)/api/tasks/\(record.id)")])
        } else if request.isHTMX {
            response = .html(views.taskFragment(record))
        } else {
            response = .redirect(to: "\(basePath)/task?task_id=\(record.id)")
        }
        return response.about(record.id)
    }

    // MARK: - Validation

    /// A required text field: trimmed of surrounding whitespace, 400 `missing_<field>` ("No query provided") when
    /// blank, 413 when over ``LonghaulApp/Configuration/maxQueryBytes``.
    /// - Parameters:
    ///   - raw: the field's value, `nil` when absent.
    ///   - field: its name, for the code and the messages (`query`, `title`).
    /// - Returns: the trimmed text.
    /// - Throws: ``HTTPError`` 400 or 413.
    public func requiredText(_ raw: String?, field: String) throws(HTTPError) -> String {
        try Self.requiredText(raw, field: field, maxBytes: configuration.maxQueryBytes)
    }

    /// ``requiredText(_:field:)`` without an app, for decoders (`TaskRequest`) and the fuzz targets.
    /// - Parameters:
    ///   - raw: the field's value, `nil` when absent.
    ///   - field: its name.
    ///   - maxBytes: the longest text accepted, in UTF-8 bytes.
    /// - Returns: the trimmed text.
    /// - Throws: ``HTTPError`` 400 or 413.
    package static func requiredText(_ raw: String?, field: String, maxBytes: Int) throws(HTTPError) -> String {
        let text = String((raw ?? "").trimmingWhitespace())
        guard !text.isEmpty else { throw HTTPError.badRequest("No \(field) provided", type: .missing(field)) }
        guard text.utf8.count <= maxBytes else {
            throw HTTPError.contentTooLarge("The \(field) is too long: at most \(maxBytes) bytes are accepted.")
        }
        return text
    }

    // MARK: - Tasks by id

    /// The task named by an id parameter; a missing, malformed, unknown or expired id is 404.
    /// - Parameter rawID: the id text.
    /// - Returns: the task.
    /// - Throws: ``HTTPError`` 404 (``HTTPError/Code/unknownTask``) or 503 (the store is down).
    public func task(_ rawID: String?) throws(HTTPError) -> TaskRecord {
        try task(rawID.flatMap { TaskID($0) })
    }

    /// The task with an id already parsed (``Request/queryTaskID(_:)``).
    /// - Parameter id: the id, `nil` when the request named none or an invalid one.
    /// - Returns: the task.
    /// - Throws: ``HTTPError`` 404 when there is no such task, 503 when the store cannot be reached.
    public func task(_ id: TaskID?) throws(HTTPError) -> TaskRecord {
        guard let id else { throw unknownTask }
        let found: TaskRecord?
        do {
            found = try table.record(id)
        } catch {
            throw storeUnavailable(error, operation: "read")
        }
        guard let found else { throw unknownTask }
        return found
    }

    /// Cancels the task named by an id parameter.
    /// - Parameter rawID: the id text.
    /// - Returns: the task after the request, and the outcome as the JSON API names it (`cancelled`, `requested`,
    ///   `already_finished`).
    /// - Throws: ``HTTPError`` 404 or 503.
    func cancel(_ rawID: String?) throws(HTTPError) -> (record: TaskRecord, outcome: String) {
        try cancel(rawID.flatMap { TaskID($0) })
    }

    /// ``cancel(_:)-(String?)`` with an id already parsed.
    /// - Parameter id: the id, `nil` when the request named none or an invalid one.
    /// - Returns: the task after the request, and the outcome.
    /// - Throws: ``HTTPError`` 404 or 503.
    func cancel(_ id: TaskID?) throws(HTTPError) -> (record: TaskRecord, outcome: String) {
        guard let id else { throw unknownTask }
        let outcome: CancelOutcome
        let found: TaskRecord?
        do {
            outcome = try table.cancel(id)
            found = try table.record(id)
        } catch {
            throw storeUnavailable(error, operation: "cancel")
        }
        guard let record = found else { throw unknownTask }
        switch outcome {
        case .cancelled: return (record, "cancelled")
        case .requested: return (record, "requested")
        case .alreadyFinished: return (record, "already_finished")
        case .notFound: throw unknownTask
        }
    }

    // MARK: - Errors

    private var unknownTask: HTTPError {
        HTTPError(status: 404, type: .unknownTask, message: views.presentation.unknownTaskMessage)
    }

    /// The store failed: the operator reads why in the log (at most one line per 5 s, with how many failures it
    /// stands for, and every failure counted in `longhaul_store_errors_total`); the client gets a fixed sentence and
    /// `Retry-After`.
    private func storeUnavailable(_ error: any Error, operation: String) -> HTTPError {
        AppCounters.storeErrorsCounter.increment()
        if let heldBack = counters.storeUnavailableWarnings.admit() {
            logger.warning(
                "task store unavailable",
                metadata: [
                    "error.message": "\(error)", "store.operation": "\(operation)",
                    "log.suppressed": "\(heldBack)",
                ])
        }
        return HTTPError.unavailable(
            "The task store is unavailable right now. Please try again shortly.", type: .storeUnavailable,
            retryAfterSeconds: 2)
    }
}
