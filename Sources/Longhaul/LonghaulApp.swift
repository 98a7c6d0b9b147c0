public import FastCGI
import HTML
public import Logging
public import Tasks

/// The web app over a ``TaskTable``: the shared task routes (`check`, `task`, `stream`, `cancel`, the JSON API's
/// `/api/tasks/ID`), the operations routes (`ping`, `status`, `metrics`) and the app's own routes. It answers
/// FastCGI requests and never waits on a job: every route returns at once.
///
/// The routes live in `LonghaulApp+TaskRoutes.swift` and `LonghaulApp+Operations.swift`; submission, validation
/// and look-up in ``AppContext``; the access log in `AccessLog.swift`.
public final class LonghaulApp: Sendable {
    /// Settings of the routes.
    public struct Configuration: Sendable {
        /// The prefix the app is mounted under (`""` at the root, or `/tools/ask`).
        public var basePath: String = ""
        /// The longest text input accepted (``AppContext/requiredText(_:field:)``), in UTF-8 bytes.
        public var maxQueryBytes: Int = 32_768
        /// The `Retry-After` sent when the queue is full, in seconds.
        public var retryAfterSeconds: Int = 5
        /// Health, status, metrics and the access log.
        public var operations = OperationsConfiguration()

        public init() {}
    }

    /// The task table the routes use.
    public let table: TaskTable
    /// Wakes open event streams when their task changes.
    public let changes: TaskChangeHub
    private let router: Router
    private let accessLog: AccessLog?
    /// Answers the polls of pending tasks before the router (``TaskPollResponder``): installed when the store is
    /// this process's memory (it writes the access log's line too, when the log is on).
    package let quickResponder: (any QuickResponder)?

    /// - Parameters:
    ///   - table: the task table, with a job registered for every kind the routes submit.
    ///   - configuration: route settings.
    ///   - presentation: how the app's tasks are shown (words, Markdown kinds, failure summaries).
    ///   - logger: for store failures, event streams and the access log.
    ///   - addRoutes: adds the app's own routes (its page, the routes that start its jobs) beside the shared ones
    ///     (`check`, `task`, `stream`, `cancel`, `/api/tasks/ID`…, `ping`, `status`, `metrics`).
    public init(
        table: TaskTable, configuration: Configuration = .init(), presentation: TaskPresentation = .init(),
        logger: Logger, addRoutes: (inout Router, AppContext) -> Void
    ) {
        self.table = table
        let hub = TaskChangeHub()
        table.observeChanges { change in hub.notify(change) }
        self.changes = hub
        let views = Views(basePath: Router.normalized(basePath: configuration.basePath), presentation: presentation)
        let context = AppContext(
            table: table, views: views, configuration: configuration, counters: AppCounters(), logger: logger)
        var router = Router(basePath: configuration.basePath) { error, request in
            Self.render(error, for: request, views: views)
        }
        Self.addOperationsRoutes(to: &router, context: context, hub: hub)
        Self.addTaskRoutes(to: &router, context: context, hub: hub)
        addRoutes(&router, context)
        self.router = router
        self.accessLog = configuration.operations.accessLog ? AccessLog(logger: logger) : nil
        if let store = table.store as? MemoryTaskStore {
            quickResponder = TaskPollResponder(store: store, views: views, accessLog: accessLog)
        } else {
            quickResponder = nil
        }
    }

    /// Answers one request.
    /// - Parameter request: the FastCGI request.
    /// - Returns: the response.
    public func respond(to request: FastCGIRequest) -> FastCGIResponse {
        guard let accessLog else { return router.respond(to: request) }
        let started = ContinuousClock.now
        let response = router.respond(to: request)
        accessLog.record(request, response, elapsed: ContinuousClock.now - started)
        return response
    }

    /// JSON under `/api/`, an htmx fragment for htmx, a whole page otherwise.
    private static func render(_ error: HTTPError, for request: Request, views: Views) -> Response {
        if request.path == "/api" || request.path.hasPrefix("/api/") { return Router.jsonError(error) }
        let fragment = error.type == .unknownTask ? views.unknownTaskFragment() : views.errorFragment(error)
        if request.isHTMX { return .html(fragment, status: error.status, headers: error.headers) }
        return .html(views.messagePage(fragment), status: error.status, headers: error.headers)
    }
}
