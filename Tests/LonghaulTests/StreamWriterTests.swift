import Foundation
import Logging
import Synchronization
import Testing

@testable import FastCGI

#if canImport(Glibc)
    import Glibc
#endif

/// The record encoder, without a socket.
@Suite(.timeLimit(.minutes(1))) struct FastCGIRecordTests {
    /// Parses `FCGI_STDOUT` records back into (request id, content), checking each header.
    static func parseStdout(_ bytes: [UInt8]) -> (ids: [UInt16], content: [UInt8])? {
        var ids: [UInt16] = []
        var content: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard bytes.count - index >= 8, bytes[index] == 1, bytes[index + 1] == 6 else { return nil }
            let id = UInt16(bytes[index + 2]) << 8 | UInt16(bytes[index + 3])
            let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
            let padding = Int(bytes[index + 6])
            guard length > 0, bytes.count - index >= 8 + length + padding else { return nil }
            ids.append(id)
            content += bytes[(index + 8)..<(index + 8 + length)]
            index += 8 + length + padding
        }
        return (ids, content)
    }

    @Test func emptyContentWritesNoRecord() {
        var buffer: [UInt8] = []
        FastCGIRecord.appendStdout(UnsafeRawBufferPointer(start: nil, count: 0), requestID: 1, to: &buffer)
        #expect(buffer.isEmpty)
    }

    @Test func aShortChunkIsOneRecordWithTheRequestID() {
        var buffer: [UInt8] = []
        Array("data: hi\n\n".utf8).withUnsafeBytes { FastCGIRecord.appendStdout($0, requestID: 0x1234, to: &buffer) }
        #expect(Array(buffer.prefix(8)) == [1, 6, 0x12, 0x34, 0, 10, 0, 0])
        #expect(String(decoding: buffer.dropFirst(8), as: UTF8.self) == "data: hi\n\n")
    }

    @Test(arguments: [65527, 65528, 65529, 200_000])
    func aLongChunkIsSplitIntoRecordsOfAtMost64KiB(_ size: Int) throws {
        let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var buffer: [UInt8] = [9, 9]  // appends after what is there
        content.withUnsafeBytes { FastCGIRecord.appendStdout($0, requestID: 7, to: &buffer) }
        #expect(buffer.prefix(2) == [9, 9])
        let parsed = try #require(Self.parseStdout(Array(buffer.dropFirst(2))))
        #expect(parsed.content == content)
        #expect(parsed.ids.allSatisfy { $0 == 7 })
        #expect(parsed.ids.count == (size + FastCGIRecord.maxContentLength - 1) / FastCGIRecord.maxContentLength)
    }
}

