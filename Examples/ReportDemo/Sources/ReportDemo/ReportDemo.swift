import FastCGI
import Foundation
import HTML
import Logging
import Longhaul
import Tasks

/// A slow job that is not an LLM call: it "builds a report" in steps, reporting its progress, then emits it.
struct ReportJob: Job {
    /// The job kind the route submits.
    static let kind = "report"
    /// How long a report takes.
    let duration: Duration

    func run(input: String, context: JobContext) async throws {
        let steps = 20
        for step in 1...steps {
            try await Task.sleep(for: duration / steps)
            try context.report(progress: Double(step) / Double(steps))
        }
        try context.emit("Report “\(input)”: \(steps) sections compiled.\nTotal: \(input.count * 1_234) rows.")
    }
}

/// `ReportDemo [--socket PATH]`: serves the report app under spawn-fcgi (fd 0) or on its own unix socket.
/// REPORT_SECONDS sets how long a report takes (default 20).
@main
struct ReportDemo {
    static func main() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "report-demo")
        var configuration = FastCGIServer.Configuration()
        let arguments = CommandLine.arguments
        if let index = arguments.firstIndex(of: "--socket"), index + 1 < arguments.count {
            configuration.listener = .unixSocket(path: arguments[index + 1], mode: 0o660)
        }
        let seconds = ProcessInfo.processInfo.environment["REPORT_SECONDS"].flatMap(Double.init) ?? 20
        let server = try FastCGIServer(configuration: configuration, logger: logger)
        let runner = LonghaulRunner(server: server, logger: logger)

        let table = TaskTable(
            store: MemoryTaskStore(resultTTL: .seconds(3600)),
            jobs: [ReportJob.kind: ReportJob(duration: .milliseconds(seconds * 1000))], logger: logger)
        // How the shared task views speak of a report (the defaults speak of "tasks").
        var presentation = TaskPresentation()
        presentation.inputLabel = "Report"
        presentation.item = "report"
        presentation.items = "reports"
        presentation.anotherLink = "Build another report"
        presentation.againLabel = "Build it again"
        presentation.tookPrefix = "Built in"
        presentation.resubmit = (path: "/reports", field: "title")
        let app = LonghaulApp(table: table, presentation: presentation, logger: logger) { router, context in
            router.add("GET", "/") { _ in
                .html(
                    context.views.page(
                        """
                        <form id="query-form" class="query-form" method="post" action="\(context.basePath)/reports" \
                        hx-post="\(context.basePath)/reports" hx-target="#result" hx-swap="beforeend">
                        <label for="query">Report title</label>
                        <div class="query-row">
                        <input id="query" name="title" type="text" autocomplete="off" placeholder="Quarterly sales">
                        <button type="submit">Build the report</button>
                        </div>
                        </form>
                        <div id="messages" class="messages"></div>
                        <div id="result" class="result" aria-live="polite"></div>
                        """))
            }
            router.add("POST", "/reports") { request throws(HTTPError) in
                let fields = try request.formFields()
                let title = try context.requiredText(fields.first { $0.name == "title" }?.value, field: "title")
                let record = try context.submit(kind: ReportJob.kind, input: title, for: request)
                return context.taskCreated(record, for: request)
            }
        }
        logger.info("report demo started")
        try await runner.run(app)
        logger.info("report demo stopped")
    }
}
