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
        let microseconds = elapsed.wholeMicroseconds
        var metadata: Logger.Metadata = [
            "http.method": "\(request.method)", "http.path": "\(request.path)", "http.status": "\(response.status)",
            "http.duration_us": "\(microseconds)",
        ]
        if let subject = response.subjectID { metadata["task.id"] = "\(subject)" }
        metadata.merge(response.logMetadata) { _, route in route }
        logger.info("request", metadata: metadata)
    }
}
