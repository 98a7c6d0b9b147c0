import FastCGI
import Foundation
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Streams whose client stops reading (issue 8): their blocked writes hold up no other stream, and everything is
/// released once the connection closes.
@Suite(.timeLimit(.minutes(3))) struct ResponseStreamTests {
    /// A minimal FastCGI client over the server's unix socket (what nginx does): one request, then either reads the
    /// whole answer or never reads at all.
    struct Client {
        let fd: Int32

        init(socketPath: String, uri: String, method: String = "GET", body: [UInt8] = []) throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            try #require(fd >= 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in socketPath.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            try #require(connected == 0)
            var params: [UInt8] = []
            var fields = ["REQUEST_METHOD": method, "DOCUMENT_URI": uri, "QUERY_STRING": ""]
            if !body.isEmpty { fields["CONTENT_LENGTH"] = "\(body.count)" }
            for (name, value) in fields {
                params += [UInt8(name.utf8.count), UInt8(value.utf8.count)] + Array(name.utf8) + Array(value.utf8)
            }
            var bytes = Self.record(type: 1, [0, 1, 0, 0, 0, 0, 0, 0])  // BEGIN_REQUEST, responder, no keep-alive
            bytes += Self.record(type: 4, params) + Self.record(type: 4, [])  // PARAMS, then their end
            if !body.isEmpty { bytes += Self.record(type: 5, body) }
            bytes += Self.record(type: 5, [])  // empty STDIN: the end of the input
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            try #require(sent == bytes.count)
        }

        static func record(type: UInt8, _ content: [UInt8]) -> [UInt8] {
            [1, type, 0, 1, UInt8(content.count >> 8), UInt8(content.count & 0xFF), 0, 0] + content
        }

        /// Reads until the server closes the connection (after END_REQUEST), for at most `seconds`; the raw bytes.
        func readAll(seconds: Int32) -> [UInt8] {
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            let deadline = ContinuousClock.now + .seconds(Int(seconds))
            while ContinuousClock.now < deadline {
                var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&entry, 1, 100) >= 0 else { break }
                guard entry.revents != 0 else { continue }
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { break }
                received += buffer[..<count]
            }
            return received
        }

        func close() { _ = Glibc.close(fd) }

        /// The FCGI_STDOUT records' content in a raw answer, other records skipped.
        static func stdout(_ bytes: [UInt8]) -> String {
            var content: [UInt8] = []
            var index = 0
            while bytes.count - index >= 8 {
                let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
                let end = min(bytes.count, index + 8 + length)
                if bytes[index + 1] == 6 { content += bytes[(index + 8)..<end] }
                index = end + Int(bytes[index + 6])
            }
            return String(decoding: content, as: UTF8.self)
        }
    }

    /// A server on a unix socket in a fresh directory (the caller removes it), not started yet.
    static func server(threads: Int, maxBodyBytes: Int = 1 << 20) throws -> (
        server: FastCGIServer, socketPath: String, directory: URL
    ) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "longhaul-fcgi-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("s.sock").path
        var configuration = FastCGIServer.Configuration()
        configuration.listener = .unixSocket(path: path, mode: 0o600)
        configuration.threadCount = threads
        configuration.maxBodyBytes = maxBodyBytes
        do {
            return (try FastCGIServer(configuration: configuration, logger: Logger(label: "test")), path, directory)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// A whole response goes out as its status line, its header fields (encoded ahead or not), its length and its
    /// body; a HEAD request gets the same head without the body.
    @Test(arguments: [
        ("GET", "/encoded", "Status: 200 OK\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\n<p>hi</p>\n\n"),
        ("HEAD", "/encoded", "Status: 200 OK\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\n"),
        ("GET", "/plain", "Status: 404 Not Found\r\nX-A: b\r\nContent-Length: 0\r\n\r\n"),
        ("GET", "/odd", "Status: 299 Status 299\r\nContent-Type: text/html\r\nContent-Length: 1234\r\n\r\n"),
    ])
    func aWholeResponseGoesOutWithItsHeadAndLength(method: String, uri: String, expected: String) async throws {
        let (server, path, directory) = try Self.server(threads: 1)
        defer { try? FileManager.default.removeItem(at: directory) }
        let encoded = HeaderBlock([HeaderField("Content-Type", "text/html")])
        server.start { request in
            switch request.path {
            case "/encoded": FastCGIResponse(status: 200, headers: encoded, body: .bytes(Array("<p>hi</p>\n\n".utf8)))
            case "/odd":
                FastCGIResponse(status: 299, headers: encoded, body: .bytes([UInt8](repeating: 0x78, count: 1234)))
            default: FastCGIResponse(status: 404, headers: [HeaderField("X-A", "b")])
            }
        }
        let client = try Client(socketPath: path, uri: uri, method: method)
        let answer = Client.stdout(client.readAll(seconds: 10))
        client.close()
        #expect(answer.hasPrefix(expected))
        #expect(
            answer.utf8.count == expected.utf8.count || uri == "/odd" && answer.utf8.count == expected.utf8.count + 1234
        )
        server.stopAccepting()
        await server.waitForThreads()
    }

    /// The server takes libfcgi's parameters instead of copying them (`RequestHandle.takeParams`): a request kept
    /// past its accept cycle still reads its own, after the same handle has accepted and finished others (libfcgi
    /// would have freed them there). Under ASan a use after free or a double free fails this.
    @Test func parametersOutliveTheirAcceptCycle() async throws {
        let (server, path, directory) = try Self.server(threads: 1)
        defer { try? FileManager.default.removeItem(at: directory) }
        let kept = Mutex<[FastCGIRequest]>([])
        server.start { request in
            kept.withLock { $0.append(request) }
            return FastCGIResponse(status: 204, headers: [])
        }
        // Each under 128 bytes: the client writes one-byte lengths.
        let uris = (0..<5).map { "/kept/\($0)/" + String(repeating: "p", count: $0 * 25) }
        for (index, uri) in uris.enumerated() {
            let client = try Client(socketPath: path, uri: uri, method: index % 2 == 0 ? "GET" : "DELETE")
            _ = client.readAll(seconds: 10)
            client.close()
        }
        server.stopAccepting()
        await server.waitForThreads()
        let requests = kept.withLock { $0 }
        #expect(requests.map(\.path) == uris)
        #expect(requests.map(\.method) == uris.indices.map { $0 % 2 == 0 ? "GET" : "DELETE" })
        #expect(requests.allSatisfy { $0.queryString == "" && $0.params.count == 4 })
        #expect(requests.allSatisfy { $0.params["FCGI_ROLE"] == "RESPONDER" })
    }

    /// A request whose input was read to its end is closed at once, without libfcgi's lingering close (a shutdown
    /// of the server's side, then a wait for nginx to close first): the client, having read the whole answer and
    /// END_REQUEST, finds the connection closed (a write fails). One whose body was too large to read still gets
    /// libfcgi's lingering close, which guards the unread input: the connection still takes a write.
    @Test func answeredRequestsCloseWithoutLingering() async throws {
        let (server, path, directory) = try Self.server(threads: 1, maxBodyBytes: 16)
        defer { try? FileManager.default.removeItem(at: directory) }
        server.start { request in
            let text = request.bodyTooLarge ? "too large" : "body \(request.body.count)"
            return FastCGIResponse(status: 200, headers: [], body: .bytes(Array(text.utf8)))
        }
        let bodies: [[UInt8]] = [[], Array("0123456789".utf8), [], Array("x".utf8), Array(repeating: 0x61, count: 64)]
        for (index, body) in bodies.enumerated() {
            let client = try Client(
                socketPath: path, uri: "/answer/\(index)", method: body.isEmpty ? "GET" : "POST", body: body)
            let raw = client.readAll(seconds: 10)
            let tooLarge = body.count > 16
            #expect(Client.stdout(raw).hasSuffix(tooLarge ? "too large" : "body \(body.count)"))
            #expect(raw.count >= 16 && raw[raw.count - 16 + 1] == 3, "the last record is END_REQUEST")
            let byte: [UInt8] = [0]
            let sent = byte.withUnsafeBytes { send(client.fd, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
            #expect((sent == 1) == tooLarge, "closed at once: \(!tooLarge)")
            client.close()
        }
        server.stopAccepting()
        await server.waitForThreads()
    }

    @Test func aClientThatStopsReadingHoldsUpNoOtherStream() async throws {
        signal(SIGPIPE, SIG_IGN)
        let (server, path, directory) = try Self.server(threads: 4)
        defer { try? FileManager.default.removeItem(at: directory) }
        let chunk = String(repeating: "x", count: 8192)
        server.start { request in
            let slow = request.path == "/slow"
            return FastCGIResponse(
                status: 200, headers: [],
                body: .stream { stream in
                    if slow {
                        // Far more than the socket buffers hold: blocks until the client reads or goes.
                        for _ in 0..<1024 where await stream.write(chunk) {}
                    } else {
                        _ = await stream.write("hello from the fast stream")
                    }
                })
        }

        // More slow streams than the server has shared writer queues, so that each of those has one.
        var slowClients: [Client] = []
        for _ in 0..<8 { slowClients.append(try Client(socketPath: path, uri: "/slow")) }
        for _ in 0..<200 where server.statistics.activeStreams < 8 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.statistics.activeStreams == 8)
        try await Task.sleep(for: .milliseconds(300))  // let their writes fill the sockets and block

        let fast = try Client(socketPath: path, uri: "/fast")
        let answer = String(decoding: fast.readAll(seconds: 10), as: UTF8.self)
        fast.close()
        #expect(answer.contains("hello from the fast stream"))

        for client in slowClients { client.close() }
        for _ in 0..<3000 where server.statistics.activeStreams > 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.statistics.activeStreams == 0, "streams whose client went away are released")
        server.stopAccepting()
        await server.waitForThreads()
    }
}
