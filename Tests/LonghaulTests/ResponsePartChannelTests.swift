import Synchronization
import Testing

@testable import Curl

@Suite(.timeLimit(.minutes(1))) struct ResponsePartChannelTests {
    @Test func partsComeInOrderBeforeTheEnd() async throws {
        let channel = ResponsePartChannel()
        let parts = HTTPResponseParts(channel: channel)
        channel.yield(.body([1]))
        channel.yield(.body([2, 3]))
        channel.finish()
        channel.yield(.body([4]))  // after the end: dropped
        var iterator = parts.makeAsyncIterator()
        var bodies: [[UInt8]] = []
        while case .body(let bytes)? = try await iterator.next() { bodies.append(bytes) }
        #expect(bodies == [[1], [2, 3]])
    }

    @Test func aFailureAfterThePartsIsThrownOnceAndTheReadsThenEnd() async throws {
        let channel = ResponsePartChannel()
        var iterator = HTTPResponseParts(channel: channel).makeAsyncIterator()
        channel.yield(.body([1]))
        channel.finish(throwing: CurlError.shutDown)
        _ = try await iterator.next()
        await #expect(throws: CurlError.self) { try await iterator.next() }
        #expect(try await iterator.next() == nil)
    }

    @Test func aWaitingReaderGetsThePartHandedOver() async throws {
        let channel = ResponsePartChannel()
        let parts = HTTPResponseParts(channel: channel)
        async let first: HTTPResponsePart? = {
            var iterator = parts.makeAsyncIterator()
            return try await iterator.next()
        }()
        try await Task.sleep(for: .milliseconds(20))
        channel.yield(.body([7]))
        guard case .body(let bytes)? = try await first else {
            Issue.record("no body part")
            return
        }
        #expect(bytes == [7])
    }

    @Test func droppingTheSequenceOrCancellingTheReaderCancelsOnce() async throws {
        let cancels = Atomic<Int>(0)
        do {
            let channel = ResponsePartChannel()
            channel.setOnCancel { cancels.add(1, ordering: .relaxed) }
            _ = HTTPResponseParts(channel: channel).makeAsyncIterator()
        }
        #expect(cancels.load(ordering: .relaxed) == 1)

        let channel = ResponsePartChannel()
        channel.setOnCancel { cancels.add(1, ordering: .relaxed) }
        let parts = HTTPResponseParts(channel: channel)
        let reader = Task {
            var iterator = parts.makeAsyncIterator()
            return try await iterator.next()
        }
        try await Task.sleep(for: .milliseconds(20))
        reader.cancel()
        #expect(try await reader.value == nil)
        #expect(cancels.load(ordering: .relaxed) == 2)
        channel.cancel()
        #expect(cancels.load(ordering: .relaxed) == 2)

        let finished = ResponsePartChannel()
        finished.setOnCancel { cancels.add(1, ordering: .relaxed) }
        finished.finish()
        finished.cancel()
        #expect(cancels.load(ordering: .relaxed) == 2)
    }
}
