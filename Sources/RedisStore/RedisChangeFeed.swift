import Foundation
import Glibc
import Locking
import Logging
public import ServiceLifecycle
import StandardExtensions
import Tasks

/// Relays the store's pub/sub channel to its subscribers: a `Service` whose ``run()`` keeps one subscription alive
/// on a thread of its own (hiredis blocks) until the task running it is cancelled or the service group shuts it down.
///
/// It never gives up and never spins: any read error drops the connection and reconnects with backoff (0.1 s
/// doubling to 1 s); each reconnect reports ``TaskStoreChange/resync`` so streams re-read what they may have
/// missed. Idle, it wakes once a second (to notice a failover found by other connections) and sends a PING
/// after ``pingInterval`` of silence; a PING unanswered for ``pingTimeout`` means a dead peer: reconnect.
///
/// Put it in the service group before the task table, so that it keeps reporting changes while the table drains.
public final class RedisChangeFeed: Service, Sendable {
    /// Silence after which a PING checks the connection.
    static let pingInterval: Duration = .seconds(15)
    /// How long a PING may go unanswered.
    static let pingTimeout: Duration = .seconds(5)

    private let client: RedisClient
    private let channel: String
    private let logger: Logger
    private let handlers = LockedValue<[@Sendable (TaskStoreChange) -> Void]>([])

    init(client: RedisClient, channel: String, logger: Logger) {
        self.client = client
        self.channel = channel
        self.logger = logger
    }

    /// Adds a function called (on the feed's thread) for every change; it must return quickly.
    func subscribe(_ handler: @escaping @Sendable (TaskStoreChange) -> Void) {
        handlers.withLock { $0.append(handler) }
    }

    /// Relays changes until cancelled or shut down gracefully.
    public func run() async throws {
        let stop = try StopSignal()
        defer { stop.close() }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
                    let thread = Thread { [self] in
                        relayUntilStopped(stop)
                        finished.resume()
                    }
                    thread.name = "longhaul-redis-changes"
                    thread.start()
                }
            } onCancel: {
                stop.raise()
            }
        } onGracefulShutdown: {
            stop.raise()
        }
    }

    private func relayUntilStopped(_ stop: StopSignal) {
        var delay = Duration.milliseconds(100)
        var everConnected = false
        while !stop.isRaised {
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
                notify(.resync)
                try listen(connection, generation: generation, stop: stop)
                return
            } catch {
                logger.warning(
                    "Redis change feed lost; reconnecting",
                    metadata: [
                        "redis.url": "\(client.url)", "error.message": "\(error)",
                        "retry.delay_ms": "\(delay.wholeMilliseconds)",
                    ])
                stop.wait(upTo: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    /// Reads messages until the connection fails or goes stale (throws), or the feed is stopped (returns).
    private func listen(_ connection: RedisConnection, generation: Int, stop: StopSignal) throws(RedisError) {
        var silentSince = ContinuousClock.now
        var pingSentAt: ContinuousClock.Instant?
        while true {
            while let message = try connection.bufferedReply() {
                silentSince = .now
                pingSentAt = nil
                relay(message)
            }
            var descriptors = [
                pollfd(fd: connection.fileDescriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stop.fileDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&descriptors, 2, 1000)
            if ready < 0, errno == EINTR { continue }
            guard ready >= 0 else { throw RedisError.poll(errno: errno) }
            if descriptors[1].revents != 0 { return }
            if descriptors[0].revents != 0 {
                try connection.readAvailable()
                continue
            }
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
            notify(.workAvailable)
        } else if let id = TaskID(payload) {
            notify(.task(id))
        }
    }

    private func notify(_ change: TaskStoreChange) {
        for handler in handlers.withLock({ $0 }) { handler(change) }
    }
}

/// A pipe that wakes the feed's thread out of `poll` when the service stops.
private final class StopSignal: Sendable {
    /// The end `poll` watches: readable once raised.
    let fileDescriptor: Int32
    private let writeEnd: Int32

    init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw RedisError.poll(errno: errno) }
        // Not inherited by processes spawned meanwhile.
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        fileDescriptor = ends[0]
        writeEnd = ends[1]
    }

    func raise() {
        var byte: UInt8 = 1
        _ = Glibc.write(writeEnd, &byte, 1)
    }

    var isRaised: Bool {
        var descriptor = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    /// Sleeps for `duration`, or less when raised.
    func wait(upTo duration: Duration) {
        var descriptor = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        _ = poll(&descriptor, 1, Int32(duration.wholeMilliseconds))
    }

    func close() {
        _ = Glibc.close(fileDescriptor)
        _ = Glibc.close(writeEnd)
    }
}
