import Foundation
import Logging
import LonghaulTestSupport
import RedisStore
import Synchronization
import Tasks
import Testing

/// The store kinds every contract test runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case redis

    var testDescription: String { rawValue }

    /// A fresh, empty store (Redis: a new key prefix) with a result TTL.
    /// - Parameter clock: the in-memory store's clock (Redis keeps its own time, `TIME`, inside its scripts).
    func make(
        ttl: Duration = .seconds(60), lease: Duration = .seconds(15), maxAttempts: Int = 3,
        clock: ManualClock = ManualClock()
    ) throws -> any TaskStore {
        switch self {
        case .memory:
            return MemoryTaskStore(resultTTL: ttl, clock: clock)
        case .redis:
            let server = TestRedis.shared
            guard let url = server.url else {
                Issue.record("Redis contract tests need a real redis-server: \(server.failure ?? "unknown")")
                throw CancellationError()
            }
            var configuration = RedisTaskStore.Configuration(url: url)
            configuration.keyPrefix = "test:\(TaskID.random().rawValue):"
            configuration.resultTTL = ttl
            configuration.leaseTimeout = lease
            configuration.maxAttempts = maxAttempts
            return RedisTaskStore(configuration: configuration, logger: Logger(label: "test"))
        }
    }
}

extension StoreKind {
    /// Lets `duration` pass for a store made with `clock`: the in-memory store's clock is moved at once; Redis reads
    /// its own clock inside its scripts, so for it this is a real (short) wait.
    func letTimePass(_ duration: Duration, on clock: ManualClock) async throws {
        switch self {
        case .memory: clock.advance(by: duration)
        case .redis: try await Task.sleep(for: duration)
        }
    }
}

extension TaskStore {
    /// Appends at the end of the output as the store has it (tests write one chunk at a time).
    func append(_ claim: TaskClaim, _ text: String) throws {
        let length = try record(for: claim.id)?.output.utf8.count ?? 0
        try appendOutput(claim, at: length, text)
    }
}

