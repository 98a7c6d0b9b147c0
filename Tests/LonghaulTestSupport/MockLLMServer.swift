public import Curl
import Foundation

/// The repository's mock LLM server (`mock/anthropic_mock.py`, a real HTTP/1.1 server) on a free port, for one test.
public final class MockLLMServer: Sendable {
    public let port: Int
    private let pid: pid_t

    /// Starts the mock and waits (up to 30 s) for it to write its port.
    /// - Parameter latency: the seconds over which a reply's deltas are spread.
    public init(latency: Double = 0.2) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let portFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("longhaul-curl-mock-\(UUID()).port")
        pid = try spawnServer(
            "/usr/bin/python3",
            [
                root.appendingPathComponent("mock/anthropic_mock.py").path, "--port", "0", "--port-file", portFile.path,
                "--latency", String(latency),
            ])
        var found: Int?
        for _ in 0..<300 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                found = port
                break
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        try? FileManager.default.removeItem(at: portFile)
        guard let found else {
            Self.stop(pid)
            throw CancellationError()
        }
        port = found
    }

    deinit { Self.stop(pid) }

    /// SIGKILL: the child inherits the test process's signal mask, in which SIGTERM may be blocked.
    private static func stop(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// A streamed Messages API call for `prompt`.
    public func messages(_ prompt: String, idleTimeout: Duration? = .seconds(30)) -> HTTPRequest {
        let body: [String: Any] = [
            "model": "claude-haiku-4-5", "max_tokens": 64, "stream": true,
            "messages": [["role": "user", "content": prompt]],
        ]
        return HTTPRequest(
            method: "POST", url: baseURL + "/v1/messages",
            headers: [
                HTTPHeader("x-api-key", "test-key"), HTTPHeader("anthropic-version", "2023-06-01"),
                HTTPHeader("content-type", "application/json"),
            ],
            body: Array(try! JSONSerialization.data(withJSONObject: body)), idleTimeout: idleTimeout)
    }
}
