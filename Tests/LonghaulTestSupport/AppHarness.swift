public import FastCGI
import Foundation
public import LLM
import Logging
public import Longhaul
import LonghaulLLM
import Tasks

/// One app over an in-memory table, with helpers to send requests as nginx would.
public final class AppHarness: Sendable {
    public let app: LonghaulApp
    public let runner: Task<Void, Never>

    public init(client: any LLMClient, maxQueued: Int = 100, maxInFlight: Int = 8, basePath: String = "") {
        var tableConfiguration = TaskTable.Configuration()
        tableConfiguration.maxQueued = maxQueued
        tableConfiguration.maxInFlight = maxInFlight
        let table = TaskTable(
            store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: [LLMJob.kind: LLMJob(client: client)],
            configuration: tableConfiguration, logger: Logger(label: "test"))
        var configuration = LonghaulApp.Configuration()
        configuration.basePath = basePath
        configuration.maxQueryBytes = 64
        app = LonghaulApp(
            table: table, configuration: configuration, presentation: .llm, logger: Logger(label: "test"),
            addRoutes: LLMRoutes.add)
        runner = Task { await table.run() }
    }

    deinit { runner.cancel() }

    public struct Answer {
        public var status: Int
        public var headers: [HeaderField]
        public var text: String
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    public func send(
        _ method: String, _ uri: String, body: String = "", contentType: String? = nil, htmx: Bool = false
    ) -> Answer {
        let parts = uri.split(separator: "?", maxSplits: 1)
        var params = [
            "REQUEST_METHOD": method, "DOCUMENT_URI": String(parts[0]),
            "QUERY_STRING": parts.count > 1 ? String(parts[1]) : "",
        ]
        if let contentType { params["CONTENT_TYPE"] = contentType }
        if htmx { params["HTTP_HX_REQUEST"] = "true" }
        let response = app.respond(to: FastCGIRequest(params: params, body: Array(body.utf8)))
        guard let bytes = response.body.completeBytes else {
            return Answer(status: response.status, headers: response.headers, text: "")
        }
        return Answer(status: response.status, headers: response.headers, text: String(decoding: bytes, as: UTF8.self))
    }

    public func form(_ query: String, htmx: Bool = true) -> Answer {
        let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        return send(
            "POST", "/generate", body: "query=\(encoded)", contentType: "application/x-www-form-urlencoded", htmx: htmx)
    }

    public func taskID(in text: String) -> String? {
        guard let range = text.range(of: #"task_id=[A-Za-z0-9_-]{22}"#, options: .regularExpression) else { return nil }
        return String(text[range].dropFirst("task_id=".count))
    }

    /// Polls `check` until the fragment no longer says Processing (bounded, so a hang fails).
    public func finalFragment(_ id: String) async throws -> Answer {
        for _ in 0..<500 {
            let answer = send("GET", "/check?task_id=\(id)", htmx: true)
            if !answer.text.contains("Processing...") { return answer }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw HarnessError.taskNeverFinished(id)
    }
}

/// Why a harness gave up.
public enum HarnessError: Error {
    /// The task was still running after the harness's bounded wait.
    case taskNeverFinished(String)
}
