import Foundation
import Locking
import StandardExtensions
import Tasks

/// A small pool of connections to the Redis master, safe to use from any thread.
///
/// After any failed command every pooled connection is dropped (after a Redis restart they are all stale) and,
/// with Sentinel, the master is looked up again on the next connect; so is it after an error reply saying the
/// server is no longer the master (`READONLY`) or not ready (`LOADING`). After a failed connect, new attempts
/// wait out a short backoff (up to 0.5 s) so that an outage costs callers a fast error, not a connect timeout each.
public final class RedisClient: Sendable {
    private struct State {
        var idle: [RedisConnection] = []
        var master: RedisAddress?
        /// Bumped whenever connections are dropped; a long-lived connection made before must reconnect.
        var generation = 0
        var retryAt: ContinuousClock.Instant = .now
        var delay: Duration = .milliseconds(25)
    }

    /// The server, or the sentinels.
    public let url: RedisURL
    private let timeout: Duration
    private let state = LockedValue(State())

    /// - Parameters:
    ///   - url: the server, or the sentinels.
    ///   - timeout: the connect and command timeout.
    public init(url: RedisURL, timeout: Duration = .seconds(2)) {
        self.url = url
        self.timeout = timeout
    }

    /// Runs one command, once.
    /// - Parameter arguments: the command and its arguments.
    /// - Returns: the reply (an error reply is returned, not thrown).
    /// - Throws: ``RedisError`` when Redis cannot be reached.
    @discardableResult
    public func command(_ arguments: [String]) throws(RedisError) -> RedisValue {
        try pipeline([arguments])[0]
    }

    /// Runs commands on one connection, sending them all before reading the replies.
    /// - Parameter commands: the commands.
    /// - Returns: one reply each.
    /// - Throws: ``RedisError`` when Redis cannot be reached or is not the master.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisValue] {
        let connection = try borrow()
        do throws(RedisError) {
            for arguments in commands { try connection.send(arguments) }
            var replies: [RedisValue] = []
            for _ in commands { replies.append(try connection.readReply()) }
            if let notMaster = replies.first(where: \.isNotMasterError), case .error(let message) = notMaster {
                dropConnections()
                throw RedisError.notMaster(message)
            }
            giveBack(connection)
            return replies
        } catch {
            // A failed command leaves the protocol state unknown, and the others are likely stale too.
            dropConnections()
            throw error
        }
    }

    /// Runs commands that are safe to repeat, trying again on a fresh connection after a failure, up to
    /// `attempts` times with a short backoff (about 0.4 s in all), so a Redis restart or failover costs no error.
    /// - Parameters:
    ///   - commands: the commands, sent as one pipeline.
    ///   - attempts: the most tries.
    /// - Returns: one reply each.
    /// - Throws: the last ``RedisError``.
    public func pipelineRetrying(_ commands: [[String]], attempts: Int = 4) throws(RedisError) -> [RedisValue] {
        var delay = Duration.milliseconds(40)
        var tries = 0
        while true {
            do {
                return try pipeline(commands)
            } catch {
                tries += 1
                guard tries < attempts else { throw error }
                Thread.sleep(forTimeInterval: delay.timeInterval)
                delay *= 2
            }
        }
    }

    /// Drops every pooled connection and forgets the master (a Sentinel lookup happens on the next connect).
    public func dropConnections() {
        let dropped = state.withLock { state in
            defer {
                state.idle = []
                state.master = nil
                state.generation += 1
            }
            return state.idle
        }
        _ = dropped  // freed here, outside the lock
    }

    /// Bumped whenever connections are dropped: a long-lived connection made under an older one reconnects.
    public var generation: Int { state.withLock { $0.generation } }

    /// Opens a connection of its own to the master (for SUBSCRIBE).
    func dedicatedConnection() throws(RedisError) -> RedisConnection {
        try connectToMaster()
    }

    private func borrow() throws(RedisError) -> RedisConnection {
        if let connection = state.withLock({ $0.idle.popLast() }) { return connection }
        let retryAt = state.withLock { $0.retryAt }
        if ContinuousClock.now < retryAt {
            throw RedisError.backingOff("\(url)")
        }
        do {
            let connection = try connectToMaster()
            state.withLock { $0.delay = .milliseconds(25) }
            return connection
        } catch {
            state.withLock { state in
                state.retryAt = .now + state.delay
                state.delay = min(state.delay * 2, .milliseconds(500))
            }
            throw error
        }
    }

    private func giveBack(_ connection: RedisConnection) {
        guard !connection.isBroken else { return }
        state.withLock { if $0.idle.count < 32 { $0.idle.append(connection) } }
    }

    /// A connection to the server (plain URL) or to the master the sentinels name, checked with ROLE.
    private func connectToMaster() throws(RedisError) -> RedisConnection {
        guard url.usesSentinel else {
            return try RedisConnection(
                address: RedisAddress(host: url.host, port: url.port), password: url.password, database: url.database,
                timeout: timeout)
        }
        let known = state.withLock { $0.master }
        let master: RedisAddress
        if let known { master = known } else { master = try askSentinels() }
        let connection = try RedisConnection(
            address: master, password: url.password, database: url.database, timeout: timeout)
        let role = try connection.command(["ROLE"])
        guard role.elements.first?.text == "master" else {
            state.withLock { $0.master = nil }
            throw RedisError.notMaster("\(master) has the role \(role.elements.first?.text ?? "none")")
        }
        state.withLock { $0.master = master }
        return connection
    }

    /// Asks each sentinel in turn for the master's address.
    private func askSentinels() throws(RedisError) -> RedisAddress {
        var failures: [String] = []
        for sentinel in url.sentinels {
            do {
                let connection = try RedisConnection(address: sentinel, password: nil, database: 0, timeout: timeout)
                var reply = try connection.command(["SENTINEL", "get-master-addr-by-name", url.masterName ?? ""])
                if case .error(let message) = reply, message.hasPrefix("NOAUTH"), let password = url.password {
                    _ = try connection.command(["AUTH", password])
                    reply = try connection.command(["SENTINEL", "get-master-addr-by-name", url.masterName ?? ""])
                }
                let parts = reply.elements.compactMap(\.text)
                if parts.count == 2, let port = Int(parts[1]) { return RedisAddress(host: parts[0], port: port) }
                failures.append("\(sentinel): \(reply)")
            } catch {
                failures.append("\(sentinel): \(error.message)")
            }
        }
        throw RedisError.noMasterFound("'\(url.masterName ?? "")': \(failures.joined(separator: "; "))")
    }
}
