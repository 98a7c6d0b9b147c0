public import FastCGI
import Foundation
public import HTML
public import Markdown
public import Tasks

/// The app's HTML: the page, the task fragments htmx swaps in, and the no-JavaScript pages.
///
/// Every value from a user or a job goes through ``HTML`` interpolation and is escaped. No inline script or
/// style: the page works under a strict Content-Security-Policy.
public struct Views: Sendable {
    /// The prefix the app is mounted under (`""` at the root); every link starts with it.
    public let basePath: String
    /// The app's words for its tasks, its Markdown kinds and failure summaries.
    public let presentation: TaskPresentation
    /// Renders the results of ``TaskPresentation/markdownKinds``.
    public let markdown: MarkdownRenderer
    /// ``basePath`` and the input's label, escaped once: every pending fragment carries them.
    private let escapedBasePath: HTML
    private let escapedInputLabel: HTML

    /// - Parameters:
    ///   - basePath: the prefix the app is mounted under.
    ///   - presentation: how the app's tasks are shown.
    ///   - markdown: the renderer for Markdown results.
    public init(basePath: String, presentation: TaskPresentation = .init(), markdown: MarkdownRenderer = .init()) {
        self.basePath = basePath
        self.presentation = presentation
        self.markdown = markdown
        self.escapedBasePath = "\(basePath)"
        self.escapedInputLabel = "\(presentation.inputLabel)"
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

    /// The fragment for a task: polling while it runs, the result or the reason when it has finished.
    ///
    /// While the task runs it shows the input, the time elapsed since it was accepted (server-rendered, and
    /// kept ticking by static/app.js from `data-created-at` and `data-server-time`), the text streamed so far and
    /// a Cancel button. A finished task shows the result (Markdown rendered for the kinds in
    /// ``TaskPresentation/markdownKinds``, text with its line breaks for others), or the reason it failed with a
    /// "Try again" button that submits the same input again, or that it was cancelled. Every button is a real form,
    /// so it also works without JavaScript.
    /// - Parameter record: the task.
    /// - Returns: the fragment; it polls `check` every second until the task has finished.
    public func taskFragment(_ record: TaskRecord) -> HTML {
        if record.status == .queued || record.status == .running { return pendingFragment(record) }
        let id = record.id.rawValue
        let input: HTML = """
            <p class="query"><span class="visually-hidden">\(presentation.inputLabel): </span>\(record.input)</p>
            """
        switch record.status {
        case .queued, .running:
            return pendingFragment(record)
        case .succeeded:
            let note: HTML = presentation.resultNote(record).map { "<p class=\"note\">\($0)</p>" } ?? .empty
            return """
                <div id="task-\(id)" class="task task-succeeded">
                \(input)
                <h2>Result</h2>
                \(result(record))
                \(note)\(took(record))</div>
                """
        case .failed:
            let failure = record.failure ?? TaskFailure(type: "unknown_error", message: "The task failed.")
            var details: [HTML] = ["Error type: <code>\(failure.type)</code>"]
            if let requestID = failure.requestID { details.append("request id: <code>\(requestID)</code>") }
            if let attempts = failure.attempts { details.append("attempts: \(attempts)") }
            let summary: HTML =
                presentation.failureSummaries[failure.type].map { "<p class=\"summary\">\($0)</p>\n" } ?? .empty
            return """
                <div id="task-\(id)" class="task task-failed">
                \(input)
                <div class="failure" role="alert">
                <h2>Failed</h2>
                \(summary)<p class="reason">\(failure.message)</p>
                <p class="details">\(HTML.joined(details, separator: " · "))</p>
                </div>
                \(retryForm(record, label: "Try again"))
                </div>
                """
        case .cancelled:
            let partial: HTML =
                record.output.isEmpty
                ? .empty
                : """
                <p class="note">Received before it was cancelled:</p>
                <div class="result-text partial">\(record.output)</div>

                """
            return """
                <div id="task-\(id)" class="task task-cancelled">
                \(input)
                <h2>Cancelled</h2>
                <p>This task was cancelled.</p>
                \(partial)\(retryForm(record, label: presentation.againLabel))
                </div>
                """
        }
    }

    /// A queued or running task's fragment, polled every second by every open page: written piece by piece into
    /// one buffer (see ``HTML/Writer``), the same markup the other states get from interpolation.
    ///
    /// It shows the input, the time elapsed since the task was accepted (server-rendered, and kept ticking by
    /// static/app.js from `data-created-at` and `data-server-time`), the text streamed so far and a Cancel button.
    /// Text streams in over server-sent events (the htmx SSE extension); `check` is polled every second only while
    /// no stream is open (see static/app.js), and once more when the stream says `done`.
    private func pendingFragment(_ record: TaskRecord) -> HTML {
        HTML.write(capacity: pendingCapacity(record)) { writePendingFragment(record, into: &$0) }
    }

    /// ``taskFragment(_:)`` as a response body: a queued or running task's fragment (what every open page polls
    /// each second) is written straight into the block sent, without an array.
    /// - Parameter record: the task.
    /// - Returns: the fragment's bytes.
    public func taskFragmentBody(_ record: TaskRecord) -> FastCGIResponse.Body {
        guard record.status == .queued || record.status == .running else { return .bytes(taskFragment(record).utf8) }
        return .block(HTML.writeBlock(capacity: pendingCapacity(record)) { writePendingFragment(record, into: &$0) })
    }

    /// The markup without its texts is some 760 bytes: with short texts, a block glibc keeps per thread (up to
    /// 1,032 bytes).
    private func pendingCapacity(_ record: TaskRecord) -> Int {
        900 + record.input.utf8.count + record.output.utf8.count + 3 * basePath.utf8.count
    }

    func writePendingFragment(_ record: TaskRecord, into html: inout HTML.Writer) {
        let now = Date()
        html.append("<div id=\"task-")
        let idStart = html.position
        html.append(record.id)
        let escapedID = idStart..<html.position
        html.append("\" class=\"task task-pending\" aria-busy=\"true\" data-created-at=\"")
        html.append(RFC3339Timestamp(date: record.createdAt))
        html.append("\" data-server-time=\"")
        html.append(RFC3339Timestamp(date: now, isNow: true))
        html.append("\" hx-get=\"")
        let baseStart = html.position
        html.append(fragment: escapedBasePath)
        let escapedBase = baseStart..<html.position
        html.append("/check?task_id=")
        html.appendCopy(of: escapedID)
        html.append(
            "\" hx-trigger=\"sse:done, sse:reset, every 1s\" hx-swap=\"outerHTML\" hx-ext=\"sse\" sse-connect=\"")
        html.appendCopy(of: escapedBase)
        html.append("/stream?task_id=")
        html.appendCopy(of: escapedID)
        html.append("&from=")
        html.append(record.output.isEmpty ? 0 : record.output.unicodeScalars.count)
        html.append("\" sse-close=\"done\">\n<p class=\"query\"><span class=\"visually-hidden\">")
        html.append(fragment: escapedInputLabel)
        html.append(": </span>")
        html.appendEscaped(record.input)
        html.append("</p>\n<p class=\"status\">")
        html.append(record.cancelRequested ? "Cancelling..." : "Processing...")
        html.append(" <span class=\"elapsed\" role=\"timer\">")
        Self.appendDuration(now.timeIntervalSince(record.createdAt), to: &html)
        html.append(
            "</span></p>\n<div class=\"result-text partial\" sse-swap=\"delta\" hx-swap=\"beforeend\">")
        html.appendEscaped(record.output)
        html.append("</div>\n<form class=\"cancel\" method=\"post\" action=\"")
        html.appendCopy(of: escapedBase)
        html.append("/cancel?task_id=")
        html.appendCopy(of: escapedID)
        html.append("\" hx-post=\"")
        html.appendCopy(of: escapedBase)
        html.append("/cancel?task_id=")
        html.appendCopy(of: escapedID)
        html.append("\" hx-target=\"#task-")
        html.appendCopy(of: escapedID)
        html.append("\" hx-swap=\"outerHTML\">\n<button type=\"submit\">Cancel</button>\n</form>\n</div>")
    }

    /// ``duration(_:)``, written into a fragment.
    private static func appendDuration(_ interval: TimeInterval, to html: inout HTML.Writer) {
        let seconds = interval.isFinite ? max(0, Int(interval.rounded(.down))) : 0
        guard seconds >= 60 else {
            html.append(seconds)
            html.append(" s")
            return
        }
        let rest = seconds % 60
        html.append(seconds / 60)
        html.append(rest < 10 ? " min 0" : " min ")
        html.append(rest)
        html.append(" s")
    }

    /// A finished task's result: Markdown rendered (with its source in a `<template>`, which static/app.js's "Copy
    /// answer" button puts on the clipboard), or text with its line breaks kept.
    private func result(_ record: TaskRecord) -> HTML {
        guard presentation.markdownKinds.contains(record.kind) else {
            return "<div class=\"result-text\">\(record.output)</div>"
        }
        return """
            <div class="result-text markdown">
            \(markdown.render(record.output))</div>
            <template class="answer-source">\(record.output)</template>
            """
    }

    /// A form that submits a task's input again (to ``TaskPresentation/resubmit``; none when that is `nil`). htmx
    /// puts the new task in place of the old one; without JavaScript it is a plain POST. Its idempotency key is tied to the old task, so pressing it
    /// twice (say, after going back to the failed task's page) starts one new task, not two.
    private func retryForm(_ record: TaskRecord, label: String) -> HTML {
        guard let resubmit = presentation.resubmit else { return .empty }
        let id = record.id.rawValue
        return """
            <form class="retry" method="post" action="\(basePath)\(resubmit.path)" \
            hx-post="\(basePath)\(resubmit.path)" hx-target="#task-\(id)" hx-swap="outerHTML">
            <input type="hidden" name="\(resubmit.field)" value="\(record.input)">
            <input type="hidden" name="idempotency_key" value="retry-\(id)">
            <button type="submit">\(label)</button>
            </form>
            """
    }

    /// How long a finished task took, from acceptance to its end.
    private func took(_ record: TaskRecord) -> HTML {
        guard let finished = record.finishedAt else { return .empty }
        let took = Self.duration(finished.timeIntervalSince(record.createdAt))
        return "<p class=\"details\">\(presentation.tookPrefix) \(took).</p>\n"
    }

    /// A duration as people read it: `7 s`, `1 min 05 s` (whole seconds, rounded down; static/app.js matches).
    static func duration(_ interval: TimeInterval) -> String {
        let seconds = interval.isFinite ? max(0, Int(interval.rounded(.down))) : 0
        guard seconds >= 60 else { return "\(seconds) s" }
        let rest = seconds % 60
        return "\(seconds / 60) min \(rest < 10 ? "0" : "")\(rest) s"
    }

    /// The answer for an id that is unknown, malformed or expired. It has no trigger, so polling stops.
    public func unknownTaskFragment() -> HTML {
        """
        <div class="task task-unknown" role="alert">
        <p>\(presentation.unknownTaskMessage)</p>
        </div>
        """
    }

    /// A message fragment for an error (empty query, queue full…).
    ///
    /// On the page, static/app.js puts it in `#messages` (replacing the previous message) rather than among the
    /// tasks; without JavaScript it is shown on its own page (``messagePage(_:)``).
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
            <div id="messages" class="messages"></div>
            <div id="result" class="result" aria-live="polite">\(taskFragment(record))</div>
            <p class="back"><a href="\(basePath)/">\(presentation.anotherLink)</a></p>
            """, refresh: record.status.isFinished ? nil : 1)
    }

    /// A whole page for an error, for browsers without JavaScript.
    /// - Parameter content: the message fragment.
    /// - Returns: the page.
    public func messagePage(_ content: HTML) -> HTML {
        page(
            """
            \(content)
            <p class="back"><a href="\(basePath)/">Back to the form</a></p>
            """)
    }
}
