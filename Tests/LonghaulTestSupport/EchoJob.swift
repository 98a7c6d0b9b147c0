public import Tasks

/// A job that echoes its input.
public struct EchoJob: Job {
    public init() {}

    public func run(input: String, context: JobContext) async throws {
        try context.emit(input)
    }
}