/// The stream writer over socketpairs standing in for nginx's connections.
@Suite(.timeLimit(.minutes(2))) struct StreamWriterTests {
    /// One connection: the writer's end and the reader's ("nginx") end.
    struct Pair {
        let server: Int32
        let peer: Int32

        init() throws {
            var fds: [Int32] = [-1, -1]
            try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            server = fds[0]
            peer = fds[1]
        }

        /// Reads until `count` bytes arrived or the peer closed, waiting without a time limit of its own (the
        /// suite's time limit catches a hang).
        func read(count: Int) -> [UInt8] {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while received.count < count {
                let got = buffer.withUnsafeMutableBytes {
                    recv(peer, $0.baseAddress, min($0.count, count - received.count), 0)
                }
                if got < 0 && errno == EINTR { continue }
                guard got > 0 else { break }
                received += buffer[..<got]
            }
            return received
        }

        /// Reads until the server end is closed.
        func readToEnd() -> [UInt8] { read(count: Int.max) }
    }

    /// A blocking read on a thread of its own: blocking on the cooperative pool (two threads here) would stall
    /// every other test.
    final class ThreadResult<T: Sendable>: Sendable {
        private let result = Mutex<T?>(nil)
        private let done = DispatchSemaphore(value: 0)

        init(_ body: @escaping @Sendable () -> T) {
            Thread { [self] in
                let value = body()
                result.withLock { $0 = value }
                done.signal()
            }.start()
        }

        func value() async -> T {
            await withCheckedContinuation { continuation in
                Thread { [self] in
                    done.wait()
                    continuation.resume(returning: result.withLock { $0! })
                }.start()
            }
        }
    }

    static func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> ThreadResult<T> { ThreadResult(body) }

    /// How far a writer loop got, watched from the test.
    final class Progress: Sendable {
        let writes = Atomic<Int>(0)

        /// Waits (at most ~30 s) until some writes went through and the count then stayed put for 100 ms.
        func waitUntilParked() async {
            var last = -1
            var unchangedSince = ContinuousClock.now
            for _ in 0..<30_000 {
                let now = writes.load(ordering: .relaxed)
                if now != last {
                    last = now
                    unchangedSince = .now
                } else if now > 0, ContinuousClock.now - unchangedSince > .milliseconds(100) {
                    return
                }
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    /// What `complete` did: closes the server end (as `FCGX_Finish_r` would after its end records).
    final class Completions: Sendable {
        let count = Atomic<Int>(0)
        let blocking = Mutex<[Bool]>([])

        func complete(_ fd: Int32) {
            let flags = fcntl(fd, F_GETFL)
            blocking.withLock { $0.append(flags & O_NONBLOCK == 0) }
            close(fd)
            count.add(1, ordering: .relaxed)
        }
    }

    @Test func bytesArriveInOrderAsValidRecordsAndTheRequestIsCompletedAfterThem() async throws {
        let writer = StreamWriter(logger: Logger(label: "test"))
        let pair = try Pair()
        let completions = Completions()
        let server = pair.server
        let connection = writer.register(fd: server, requestID: 3) { completions.complete(server) }
        let reader = Self.onThread { pair.readToEnd() }
        var expected = ""
        for index in 0..<2000 {
            let chunk = "id: \(index)\ndata: " + String(repeating: "x", count: index % 300) + "\n\n"
            expected += chunk
            #expect(await connection.write(chunk))
        }
        await connection.finish()
        let received = await reader.value()
        let parsed = try #require(FastCGIRecordTests.parseStdout(received))
        #expect(String(decoding: parsed.content, as: UTF8.self) == expected)
        #expect(parsed.ids.allSatisfy { $0 == 3 })
        #expect(completions.count.load(ordering: .relaxed) == 1)
        #expect(completions.blocking.withLock { $0 } == [true], "libfcgi gets its socket back blocking")
        #expect(writer.connectionCount == 0)
        close(pair.peer)
    }

    @Test func aReaderThatStopsReadingDoesNotBlockAnotherStream() async throws {
        let writer = StreamWriter(logger: Logger(label: "test"))
        let completions = Completions()
        let stuck = try Pair()
        let stuckServer = stuck.server
        let stuckConnection = writer.register(fd: stuckServer, requestID: 1) { completions.complete(stuckServer) }
        // Far more than the socket buffers hold while nobody reads: the writer waits, no thread blocks.
        let chunk = String(repeating: "s", count: 16 * 1024)
        let progress = Progress()
        let stuckWriter = Task.detached {
            var written = 0
            while await stuckConnection.write(chunk) {
                written += 1
                progress.writes.store(written, ordering: .relaxed)
            }
            return written
        }
        // The detached task may start late on a loaded machine (it did under TSan): the live stream starts only
        // once the stuck one has written and then stopped getting further, i.e. it is waiting on its full buffer.
        await progress.waitUntilParked()
        #expect(progress.writes.load(ordering: .relaxed) > 0, "the stuck stream wrote before it had to wait")

        let live = try Pair()
        let liveServer = live.server
        let liveConnection = writer.register(fd: liveServer, requestID: 2) { completions.complete(liveServer) }
        let reader = Self.onThread { live.readToEnd() }
        for _ in 0..<100 { #expect(await liveConnection.write("data: live\n\n")) }
        await liveConnection.finish()
        let parsed = try #require(FastCGIRecordTests.parseStdout(await reader.value()))
        #expect(String(decoding: parsed.content, as: UTF8.self) == String(repeating: "data: live\n\n", count: 100))

        // The stuck stream's client goes away: its waiting write returns false, and finishing completes it.
        close(stuck.peer)
        let written = await stuckWriter.value
        #expect(written > 0)
        await stuckConnection.finish()
        #expect(completions.count.load(ordering: .relaxed) == 2)
        #expect(writer.connectionCount == 0)
        close(live.peer)
    }

    @Test func aClosedPeerMakesWriteReturnFalse() async throws {
        let writer = StreamWriter(logger: Logger(label: "test"))
        let completions = Completions()
        let pair = try Pair()
        let server = pair.server
        let connection = writer.register(fd: server, requestID: 1) { completions.complete(server) }
        #expect(await connection.write("data: one\n\n"))
        close(pair.peer)
        // The writer thread sees the hang-up, or the next send fails: either way writes stop succeeding.
        var result = true
        for _ in 0..<10_000 where result {
            result = await connection.write("data: more\n\n")
            if result { try await Task.sleep(for: .milliseconds(1)) }
        }
        #expect(result == false)
        await connection.finish()
        #expect(completions.count.load(ordering: .relaxed) == 1)
    }

    @Test func aPeerThatClosesWhileTheStreamIsIdleIsNoticedWithoutAWrite() async throws {
        let writer = StreamWriter(logger: Logger(label: "test"))
        let completions = Completions()
        let pair = try Pair()
        let server = pair.server
        let connection = writer.register(fd: server, requestID: 1) { completions.complete(server) }
        close(pair.peer)
        // No write: the writer thread's EPOLLRDHUP/EPOLLHUP forgets the connection.
        for _ in 0..<10_000 where writer.connectionCount > 0 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(writer.connectionCount == 0)
        #expect(await connection.write("data: late\n\n") == false)
        await connection.finish()
        #expect(completions.count.load(ordering: .relaxed) == 1)
    }
}
