import Foundation
import Locking
import LonghaulTestSupport
import Testing

@testable import Tasks

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

    /// The validity check accepts exactly the URL-safe base64 alphabet, in any position.
    @Test func everyByteOutsideTheAlphabetIsRejected() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        for byte in UInt8(0)...UInt8(127) {
            for position in [0, 7, 20] {
                var bytes = Array("zM4E1juL3wn6zu79DGliyQ".utf8)
                bytes[position] = byte
                let text = String(decoding: bytes, as: UTF8.self)
                #expect((TaskID(text) != nil) == alphabet.contains(byte), "byte \(byte) at \(position)")
            }
        }
        #expect(TaskID("zM4E1juL3wn6zu79DGli\u{E9}") == nil)
    }

    /// Ids hash their first 16 characters: ids that differ only after them are still told apart, and equal ids
    /// hash alike.
    @Test func idsDifferingOnlyAtTheEndAreDistinctKeys() throws {
        let ids = try ["zM4E1juL3wn6zu79DGliyQ", "zM4E1juL3wn6zu79DGlizQ", "zM4E1juL3wn6zu79AAAAAA"].map {
            try #require(TaskID($0))
        }
        var table: [TaskID: Int] = [:]
        for (index, id) in ids.enumerated() { table[id] = index }
        #expect(table.count == 3)
        for (index, id) in ids.enumerated() {
            #expect(table[try #require(TaskID(String(id.rawValue.utf8.map { Character(UnicodeScalar($0)) })))] == index)
            #expect(id.hashValue == TaskID(id.rawValue)?.hashValue)
        }
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

@Suite(.timeLimit(.minutes(2))) struct MemoryTaskStoreShrinkTests {
    /// Finishes `count` new tasks and returns their ids.
    func finishTasks(_ count: Int, in store: MemoryTaskStore) throws -> [TaskID] {
        var ids: [TaskID] = []
        for index in 0..<count {
            let record = TaskRecord(id: .random(), kind: "x", input: "q\(index)", createdAt: Date())
            try store.enqueue(record, maxQueued: 1_000_000)
            let claimed = try #require(try store.claimNext(maxRunning: .max))
            try store.appendOutput(claimed.claim, at: 0, "answer \(index)")
            try store.finish(claimed.claim, status: .succeeded, failure: nil)
            ids.append(record.id)
        }
        return ids
    }

    @Test func aLargeSweepGivesBackTheRecordsTablesCapacityAndKeepsWhatIsLeft() throws {
        let clock = ManualClock()
        let store = MemoryTaskStore(resultTTL: .seconds(10), clock: clock)
        let early = try finishTasks(20_000, in: store)
        clock.advance(5)
        // Still running or recently finished when the others expire: these must survive the rebuild intact.
        let running = TaskRecord(id: .random(), kind: "x", input: "still running", createdAt: Date())
        try store.enqueue(running, maxQueued: 1_000_000)
        let claimed = try #require(try store.claimNext(maxRunning: .max))
        try store.appendOutput(claimed.claim, at: 0, "partial")
        let late = try finishTasks(100, in: store)
        let peak = store.recordStorage
        #expect(peak.count == 20_101 && peak.capacity >= 20_101)
        clock.advance(6)
        #expect(try store.sweepExpired() == 20_000)
        let after = store.recordStorage
        #expect(after.count == 101)
        #expect(after.capacity < 1024, "capacity \(after.capacity) kept after the sweep (peak \(peak.capacity))")
        #expect(try store.record(for: running.id)?.output == "partial")
        #expect(try store.record(for: late[99])?.output == "answer 99")
        #expect(try store.record(for: early[0]) == nil)
        // The table still works as before: the running task finishes under its claim, counts are right.
        #expect(try store.finish(claimed.claim, status: .succeeded, failure: nil)?.status == .succeeded)
        #expect(try store.countsByStatus()[.succeeded] == 101)
        clock.advance(20)
        #expect(try store.sweepExpired() == 101)
        #expect(store.recordStorage.count == 0)
    }

    @Test func smallOrStillFullTablesAreNotRebuilt() throws {
        let clock = ManualClock()
        let store = MemoryTaskStore(resultTTL: .seconds(10), clock: clock)
        _ = try finishTasks(600, in: store)
        let small = store.recordStorage.capacity
        clock.advance(11)
        #expect(try store.sweepExpired() == 600)
        // At or under the floor, a table keeps its capacity (it would only grow back).
        #expect(store.recordStorage.capacity == small)
        // A sweep that leaves the table more than a quarter full leaves it alone as well.
        let first = try finishTasks(3000, in: store)
        clock.advance(5)
        _ = try finishTasks(3000, in: store)
        let capacity = store.recordStorage.capacity
        clock.advance(6)
        #expect(try store.sweepExpired() == 3000)
        #expect(store.recordStorage.count == 3000 && store.recordStorage.capacity == capacity)
        #expect(try store.record(for: first[0]) == nil)
    }
}
