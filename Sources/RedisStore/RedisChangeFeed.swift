import Foundation
import Glibc
import Logging
import StandardExtensions
import Tasks

/// Relays the store's pub/sub channel to a handler, on a thread of its own, for as long as the process lives.
///
/// It never gives up and never spins: any read error drops the connection and reconnects with backoff (0.1 s
/// doubling to 1 s); each reconnect reports ``TaskStoreChange/resync`` so streams re-read what they may have
/// missed. Idle, it wakes once a second (to notice a failover found by other connections) and sends a PING
/// after ``pingInterval`` of silence; a PING unanswered for ``pingTimeout`` means a dead peer: reconnect.
final class RedisChangeFeed: Sendable {
    /// Silence after which a PING checks the connection.
    static let pingInterval: Duration = .seconds(15)
    /// How long a PING may go unanswered.
    static let pingTimeout: Duration = .seconds(5)

    private let client: RedisClient
    private let channel: String
    private let logger: Logger
    private let handler: @Sendable (TaskStoreChange) -> Void

    init(client: RedisClient, channel: String, logger: Logger, handler: @escaping @Sendable (TaskStoreChange) -> Void) {
        self.client = client
        self.channel = channel
        self.logger = logger
        self.handler = handler
    }

    /// Starts the feed's thread.
    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "longhaul-redis-changes"
        thread.start()
    }

    private func run() {
        var delay = Duration.milliseconds(100)
        var everConnected = false
        while true {
            do {
                let generation = client.generation
                let connection = try client.dedicatedConnection()
                _ = try connection.command(["SUBSCRIBE", channel])
                if everConnected {
                    logger.info("Redis change feed reconnected", metadata: ["redis.url": "\(client.url)"])
                }
                everConnected = true
                delay = .milliseconds(100)
                // Messages may have been missed while disconnected: look for work and let streams re-read.
                handler(.resync)
                try listen(connection, generation: generation)
            } catch {
                logger.warning(
                    "Redis change feed lost; reconnecting",
                    metadata: [
                        "redis.url": "\(client.url)", "error.message": "\(error)",
                        "retry.delay_ms": "\(delay.wholeMilliseconds)",
                    ])
                Thread.sleep(forTimeInterval: delay.timeInterval)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// Reads messages until the connection fails or goes stale.
    private func listen(_ connection: RedisConnection, generation: Int) throws(RedisError) {
        var silentSince = ContinuousClock.now
        var pingSentAt: ContinuousClock.Instant?
        while true {
            while let message = try connection.bufferedReply() {
                silentSince = .now
                pingSentAt = nil
                relay(message)
            }
            var descriptor = pollfd(fd: connection.fileDescriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 1000)
            if ready > 0 {
                try connection.readAvailable()
                continue
            }
            if ready < 0, errno == EINTR { continue }
            guard ready == 0 else { throw RedisError.poll(errno: errno) }
            // Other connections found the master gone or changed: this one is stale too.
            guard client.generation == generation else { throw RedisError.masterChanged }
            let now = ContinuousClock.now
            if let sent = pingSentAt {
                if now - sent > Self.pingTimeout { throw RedisError.pingTimeout }
            } else if now - silentSince > Self.pingInterval {
                try connection.send(["PING"])
                try connection.flush()
                pingSentAt = now
            }
        }
    }

    private func relay(_ message: RedisValue) {
        let parts = message.elements
        guard parts.count == 3, parts[0].text == "message", let payload = parts[2].text else { return }
        if payload == "+" {
            handler(.workAvailable)
        } else if let id = TaskID(payload) {
            handler(.task(id))
        }
    }
}
