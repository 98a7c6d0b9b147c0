public import Tasks

/// How an app shows its tasks to people: the words for one of them, which results are Markdown, and plain sentences
/// for its failure types. The defaults speak of tasks in general; an app on Longhaul passes its own (LonghaulLLM's
/// `TaskPresentation.llm` speaks of questions and answers).
public struct TaskPresentation: Sendable {
    /// The label read before a task's input (`Task` gives "Task: …", for screen readers).
    public var inputLabel = "Task"
    /// One task, in a sentence ("please submit your task again").
    public var item = "task"
    /// Several tasks, in a sentence ("You already have 3 tasks in progress").
    public var items = "tasks"
    /// The link from a task's page back to the form.
    public var anotherLink = "Start another task"
    /// The button that submits a cancelled task's input again.
    public var againLabel = "Start again"
    /// The start of the line saying how long a finished task took ("Finished in 7 s").
    public var tookPrefix = "Finished in"
    /// Where a failed or cancelled task's "Try again" button posts its input: the route (below the base path) and
    /// the form field, as the app's own form sends them; `nil` for no such button.
    public var resubmit: (path: String, field: String)?
    /// The task kinds whose finished result is Markdown, shown rendered; other kinds' results are shown as text with
    /// their line breaks.
    public var markdownKinds: Set<String> = []
    /// A plain sentence for each failure type whose own message is terse (shown above the message).
    public var failureSummaries: [String: String] = [:]
    /// A note under a finished task's result (say, that it was cut short), or `nil`.
    public var resultNote: @Sendable (TaskRecord) -> String? = { _ in nil }

    /// The generic presentation; set the members an app words differently.
    public init() {}

    /// The message for a task id that is missing, malformed, unknown or expired (page and JSON).
    public var unknownTaskMessage: String {
        "Unknown or expired task. Results are kept for a limited time; please submit your \(item) again."
    }

    /// The message for a client that already has `limit` tasks in progress.
    /// - Parameter limit: the per-client limit.
    /// - Returns: the message.
    public func clientLimitMessage(_ limit: Int) -> String {
        "You already have \(limit) \(items) in progress. Please wait for one to finish."
    }

    /// The message when the queue is full.
    public var queueFullMessage: String {
        "The server is busy: too many \(items) are waiting. Please try again in a few seconds."
    }
}
