public import LLM

/// A model that answers from a script: text pieces, then either an error or a normal end.
public struct ScriptedLLMClient: LLMClient {
    public var pieces: [String]
    public var error: LLMError?

    public init(pieces: [String], error: LLMError? = nil) {
        self.pieces = pieces
        self.error = error
    }

    public func complete(prompt: String) -> AsyncThrowingStream<LLMEvent, any Error> {
        AsyncThrowingStream { continuation in
            for piece in pieces { continuation.yield(.textDelta(piece)) }
            if let error {
                continuation.finish(throwing: error)
            } else {
                continuation.yield(
                    .finished(
                        LLMCompletionInfo(
                            stopReason: "end_turn", inputTokens: 4, outputTokens: 2, requestID: "req_ok", attempts: 1,
                            model: "m")))
                continuation.finish()
            }
        }
    }
}

/// A model that never answers until cancelled.
public struct ClosureLLM: LLMClient {
    public init() {}

    public func complete(prompt: String) -> AsyncThrowingStream<LLMEvent, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                try? await Task.sleep(for: .seconds(3600))
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
