/// Something that answers a prompt with a stream of text.
public protocol LLMClient: Sendable {
    /// Asks the model and streams the answer.
    ///
    /// The stream yields ``LLMEvent/textDelta(_:)`` as text arrives, then one ``LLMEvent/finished(_:)``; it throws
    /// ``LLMError`` when the call fails after its retries. Cancelling the consuming task aborts the upstream request.
    /// - Parameter prompt: the user's message.
    /// - Returns: the events.
    func complete(prompt: String) -> AsyncThrowingStream<LLMEvent, any Error>

    /// Asks the model and hands each event to `receive` as it comes, on the calling task: the same events, errors
    /// and cancellation as ``complete(prompt:)``, without a stream between the call and its consumer (each event
    /// through an `AsyncThrowingStream` costs a few thousand instructions of generic code).
    /// - Parameters:
    ///   - prompt: the user's message.
    ///   - receive: called with each event, in order; an error it throws ends the call and is rethrown.
    func complete(prompt: String, receive: (LLMEvent) throws -> Void) async throws
}

extension LLMClient {
    /// Iterates ``complete(prompt:)``: for clients that have nothing quicker.
    public func complete(prompt: String, receive: (LLMEvent) throws -> Void) async throws {
        for try await event in complete(prompt: prompt) {
            try receive(event)
        }
    }
}

/// What an LLM call yields.
public enum LLMEvent: Sendable, Equatable {
    /// More text of the answer.
    case textDelta(String)
    /// The call has ended normally.
    case finished(LLMCompletionInfo)
}

/// Facts about a finished call.
public struct LLMCompletionInfo: Sendable, Equatable {
    /// Why the model stopped (`end_turn`, `max_tokens`, `stop_sequence`…; OpenAI's `finish_reason`).
    public var stopReason: String?
    /// Prompt tokens, when the provider says.
    public var inputTokens: Int?
    /// Answer tokens, when the provider says.
    public var outputTokens: Int?
    /// The provider's request id (header `request-id`, `x-request-id`, or the message id).
    public var requestID: String?
    /// The number of HTTP attempts made (1 without retries).
    public var attempts: Int
    /// The model that answered, as the provider names it.
    public var model: String?

    public init(
        stopReason: String? = nil, inputTokens: Int? = nil, outputTokens: Int? = nil, requestID: String? = nil,
        attempts: Int = 1, model: String? = nil
    ) {
        self.stopReason = stopReason
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.requestID = requestID
        self.attempts = attempts
        self.model = model
    }
}

/// Which wire format a provider speaks.
public enum LLMProvider: String, Sendable, CaseIterable {
    /// Anthropic's Messages API (`POST /v1/messages`).
    case anthropic
    /// OpenAI-compatible chat completions (`POST /v1/chat/completions`): OpenAI, Ollama, vLLM, llama.cpp.
    case openAI = "openai"
}

/// How to reach the model.
public struct LLMConfiguration: Sendable {
    /// The wire format.
    public var provider: LLMProvider = .anthropic
    /// The API's base URL, without the `/v1/...` path.
    public var baseURL: String = "https://api.anthropic.com"
    /// The API key. Sent in a header, never logged or shown.
    public var apiKey: String = ""
    /// The model name.
    public var model: String = "claude-haiku-4-5"
    /// The most tokens the answer may have.
    public var maxTokens: Int = 1024
    /// Longest time to connect (DNS, TCP, TLS).
    public var connectTimeout: Duration = .seconds(5)
    /// Longest silence between two received bytes, headers included.
    public var idleTimeout: Duration = .seconds(60)
    /// Retries after the first attempt, for retryable failures only.
    public var maxRetries: Int = 2
    /// The `anthropic-version` header.
    public var anthropicVersion: String = "2023-06-01"

    public init() {}
}
