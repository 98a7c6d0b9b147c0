import Foundation
import Logging
import LonghaulTestSupport
import Tasks
import Testing

@testable import RedisStore

@Suite(.timeLimit(.minutes(2))) struct TaskStoreErrorTests {
    @Test func equalityLooksAtTheReasonOnly() {
        #expect(TaskStoreError.unavailable("Redis is down") == .unavailable("a timeout"))
        #expect(TaskStoreError.unavailable("Redis is down") != .queueFull)
        #expect(TaskStoreError.queueFull != .clientLimit)
        #expect(TaskStoreError.leaseLost == .leaseLost)
    }

    @Test func theDescriptionKeepsTheReasonAndTheShortDescriptionDoesNot() {
        let error = TaskStoreError.unavailable("connection refused")
        #expect(error.description == "the task store is unavailable: connection refused")
        #expect(error.shortDescription == "unavailable")
        #expect(error.isUnavailable)
        #expect(TaskStoreError.queueFull.shortDescription == "queue_full")
        #expect(!TaskStoreError.queueFull.isUnavailable)
    }

    @Test func aTypedThrowCanBeCaughtByReason() {
        func refuse(_ error: TaskStoreError) throws(TaskStoreError) { throw error }
        func outcome(_ error: TaskStoreError) -> String {
            do {
                try refuse(error)
                return "none"
            } catch .queueFull {
                return "full"
            } catch .clientLimit {
                return "limit"
            } catch {
                return "other: \(error)"
            }
        }
        #expect(outcome(.queueFull) == "full")
        #expect(outcome(.clientLimit) == "limit")
        #expect(outcome(.unavailable("down")) == "other: the task store is unavailable: down")
    }

    @Test func anUnavailableErrorKeepsTheErrorBeneath() {
        let error = TaskStoreError.unavailable("Redis is down", underlying: RedisError.pingTimeout)
        #expect(error.underlyingError as? RedisError == .pingTimeout)
    }
}

@Suite(.timeLimit(.minutes(2))) struct TaskFailureTests {
    @Test func theKindIsStoredAndShownAsTheSameString() throws {
        let failure = TaskFailure(kind: .taskTimeout, message: "too slow", attempts: 1)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(failure), as: UTF8.self)
        #expect(json == #"{"attempts":1,"message":"too slow","type":"task_timeout"}"#)
        #expect(failure.type == "task_timeout")
        #expect(failure.kind == "task_timeout")
    }

    @Test func aRecordWrittenBeforeKindsExistedDecodes() throws {
        let old = #"{"type":"authentication_error","message":"bad key","requestID":"req_1","attempts":2}"#
        let failure = try JSONDecoder().decode(TaskFailure.self, from: Data(old.utf8))
        #expect(
            failure == TaskFailure(type: "authentication_error", message: "bad key", requestID: "req_1", attempts: 2))
        #expect(failure.kind == TaskFailure.Kind(rawValue: "authentication_error"))
    }

    @Test func theTableKindsKeepTheirSpelling() {
        let kinds: [TaskFailure.Kind] = [.internalError, .taskTimeout, .unknownJob, .interrupted, .workerLost]
        #expect(
            kinds.map(\.rawValue) == ["internal_error", "task_timeout", "unknown_job", "interrupted", "worker_lost"])
    }
}

@Suite(.timeLimit(.minutes(2))) struct RedisErrorTests {
    @Test func equalityLooksAtTheCodeOnlyAndTheDetailsStay() {
        let error = RedisError.io("read reply", hiredisCode: 3, "Server closed the connection")
        #expect(error == .io)
        #expect(error != .connect)
        #expect(error.hiredisCode == 3)
        #expect(error.operation == "read reply")
        #expect(error.detail == "Server closed the connection")
        #expect(
            error.description == "Redis connection failed (read reply, hiredis error 3): Server closed the connection")
        #expect(error.shortDescription == "io")
    }
}

