/// A kind of slow work that the task table runs, such as a call to a slow remote service or a report.
///
/// A job is registered under a name (its kind) and receives the task's input as text, so that any process sharing
/// the store can run any task. It reports output and progress through its ``JobContext``, signals failure by
/// throwing (a ``JobFailure`` gives users a clear reason), and stops promptly when its Swift task is cancelled.
public protocol Job: Sendable {
    /// Does the work for one task.
    /// - Parameters:
    ///   - input: the task's input, as submitted.
    ///   - context: where to send output, progress and facts.
    /// - Throws: ``JobFailure`` for a failure users should see explained; `CancellationError` when cancelled;
    ///   any other error becomes an `internal_error` failure.
    func run(input: String, context: JobContext) async throws
}

/// A job made from a closure, for simple cases.
public struct ClosureJob: Job {
    private let body: @Sendable (String, JobContext) async throws -> Void

    /// - Parameter body: the work, given the input and the context.
    public init(_ body: @escaping @Sendable (String, JobContext) async throws -> Void) {
        self.body = body
    }

    public func run(input: String, context: JobContext) async throws {
        try await body(input, context)
    }
}

/// A failure a job wants users to see, with its reason.
public struct JobFailure: Error, Sendable, Equatable {
    /// The reason, kept on the task.
    public var failure: TaskFailure

    /// - Parameter failure: the reason to keep on the task.
    public init(_ failure: TaskFailure) {
        self.failure = failure
    }
}

/// What a running job may do to its task.
///
/// Writes are queued and return at once; the table stores them in order, retrying while the store is briefly
/// unavailable. Once the run has lost its claim on the task (another process took it over), every call throws
/// `CancellationError` and the job's Swift task is cancelled: the job should stop.
public struct JobContext: Sendable {
    private let run: TaskRun

    init(run: TaskRun) {
        self.run = run
    }

    /// The task being worked on.
    public var taskID: TaskID { run.id }

    /// Which run of the task this is (1 for the first; more after another process took it over).
    public var attempt: Int { run.claim.attempt }

    /// Appends a chunk of output; pollers see it as soon as it is stored and streams relay it.
    /// - Parameter text: the chunk.
    /// - Throws: `CancellationError` when this run no longer owns the task.
    public func emit(_ text: String) throws {
        try run.emit(text)
    }

    /// Reports progress.
    /// - Parameter fraction: from 0 (nothing done) to 1 (all done); clamped to that range.
    /// - Throws: `CancellationError` when this run no longer owns the task.
    public func report(progress fraction: Double) throws {
        try run.update(metadata: [:], progress: min(max(fraction, 0), 1))
    }

    /// Records facts about the work (counts, an upstream request id…), shown by the JSON API and logged with the
    /// task's end as `job.<key>`.
    /// - Parameter metadata: entries to merge into the task's metadata.
    /// - Throws: `CancellationError` when this run no longer owns the task.
    public func record(metadata: [String: String]) throws {
        try run.update(metadata: metadata, progress: nil)
    }
}
