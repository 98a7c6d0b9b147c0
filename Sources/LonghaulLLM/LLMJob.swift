public import LLM
public import Tasks

/// The job behind `generate`: asks the model and appends its text to the task as it streams in.
///
/// Usage, stop reason, request id, attempts and model are kept as task metadata; an ``LLMError`` becomes the
/// task's failure, with the provider's type, message, request id and attempt count.
public struct LLMJob: Job {
    /// The task kind this job is registered under.
    public static let kind = "llm"

    private let client: any LLMClient

    /// - Parameter client: the model to ask.
    public init(client: any LLMClient) {
        self.client = client
    }

    public func run(input: String, context: JobContext) async throws {
        // Only the call crosses an `await` here: the rest is in synchronous helpers, so that this frame, kept for as
        // long as the call runs, stays small (with them inline it was 960 bytes).
        do {
            try await client.complete(prompt: input) { event in try Self.handle(event, context: context) }
        } catch {
            throw Self.jobError(error)
        }
    }

    @inline(never)
    private static func handle(_ event: LLMEvent, context: JobContext) throws {
        switch event {
        case .textDelta(let text):
            try context.emit(text)
        case .finished(let info):
            var metadata = ["attempts": String(info.attempts)]
            metadata["stop_reason"] = info.stopReason
            metadata["request_id"] = info.requestID
            metadata["model"] = info.model
            metadata["usage.input_tokens"] = info.inputTokens.map(String.init)
            metadata["usage.output_tokens"] = info.outputTokens.map(String.init)
            try context.record(metadata: metadata)
        }
    }

    /// An ``LLMError`` as the task's failure; any other error as it is.
    @inline(never)
    private static func jobError(_ error: any Error) -> any Error {
        guard let error = error as? LLMError else { return error }
        return JobFailure(
            TaskFailure(type: error.type, message: error.message, requestID: error.requestID, attempts: error.attempts))
    }
}
