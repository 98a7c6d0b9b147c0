public import Longhaul
import Tasks

extension TaskPresentation {
    /// The LLM demo's words: questions and answers, the ``LLMJob``'s results rendered as Markdown, a note when an
    /// answer hit the token limit, and a plain sentence for the provider's terse error types.
    public static let llm: TaskPresentation = {
        var presentation = TaskPresentation()
        presentation.inputLabel = "Question"
        presentation.item = "question"
        presentation.items = "questions"
        presentation.anotherLink = "Ask another question"
        presentation.againLabel = "Ask again"
        presentation.tookPrefix = "Answered in"
        presentation.resubmit = (path: "/generate", field: "query")
        presentation.markdownKinds = [LLMJob.kind]
        presentation.failureSummaries = llmFailureSummaries
        presentation.resultNote = { record in
            record.metadata["stop_reason"] == "max_tokens"
                ? "The answer was cut short: it reached the token limit (max_tokens)." : nil
        }
        return presentation
    }()

    /// A plain-language sentence for each upstream error type whose own message is terse.
    static let llmFailureSummaries: [String: String] = {
        let refused = "The language model service refused the request."
        return [
            "authentication_error": "The language model service did not accept this server's API key.",
            "permission_error": "This server's API key may not use the language model.",
            "billing_error": "The language model service refused the request for billing reasons.",
            "rate_limit_error": "The language model service is limiting requests right now; try again shortly.",
            "overloaded_error": "The language model service is overloaded right now; try again shortly.",
            "api_error": "The language model service had an internal problem.",
            "timeout_error": "The language model service had an internal problem.",
            "invalid_request_error": refused, "not_found_error": refused, "request_too_large": refused,
        ]
    }()
}
