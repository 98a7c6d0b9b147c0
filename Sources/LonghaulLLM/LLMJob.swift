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
        do {
            for try await event in client.complete(prompt: input) {
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
        } catch let error as LLMError {
            throw JobFailure(
                TaskFailure(
                    type: error.type, message: error.message, requestID: error.requestID, attempts: error.attempts))
        }
    }
}
