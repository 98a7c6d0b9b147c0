import Foundation
import Locking
import Logging
import LonghaulTestSupport
import Tasks
import Testing

@Suite(.timeLimit(.minutes(1))) struct TaskTableTests {
    let logger = Logger(label: "test")

    /// Waits, without polling, until the task satisfies `condition`: the table's change observer says when to look
    /// again. A task that never gets there hangs the test until its time limit, which fails it.
    func waitUntil(
        _ table: TaskTable, _ id: TaskID, _ condition: @escaping (TaskRecord) -> Bool
    ) async throws -> TaskRecord {
        // Subscribed before the first read, so no change between the read and the wait is missed.
        let (changes, continuation) = AsyncStream.makeStream(of: TaskChange.self)
        table.observeChanges { continuation.yield($0) }
        if let record = try table.record(id), condition(record) { return record }
        for await change in changes where change == .task(id) || change == .all {
            if let record = try table.record(id), condition(record) { return record }
        }
        Issue.record("task \(id) never got there")
        return try #require(try table.record(id))
    }

    /// Waits until the task has finished.
    func waitUntilFinished(_ table: TaskTable, _ id: TaskID) async throws -> TaskRecord {
        try await waitUntil(table, id) { $0.status.isFinished }
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
            throw JobFailure(
                TaskFailure(type: "authentication_error", message: "bad key", requestID: "req_1", attempts: 1))
        }
        let table = TaskTable(store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["x": job], logger: logger)
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let done = try await waitUntilFinished(table, try table.submit(kind: "x", input: "").id)
        #expect(done.status == .failed)
        #expect(
            done.failure
                == TaskFailure(type: "authentication_error", message: "bad key", requestID: "req_1", attempts: 1))
    }

    @Test func neverRunsMoreThanTheLimit() async throws {
        let current = LockedValue(0)
        let peak = LockedValue(0)
        let job = ClosureJob { _, _ in
            let now = current.withLock {
                $0 += 1
                return $0
            }
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
        _ = try await waitUntil(table, id) { $0.output == "started" }
        #expect(try table.cancel(id) == .requested)
        let done = try await waitUntilFinished(table, id)
        #expect(done.status == .cancelled)
        #expect(try table.cancel(id) == .alreadyFinished(.cancelled))
    }

    @Test func cancellingOneRunningTaskLeavesTheOthersRunning() async throws {
        // Job "wait" ends when the gate closes: cancelled if its task was cancelled, succeeded otherwise.
        let (gate, opener) = AsyncStream.makeStream(of: Void.self)
        let job = ClosureJob { input, context in
            try context.emit("started")
            if input == "wait" {
                for await _ in gate {}
                try Task.checkCancellation()
                try context.emit(" done")
            } else {
                try await Task.sleep(for: .seconds(60))
            }
        }
        let table = TaskTable(store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["x": job], logger: logger)
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let cancelled = try table.submit(kind: "x", input: "sleep").id
        let kept = try table.submit(kind: "x", input: "wait").id
        for id in [cancelled, kept] { _ = try await waitUntil(table, id) { $0.output == "started" } }
        #expect(try table.cancel(cancelled) == .requested)
        #expect(try await waitUntilFinished(table, cancelled).status == .cancelled)
        opener.finish()
        let done = try await waitUntilFinished(table, kept)
        #expect(done.status == .succeeded)
        #expect(done.output == "started done")
    }

    @Test func aJobPastTheTimeLimitFailsWithTaskTimeout() async throws {
        let job = ClosureJob { _, _ in try await Task.sleep(for: .seconds(60)) }
        var configuration = TaskTable.Configuration()
        configuration.taskTimeout = .seconds(10)
        let clock = ManualClock()
        let table = TaskTable(
            store: MemoryTaskStore(resultTTL: .seconds(60), clock: clock), jobs: ["x": job],
            configuration: configuration, clock: clock, logger: logger)
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let id = try table.submit(kind: "x", input: "").id
        _ = try await waitUntil(table, id) { $0.status == .running }
        // The sweep, poll and deadline loops all wait on the clock; past the limit the deadline loop stops the job.
        await clock.waitForSleepers(3)
        clock.advance(by: .seconds(9))
        #expect(try table.record(id)?.status == .running)
        clock.advance(by: .seconds(2))
        let done = try await waitUntilFinished(table, id)
        #expect(done.status == .failed)
        #expect(done.failure?.type == "task_timeout")
        #expect(done.failure?.kind == .taskTimeout)
    }
}
