import Foundation
import Logging
import LonghaulTestSupport
import Tasks
import Testing

@testable import RedisStore

/// The record read (`record(for:)`): one transaction of `HMGET` and `GET` instead of a script, decoded without
/// Foundation's JSON. It must give exactly what the scripts' snapshots give.
@Suite(.timeLimit(.minutes(2))) struct RedisRecordReadTests {
    func store(
        ttl: Duration = .seconds(60), url: RedisURL? = nil, prefix: String = "read:\(TaskID.random().rawValue):"
    ) throws -> RedisTaskStore {
        let url = try url ?? #require(TestRedis.shared.url, "\(TestRedis.shared.failure ?? "")")
        var configuration = RedisTaskStore.Configuration(url: url)
        configuration.keyPrefix = prefix
        configuration.resultTTL = ttl
        return RedisTaskStore(configuration: configuration, logger: Logger(label: "read"))
    }

    @Test func aPendingTaskReadsAsTheScriptsSnapshotWithItsOutputMetadataAndCancellation() throws {
        let store = try store()
        var record = TaskRecord(id: .random(), kind: "llm", input: "Why <b>\"blue\"</b>? ☀️", createdAt: Date())
        record.client = "10.0.0.7"
        try store.enqueue(record, maxQueued: 10)
        let queued = try #require(try store.record(for: record.id))
        #expect(queued.status == .queued && queued.attempt == 0 && queued.output == "" && queued.startedAt == nil)
        #expect(queued.input == record.input && queued.kind == "llm" && queued.client == "10.0.0.7")
        #expect(abs(queued.createdAt.timeIntervalSince(record.createdAt)) < 5)
        // The claim script's snapshot (HGETALL + GET, decoded the old way) is the reference for every field.
        let claimed = try #require(try store.claimNext(maxRunning: 5))
        #expect(try store.record(for: record.id) == claimed.record)
        #expect(claimed.record.createdAt == queued.createdAt)
        try store.appendOutput(claimed.claim, at: 0, "héllo <i>")
        let metadata = [
            "model": "claude", "quote\"d": "back\\slash/", "lines": "a\nb\tc\r", "emoji": "😀 é",
            "control": "\u{01}\u{1F}", "": "empty key",
        ]
        try store.update(claimed.claim, metadata: metadata, progress: 0.25)
        #expect(try store.cancel(record.id) == .requested)
        var expected = claimed.record
        expected.output = "héllo <i>"
        expected.metadata = metadata
        expected.progress = 0.25
        expected.cancelRequested = true
        #expect(try store.record(for: record.id) == expected)
        // The finish script's snapshot of the finished task, output included, is what a read gives too.
        let failure = TaskFailure(type: "overloaded", message: "Try later", requestID: "req_1", attempts: 2)
        let finished = try #require(try store.finish(claimed.claim, status: .failed, failure: failure))
        #expect(finished.status == .cancelled && finished.finishedAt != nil)
        #expect(try store.record(for: record.id) == finished)
        #expect(try store.record(for: record.id)?.cancelRequested == false)
    }

    @Test func aFinishedTasksOutputAndFailureAreReturned() throws {
        let store = try store()
        let ok = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(ok, maxQueued: 10)
        let run = try #require(try store.claimNext(maxRunning: 5))
        let answer = String(repeating: "The sky is blue because of Rayleigh scattering. ", count: 200)
        try store.appendOutput(run.claim, at: 0, answer)
        let succeeded = try #require(try store.finish(run.claim, status: .succeeded, failure: nil))
        let read = try #require(try store.record(for: ok.id))
        #expect(read == succeeded && read.output == answer && read.status == .succeeded && read.failure == nil)
        let bad = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(bad, maxQueued: 10)
        let badRun = try #require(try store.claimNext(maxRunning: 5))
        let failure = TaskFailure(type: "api_error", message: "Upstream said no", requestID: nil, attempts: 1)
        try store.finish(badRun.claim, status: .failed, failure: failure)
        #expect(try store.record(for: bad.id)?.failure == failure)
        #expect(try store.record(for: bad.id)?.status == .failed)
    }

    @Test func aDeletedExpiredOrUnknownTaskIsNotFoundAndACancelledOneReadsCancelled() async throws {
        let prefix = "read:\(TaskID.random().rawValue):"
        let store = try store(ttl: .milliseconds(300), prefix: prefix)
        let admin = RedisClient(url: try #require(TestRedis.shared.url))
        #expect(try store.record(for: .random()) == nil)
        // Cancelled while queued: final at once, with its finishing time, and then it expires like any result.
        let cancelled = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(cancelled, maxQueued: 10)
        #expect(try store.cancel(cancelled.id) == .cancelled)
        let read = try #require(try store.record(for: cancelled.id))
        #expect(read.status == .cancelled && read.finishedAt != nil && !read.cancelRequested)
        // Finished, then past its TTL (Redis expires the keys): gone.
        let finished = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(finished, maxQueued: 10)
        let run = try #require(try store.claimNext(maxRunning: 5))
        try store.appendOutput(run.claim, at: 0, "answer")
        try store.finish(run.claim, status: .succeeded, failure: nil)
        #expect(try store.record(for: finished.id)?.output == "answer")
        try await Task.sleep(for: .milliseconds(700))
        #expect(try store.record(for: finished.id) == nil)
        #expect(try store.record(for: cancelled.id) == nil)
        // Deleted behind the store's back (an operator's DEL): gone, even with its output key still there.
        let deleted = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(deleted, maxQueued: 10)
        let deletedRun = try #require(try store.claimNext(maxRunning: 5))
        try store.appendOutput(deletedRun.claim, at: 0, "orphan")
        try admin.command(["DEL", prefix + "task:" + deleted.id.rawValue])
        #expect(try store.record(for: deleted.id) == nil)
    }

    @Test func aReadFailsCleanlyWhileRedisIsDownAndWorksAgainAfterARestart() throws {
        let redis = try PrivateRedis()
        let store = try store(url: redis.url)
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(record, maxQueued: 10)
        #expect(try store.record(for: record.id)?.status == .queued)
        redis.kill()
        #expect {
            try store.record(for: record.id)
        } throws: { error in
            (error as? TaskStoreError)?.isUnavailable == true
        }
        try redis.start()
        // A server without persistence lost the task: not found, not an error, on fresh connections.
        var after: TaskRecord??
        for _ in 0..<50 where after == nil {
            after = try? store.record(for: record.id)
            if after == nil { Thread.sleep(forTimeInterval: 0.1) }
        }
        #expect(after == .some(nil))
        try store.enqueue(record, maxQueued: 10)
        #expect(try store.record(for: record.id)?.status == .queued)
    }

    @Test(arguments: [
        "{}", " { } ", #"{"model":"claude-sonnet","request_id":"req_1"}"#, #"{ "a" : "b" , "c":"" }"#,
        #"{"k":"\"\\\/\b\f\n\r\t"}"#, #"{"\u00e9":"\u00E9\ud83d\ude00 \u0000"}"#, #"{"raw":"é 😀 ✓"}"#,
    ])
    func flatObjectsOfStringsParseAsJSONDecoderReadsThem(_ json: String) throws {
        let parsed = try #require(FlatJSONObject.parse(Array(json.utf8)))
        #expect(parsed == (try JSONDecoder().decode([String: String].self, from: Data(json.utf8))))
    }

    @Test(arguments: [
        "", "[]", #"{"a":1}"#, #"{"a":"b""#, #"{"a":"b"} x"#, #"{"a":"\ud800"}"#, #"{"a":"\udc00x"}"#,
        "{\"a\":\"x\u{01}\"}", #"{"a":"\x"}"#, #"{"a":"\u12"}"#, #"{"a":{"b":"c"}}"#, #"{"a":"b",}"#, #"{a:"b"}"#,
        #"{"dup":"first","dup":"second"}"#,
    ])
    func anythingElseIsLeftToJSONDecoder(_ json: String) {
        #expect(FlatJSONObject.parse(Array(json.utf8)) == nil)
    }
}
