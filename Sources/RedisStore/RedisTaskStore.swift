import Foundation
import Locking
public import Logging
import StandardExtensions
public import Tasks

/// A ``TaskStore`` in Redis, shared by every backend process on every machine that points at the same server.
///
/// Every transition is one Lua script (one ``RedisScript`` each, under `Scripts/`), so it is atomic, and every time in it is Redis's own.
/// A run owns a task through a claim: a fencing token stored with the task that every write must carry, and a
/// lease its process renews (``renewLeases(_:)``). When a process stops renewing, its leases run out and another
/// process takes the task over from the start under a new token (at least once), up to
/// ``Configuration/maxAttempts`` claims, after which the task fails as `worker_lost`; the old run's writes are
/// refused from then on. Finished tasks' keys expire after the result TTL, so the key count stays bounded.
///
/// Calls block for a round trip: the task table makes them on threads of its own, never on the cooperative pool.
/// Calls that are safe to repeat are retried on a fresh connection after a failure.
public final class RedisTaskStore: TaskStore {
    /// Settings.
    public struct Configuration: Sendable {
        /// Where Redis is.
        public var url: RedisURL
        /// The prefix of every key and channel.
        public var keyPrefix: String = "longhaul:"
        /// How long a finished task is kept.
        public var resultTTL: Duration = .seconds(3600)
        /// How long a claim lasts without renewal before another process may take the task over.
        public var leaseTimeout: Duration = .seconds(15)
        /// The most times a task is claimed (first run plus takeovers) before it fails as `worker_lost`.
        public var maxAttempts: Int = 3
        /// The connect and command timeout.
        public var timeout: Duration = .seconds(2)
        /// Replicas that must have a new task and a finished result before the call returns (`WAIT`); 0 for none.
        public var waitReplicas: Int = 0
        /// How long to wait for them.
        public var waitTimeout: Duration = .seconds(1)

        /// - Parameter url: where Redis is.
        public init(url: RedisURL) {
            self.url = url
        }
    }

    private let configuration: Configuration
    private let client: RedisClient
    private let logger: Logger
    /// This process's identity as a task owner.
    public let ownerID: String
    /// The relay of changes made by other processes to this store's subscribers: a `Service` to run in the
    /// process's service group (before the task table), without which ``subscribeToChanges(_:)`` reports nothing.
    public let changeFeed: RedisChangeFeed
    /// Each script's SHA1 on the server, by script type (see ``loadedHash(of:source:)``).
    private let scriptHashes = LockedValue<[ObjectIdentifier: String]>([:])

