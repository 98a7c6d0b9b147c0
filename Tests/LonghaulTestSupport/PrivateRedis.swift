public import Foundation
public import Locking
public import RedisStore

/// A redis-server of one test's own, which the test may kill, restart on the same port, or pause.
public final class PrivateRedis: Sendable {
    public let port: Int
    public let url: RedisURL
    private let directory: URL
    private let pid = LockedValue<Int32>(0)

    public init() throws {
        port = Int.random(in: 40_000..<50_000)
        url = RedisURL("redis://127.0.0.1:\(port)/0")!
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("longhaul-private-redis-\(port)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit { kill() }

    /// Starts the server and waits (up to 30 s) for PONG.
    public func start() throws {
        let started = try spawnServer(
            "/usr/bin/redis-server",
            ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path])
        pid.withLock { $0 = started }
        let client = RedisClient(url: url, timeout: .seconds(1))
        for _ in 0..<300 {
            if (try? client.command(["PING"]))?.text == "PONG" { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw CancellationError()
    }

    /// SIGKILL, and waits until the port is free.
    public func kill() {
        let current = pid.withLock { value in
            defer { value = 0 }
            return value
        }
        guard current > 0 else { return }
        Glibc.kill(current, SIGKILL)
        var status: Int32 = 0
        waitpid(current, &status, 0)
    }

    public func pause() { _ = pid.withLock { Glibc.kill($0, SIGSTOP) } }
    public func resume() { _ = pid.withLock { Glibc.kill($0, SIGCONT) } }
}