@Suite(.timeLimit(.minutes(2))) struct StoreContractTests {
    func makeRecord(_ input: String = "q") -> TaskRecord {
        TaskRecord(id: .random(), kind: "llm", input: input, createdAt: Date())
    }

    @Test(arguments: StoreKind.allCases)
    func enqueueReadAndBoundedQueue(_ kind: StoreKind) throws {
        let store = try kind.make()
        let first = makeRecord("first <b>ünïcödé</b> \u{202E}")
        try store.enqueue(first, maxQueued: 2)
        try store.enqueue(makeRecord(), maxQueued: 2)
        let third = makeRecord()
        #expect(throws: TaskStoreError.queueFull) { try store.enqueue(third, maxQueued: 2) }
        #expect(try store.record(for: third.id) == nil)
        let read = try #require(try store.record(for: first.id))
        #expect(read.status == .queued)
        #expect(read.input == first.input)
        #expect(read.kind == "llm")
        // The Redis store stamps tasks with the server's clock (the same machine's here).
        #expect(abs(read.createdAt.timeIntervalSince(first.createdAt)) < 1)
        #expect(try store.countsByStatus()[.queued] == 2)
        #expect(try store.record(for: .random()) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func claimInOrderWithinTheLimitThenOutputAndFinish(_ kind: StoreKind) throws {
        let store = try kind.make()
        let first = makeRecord()
        let second = makeRecord()
        try store.enqueue(first, maxQueued: 10)
        try store.enqueue(second, maxQueued: 10)
        let claimed = try #require(try store.claimNext(maxRunning: 1))
        #expect(claimed.id == first.id)
        #expect(claimed.record.status == .running)
        #expect(claimed.record.startedAt != nil)
        #expect(claimed.claim.attempt == 1 && claimed.record.attempt == 1)
        #expect(try store.claimNext(maxRunning: 1) == nil)
        try store.appendOutput(claimed.claim, at: 0, "Hello, ")
        try store.appendOutput(claimed.claim, at: 7, "wörld <script>")
        // A retried chunk (its reply was lost) is not written twice, and one retried with more text joined to it
        // adds only the new part.
        try store.appendOutput(claimed.claim, at: 7, "wörld <script>")
        try store.appendOutput(claimed.claim, at: 7, "wörld <script>")
        #expect(try store.record(for: first.id)?.output == "Hello, wörld <script>")
        try store.appendOutput(claimed.claim, at: 22, " more")
        try store.appendOutput(claimed.claim, at: 22, " more text")
        #expect(try store.record(for: first.id)?.output == "Hello, wörld <script> more text")
        #expect(throws: TaskStoreError.leaseLost) { try store.appendOutput(claimed.claim, at: 99, "a gap") }
        try store.update(
            claimed.claim, metadata: ["stop_reason": "end_turn", "usage.input_tokens": "3"], progress: 0.5)
        try store.update(claimed.claim, metadata: ["attempts": "1"], progress: nil)
        let running = try #require(try store.record(for: first.id))
        #expect(running.output == "Hello, wörld <script> more text")
        #expect(running.metadata == ["stop_reason": "end_turn", "usage.input_tokens": "3", "attempts": "1"])
        #expect(running.progress == 0.5)
        #expect(try store.countsByStatus()[.running] == 1)
        let failure = TaskFailure(type: "api_error", message: "boom", requestID: "req_1", attempts: 3)
        let finished = try #require(try store.finish(claimed.claim, status: .failed, failure: failure))
        #expect(finished.status == .failed)
        // Finishing again under the same claim (a retry) returns the same result.
        #expect(try store.finish(claimed.claim, status: .succeeded, failure: nil)?.status == .failed)
        #expect(finished.failure == failure)
        #expect(finished.finishedAt != nil)
        // Reading does not consume.
        #expect(try store.record(for: first.id)?.output == "Hello, wörld <script> more text")
        #expect(try store.record(for: first.id)?.failure == failure)
        #expect(try store.claimNext(maxRunning: 1)?.id == second.id)
        let counts = try store.countsByStatus()
        #expect(counts[.failed] == 1 && counts[.running] == 1 && counts[.queued] == 0)
    }

    @Test(arguments: StoreKind.allCases)
    func cancelOutcomesAndCancelledFinish(_ kind: StoreKind) throws {
        let store = try kind.make()
        let running = makeRecord()
        let queued = makeRecord()
        try store.enqueue(running, maxQueued: 10)
        try store.enqueue(queued, maxQueued: 10)
        let claimed = try #require(try store.claimNext(maxRunning: 1))
        #expect(try store.cancel(queued.id) == .cancelled)
        #expect(try store.record(for: queued.id)?.status == .cancelled)
        #expect(try store.claimNext(maxRunning: 5) == nil)
        #expect(try store.cancel(running.id) == .requested)
        #expect(try store.record(for: running.id)?.cancelRequested == true)
        #expect(try store.finish(claimed.claim, status: .succeeded, failure: nil)?.status == .cancelled)
        #expect(try store.cancel(running.id) == .alreadyFinished(.cancelled))
        #expect(try store.cancel(.random()) == .notFound)
    }

    @Test(arguments: StoreKind.allCases)
    func idempotencyKeysReturnTheEarlierTask(_ kind: StoreKind) throws {
        let store = try kind.make()
        let first = makeRecord("same question")
        let admission = Admission(maxQueued: 10, idempotencyKey: "client|key-1")
        #expect(try store.enqueue(first, admission: admission) == first.id)
        let again = makeRecord("same question")
        #expect(try store.enqueue(again, admission: admission) == first.id)
        #expect(try store.record(for: again.id) == nil)
        let other = makeRecord("another")
        #expect(
            try store.enqueue(other, admission: Admission(maxQueued: 10, idempotencyKey: "client|key-2")) == other.id)
        #expect(try store.countsByStatus()[.queued] == 2)
    }

    @Test(arguments: StoreKind.allCases)
    func theClientLimitCountsQueuedAndRunningTasks(_ kind: StoreKind) throws {
        let store = try kind.make()
        var records: [TaskRecord] = []
        for index in 0..<3 {
            var record = makeRecord("q\(index)")
            record.client = "192.0.2.7"
            records.append(record)
        }
        let admission = Admission(maxQueued: 10, maxPerClient: 2)
        _ = try store.enqueue(records[0], admission: admission)
        _ = try store.enqueue(records[1], admission: admission)
        #expect(throws: TaskStoreError.clientLimit) { try store.enqueue(records[2], admission: admission) }
        var stranger = makeRecord("other client")
        stranger.client = "192.0.2.8"
        _ = try store.enqueue(stranger, admission: admission)
        // One finishes, one is cancelled while queued: room for two again.
        let claimed = try #require(try store.claimNext(maxRunning: 1))
        try store.finish(claimed.claim, status: .succeeded, failure: nil)
        #expect(try store.enqueue(records[2], admission: admission) == records[2].id)
        #expect(try store.record(for: records[2].id)?.client == "192.0.2.7")
    }

    @Test(arguments: StoreKind.allCases)
    func finishedTasksExpireAfterTheTTLAndOthersNever(_ kind: StoreKind) async throws {
        let clock = ManualClock()
        let store = try kind.make(ttl: .milliseconds(300), clock: clock)
        let done = makeRecord()
        let stillRunning = makeRecord()
        let stillQueued = makeRecord()
        try store.enqueue(done, maxQueued: 10)
        try store.enqueue(stillRunning, maxQueued: 10)
        try store.enqueue(stillQueued, maxQueued: 10)
        let doneClaim = try #require(try store.claimNext(maxRunning: 2))
        _ = try store.claimNext(maxRunning: 2)
        try store.finish(doneClaim.claim, status: .succeeded, failure: nil)
        #expect(try store.record(for: done.id) != nil)
        try await kind.letTimePass(.milliseconds(600), on: clock)
        #expect(try store.record(for: done.id) == nil)
        #expect(try store.sweepExpired() == 1)
        #expect(try store.record(for: stillRunning.id)?.status == .running)
        #expect(try store.record(for: stillQueued.id)?.status == .queued)
        #expect(try store.countsByStatus()[.succeeded] == 0)
    }
}

