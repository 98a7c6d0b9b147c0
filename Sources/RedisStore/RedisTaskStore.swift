import Foundation
public import Logging
import Synchronization
public import Tasks

/// A ``TaskStore`` in Redis, shared by every backend process on every machine that points at the same server.
///
/// Every transition is one Lua script, so it is atomic. Keys (under ``Configuration/keyPrefix``):
/// `task:ID` (hash: the record), `out:ID` (string: the output, appended), `queue` (list of queued ids),
/// `running` (sorted set: id → lease deadline, its size is the cluster-wide number of running tasks),
/// `done:STATUS` (sorted set: id → expiry, for counts and sweeping), and the pub/sub channel `changes`.
///
/// A process owns the tasks it claims through a lease it renews (``renewLeases(_:)``); when a process dies, its
/// leases run out and another process takes the task over from the start (at least once), up to
/// ``Configuration/maxAttempts`` claims, after which the task fails as `worker_lost`. Finished tasks' keys expire
/// after the result TTL, so the key count stays bounded.
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
    private let subscriberStarted = Atomic<Bool>(false)

    /// - Parameters:
    ///   - configuration: settings.
    ///   - logger: for connection problems.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.client = RedisClient(url: configuration.url, timeout: configuration.timeout)
        self.logger = logger
        let host = ProcessInfo.processInfo.hostName
        ownerID = "\(host):\(getpid()):\(TaskID.random().rawValue.prefix(8))"
    }

    public var isShared: Bool { true }

    /// Checks that Redis answers (at start-up).
    /// - Throws: ``TaskStoreError/unavailable(_:)``.
    public func ping() throws(TaskStoreError) {
        let reply = try run { () throws(RedisError) in try client.command(["PING"]) }
        guard reply.text == "PONG" else { throw .unavailable("unexpected PING reply \(reply)") }
    }

    // MARK: - TaskStore

    public func enqueue(_ record: TaskRecord, admission: Admission) throws(TaskStoreError) -> TaskID {
        let reply = try script(
            Scripts.enqueue,
            [
                String(admission.maxQueued), record.id.rawValue, record.kind, record.input,
                Self.milliseconds(record.createdAt), record.client ?? "",
                admission.maxPerClient.map(String.init) ?? "", admission.idempotencyKey ?? "",
                String(Self.milliseconds(admission.idempotencyWindow)),
            ])
        switch reply.text {
        case "queue_full": throw .queueFull
        case "client_limit": throw .clientLimit
        case let text?: return TaskID(text) ?? record.id
        case nil: throw .unavailable("unexpected enqueue reply \(reply)")
        }
    }

    public func record(for id: TaskID) throws(TaskStoreError) -> TaskRecord? {
        let reply = try script(Scripts.read, [id.rawValue])
        return decode(id: id, reply)
    }

    public func claimNext(maxRunning: Int) throws(TaskStoreError) -> TaskRecord? {
        let reply = try script(
            Scripts.claim,
            [
                String(maxRunning), ownerID, Self.milliseconds(Date()), String(Self.milliseconds(configuration.leaseTimeout)),
                String(configuration.maxAttempts), String(Self.milliseconds(configuration.resultTTL)),
                Self.lostFailure(attempts: configuration.maxAttempts),
            ])
        let parts = reply.elements
        guard parts.count == 3, let rawID = parts[0].text, let id = TaskID(rawID) else { return nil }
        return decode(id: id, .array(Array(parts.dropFirst())))
    }

    public func appendOutput(_ id: TaskID, _ text: String) throws(TaskStoreError) {
        guard !text.isEmpty else { return }
        _ = try script(Scripts.append, [id.rawValue, ownerID, text])
    }

    public func update(_ id: TaskID, metadata: [String: String], progress: Double?) throws(TaskStoreError) {
        let json = (try? JSONEncoder().encode(metadata)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        _ = try script(Scripts.update, [id.rawValue, ownerID, json, progress.map { String($0) } ?? ""])
    }

    @discardableResult
    public func finish(_ id: TaskID, status: TaskStatus, failure: TaskFailure?) throws(TaskStoreError) -> TaskRecord? {
        precondition(status.isFinished, "finish needs a final state")
        let failureJSON = failure.flatMap { try? JSONEncoder().encode($0) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let reply = try script(
            Scripts.finish,
            [
                id.rawValue, ownerID, status.rawValue, failureJSON, Self.milliseconds(Date()),
                String(Self.milliseconds(configuration.resultTTL)),
            ])
        let parts = reply.elements
        guard parts.count == 3 else { return nil }
        return decode(id: id, .array(Array(parts.dropFirst())))
    }

    public func cancel(_ id: TaskID) throws(TaskStoreError) -> CancelOutcome {
        let reply = try script(
            Scripts.cancel, [id.rawValue, Self.milliseconds(Date()), String(Self.milliseconds(configuration.resultTTL))])
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
        try script(Scripts.sweep, [Self.milliseconds(Date())]).integer ?? 0
    }

    public func countsByStatus() throws(TaskStoreError) -> [TaskStatus: Int] {
        let values = try script(Scripts.counts, [Self.milliseconds(Date())]).elements.map { $0.integer ?? 0 }
        guard values.count == 5 else { throw .unavailable("unexpected counts reply") }
        return [
            .queued: values[0], .running: values[1], .succeeded: values[2], .failed: values[3], .cancelled: values[4],
        ]
    }

    public func renewLeases(_ ids: [TaskID]) throws(TaskStoreError) -> LeaseReport {
        let reply = try script(
            Scripts.heartbeat,
            [ownerID, Self.milliseconds(Date()), String(Self.milliseconds(configuration.leaseTimeout))]
                + ids.map(\.rawValue))
        let lists = reply.elements
        guard lists.count == 2 else { return LeaseReport() }
        return LeaseReport(
            cancelRequested: lists[0].elements.compactMap { $0.text.flatMap(TaskID.init) },
            lost: lists[1].elements.compactMap { $0.text.flatMap(TaskID.init) })
    }

    public func requeue(_ ids: [TaskID]) throws(TaskStoreError) -> Int {
        try script(Scripts.requeue, [ownerID] + ids.map(\.rawValue)).integer ?? 0
    }

    public func subscribeToChanges(_ handler: @escaping @Sendable (TaskStoreChange) -> Void) {
        guard !subscriberStarted.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in subscribeLoop(handler) }
        thread.name = "longhaul-redis-subscriber"
        thread.start()
    }

    // MARK: - Plumbing

    private func subscribeLoop(_ handler: @escaping @Sendable (TaskStoreChange) -> Void) {
        var delay = Duration.milliseconds(100)
        let channel = configuration.keyPrefix + "changes"
        while true {
            do {
                let connection = try client.dedicatedConnection()
                // A read waits for the next message: time out now and then only to notice a dead server.
                connection.setTimeout(.seconds(30))
                _ = try connection.command(["SUBSCRIBE", channel])
                delay = .milliseconds(100)
                // Messages may have been missed while disconnected: look for work and let streams re-read.
                handler(.workAvailable)
                while true {
                    let message: RedisValue
                    do {
                        message = try connection.readReply()
                    } catch {
                        // A quiet channel times out; a PING tells a live server from a dead one.
                        try connection.send(["PING"])
                        continue
                    }
                    let parts = message.elements
                    guard parts.count == 3, parts[0].text == "message", let payload = parts[2].text else { continue }
                    if payload == "+" {
                        handler(.workAvailable)
                    } else if let id = TaskID(payload) {
                        handler(.task(id))
                    }
                }
            } catch {
                logger.warning(
                    "Redis subscription lost; reconnecting",
                    metadata: ["redis": "\(configuration.url)", "error": "\(error)", "retry_in": "\(delay)"])
                Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func script(_ body: String, _ arguments: [String]) throws(TaskStoreError) -> RedisValue {
        let reply = try run { () throws(RedisError) in
            try client.command(["EVAL", Scripts.prelude + body, "0", configuration.keyPrefix] + arguments)
        }
        if case .error(let message) = reply { throw .unavailable("Redis script error: \(message)") }
        return reply
    }

    private func run(_ body: () throws(RedisError) -> RedisValue) throws(TaskStoreError) -> RedisValue {
        do {
            return try body()
        } catch {
            throw .unavailable(error.message)
        }
    }

    /// A record from `{hash as flat array, output}`, or `nil` when the task does not exist.
    private func decode(id: TaskID, _ reply: RedisValue) -> TaskRecord? {
        let parts = reply.elements
        guard parts.count == 2 else { return nil }
        let flat = parts[0].elements
        guard !flat.isEmpty else { return nil }
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let key = flat[index].text { fields[key] = flat[index + 1].text ?? "" }
            index += 2
        }
        guard let created = fields["created"].flatMap(Double.init) else { return nil }
        var record = TaskRecord(
            id: id, kind: fields["kind"] ?? "", input: fields["input"] ?? "",
            createdAt: Date(timeIntervalSince1970: created / 1000))
        record.status = fields["status"].flatMap(TaskStatus.init(rawValue:)) ?? .queued
        record.startedAt = fields["started"].flatMap(Double.init).map { Date(timeIntervalSince1970: $0 / 1000) }
        record.finishedAt = fields["finished"].flatMap(Double.init).map { Date(timeIntervalSince1970: $0 / 1000) }
        record.output = parts[1].text ?? ""
        if let failure = fields["failure"], !failure.isEmpty {
            record.failure = try? JSONDecoder().decode(TaskFailure.self, from: Data(failure.utf8))
        }
        if let metadata = fields["metadata"], let data = metadata.data(using: .utf8),
            let decoded = try? JSONDecoder().decode([String: String].self, from: data)
        {
            record.metadata = decoded
        }
        record.progress = fields["progress"].flatMap(Double.init)
        record.cancelRequested = fields["cancel"] == "1" && !record.status.isFinished
        record.client = fields["client"].flatMap { $0.isEmpty ? nil : $0 }
        return record
    }

    private static func milliseconds(_ date: Date) -> String {
        String(Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    private static func lostFailure(attempts: Int) -> String {
        let failure = TaskFailure(
            type: "worker_lost",
            message: "The task was interrupted \(attempts) times: the process running it stopped each time.",
            attempts: attempts)
        return (try? JSONEncoder().encode(failure)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}

/// The Lua scripts. ARGV[1] is always the key prefix; the prelude defines the shared helpers.
private enum Scripts {
    static let prelude = """
        local P = ARGV[1]
        local function snapshot(id)
          return {redis.call('HGETALL', P..'task:'..id), redis.call('GET', P..'out:'..id) or ''}
        end
        local function finish(id, status, now, ttl)
          local key = P..'task:'..id
          local client = redis.call('HGET', key, 'client')
          if client and client ~= '' then
            if redis.call('HINCRBY', P..'clients', client, -1) <= 0 then redis.call('HDEL', P..'clients', client) end
          end
          redis.call('HSET', key, 'status', status, 'finished', now)
          redis.call('ZREM', P..'running', id)
          redis.call('ZADD', P..'done:'..status, now + ttl, id)
          redis.call('PEXPIRE', key, ttl)
          redis.call('PEXPIRE', P..'out:'..id, ttl)
          redis.call('PUBLISH', P..'changes', id)
          redis.call('PUBLISH', P..'changes', '+')
        end

        """

    // ARGV: prefix, maxQueued, id, kind, input, created, client, maxPerClient, idempotency key, window (ms).
    static let enqueue = """
        local idem = ARGV[9]
        if idem ~= '' then
          local earlier = redis.call('GET', P..'idem:'..idem)
          if earlier and redis.call('EXISTS', P..'task:'..earlier) == 1 then return earlier end
        end
        if redis.call('LLEN', P..'queue') >= tonumber(ARGV[2]) then return 'queue_full' end
        local client = ARGV[7]
        if client ~= '' and ARGV[8] ~= '' then
          if tonumber(redis.call('HGET', P..'clients', client) or '0') >= tonumber(ARGV[8]) then return 'client_limit' end
        end
        redis.call('HSET', P..'task:'..ARGV[3], 'kind', ARGV[4], 'input', ARGV[5], 'status', 'queued',
          'created', ARGV[6], 'cancel', '0', 'attempts', '0', 'metadata', '{}', 'client', client)
        if client ~= '' then redis.call('HINCRBY', P..'clients', client, 1) end
        if idem ~= '' then redis.call('SET', P..'idem:'..idem, ARGV[3], 'PX', ARGV[10]) end
        redis.call('RPUSH', P..'queue', ARGV[3])
        redis.call('PUBLISH', P..'changes', '+')
        return ARGV[3]
        """

    static let read = """
        if redis.call('EXISTS', P..'task:'..ARGV[2]) == 0 then return false end
        return snapshot(ARGV[2])
        """

    static let claim = """
        local now = tonumber(ARGV[4])
        local lease = tonumber(ARGV[5])
        local ttl = tonumber(ARGV[7])
        -- This process runs the task from now on, under a fresh lease.
        local function take(id, attempts)
          redis.call('HSET', P..'task:'..id, 'status', 'running', 'owner', ARGV[3], 'attempts', attempts + 1)
          redis.call('ZADD', P..'running', now + lease, id)
          redis.call('PUBLISH', P..'changes', id)
          local s = snapshot(id)
          return {id, s[1], s[2]}
        end
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', P..'running', '-inf', now, 'LIMIT', 0, 10)) do
          local key = P..'task:'..id
          if redis.call('HGET', key, 'status') ~= 'running' then
            redis.call('ZREM', P..'running', id)
          else
            local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')
            if redis.call('HGET', key, 'cancel') == '1' then
              finish(id, 'cancelled', now, ttl)
            elseif attempts >= tonumber(ARGV[6]) then
              redis.call('HSET', key, 'failure', ARGV[8])
              finish(id, 'failed', now, ttl)
            else
              -- Its process died: start again from nothing (the stream says reset).
              redis.call('DEL', P..'out:'..id)
              return take(id, attempts)
            end
          end
        end
        if redis.call('ZCARD', P..'running') >= tonumber(ARGV[2]) then return false end
        while true do
          local id = redis.call('LPOP', P..'queue')
          if not id then return false end
          local key = P..'task:'..id
          if redis.call('HGET', key, 'status') == 'queued' then
            redis.call('HSET', key, 'started', now)
            return take(id, tonumber(redis.call('HGET', key, 'attempts') or '0'))
          end
        end
        """

    static let append = """
        local key = P..'task:'..ARGV[2]
        if redis.call('HGET', key, 'status') ~= 'running' or redis.call('HGET', key, 'owner') ~= ARGV[3] then
          return 0
        end
        redis.call('APPEND', P..'out:'..ARGV[2], ARGV[4])
        redis.call('PUBLISH', P..'changes', ARGV[2])
        return 1
        """

    static let update = """
        local key = P..'task:'..ARGV[2]
        if redis.call('HGET', key, 'status') ~= 'running' or redis.call('HGET', key, 'owner') ~= ARGV[3] then
          return 0
        end
        local metadata = cjson.decode(redis.call('HGET', key, 'metadata') or '{}')
        for k, v in pairs(cjson.decode(ARGV[4])) do metadata[k] = v end
        if next(metadata) == nil then
          redis.call('HSET', key, 'metadata', '{}')
        else
          redis.call('HSET', key, 'metadata', cjson.encode(metadata))
        end
        if ARGV[5] ~= '' then redis.call('HSET', key, 'progress', ARGV[5]) end
        redis.call('PUBLISH', P..'changes', ARGV[2])
        return 1
        """

    static let finish = """
        local key = P..'task:'..ARGV[2]
        if redis.call('EXISTS', key) == 0 then return false end
        if redis.call('HGET', key, 'status') == 'running' and redis.call('HGET', key, 'owner') == ARGV[3] then
          local status = ARGV[4]
          if redis.call('HGET', key, 'cancel') == '1' then status = 'cancelled' end
          if status == 'failed' and ARGV[5] ~= '' then redis.call('HSET', key, 'failure', ARGV[5]) end
          finish(ARGV[2], status, tonumber(ARGV[6]), tonumber(ARGV[7]))
        end
        local s = snapshot(ARGV[2])
        return {ARGV[2], s[1], s[2]}
        """

    static let cancel = """
        local key = P..'task:'..ARGV[2]
        local status = redis.call('HGET', key, 'status')
        if not status then return 'notfound' end
        if status == 'queued' then
          redis.call('LREM', P..'queue', 1, ARGV[2])
          finish(ARGV[2], 'cancelled', tonumber(ARGV[3]), tonumber(ARGV[4]))
          return 'cancelled'
        elseif status == 'running' then
          redis.call('HSET', key, 'cancel', '1')
          redis.call('PUBLISH', P..'changes', ARGV[2])
          return 'requested'
        end
        return 'done:'..status
        """

    static let heartbeat = """
        local now = tonumber(ARGV[3])
        local lease = tonumber(ARGV[4])
        local cancelled, lost = {}, {}
        for i = 5, #ARGV do
          local id = ARGV[i]
          local key = P..'task:'..id
          if redis.call('HGET', key, 'status') == 'running' and redis.call('HGET', key, 'owner') == ARGV[2] then
            redis.call('ZADD', P..'running', 'XX', now + lease, id)
            if redis.call('HGET', key, 'cancel') == '1' then table.insert(cancelled, id) end
          else
            table.insert(lost, id)
          end
        end
        return {cancelled, lost}
        """

    static let requeue = """
        local count = 0
        for i = 3, #ARGV do
          local id = ARGV[i]
          local key = P..'task:'..id
          if redis.call('HGET', key, 'status') == 'running' and redis.call('HGET', key, 'owner') == ARGV[2] then
            redis.call('HSET', key, 'status', 'queued', 'owner', '')
            redis.call('HINCRBY', key, 'attempts', -1)
            redis.call('HDEL', key, 'started')
            redis.call('DEL', P..'out:'..id)
            redis.call('ZREM', P..'running', id)
            redis.call('LPUSH', P..'queue', id)
            redis.call('PUBLISH', P..'changes', id)
            count = count + 1
          end
        end
        if count > 0 then redis.call('PUBLISH', P..'changes', '+') end
        return count
        """

    static let sweep = """
        local removed = 0
        for _, status in ipairs({'succeeded', 'failed', 'cancelled'}) do
          removed = removed + redis.call('ZREMRANGEBYSCORE', P..'done:'..status, '-inf', ARGV[2])
        end
        return removed
        """

    static let counts = """
        local now = '(' .. ARGV[2]
        return {redis.call('LLEN', P..'queue'), redis.call('ZCARD', P..'running'),
          redis.call('ZCOUNT', P..'done:succeeded', now, '+inf'),
          redis.call('ZCOUNT', P..'done:failed', now, '+inf'),
          redis.call('ZCOUNT', P..'done:cancelled', now, '+inf')}
        """
}
