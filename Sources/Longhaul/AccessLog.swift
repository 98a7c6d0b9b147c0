import FastCGI
import Logging
import StandardExtensions

/// One line per request, at `info` when the operator turns it on: method, path, status, duration, and what the
/// route put in ``FastCGI/FastCGIResponse/logMetadata``, and the task it is about (`task.id`, from
/// ``FastCGI/FastCGIResponse/subjectID``).
struct AccessLog: Sendable {
    let logger: Logger

    /// Logs a request and its answer.
    /// - Parameters:
    ///   - request: the request.
    ///   - response: the answer.
    ///   - elapsed: how long the route took.
    func record(_ request: FastCGIRequest, _ response: FastCGIResponse, elapsed: Duration) {
        record(
            method: request.method, path: request.path, status: response.status, subject: response.subjectID,
            routeMetadata: response.logMetadata, elapsed: elapsed)
    }

    /// Logs a request from its parts: for the answers made before any request value exists (``TaskPollResponder``).
    func record(
        method: String, path: String, status: Int, subject: String?, routeMetadata: Logger.Metadata = [:],
        elapsed: Duration
    ) {
        var metadata: Logger.Metadata = [
            "http.method": "\(method)", "http.path": "\(path)", "http.status": "\(status)",
            "http.duration_us": "\(elapsed.wholeMicroseconds)",
        ]
        if let subject { metadata["task.id"] = "\(subject)" }
        metadata.merge(routeMetadata) { _, route in route }
        logger.info("request", metadata: metadata)
    }
}
