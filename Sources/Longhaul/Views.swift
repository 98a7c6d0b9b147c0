public import HTML
public import Tasks

/// The app's HTML: the page, the task fragments htmx swaps in, and the no-JavaScript pages.
///
/// Every value from a user or a model goes through ``HTML`` interpolation and is escaped. No inline script or
/// style: the page works under a strict Content-Security-Policy.
public struct Views: Sendable {
    /// The prefix the app is mounted under (`""` at the root); every link starts with it.
    public let basePath: String

    /// - Parameter basePath: the prefix the app is mounted under.
    public init(basePath: String) {
        self.basePath = basePath
    }

    /// htmx settings: swap 4xx and 503 fragments too (they carry readable messages), keep other errors unswapped so
    /// a poll that meets a restarting backend simply tries again; no inline indicator styles, no eval (strict CSP).
    private static let htmxConfig =
        #"{"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},"#
        + #"{"code":"4..","swap":true,"error":false},{"code":"503","swap":true,"error":false},"#
        + #"{"code":"...","swap":false,"error":true}],"includeIndicatorStyles":false,"allowEval":false,"#
        + #""selfRequestsOnly":true}"#

    /// A whole page around some content.
    /// - Parameters:
    ///   - content: the page's main content.
    ///   - refresh: seconds after which a browser without JavaScript reloads the page, or `nil`.
    /// - Returns: the page.
    public func page(_ content: HTML, refresh: Int? = nil) -> HTML {
        let refreshTag: HTML = refresh.map { "<meta http-equiv=\"refresh\" content=\"\($0)\">" } ?? .empty
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Long running</title>
            <meta name="htmx-config" content="\(Self.htmxConfig)">
            \(refreshTag)<link rel="stylesheet" href="\(basePath)/static/app.css">
            <script src="\(basePath)/static/vendor/htmx-2.min.js" defer></script>
            <script src="\(basePath)/static/vendor/ext/hx-sse-2.min.js" defer></script>
            <script src="\(basePath)/static/app.js" defer></script>
            </head>
            <body>
            <main>
            <h1><a href="\(basePath)/">Long running</a></h1>
            \(content)
            </main>
            </body>
            </html>

            """
    }

    /// The index page: the form and an empty result area.
    public func indexPage() -> HTML {
        page(
            """
            <form id="query-form" class="query-form" method="post" action="\(basePath)/generate" \
            hx-post="\(basePath)/generate" hx-target="#result">
            <label for="query">Your question</label>
            <div class="query-row">
            <input id="query" name="query" type="text" autocomplete="off" placeholder="Ask anything">
            <button type="submit">Submit</button>
            </div>
            </form>
            <div id="result" class="result" aria-live="polite"></div>
            """)
    }

    /// The fragment for a task: polling while it runs, the result or the reason when it has finished.
    /// - Parameter record: the task.
    /// - Returns: the fragment; it polls `check` every second until the task has finished.
    public func taskFragment(_ record: TaskRecord) -> HTML {
        let id = record.id.rawValue
        switch record.status {
        case .queued, .running:
            // Text streams in over server-sent events (the htmx SSE extension); `check` is polled every second only
            // while no stream is open (see static/app.js), and once more when the stream says `done`.
            let from = record.output.unicodeScalars.count
            let status: HTML = record.cancelRequested ? "Cancelling..." : "Processing..."
            return """
                <div id="task-\(id)" class="task task-pending" hx-get="\(basePath)/check?task_id=\(id)" \
                hx-trigger="sse:done, sse:reset, every 1s" hx-swap="outerHTML" \
                hx-ext="sse" sse-connect="\(basePath)/stream?task_id=\(id)&from=\(from)" sse-close="done">
                <p class="status">\(status)</p>
                <div class="result-text partial" sse-swap="delta" hx-swap="beforeend">\(record.output)</div>
                <form class="cancel" method="post" action="\(basePath)/cancel?task_id=\(id)" \
                hx-post="\(basePath)/cancel?task_id=\(id)" hx-target="#task-\(id)" hx-swap="outerHTML">
                <button type="submit">Cancel</button>
                </form>
                </div>
                """
        case .succeeded:
            let truncated: HTML =
                record.metadata["stop_reason"] == "max_tokens"
                ? "<p class=\"note\">The answer was cut short: it reached the token limit (max_tokens).</p>"
                : .empty
            return """
                <div id="task-\(id)" class="task task-succeeded">
                <h2>Result</h2>
                <div class="result-text">\(record.output)</div>
                \(truncated)</div>
                """
        case .failed:
            let failure = record.failure ?? TaskFailure(type: "unknown_error", message: "The task failed.")
            var details: [HTML] = ["Error type: <code>\(failure.type)</code>"]
            if let requestID = failure.requestID { details.append("request id: <code>\(requestID)</code>") }
            if let attempts = failure.attempts { details.append("attempts: \(attempts)") }
            return """
                <div id="task-\(id)" class="task task-failed" role="alert">
                <h2>Failed</h2>
                <p class="reason">\(failure.message)</p>
                <p class="details">\(HTML.joined(details, separator: " · "))</p>
                </div>
                """
        case .cancelled:
            return """
                <div id="task-\(id)" class="task task-cancelled">
                <h2>Cancelled</h2>
                <p>This task was cancelled.</p>
                </div>
                """
        }
    }

    /// The answer for an id that is unknown, malformed or expired. It has no trigger, so polling stops.
    public func unknownTaskFragment() -> HTML {
        """
        <div class="task task-unknown" role="alert">
        <p>Unknown or expired task. Results are kept for a limited time; please submit your question again.</p>
        </div>
        """
    }

    /// A message fragment for an error (empty query, queue full…).
    /// - Parameter error: the error.
    /// - Returns: the fragment.
    public func errorFragment(_ error: HTTPError) -> HTML {
        """
        <div class="message message-error" role="alert"><p>\(error.message)</p></div>
        """
    }

    /// The no-JavaScript page for a task: it reloads itself every second until the task has finished.
    /// - Parameter record: the task.
    /// - Returns: the page.
    public func taskPage(_ record: TaskRecord) -> HTML {
        page(
            """
            <div id="result" class="result">\(taskFragment(record))</div>
            <p><a href="\(basePath)/">Ask another question</a></p>
            """, refresh: record.status.isFinished ? nil : 1)
    }

    /// A whole page for an error, for browsers without JavaScript.
    /// - Parameter content: the message fragment.
    /// - Returns: the page.
    public func messagePage(_ content: HTML) -> HTML {
        page(
            """
            \(content)
            <p><a href="\(basePath)/">Back to the form</a></p>
            """)
    }
}