@Suite(.timeLimit(.minutes(2))) struct RedisRecordCodecTests {
    /// A snapshot as the scripts return it: `{HGETALL as a flat array, output}`.
    func snapshot(_ fields: [(String, String)], output: String) -> RedisValue {
        .array([
            .array(fields.flatMap { [RedisValue.string($0.0), .string($0.1)] }),
            .string(output),
        ])
    }

    @Test func aFinishedRecordDecodesWithItsFailureAndMetadata() throws {
        let id = TaskID.random()
        let reply = snapshot(
            [
                ("kind", "llm"), ("input", "q"), ("status", "failed"), ("created", "1800000000000"),
                ("started", "1800000001000"), ("finished", "1800000002500"), ("cancel", "1"), ("runs", "2"),
                ("metadata", #"{"attempts":"3"}"#), ("client", ""),
                ("failure", #"{"type":"worker_lost","message":"gone","attempts":3}"#),
            ], output: "partial")
        let record = try #require(RedisRecordCodec.decodeRecord(id: id, reply))
        #expect(record.id == id && record.kind == "llm" && record.input == "q")
        #expect(record.status == .failed)
        #expect(record.createdAt == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(record.finishedAt == Date(timeIntervalSince1970: 1_800_000_002.5))
        #expect(record.output == "partial")
        #expect(record.failure?.kind == .workerLost)
        #expect(record.metadata == ["attempts": "3"])
        #expect(record.cancelRequested == false)  // a finished task's request no longer matters
        #expect(record.client == nil)
        #expect(record.attempt == 2)
    }

    @Test func anEmptyHashIsNoRecord() {
        #expect(RedisRecordCodec.decodeRecord(id: .random(), snapshot([], output: "")) == nil)
        #expect(RedisRecordCodec.decodeRecord(id: .random(), .null) == nil)
    }

    @Test func failuresAndMetadataEncodeAsTheScriptsExpect() {
        #expect(RedisRecordCodec.encodeFailure(nil) == "")
        #expect(RedisRecordCodec.encodeMetadata([:]) == "{}")
        #expect(RedisRecordCodec.encodeMetadata(["a": "1"]) == #"{"a":"1"}"#)
    }
}

@Suite(.timeLimit(.minutes(1))) struct TaskTableLoggingTests {
    @Test func theFinishedLineCarriesTheJobsMetadataUnderItsOwnNames() async throws {
        let (logger, logs) = CapturingLogHandler.logger()
        let job = ClosureJob { _, context in
            try context.record(metadata: ["attempts": "2", "usage.input_tokens": "5", "request_id": "req_7"])
            throw JobFailure(TaskFailure(type: "overloaded_error", message: "busy", requestID: "req_9"))
        }
        let table = TaskTable(store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["x": job], logger: logger)
        let (changes, continuation) = AsyncStream.makeStream(of: TaskChange.self)
        table.observeChanges { continuation.yield($0) }
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let id = try table.submit(kind: "x", input: "").id
        for await change in changes where change == .task(id) {
            if try table.record(id)?.status.isFinished == true,
                logs.all.contains(where: { $0.message == "task finished" })
            {
                break
            }
        }
        let line = try #require(logs.all.first { $0.message == "task finished" })
        #expect(line.level == .info)
        #expect(line.metadata["job.attempts"] == "2")
        #expect(line.metadata["job.usage.input_tokens"] == "5")
        #expect(line.metadata["job.request_id"] == "req_7")
        #expect(line.metadata["upstream.request_id"] == "req_9")
        #expect(line.metadata["task.status"] == "failed")
        #expect(line.metadata["error.type"] == "overloaded_error")
        #expect(!line.metadata.keys.contains { $0.hasPrefix("llm.") })
    }
}

@Suite(.timeLimit(.minutes(2))) struct RedisScriptArgumentTests {
    @Test func theEnqueueScriptSendsItsArgumentsInTheOrderTheLuaReadsThem() throws {
        let id = TaskID.random()
        let script = EnqueueScript(
            maxQueued: 10, id: id, kind: "x", input: "in", client: nil, maxPerClient: 3, idempotencyKey: "k",
            idempotencyWindow: .seconds(600))
        #expect(script.arguments == ["10", id.rawValue, "x", "in", "", "3", "k", "600000"])
    }

    @Test func claimsTravelAsIDAndTokenPairs() {
        let a = TaskClaim(id: .random(), token: "1:a", attempt: 1)
        let b = TaskClaim(id: .random(), token: "2:b", attempt: 2)
        #expect(
            HeartbeatScript(leaseTimeout: .milliseconds(1500), claims: [a, b]).arguments
                == ["1500", a.id.rawValue, "1:a", b.id.rawValue, "2:b"])
        #expect(RequeueScript(resultTTL: .seconds(1), claims: []).arguments == ["1000"])
    }

    @Test func anUpdateWithoutProgressSendsAnEmptyProgress() {
        let id = TaskID.random()
        #expect(
            UpdateScript(id: id, token: "t", metadataJSON: "{}", progress: nil).arguments
                == [id.rawValue, "t", "{}", ""])
        #expect(
            UpdateScript(id: id, token: "t", metadataJSON: "{}", progress: 0.5).arguments
                == [id.rawValue, "t", "{}", "0.5"])
    }
}
