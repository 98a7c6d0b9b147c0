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
        // No producer task: the task that iterates the stream runs the call itself, a step per `next()` (an
        // unfolding stream). A task per call costs its object and its own async-frame slabs; cancelling the
        // consumer's task cancels the step it is awaiting, which aborts the transfer.
        let call = Call(client: self, prompt: prompt)
        return AsyncThrowingStream(unfolding: { try await call.next() })
    }

    public func complete(prompt: String, receive: (LLMEvent) throws -> Void) async throws {
        // The calling task runs the call a step at a time, as the stream above does, and hands the events straight
        // on. Cancelling it cancels the step it awaits, which aborts the transfer.
        let call = Call(client: self, prompt: prompt)
        while let event = try await call.next() {
            try receive(event)
        }
    }

    /// One call: its attempts, each an HTTP transfer read a part at a time, and the events ready for the consumer.
    ///
    /// Touched only by the task iterating the call's stream, one `next()` at a time (an iterator has one consumer):
    /// hence `@unchecked Sendable`.
    private final class Call: @unchecked Sendable {
        private let client: HTTPLLMClient
        private var prompt: String
        private var request: HTTPRequest?
        private let started = ContinuousClock.now
        private var attempt = 0
        private var finished = false
        /// Set after a retryable failure: wait this long, then start the next attempt.
        private var retryDelay: Duration?
        /// Events decoded but not yet handed out (a chunk can hold several).
        private var events = ConsumingQueue<LLMEvent>()

        // The current attempt; `parts` is nil between attempts.
        private var parts: HTTPResponseParts.AsyncIterator?
        private var delivered = false
        private var info: LLMCompletionInfo
        private var reader: EventStreamReader
        /// The status, and the head itself only when it is an error's (its headers say whether to retry).
        private var status: Int?
        private var contentType: String?
        private var errorHead: HTTPResponseHead?
        private var errorBody: [UInt8] = []
        private var answer = AnswerBody()

        init(client: HTTPLLMClient, prompt: String) {
            self.client = client
            self.prompt = prompt
            info = LLMCompletionInfo(model: client.configuration.model)
            reader = EventStreamReader(wire: client.wire)
        }

        // `next()` is the only async function of a call, and it keeps little across its awaits: its frame (in the
        // consumer's task's slabs) is what a call holds while it waits for the provider; a deeper chain of async
        // functions would hold a slab each. Decoding, logging and retry decisions run in synchronous functions,
        // on the thread's stack.
        func next() async throws -> LLMEvent? {
            while true {
                if let event = events.takeFirst() { return event }
                if finished { return nil }
                if let delay = retryDelay {
                    retryDelay = nil
                    do {
                        try await client.sleep(delay)
                    } catch {
                        finished = true
                        throw error
                    }
                }
                if parts == nil { startAttempt() }
                // The iterator is a reference to the stream's storage: a copy reads the same stream.
                var iterator = parts!
                let part: Result<HTTPResponsePart?, any Error>
                do {
                    part = .success(try await iterator.next())
                } catch {
                    part = .failure(error)
                }
                try received(part)
            }
        }

        /// Handles what the transfer gave: ends the call, or sets `retryDelay`, as it says.
        private func received(_ part: Result<HTTPResponsePart?, any Error>) throws {
            let outcome: Result<LLMCompletionInfo?, LLMError>
            do throws(LLMError) {
                switch part {
                case .success(let part):
                    outcome = .success(try handle(part))
                case .failure(let error as CurlError):
                    throw HTTPLLMClient.llmError(error, requestID: info.requestID)
                case .failure:
                    throw LLMError(code: .cancelled, message: "The call was cancelled.")
                }
            } catch {
                outcome = .failure(error)
            }
            retryDelay = try settle(outcome)
        }

        private func startAttempt() {
            attempt += 1
            if request == nil {
                request = client.wire.request(prompt: prompt, configuration: client.configuration)
                prompt = ""
            }
            info = LLMCompletionInfo(model: client.configuration.model)
            parts = client.http.stream(request!).makeAsyncIterator()
        }

        /// After a part: `nil` to go on; the delay before the next attempt after a retryable failure. Ends the call
        /// on success (queueing `.finished`) and throws when it fails for good.
        private func settle(_ outcome: Result<LLMCompletionInfo?, LLMError>) throws -> Duration? {
            switch outcome {
            case .success(nil):
                return nil
            case .success(var info?):
                endAttempt()
                info.attempts = attempt
                LLMMetrics.callDuration.recordInterval(since: started)
                client.logger.debug(
                    "LLM call succeeded",
                    metadata: [
                        "llm.model": "\(info.model ?? client.configuration.model)", "llm.attempts": "\(attempt)",
                        "llm.duration_ms": "\((ContinuousClock.now - started).wholeMilliseconds)",
                        "upstream.request_id": "\(info.requestID ?? "-")",
                    ])
                Counter(label: LLMMetrics.callsLabel, dimensions: [("outcome", "succeeded")]).increment()
                events.append(.finished(info))
                finished = true
                return nil
            case .failure(var error):
                endAttempt()
                error.attempts = attempt
                if Task.isCancelled { finished = true }
                try Task.checkCancellation()
                guard error.isRetryable, !delivered, attempt <= client.retryPolicy.maxRetries else {
                    finished = true
                    LLMMetrics.callDuration.recordInterval(since: started)
                    Counter(label: LLMMetrics.callsLabel, dimensions: [("outcome", error.shortDescription)]).increment()
                    client.logger.warning(
                        "LLM call failed",
                        metadata: [
                            "error.type": "\(error.type)", "error.message": "\(error.message)",
                            "llm.model": "\(client.configuration.model)", "llm.attempts": "\(attempt)",
                            "upstream.request_id": "\(error.requestID ?? "-")",
                            "http.status": "\(error.httpStatus ?? 0)",
                        ])
                    throw error
                }
                Counter(label: LLMMetrics.retriesLabel, dimensions: [("error_type", error.shortDescription)])
                    .increment()
                let delay = client.retryPolicy.delay(
                    beforeRetry: attempt - 1, retryAfter: error.retryAfter, random: client.random())
                // A retry is degraded service (the call is slower, the provider struggles): warning, not info.
                client.logger.warning(
                    "LLM call will be retried",
                    metadata: [
                        "error.type": "\(error.type)", "error.message": "\(error.message)",
                        "llm.model": "\(client.configuration.model)", "llm.attempt": "\(attempt)",
                        "retry.delay_ms": "\(delay.wholeMilliseconds)",
                        "upstream.request_id": "\(error.requestID ?? "-")",
                        "http.status": "\(error.httpStatus ?? 0)",
                    ])
                return delay
            }
        }

        /// Drops the current attempt's transfer (aborting it if still running) and its state.
        private func endAttempt() {
            parts = nil
            reader = EventStreamReader(wire: client.wire)
            status = nil
            contentType = nil
            errorHead = nil
            errorBody = []
            answer = AnswerBody()
        }

        /// Handles one part of the current attempt (`nil`: the transfer has ended). Returns the call's facts once the
        /// answer is complete.
        private func handle(_ part: HTTPResponsePart?) throws(LLMError) -> LLMCompletionInfo? {
            guard let part else { return try endOfBody() }
            switch part {
            case .head(let received):
                status = received.status
                contentType = received.header("content-type")
                if !(200..<300).contains(received.status) { errorHead = received }
                info.requestID = received.header(client.wire.requestIDHeader)
                LLMMetrics.recordRateLimits(received)
            case .body(let bytes):
                guard let status, (200..<300).contains(status) else {
                    if errorBody.count < 65_536 { errorBody += bytes }
                    return nil
                }
                switch answer.take(bytes, contentType: contentType) {
                case .pending:
                    return nil
                case .document:
                    guard answer.document.count <= AnswerBody.maxDocumentBytes else {
                        throw LLMError(
                            code: .invalidResponse,
                            message: "The model's server sent a JSON answer over \(AnswerBody.maxDocumentBytes) bytes.",
                            requestID: info.requestID)
                    }
                case .events(let received):
                    // The chunk's deltas go out as one (see EventStreamReader), text decoded before a failure
                    // included: it counts as delivered, so the call is not retried.
                    var text = ""
                    defer { if !text.isEmpty { deliver(text) } }
                    if try reader.read(received, text: &text, info: &info) { return info }
                }
            }
            return nil
        }

        /// The transfer has ended without the answer's end event.
        private func endOfBody() throws(LLMError) -> LLMCompletionInfo {
            if Task.isCancelled { throw LLMError(code: .cancelled, message: "The call was cancelled.") }
            guard let status else {
                throw LLMError(
                    code: .connectionError, message: "The model's server closed the connection without answering.",
                    isRetryable: true)
            }
            guard (200..<300).contains(status) else {
                var error = client.wire.error(status: status, body: errorBody, requestID: info.requestID)
                error.isRetryable = RetryPolicy.isRetryable(
                    status: status, shouldRetryHeader: errorHead?.header("x-should-retry"))
                error.retryAfter = RetryPolicy.serverDelay(
                    retryAfterMilliseconds: errorHead?.header("retry-after-ms"),
                    retryAfterSeconds: errorHead?.header("retry-after"))
                throw error
            }
            if answer.isDocument {
                // A gateway answered the stream request with the whole answer at once: complete now that it has ended.
                let text = try client.wire.decodeDocument(answer.document, info: &info)
                if !text.isEmpty { deliver(text) }
                return info
            }
            throw LLMError(
                code: .incompleteResponse, message: "The model's stream ended before the answer was complete.",
                requestID: info.requestID, isRetryable: true)
        }

        private func deliver(_ text: String) {
            if !delivered { LLMMetrics.timeToFirstToken.recordInterval(since: started) }
            delivered = true
            events.append(.textDelta(text))
        }
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
