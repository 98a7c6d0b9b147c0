public import Curl
public import Logging
import Metrics
import StandardExtensions

/// An ``LLMClient`` for a provider reached over HTTP: Anthropic's Messages API or OpenAI-compatible chat
/// completions, always streamed, with the official SDKs' retry rules.
///
/// A failure is retried only while no text has been delivered, so a consumer never sees text twice.
public final class HTTPLLMClient: LLMClient {
    /// Sleeps for a duration; injected so tests need not wait.
    public typealias Sleeper = @Sendable (Duration) async throws -> Void

    private let configuration: LLMConfiguration
    private let http: CurlHTTPClient
    private let logger: Logger
    private let wire: any WireFormat
    private let retryPolicy: RetryPolicy
    private let sleep: Sleeper
    private let random: @Sendable () -> Double

    /// - Parameters:
    ///   - configuration: provider, URL, key, model, limits.
    ///   - http: the shared HTTP client.
    ///   - logger: where attempts and failures are logged (never the key).
    ///   - sleep: how to wait between attempts.
    ///   - random: a source of numbers in `0..<1` for backoff jitter.
    public init(
        configuration: LLMConfiguration, http: CurlHTTPClient, logger: Logger,
        sleep: @escaping Sleeper = { try await Task.sleep(for: $0) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.configuration = configuration
        self.http = http
        self.logger = logger
        switch configuration.provider {
        case .anthropic: wire = AnthropicWireFormat()
        case .openAI: wire = OpenAIWireFormat()
        }
        retryPolicy = RetryPolicy(maxRetries: max(0, configuration.maxRetries))
        self.sleep = sleep
        self.random = random
    }

    public func complete(prompt: String) -> AsyncThrowingStream<LLMEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<LLMEvent, any Error>.makeStream()
        // Unstructured: a stream's producer outlives this synchronous call; ending the stream cancels it (below).
        let task = Task { [self] in
            do {
                let info = try await run(prompt: prompt, continuation: continuation)
                continuation.yield(.finished(info))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func run(
        prompt: String, continuation: AsyncThrowingStream<LLMEvent, any Error>.Continuation
    ) async throws -> LLMCompletionInfo {
        let request = wire.request(prompt: prompt, configuration: configuration)
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            var delivered = false
            do {
                var info = try await attemptOnce(
                    request, continuation: continuation, delivered: &delivered, started: started)
                info.attempts = attempt
                LLMMetrics.callDuration.recordInterval(since: started)
                logger.debug(
                    "LLM call succeeded",
                    metadata: [
                        "llm.model": "\(info.model ?? configuration.model)", "llm.attempts": "\(attempt)",
                        "llm.duration_ms": "\((ContinuousClock.now - started).wholeMilliseconds)",
                        "upstream.request_id": "\(info.requestID ?? "-")",
                    ])
                Counter(label: LLMMetrics.callsLabel, dimensions: [("outcome", "succeeded")]).increment()
                return info
            } catch var error {
                error.attempts = attempt
                try Task.checkCancellation()
                guard error.isRetryable, !delivered, attempt <= retryPolicy.maxRetries else {
                    LLMMetrics.callDuration.recordInterval(since: started)
                    Counter(label: LLMMetrics.callsLabel, dimensions: [("outcome", error.shortDescription)]).increment()
                    logger.warning(
                        "LLM call failed",
                        metadata: [
                            "error.type": "\(error.type)", "error.message": "\(error.message)",
                            "llm.model": "\(configuration.model)", "llm.attempts": "\(attempt)",
                            "upstream.request_id": "\(error.requestID ?? "-")",
                            "http.status": "\(error.httpStatus ?? 0)",
                        ])
                    throw error
                }
                Counter(label: LLMMetrics.retriesLabel, dimensions: [("error_type", error.shortDescription)])
                    .increment()
                let delay = retryPolicy.delay(beforeRetry: attempt - 1, retryAfter: error.retryAfter, random: random())
                // A retry is degraded service (the call is slower, the provider struggles): warning, not info.
                logger.warning(
                    "LLM call will be retried",
                    metadata: [
                        "error.type": "\(error.type)", "error.message": "\(error.message)",
                        "llm.model": "\(configuration.model)", "llm.attempt": "\(attempt)",
                        "retry.delay_ms": "\(delay.wholeMilliseconds)",
                        "upstream.request_id": "\(error.requestID ?? "-")",
                        "http.status": "\(error.httpStatus ?? 0)",
                    ])
                try await sleep(delay)
            }
        }
    }

    /// One HTTP attempt. `delivered` becomes true once text has been handed to the consumer.
    private func attemptOnce(
        _ request: HTTPRequest, continuation: AsyncThrowingStream<LLMEvent, any Error>.Continuation,
        delivered: inout Bool, started: ContinuousClock.Instant
    ) async throws(LLMError) -> LLMCompletionInfo {
        var info = LLMCompletionInfo(model: configuration.model)
        var parser = SSEParser()
        var head: HTTPResponseHead?
        var errorBody: [UInt8] = []
        var answer = AnswerBody()

        func deliver(_ text: String) {
            if !delivered { LLMMetrics.timeToFirstToken.recordInterval(since: started) }
            delivered = true
            continuation.yield(.textDelta(text))
        }

        do {
            for try await part in http.stream(request) {
                switch part {
                case .head(let received):
                    head = received
                    info.requestID = received.header(wire.requestIDHeader)
                    LLMMetrics.recordRateLimits(received)
                case .body(let bytes):
                    guard let head, (200..<300).contains(head.status) else {
                        if errorBody.count < 65_536 { errorBody += bytes }
                        continue
                    }
                    switch answer.take(bytes, contentType: head.header("content-type")) {
                    case .pending:
                        continue
                    case .document:
                        guard answer.document.count <= AnswerBody.maxDocumentBytes else {
                            throw LLMError(
                                code: .invalidResponse,
                                message:
                                    "The model's server sent a JSON answer over \(AnswerBody.maxDocumentBytes) bytes.",
                                requestID: info.requestID)
                        }
                    case .events(let events):
                        for event in parser.feed(events) {
                            for signal in try wire.decode(event, info: &info) {
                                switch signal {
                                case .text(let text): deliver(text)
                                case .done: return info
                                }
                            }
                        }
                        if parser.isOverflowed {
                            throw LLMError(
                                code: .invalidResponse,
                                message: "The model's server sent an event over \(parser.maxEventBytes) bytes.",
                                requestID: info.requestID)
                        }
                    }
                }
            }
        } catch let error as LLMError {
            throw error
        } catch let error as CurlError {
            throw Self.llmError(error, requestID: info.requestID)
        } catch {
            throw LLMError(code: .cancelled, message: "The call was cancelled.")
        }
        if Task.isCancelled { throw LLMError(code: .cancelled, message: "The call was cancelled.") }
        guard let head else {
            throw LLMError(
                code: .connectionError, message: "The model's server closed the connection without answering.",
                isRetryable: true)
        }
        guard (200..<300).contains(head.status) else {
            var error = wire.error(status: head.status, body: errorBody, requestID: info.requestID)
            error.isRetryable = RetryPolicy.isRetryable(
                status: head.status, shouldRetryHeader: head.header("x-should-retry"))
            error.retryAfter = RetryPolicy.serverDelay(
                retryAfterMilliseconds: head.header("retry-after-ms"), retryAfterSeconds: head.header("retry-after"))
            throw error
        }
        if answer.isDocument {
            // A gateway answered the stream request with the whole answer at once: complete now that it has ended.
            let text = try wire.decodeDocument(answer.document, info: &info)
            if !text.isEmpty { deliver(text) }
            return info
        }
        throw LLMError(
            code: .incompleteResponse, message: "The model's stream ended before the answer was complete.",
            requestID: info.requestID, isRetryable: true)
    }

    private static func llmError(_ error: CurlError, requestID: String?) -> LLMError {
        switch error {
        case .connectTimedOut:
            LLMError(
                code: .connectTimeout, message: "Could not connect to the model's server in time (\(error.message)).",
                requestID: requestID, isRetryable: true)
        case .idleTimedOut:
            LLMError(
                code: .idleTimeout, message: "The model's server went silent for too long (\(error.message)).",
                requestID: requestID, isRetryable: true)
        case .operationTimedOut:
            LLMError(code: .timeout, message: error.message, requestID: requestID, isRetryable: true)
        case .couldNotConnect:
            LLMError(
                code: .connectionError, message: "Could not connect to the model's server (\(error.message)).",
                requestID: requestID, isRetryable: true)
        case .invalidRequest:
            LLMError(code: .invalidConfiguration, message: error.message, requestID: requestID)
        case .clientShutDown:
            LLMError(code: .shutdown, message: "The server is shutting down.", requestID: requestID)
        default:
            // `.transferFailed`, and any code added to CurlError later.
            LLMError(
                code: .connectionError, message: "The connection to the model's server broke (\(error.message)).",
                requestID: requestID, isRetryable: true)
        }
    }
}

/// The client's metrics (swift-metrics: whichever backend the process bootstraps, Prometheus in `longhaul`).
enum LLMMetrics {
    static let callsLabel = "longhaul_llm_calls_total"
    static let retriesLabel = "longhaul_llm_retries_total"
    /// Whole calls, retries included.
    static let callDuration = Metrics.Timer(label: "longhaul_llm_call_duration_seconds")
    /// From the start of a call to its first text.
    static let timeToFirstToken = Metrics.Timer(label: "longhaul_llm_time_to_first_token_seconds")

    /// The provider's remaining rate limits, from Anthropic's and OpenAI's response headers.
    static func recordRateLimits(_ head: HTTPResponseHead) {
        let headers: [(String, String)] = [
            ("anthropic-ratelimit-requests-remaining", "requests"),
            ("anthropic-ratelimit-tokens-remaining", "tokens"),
            ("anthropic-ratelimit-input-tokens-remaining", "input_tokens"),
            ("anthropic-ratelimit-output-tokens-remaining", "output_tokens"),
            ("x-ratelimit-remaining-requests", "requests"),
            ("x-ratelimit-remaining-tokens", "tokens"),
        ]
        for (name, kind) in headers {
            guard let value = head.header(name).flatMap(Double.init) else { continue }
            Gauge(label: "longhaul_llm_ratelimit_remaining", dimensions: [("kind", kind)]).record(value)
        }
    }
}

extension Metrics.Timer {
    fileprivate func recordInterval(since start: ContinuousClock.Instant) {
        recordNanoseconds((ContinuousClock.now - start).wholeNanoseconds)
    }
}