@Suite(.timeLimit(.minutes(2))) struct RedisStoreTests {
    /// Settings for the test server under a key prefix of its own, so tests never see each other's keys.
    func freshConfiguration() throws -> RedisTaskStore.Configuration {
        let url = try #require(TestRedis.shared.url, "\(TestRedis.shared.failure ?? "")")
        var configuration = RedisTaskStore.Configuration(url: url)
        configuration.keyPrefix = "test:\(TaskID.random().rawValue):"
        return configuration
    }

    @Test func aSecondProcessSeesAndCancelsTasksOfTheFirst() throws {
        let configuration = try freshConfiguration()
        let processA = RedisTaskStore(configuration: configuration, logger: Logger(label: "a"))
        let processB = RedisTaskStore(configuration: configuration, logger: Logger(label: "b"))
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try processA.enqueue(record, maxQueued: 10)
        let claimed = try #require(try processB.claimNext(maxRunning: 1))
        #expect(claimed.id == record.id)
        // The limit holds across processes.
        try processA.enqueue(TaskRecord(id: .random(), kind: "llm", input: "q2", createdAt: Date()), maxQueued: 10)
        #expect(try processA.claimNext(maxRunning: 1) == nil)
        // Only the claim's holder writes.
        let forged = TaskClaim(id: record.id, token: "1:forged", attempt: 1)
        #expect(throws: TaskStoreError.leaseLost) { try processA.appendOutput(forged, at: 0, "not mine") }
        try processB.appendOutput(claimed.claim, at: 0, "mine")
        #expect(try processA.record(for: record.id)?.output == "mine")
        // Cancel through A reaches B's heartbeat.
        #expect(try processA.cancel(record.id) == .requested)
        #expect(try processB.renewLeases([claimed.claim]).cancelRequested == [record.id])
        #expect(try processA.renewLeases([forged]).lost == [record.id])
    }

    @Test func aDeadProcessesTaskIsTakenOverThenFailsAfterMaxAttempts() async throws {
        var configuration = try freshConfiguration()
        configuration.leaseTimeout = .milliseconds(200)
        configuration.maxAttempts = 2
        let dead = RedisTaskStore(configuration: configuration, logger: Logger(label: "dead"))
        let survivor = RedisTaskStore(configuration: configuration, logger: Logger(label: "survivor"))
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try dead.enqueue(record, maxQueued: 10)
        let first = try #require(try dead.claimNext(maxRunning: 5))
        try dead.appendOutput(first.claim, at: 0, "partial")
        // Not before the lease has run out.
        #expect(try survivor.claimNext(maxRunning: 5) == nil)
        try await Task.sleep(for: .milliseconds(400))
        let taken = try #require(try survivor.claimNext(maxRunning: 5))
        #expect(taken.id == record.id)
        #expect(taken.record.output == "")
        #expect(taken.claim.attempt == 2 && taken.record.attempt == 2)
        #expect(try dead.renewLeases([first.claim]).lost == [record.id])
        #expect(throws: TaskStoreError.leaseLost) { try dead.finish(first.claim, status: .succeeded, failure: nil) }
        #expect(try survivor.record(for: record.id)?.status == .running)
        // The survivor dies too: the attempts are used up, the task fails as worker_lost.
        try await Task.sleep(for: .milliseconds(400))
        #expect(try dead.claimNext(maxRunning: 5) == nil)
        let failed = try #require(try dead.record(for: record.id))
        #expect(failed.status == .failed)
        #expect(failed.failure?.type == "worker_lost")
    }

    @Test func requeueHandsRunningTasksBack() throws {
        let configuration = try freshConfiguration()
        let leaving = RedisTaskStore(configuration: configuration, logger: Logger(label: "leaving"))
        let staying = RedisTaskStore(configuration: configuration, logger: Logger(label: "staying"))
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try leaving.enqueue(record, maxQueued: 10)
        let claimed = try #require(try leaving.claimNext(maxRunning: 5))
        #expect(try leaving.requeue([claimed.claim]) == 1)
        #expect(try staying.record(for: record.id)?.status == .queued)
        #expect(try staying.claimNext(maxRunning: 5)?.id == record.id)
    }

    @Test func everyKeyOfAFinishedTaskExpires() async throws {
        var configuration = try freshConfiguration()
        configuration.resultTTL = .milliseconds(300)
        let (url, prefix) = (configuration.url, configuration.keyPrefix)
        let store = RedisTaskStore(configuration: configuration, logger: Logger(label: "ttl"))
        for index in 0..<5 {
            let record = TaskRecord(id: .random(), kind: "llm", input: "q\(index)", createdAt: Date())
            try store.enqueue(record, maxQueued: 10)
            let claimed = try #require(try store.claimNext(maxRunning: 10))
            try store.appendOutput(claimed.claim, at: 0, "some output")
            try store.finish(claimed.claim, status: .succeeded, failure: nil)
        }
        let client = RedisClient(url: url)
        func keys() throws -> [String] {
            try client.command(["KEYS", prefix + "*"]).elements.compactMap(\.text).sorted()
        }
        #expect(try keys().count == 11)  // 5 task hashes, 5 outputs, done:succeeded
        try await Task.sleep(for: .milliseconds(600))
        try store.sweepExpired()
        #expect(try keys().isEmpty)
    }

    @Test func aDownServerIsUnavailableNotACrash() throws {
        let url = try #require(RedisURL("redis://127.0.0.1:1/0"))
        let store = RedisTaskStore(configuration: .init(url: url), logger: Logger(label: "down"))
        #expect(throws: TaskStoreError.self) { try store.record(for: .random()) }
        #expect(throws: TaskStoreError.self) {
            try store.enqueue(TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date()), maxQueued: 10)
        }
    }

    @Test func urlsAreParsed() {
        #expect(RedisURL("redis://localhost") == RedisURL("redis://localhost:6379/0"))
        let full = RedisURL("redis://:s3cret@10.0.0.5:6380/2")
        #expect(full?.host == "10.0.0.5" && full?.port == 6380 && full?.database == 2 && full?.password == "s3cret")
        #expect(full?.description.contains("s3cret") == false)
        #expect(RedisURL("http://localhost") == nil)
        #expect(RedisURL("redis://localhost/x") == nil)
    }
}
