import Foundation
import Logging
import LonghaulTestSupport
import Tasks
import Testing

@testable import Longhaul
@testable import RedisStore

/// Where an event stream's client is (`RUN-BYTES`, `RUN.CLAIM-BYTES`, `BYTES`) and what a stream does with a read of
/// the store from there: never a splice of two texts.
@Suite(.timeLimit(.minutes(2))) struct StreamPositionTests {
    typealias Position = TaskEventStream.Position

    private func output(
        attempt: Int, claim: String = "", offset: Int, text: String, status: TaskStatus = .running
    ) -> TaskOutput {
        TaskOutput(status: status, attempt: attempt, offset: offset, text: text, finalRecord: nil, claim: claim)
    }

    @Test func idsParseAndPrintInTheirThreeForms() {
        #expect(Position("2-153") == Position(attempt: 2, offset: 153))
        #expect(Position("2.9f86d081-153") == Position(attempt: 2, claim: "9f86d081", offset: 153))
        #expect(Position("153") == Position(attempt: nil, offset: 153))
        #expect(Position(attempt: 2, claim: "9f86d081", offset: 153).eventID == "2.9f86d081-153")
        #expect(Position(attempt: 2, offset: 153).eventID == "2-153")
        for bad in ["", "-1", "2-", "-5", "2.-5", "2.ABC-5", "2.0123456789abcdef0-5", "2.a b-5", "x-5", "2.a.b-5"] {
            #expect(Position(bad) == nil, "\(bad)")
        }
    }

    @Test func theSameRunNumberFromAnotherClaimStartsTheClientAgain() {
        // The client has 28 bytes of run 2 made by claim aaaa; a failover lost that claim and run 2 is now bbbb's.
        let client = Position(attempt: 2, claim: "aaaa", offset: 28)
        #expect(
            client.step(after: output(attempt: 2, claim: "bbbb", offset: 28, text: " task"))
                == .restart(Position(attempt: 2, claim: "bbbb", offset: 0)))
        // From the start of bbbb's run: its whole text, no second reset.
        let restarted = Position(attempt: 2, claim: "bbbb", offset: 0)
        #expect(
            restarted.step(after: output(attempt: 2, claim: "bbbb", offset: 0, text: "Other words"))
                == .deliver(reset: nil, position: Position(attempt: 2, claim: "bbbb", offset: 11)))
        // The same claim goes on where the client is.
        #expect(
            client.step(after: output(attempt: 2, claim: "aaaa", offset: 28, text: " task"))
                == .deliver(reset: nil, position: Position(attempt: 2, claim: "aaaa", offset: 33)))
    }

    @Test func lessOfTheSameRunThanTheClientStartsItAgain() {
        let client = Position(attempt: 1, claim: "aaaa", offset: 40)
        #expect(
            client.step(after: output(attempt: 1, claim: "aaaa", offset: 12, text: ""))
                == .restart(Position(attempt: 1, claim: "aaaa", offset: 0)))
        // A plain RUN-BYTES id (a memory store, or an older client) too.
        #expect(
            Position(attempt: 1, offset: 40).step(after: output(attempt: 1, offset: 12, text: ""))
                == .restart(Position(attempt: 1, offset: 0)))
    }

    @Test func anotherRunIsSentAfterAReset() {
        let client = Position(attempt: 1, claim: "aaaa", offset: 28)
        #expect(
            client.step(after: output(attempt: 2, claim: "cccc", offset: 0, text: "Mock reply"))
                == .deliver(
                    reset: Position(attempt: 2, claim: "cccc", offset: 0),
                    position: Position(attempt: 2, claim: "cccc", offset: 10)))
        // A client with a plain offset, or none, follows whichever run is current without a reset.
        #expect(
            Position.beginning.step(after: output(attempt: 3, claim: "dddd", offset: 0, text: "abc"))
                == .deliver(reset: nil, position: Position(attempt: 3, claim: "dddd", offset: 3)))
        // A memory store gives no claim: ids stay RUN-BYTES.
        #expect(
            Position.beginning.step(after: output(attempt: 1, offset: 0, text: "abc"))
                == .deliver(reset: nil, position: Position(attempt: 1, offset: 3)))
    }

    /// The Redis store names the claim of each run, and a run number given twice (a failover lost the first claim)
    /// comes with another tag.
    @Test func redisOutputNamesTheClaimAndAReusedRunNumberGetsAnotherTag() throws {
        let url = try #require(TestRedis.shared.url, "\(TestRedis.shared.failure ?? "")")
        let prefix = "pos:\(TaskID.random().rawValue):"
        var configuration = RedisTaskStore.Configuration(url: url)
        configuration.keyPrefix = prefix
        let store = RedisTaskStore(configuration: configuration, logger: Logger(label: "pos"))
        let admin = RedisClient(url: url)
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(record, maxQueued: 10)
        #expect(try store.output(of: record.id, attempt: -1, from: 0)?.claim == "")
        let first = try #require(try store.claimNext(maxRunning: 5))
        try store.appendOutput(first.claim, at: 0, "Mock reply to: cluster mixed")
        let seen = try #require(try store.output(of: record.id, attempt: -1, from: 0))
        #expect(seen.attempt == 1 && seen.text == "Mock reply to: cluster mixed")
        #expect((1...8).contains(seen.claim.count))
        #expect(first.claim.token.split(separator: ":").last.map { $0.hasPrefix(seen.claim) } == true)
        // What a failover that lost the claim leaves: run 1 never given, the lease over; the next claim takes the
        // number 1 again, with a new token.
        let key = prefix + "task:" + record.id.rawValue
        try admin.command(["HSET", key, "runs", "0", "attempts", "0"])
        try admin.command(["ZADD", prefix + "running", "0", record.id.rawValue])
        let second = try #require(try store.claimNext(maxRunning: 5))
        #expect(second.claim.token != first.claim.token && second.claim.token.hasPrefix("1:"))
        try store.appendOutput(second.claim, at: 0, "Other words entirely, and longer")
        let after = try #require(try store.output(of: record.id, attempt: 1, from: 28))
        #expect(after.attempt == 1 && after.claim != seen.claim && !after.claim.isEmpty)
        // The stream sees it: the client restarts from the new claim's text, never " entirely, and longer".
        let client = Position(attempt: 1, claim: seen.claim, offset: 28)
        #expect(client.step(after: after) == .restart(Position(attempt: 1, claim: after.claim, offset: 0)))
        // The tag stays once the task has finished.
        try store.finish(second.claim, status: .succeeded, failure: nil)
        #expect(try store.output(of: record.id, attempt: 1, from: 0)?.claim == after.claim)
    }
}
