import Foundation
import Locking
import LonghaulTestSupport
import Tasks
import Testing

@Suite(.timeLimit(.minutes(2))) struct TaskIDTests {
    @Test func randomIDsAreUniqueURLSafeAndParse() {
        var seen = Set<String>()
        for _ in 0..<2000 {
            let id = TaskID.random()
            #expect(id.rawValue.count == 22)
            #expect(id.rawValue.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
            #expect(TaskID(id.rawValue) == id)
            seen.insert(id.rawValue)
        }
        #expect(seen.count == 2000)
    }

    @Test(arguments: [
        "", "short", "0x7f3a2b1c", "zM4E1juL3wn6zu79DGliy!", "zM4E1juL3wn6zu79DGliyQQ", "zM4E1juL3wn6zu79DGliyR",
    ])
    func malformedIDsAreRejected(_ text: String) {
        #expect(TaskID(text) == nil)
    }
}

/// What only the in-memory store can show (an injected clock); the behaviour both stores share is in
/// StoreContractTests.
@Suite(.timeLimit(.minutes(2))) struct MemoryTaskStoreTests {
    func makeRecord() -> TaskRecord { TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date()) }

    @Test func resultsSurviveReadsAndExpireAfterTheTTL() throws {
        let clock = ManualClock()
        let store = MemoryTaskStore(resultTTL: .seconds(60), clock: clock)
        let record = makeRecord()
        try store.enqueue(record, maxQueued: 10)
        let claimed = try #require(try store.claimNext(maxRunning: 1))
        try store.appendOutput(claimed.claim, at: 0, "Hello, ")
        try store.appendOutput(claimed.claim, at: 7, "world")
        _ = try store.finish(claimed.claim, status: .succeeded, failure: nil)
        #expect(try store.record(for: record.id)?.output == "Hello, world")
        #expect(try store.record(for: record.id)?.output == "Hello, world")
        clock.advance(59)
        #expect(try store.sweepExpired() == 0)
        #expect(try store.record(for: record.id) != nil)
        clock.advance(2)
        #expect(try store.record(for: record.id) == nil)
        #expect(try store.sweepExpired() == 1)
    }

    @Test func queuedAndRunningTasksNeverExpire() throws {
        let clock = ManualClock()
        let store = MemoryTaskStore(resultTTL: .seconds(1), clock: clock)
        let running = makeRecord()
        let queued = makeRecord()
        try store.enqueue(running, maxQueued: 10)
        try store.enqueue(queued, maxQueued: 10)
        _ = try store.claimNext(maxRunning: 1)
        clock.advance(10_000)
        #expect(try store.sweepExpired() == 0)
        #expect(try store.record(for: running.id)?.status == .running)
        #expect(try store.record(for: queued.id)?.status == .queued)
    }

}