    /// - Parameters:
    ///   - configuration: settings.
    ///   - logger: for connection problems.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.client = RedisClient(url: configuration.url, timeout: configuration.timeout)
        self.logger = logger
        let host = ProcessInfo.processInfo.hostName
        ownerID = "\(host):\(getpid()):\(TaskID.random().rawValue.prefix(8))"
        changeFeed = RedisChangeFeed(client: client, channel: configuration.keyPrefix + "changes", logger: logger)
    }

    public var isShared: Bool { true }

    public var leaseTimeout: Duration? { configuration.leaseTimeout }

    /// Checks that Redis answers (at start-up).
    /// - Throws: ``TaskStoreError/unavailable(_:underlying:)``.
    public func ping() throws(TaskStoreError) {
        let reply: RedisValue
        do {
            reply = try client.command(["PING"])
        } catch {
            throw .unavailable(error.message, underlying: error)
        }
        guard reply.text == "PONG" else { throw .unavailable("unexpected PING reply \(reply)") }
    }

    // MARK: - TaskStore

    public func enqueue(_ record: TaskRecord, admission: Admission) throws(TaskStoreError) -> TaskID {
        let reply = try run(
            EnqueueScript(
                maxQueued: admission.maxQueued, id: record.id, kind: record.kind, input: record.input,
                client: record.client, maxPerClient: admission.maxPerClient, idempotencyKey: admission.idempotencyKey,
                idempotencyWindow: admission.idempotencyWindow),
            waitForReplicas: true)
        switch reply.text {
        case "queue_full": throw .queueFull
        case "client_limit": throw .clientLimit
        case let text?: return TaskID(text) ?? record.id
        case nil: throw .unavailable("unexpected enqueue reply \(reply)")
        }
    }

    /// The task, read in one round trip without a script: `MULTI`, `HMGET` of the record's fields, `GET` of its
    /// output, `EXEC`. Every page polls this about once a second per task, so it costs Redis and this process as
    /// little as it can: no Lua (a script run costs Redis several times these three commands), only the fields
    /// a record is made of, and a decoding without Foundation's JSON. The transaction keeps the snapshot whole (a
    /// takeover resets the output and the run number together), as the script did; like the script, it reads
    /// what the server it reaches has, and it is retried on a fresh connection after a failure.
    public func record(for id: TaskID) throws(TaskStoreError) -> TaskRecord? {
        let prefix = configuration.keyPrefix
        let replies: [RedisValue]
        do {
            replies = try client.pipelineRetrying([
                ["MULTI"],
                ["HMGET", prefix + "task:" + id.rawValue] + RedisRecordCodec.recordFields,
                ["GET", prefix + "out:" + id.rawValue],
                ["EXEC"],
            ])
        } catch {
            throw .unavailable(error.message, underlying: error)
        }
        for reply in replies {
            if case .error(let message) = reply { throw .unavailable("Redis read error: \(message)") }
        }
        let results = replies[3].elements
        guard results.count == 2 else { throw .unavailable("unexpected read reply \(replies[3])") }
        for result in results {
            if case .error(let message) = result { throw .unavailable("Redis read error: \(message)") }
        }
        return RedisRecordCodec.decodeRecord(id: id, fields: results[0].elements, output: results[1])
    }

    public func claimNext(maxRunning: Int) throws(TaskStoreError) -> ClaimedTask? {
        // Not retried: a claim whose reply was lost is taken over when its lease runs out.
        let reply = try run(
            ClaimScript(
                maxRunning: maxRunning, nonce: String(UInt64.random(in: .min ... .max), radix: 16),
                leaseTimeout: configuration.leaseTimeout, maxAttempts: configuration.maxAttempts,
                resultTTL: configuration.resultTTL,
                lostFailure: RedisRecordCodec.encodeFailure(Self.lostFailure(attempts: configuration.maxAttempts))),
            retry: false)
        let parts = reply.elements
        guard parts.count == 5, let rawID = parts[0].text, let id = TaskID(rawID), let token = parts[1].text,
            let run = parts[2].integer,
            let record = RedisRecordCodec.decodeRecord(id: id, .array(Array(parts.dropFirst(3))))
        else { return nil }
        return ClaimedTask(claim: TaskClaim(id: id, token: token, attempt: run), record: record)
    }

    public func appendOutput(_ claim: TaskClaim, at offset: Int, _ text: String) throws(TaskStoreError) {
        guard !text.isEmpty else { return }
        let reply = try run(AppendScript(id: claim.id, token: claim.token, offset: offset, text: text))
        guard reply.text == "ok" else { throw .leaseLost }
    }

    public func update(_ claim: TaskClaim, metadata: [String: String], progress: Double?) throws(TaskStoreError) {
        let reply = try run(
            UpdateScript(
                id: claim.id, token: claim.token, metadataJSON: RedisRecordCodec.encodeMetadata(metadata),
                progress: progress))
        guard reply.text == "ok" else { throw .leaseLost }
    }

    @discardableResult
    public func finish(_ claim: TaskClaim, status: TaskStatus, failure: TaskFailure?) throws(TaskStoreError)
        -> TaskRecord?
    {
        precondition(status.isFinished, "finish needs a final state")
        let reply = try run(
            FinishScript(
                id: claim.id, token: claim.token, status: status, failureJSON: RedisRecordCodec.encodeFailure(failure),
                resultTTL: configuration.resultTTL),
            waitForReplicas: true)
        if reply.text == "lost" { throw .leaseLost }
        let parts = reply.elements
        guard parts.count == 3 else { return nil }
        return RedisRecordCodec.decodeRecord(id: claim.id, .array(Array(parts.dropFirst())))
    }

    public func output(of id: TaskID, attempt: Int, from offset: Int) throws(TaskStoreError) -> TaskOutput? {
        let reply = try run(OutputScript(id: id, attempt: attempt, offset: offset))
        let parts = reply.elements
        guard parts.count == 6, let status = parts[0].text.flatMap(TaskStatus.init(rawValue:)) else { return nil }
        // The whole record once the task has finished (for the final event), in the same round trip.
        let finalRecord = status.isFinished ? RedisRecordCodec.decodeRecord(id: id, parts[4]) : nil
        return TaskOutput(
            status: status, attempt: parts[1].integer ?? 0, offset: parts[2].integer ?? 0,
            text: parts[3].text ?? "", finalRecord: finalRecord, claim: parts[5].text ?? "")
    }

    public func cancel(_ id: TaskID) throws(TaskStoreError) -> CancelOutcome {
        let reply = try run(CancelScript(id: id, resultTTL: configuration.resultTTL))
        switch reply.text ?? "" {
        case "cancelled": return .cancelled
        case "requested": return .requested
        case let text where text.hasPrefix("done:"):
            return .alreadyFinished(TaskStatus(rawValue: String(text.dropFirst(5))) ?? .cancelled)
        default: return .notFound
        }
    }

    @discardableResult
    public func sweepExpired() throws(TaskStoreError) -> Int {
        try run(SweepScript()).integer ?? 0
    }

    public func countsByStatus() throws(TaskStoreError) -> [TaskStatus: Int] {
        let values = try run(CountsScript()).elements.map { $0.integer ?? 0 }
        guard values.count == 5 else { throw .unavailable("unexpected counts reply") }
        return [
            .queued: values[0], .running: values[1], .succeeded: values[2], .failed: values[3], .cancelled: values[4],
        ]
    }

    public func renewLeases(_ claims: [TaskClaim]) throws(TaskStoreError) -> LeaseReport {
        let reply = try run(HeartbeatScript(leaseTimeout: configuration.leaseTimeout, claims: claims))
        let lists = reply.elements
        guard lists.count == 2 else { return LeaseReport() }
        return LeaseReport(
            cancelRequested: lists[0].elements.compactMap { $0.text.flatMap(TaskID.init) },
            lost: lists[1].elements.compactMap { $0.text.flatMap(TaskID.init) })
    }

    public func requeue(_ claims: [TaskClaim]) throws(TaskStoreError) -> Int {
        try run(RequeueScript(resultTTL: configuration.resultTTL, claims: claims)).integer ?? 0
    }

    public func subscribeToChanges(_ handler: @escaping @Sendable (TaskStoreChange) -> Void) {
        changeFeed.subscribe(handler)
    }

    // MARK: - Plumbing

    /// Runs a script (retried on a fresh connection when `retry`: every script but the claim is safe to repeat,
    /// since writes carry their claim's token and output its offset), then `WAIT`s for replicas when asked.
    ///
    /// Scripts go by their SHA1 (`EVALSHA`), loaded once per process: sending and hashing the whole source on every
    /// call would cost both sides more than the script itself. A server that does not know it (restarted, or a
    /// replica promoted since) answers `NOSCRIPT` without running anything; the source is sent then.
    private func run<Script: RedisScript>(
        _ script: Script, retry: Bool = true, waitForReplicas: Bool = false
    ) throws(TaskStoreError) -> RedisValue {
        let source = RedisScripts.prelude + Script.body
        let arguments = ["0", configuration.keyPrefix] + script.arguments
        var commands = [
            (loadedHash(of: Script.self, source: source).map { ["EVALSHA", $0] } ?? ["EVAL", source]) + arguments
        ]
        let wait = waitForReplicas && configuration.waitReplicas > 0
        if wait {
            commands.append([
                "WAIT", String(configuration.waitReplicas), String(configuration.waitTimeout.wholeMilliseconds),
            ])
        }
        var replies: [RedisValue]
        do {
            replies = retry ? try client.pipelineRetrying(commands) : try client.pipeline(commands)
            if case .error(let message) = replies[0], message.hasPrefix("NOSCRIPT") {
                scriptHashes.withLock { $0[ObjectIdentifier(Script.self)] = nil }
                commands[0] = ["EVAL", source] + arguments
                replies = retry ? try client.pipelineRetrying(commands) : try client.pipeline(commands)
            }
        } catch {
            throw .unavailable(error.message, underlying: error)
        }
        if case .error(let message) = replies[0] { throw .unavailable("Redis script error: \(message)") }
        if wait, let acknowledged = replies[1].integer, acknowledged < configuration.waitReplicas {
            logger.warning(
                "Redis replicas did not acknowledge a write in time",
                metadata: [
                    "redis.replicas.acknowledged": "\(acknowledged)",
                    "redis.replicas.wanted": "\(configuration.waitReplicas)",
                ])
            throw .unavailable("only \(acknowledged) of \(configuration.waitReplicas) Redis replicas have the write")
        }
        return replies[0]
    }

    /// The SHA1 Redis knows a script by, loaded (`SCRIPT LOAD`) on first use; `nil` when it cannot be loaded now
    /// (the call then sends the source).
    private func loadedHash<Script: RedisScript>(of type: Script.Type, source: String) -> String? {
        if let hash = scriptHashes.withLock({ $0[ObjectIdentifier(type)] }) { return hash }
        guard let hash = try? client.command(["SCRIPT", "LOAD", source]).text else { return nil }
        scriptHashes.withLock { $0[ObjectIdentifier(type)] = hash }
        return hash
    }

    /// The failure kept on a task whose attempts are used up.
    private static func lostFailure(attempts: Int) -> TaskFailure {
        TaskFailure(
            kind: .workerLost,
            message: "The task was interrupted \(attempts) times: the process running it stopped each time.",
            attempts: attempts)
    }
}
