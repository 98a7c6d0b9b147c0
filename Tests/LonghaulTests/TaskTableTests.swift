import Foundation
import Logging
import Locking
import Tasks
import Testing

@Suite struct TaskTableTests {
    let logger = Logger(label: "test")

    /// Polls the table until the task has finished; fails after ~10 s so a hang is a failure, not a stuck run.
    func waitUntilFinished(_ table: TaskTable, _ id: TaskID) async throws -> TaskRecord {
        for _ in 0..<1000 {
            if let record = try table.record(id), record.status.isFinished { return record }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("task \(id) did not finish")
        return try #require(try table.record(id))
    }

    @Test func runsJobsAndKeepsTheirOutput() async throws {
        let job = ClosureJob { input, context in
            try context.emit("echo: ")
            try context.emit(input)
            try context.record(metadata: ["stop_reason": "end_turn"])
        }
        let table = TaskTable(store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["echo": job], logger: logger)
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let record = try table.submit(kind: "echo", input: "hi")
        let done = try await waitUntilFinished(table, record.id)
        #expect(done.status == .succeeded)
        #expect(done.output == "echo: hi")
        #expect(done.metadata["stop_reason"] == "end_turn")
    }

    @Test func jobFailuresAreKept() async throws {
        let job = ClosureJob { _, _ in
            throw JobFailure(TaskFailure(type: "authentication_error", message: "bad key", requestID: "req_1", attempts: 1))
        }
        let table = TaskTable(store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["x": job], logger: logger)
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let done = try await waitUntilFinished(table, try table.submit(kind: "x", input: "").id)
        #expect(done.status == .failed)
        #expect(done.failure == TaskFailure(type: "authentication_error", message: "bad key", requestID: "req_1", attempts: 1))
    }

    @Test func neverRunsMoreThanTheLimit() async throws {
        let current = LockedValue(0)
        let peak = LockedValue(0)
        let job = ClosureJob { _, _ in
            let now = current.withLock { $0 += 1; return $0 }
            peak.withLock { $0 = max($0, now) }
            try await Task.sleep(for: .milliseconds(50))
            current.withLock { $0 -= 1 }
        }
        var configuration = TaskTable.Configuration()
        configuration.maxInFlight = 3
        let table = TaskTable(
            store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["x": job], configuration: configuration,
            logger: logger)
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let ids = try (0..<12).map { _ in try table.submit(kind: "x", input: "").id }
        for id in ids { #expect(try await waitUntilFinished(table, id).status == .succeeded) }
        #expect(peak.withLock { $0 } == 3)
    }

    @Test func cancellingARunningTaskStopsIt() async throws {
        let job = ClosureJob { _, context in
            try context.emit("started")
            try await Task.sleep(for: .seconds(60))
        }
        let table = TaskTable(store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["x": job], logger: logger)
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let id = try table.submit(kind: "x", input: "").id
        for _ in 0..<500 where try table.record(id)?.output != "started" { try await Task.sleep(for: .milliseconds(10)) }
        #expect(try table.cancel(id) == .requested)
        let done = try await waitUntilFinished(table, id)
        #expect(done.status == .cancelled)
        #expect(try table.cancel(id) == .alreadyFinished(.cancelled))
    }

    @Test func aJobPastTheTimeLimitFailsWithTaskTimeout() async throws {
        let job = ClosureJob { _, _ in try await Task.sleep(for: .seconds(60)) }
        var configuration = TaskTable.Configuration()
        configuration.taskTimeout = .milliseconds(50)
        let table = TaskTable(
            store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["x": job], configuration: configuration,
            logger: logger)
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let done = try await waitUntilFinished(table, try table.submit(kind: "x", input: "").id)
        #expect(done.status == .failed)
        #expect(done.failure?.type == "task_timeout")
    }
}
