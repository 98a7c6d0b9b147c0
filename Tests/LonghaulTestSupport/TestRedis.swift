import Foundation
public import RedisStore
import Synchronization

/// A private redis-server for the tests: started on a free port in a temporary directory, stopped at exit.
public final class TestRedis: Sendable {
    public static let shared = TestRedis()

    public let url: RedisURL?
    public let failure: String?
    private let process: Process?

    private init() {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let binary else {
            (url, failure, process) = (nil, "redis-server is not installed (apt-get install redis-server)", nil)
            return
        }
        // A random port; if redis-server exits at once (port taken), try another. A loaded machine may take a
        // few seconds to start it: wait up to 30 s for PONG.
        var started: (Process, RedisURL)?
        for _ in 0..<5 where started == nil {
            let port = Int.random(in: 20_000..<40_000)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("longhaul-redis-\(port)")
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = [
                "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", directory.path, "--daemonize", "no",
            ]
            process.standardOutput = FileHandle.nullDevice
            // Not the test process's pipes: a server outliving a crashed test run must not keep `swift test` waiting.
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { continue }
            redisPID.store(process.processIdentifier, ordering: .relaxed)
            _ = killRedisAtExit
            let candidate = RedisURL("redis://127.0.0.1:\(port)/0")!
            let client = RedisClient(url: candidate, timeout: .seconds(1))
            for _ in 0..<300 where process.isRunning {
                if (try? client.command(["PING"]))?.text == "PONG" {
                    started = (process, candidate)
                    break
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
            if started == nil { kill(process.processIdentifier, SIGKILL) }
        }
        guard let (process, candidate) = started else {
            (url, failure, self.process) = (nil, "redis-server did not answer PING within 30 s", nil)
            return
        }
        self.process = process
        url = candidate
        failure = nil
    }
}

/// The pid of the test redis-server, killed when the test process exits.
private let redisPID = Atomic<Int32>(0)
private let killRedisAtExit: Void = {
    atexit {
        let pid = redisPID.load(ordering: .relaxed)
        // SIGKILL: the server keeps nothing, and a signal mask inherited through Foundation.Process may block SIGTERM.
        if pid > 0 { kill(pid, SIGKILL) }
    }
}()
