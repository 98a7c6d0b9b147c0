import Foundation
import Locking
public import RedisStore

/// A redis-server of one test's own, which the test may kill, restart on the same port, or pause.
public final class PrivateRedis: Sendable {
    public let port: Int
    public let url: RedisURL
    private let directory: URL
    private let pid = LockedValue<Int32>(0)

    public init() throws {
        // A port found taken is given up for another (up to five).
        var chosen: (port: Int, directory: URL, pid: pid_t)?
        for _ in 0..<5 where chosen == nil {
            let port = Int.random(in: 40_000..<50_000)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "longhaul-private-redis-\(port)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let started = try Self.spawn(port: port, directory: directory)
            if stillRunning(started) { chosen = (port, directory, started) }
        }
        guard let chosen else { throw CancellationError() }
        (port, directory) = (chosen.port, chosen.directory)
        url = RedisURL("redis://127.0.0.1:\(port)/0")!
        pid.withLock { $0 = chosen.pid }
        try waitForPong()
    }

    private static func spawn(port: Int, directory: URL) throws -> pid_t {
        try spawnServer(
            "/usr/bin/redis-server",
            [
                "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                directory.path,
            ])
    }

    deinit { kill() }

    /// Starts the server again on its port and waits (up to 30 s) for PONG.
    public func start() throws {
        let started = try Self.spawn(port: port, directory: directory)
        pid.withLock { $0 = started }
        try waitForPong()
    }

    private func waitForPong() throws {
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
