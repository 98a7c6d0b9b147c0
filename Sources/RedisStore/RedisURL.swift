import Foundation

/// A Redis server's address.
public struct RedisAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where Redis is: `redis://[:password@]host[:port][/db]`, or through Redis Sentinel:
/// `redis+sentinel://[:password@]host1[:port1],host2[:port2]…/MASTER_NAME[/db]` (sentinel port 26379 by default).
///
/// With Sentinel, the sentinels are asked for the current master whenever a connection is made, so a failover is
/// followed without a restart. The password authenticates to the master (and to sentinels that ask for one).
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// The server of a `redis://` URL, or the first sentinel of a `redis+sentinel://` URL.
    public var host: String
    public var port: Int
    public var password: String?
    public var database: Int
    /// The sentinels to ask for the master (empty for a plain `redis://` URL).
    public var sentinels: [RedisAddress]
    /// The name the sentinels know the master by (`nil` for a plain `redis://` URL).
    public var masterName: String?

    /// Parses a URL.
    /// - Parameter text: the URL.
    /// - Returns: `nil` when it is neither a `redis://` nor a `redis+sentinel://` URL.
    public init?(_ text: String) {
        if text.hasPrefix("redis+sentinel://") {
            self.init(sentinel: String(text.dropFirst("redis+sentinel://".count)))
        } else {
            self.init(plain: text)
        }
    }

    /// `redis://[:password@]host[:port][/db]`.
    private init?(plain text: String) {
        guard let components = URLComponents(string: text), components.scheme == "redis",
            let host = components.host, !host.isEmpty
        else { return nil }
        self.host = host
        port = components.port ?? 6379
        let secret = components.password ?? components.user
        password = (secret?.isEmpty ?? true) ? nil : secret?.removingPercentEncoding
        sentinels = []
        masterName = nil
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if path.isEmpty {
            database = 0
        } else if let database = Int(path), database >= 0 {
            self.database = database
        } else {
            return nil
        }
    }

    /// `[:password@]h1[:p1],h2[:p2]/MASTER[/db]`.
    private init?(sentinel rest: String) {
        var rest = Substring(rest)
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            let secret = userInfo.firstIndex(of: ":").map { userInfo[userInfo.index(after: $0)...] } ?? userInfo
            password = secret.isEmpty ? nil : String(secret).removingPercentEncoding
            rest = rest[rest.index(after: at)...]
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, !parts[1].isEmpty else { return nil }
        var sentinels: [RedisAddress] = []
        for entry in parts[0].split(separator: ",") {
            var host = Substring(entry)
            var port = 26379
            if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
                let after = host[host.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let parsed = Int(after.dropFirst()), (1...65535).contains(parsed) else { return nil }
                    port = parsed
                } else if !after.isEmpty {
                    return nil
                }
                host = host[host.index(after: host.startIndex)..<close]
            } else if let colon = host.lastIndex(of: ":") {
                guard let parsed = Int(host[host.index(after: colon)...]), (1...65535).contains(parsed) else {
                    return nil
                }
                port = parsed
                host = host[..<colon]
            }
            guard !host.isEmpty else { return nil }
            sentinels.append(RedisAddress(host: String(host), port: port))
        }
        guard let first = sentinels.first else { return nil }
        var database = 0
        if parts.count == 3, !parts[2].isEmpty {
            guard let parsed = Int(parts[2]), parsed >= 0 else { return nil }
            database = parsed
        }
        host = first.host
        port = first.port
        self.password = password
        self.database = database
        self.sentinels = sentinels
        masterName = String(parts[1]).removingPercentEncoding ?? String(parts[1])
    }

    /// Whether the master is found through Sentinel.
    public var usesSentinel: Bool { masterName != nil }

    /// The URL without the password, for logs.
    public var description: String {
        let secret = password == nil ? "" : ":***@"
        if let masterName {
            return
                "redis+sentinel://\(secret)\(sentinels.map(\.description).joined(separator: ","))/\(masterName)/\(database)"
        }
        return "redis://\(secret)\(RedisAddress(host: host, port: port))/\(database)"
    }
}
