public import Foundation

/// Where a task is in its life. The same names appear in JSON, HTML and metrics.
public enum TaskStatus: String, Sendable, Codable, CaseIterable {
    /// Accepted and waiting for a free slot.
    case queued
    /// A job is working on it.
    case running
    /// The job finished and its output is complete.
    case succeeded
    /// The job failed; ``TaskRecord/failure`` says why.
    case failed
    /// Cancelled before it finished.
    case cancelled

    /// Whether the task has reached a final state (and so may expire).
    public var isFinished: Bool {
        switch self {
        case .queued, .running: false
        case .succeeded, .failed, .cancelled: true
        }
    }
}

/// Everything the table knows about one task.
public struct TaskRecord: Sendable, Equatable {
    /// The unguessable identifier.
    public var id: TaskID
    /// Which registered job runs it (its kind name).
    public var kind: String
    /// The job's input, as submitted.
    public var input: String
    /// The current state.
    public var status: TaskStatus
    /// When the task was accepted.
    public var createdAt: Date
    /// When a job started working on it.
    public var startedAt: Date?
    /// When it reached a final state.
    public var finishedAt: Date?
    /// The output so far: the concatenation of every chunk the job emitted.
    public var output: String
    /// Why it failed, when ``status`` is ``TaskStatus/failed``.
    public var failure: TaskFailure?
    /// Facts the job recorded about its work (``JobContext/record(metadata:)``), as the job names them.
    public var metadata: [String: String]
    /// Progress reported by the job, from 0 to 1, when it reports any.
    public var progress: Double?
    /// Whether a cancellation was requested while the task was running.
    public var cancelRequested: Bool
    /// Who asked for it (the client address nginx saw), for the per-client limit; `nil` when unknown.
    public var client: String?
    /// Which run of the task the output belongs to: 0 while queued, 1 for the first run, more after takeovers.
    public var attempt: Int

    /// Makes a queued task.
    /// - Parameters:
    ///   - id: its identifier.
    ///   - kind: the job kind that will run it.
    ///   - input: the job's input.
    ///   - createdAt: when it was accepted.
    public init(id: TaskID, kind: String, input: String, createdAt: Date) {
        self.id = id
        self.kind = kind
        self.input = input
        self.status = .queued
        self.createdAt = createdAt
        self.startedAt = nil
        self.finishedAt = nil
        self.output = ""
        self.failure = nil
        self.metadata = [:]
        self.progress = nil
        self.cancelRequested = false
        self.client = nil
        self.attempt = 0
    }
}
