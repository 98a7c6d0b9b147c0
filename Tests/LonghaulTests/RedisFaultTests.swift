import Foundation
import Locking
import Logging
import LonghaulTestSupport
import RedisStore
import Tasks
import Testing

@Suite(.timeLimit(.minutes(2))) struct RedisFencingTests {
    func store(lease: Duration = .seconds(15)) throws -> RedisTaskStore {
        let url = try #require(TestRedis.shared.url, "\(TestRedis.shared.failure ?? "")")
        var configuration = RedisTaskStore.Configuration(url: url)
        configuration.keyPrefix = "test:\(TaskID.random().rawValue):"
        configuration.leaseTimeout = lease
        return RedisTaskStore(configuration: configuration, logger: Logger(label: "fencing"))
    }

    @Test func aProcessRetakingItsOwnExpiredTaskFencesItsOldRun() async throws {
        let store = try store(lease: .milliseconds(200))
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(record, maxQueued: 10)
        let old = try #require(try store.claimNext(maxRunning: 5))
        try store.appendOutput(old.claim, at: 0, "old run")
        try await Task.sleep(for: .milliseconds(400))
        // The same process (same store object, same owner) takes it back: a new claim, a new token.
        let new = try #require(try store.claimNext(maxRunning: 5))
        #expect(new.id == record.id)
        #expect(new.claim.token != old.claim.token)
        #expect(new.claim.attempt == old.claim.attempt + 1)
        // Every write of the old run is refused.
        #expect(throws: TaskStoreError.leaseLost) { try store.appendOutput(old.claim, at: 7, " more") }
        #expect(throws: TaskStoreError.leaseLost) { try store.update(old.claim, metadata: ["x": "1"], progress: nil) }
        #expect(throws: TaskStoreError.leaseLost) { try store.finish(old.claim, status: .cancelled, failure: nil) }
        #expect(try store.renewLeases([old.claim]).lost == [record.id])
        #expect(try store.requeue([old.claim]) == 0)
        // The new run is untouched: it still runs, with its own output, and is not cancelled.
        let current = try #require(try store.record(for: record.id))
        #expect(current.status == .running && current.output == "" && !current.cancelRequested)
        try store.appendOutput(new.claim, at: 0, "new run")
        #expect(try store.finish(new.claim, status: .succeeded, failure: nil)?.status == .succeeded)
        #expect(try store.record(for: record.id)?.output == "new run")
    }

    @Test func aCancelledTaskHandedBackAtShutdownEndsCancelledInsteadOfRunningAgain() throws {
        let store = try store()
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(record, maxQueued: 10)
        let claimed = try #require(try store.claimNext(maxRunning: 5))
        #expect(try store.cancel(record.id) == .requested)
        #expect(try store.requeue([claimed.claim]) == 0)
        #expect(try store.record(for: record.id)?.status == .cancelled)
        #expect(try store.claimNext(maxRunning: 5) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func outputIsReadFromTheReadersOffsetAndFromTheStartForANewRun(_ kind: StoreKind) throws {
        let store = try kind.make()
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(record, maxQueued: 10)
        #expect(try store.output(of: record.id, attempt: -1, from: 0)?.status == .queued)
        let claimed = try #require(try store.claimNext(maxRunning: 5))
        try store.appendOutput(claimed.claim, at: 0, "héllo ")
        try store.appendOutput(claimed.claim, at: 7, "world")
        let tail = try #require(try store.output(of: record.id, attempt: 1, from: 7))
        #expect(tail.text == "world" && tail.offset == 7 && tail.attempt == 1 && tail.finalRecord == nil)
        // A reader whose offset belongs to another run gets this run's text from the start.
        let other = try #require(try store.output(of: record.id, attempt: 7, from: 3))
        #expect(other.text == "héllo world" && other.offset == 0)
        try store.finish(claimed.claim, status: .succeeded, failure: nil)
        let final = try #require(try store.output(of: record.id, attempt: 1, from: 12))
        #expect(final.text == "" && final.status == .succeeded && final.finalRecord?.output == "héllo world")
        #expect(try store.output(of: .random(), attempt: 1, from: 0) == nil)
    }
}

@Suite(.timeLimit(.minutes(3))) struct RedisOutageTests {
    @Test func theChangeFeedReconnectsAfterARestartAndReportsNewOutput() async throws {
        let redis = try PrivateRedis()
        var configuration = RedisTaskStore.Configuration(url: redis.url)
        configuration.keyPrefix = "feed:"
        let store = RedisTaskStore(configuration: configuration, logger: Logger(label: "feed"))
        let changes = LockedValue<[TaskStoreChange]>([])
        store.subscribeToChanges { change in changes.withLock { $0.append(change) } }
        // Nothing is relayed until the feed runs (in the process's service group; here in a task of the test's).
        try await Task.sleep(for: .milliseconds(200))
        #expect(changes.withLock { $0.isEmpty })
        let feed = Task { try await store.changeFeed.run() }
        defer { feed.cancel() }
        #expect(try await eventually { changes.withLock { $0.contains(.resync) } })
        changes.withLock { $0 = [] }
        redis.kill()
        try await Task.sleep(for: .milliseconds(300))
        try redis.start()
        // Reconnected by itself: a resync, then live notices of changes made after the restart.
        #expect(try await eventually { changes.withLock { $0.contains(.resync) } })
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(record, maxQueued: 10)
        let claimed = try #require(try store.claimNext(maxRunning: 5))
        try store.appendOutput(claimed.claim, at: 0, "after the restart")
        #expect(try await eventually { changes.withLock { $0.contains(.task(record.id)) } })
        // While Redis is down the feed retries with backoff: a handful of attempts, not a spin.
        redis.kill()
        try await Task.sleep(for: .seconds(2))
        changes.withLock { $0 = [] }
        try redis.start()
        #expect(try await eventually { changes.withLock { $0.contains(.resync) } })
        #expect(changes.withLock { $0.filter { $0 == .resync }.count } == 1)
        // Cancelled, the feed's thread stops and run() returns: no more changes are relayed.
        feed.cancel()
        _ = await feed.result
        changes.withLock { $0 = [] }
        try store.enqueue(TaskRecord(id: .random(), kind: "llm", input: "q2", createdAt: Date()), maxQueued: 10)
        try await Task.sleep(for: .milliseconds(500))
        #expect(changes.withLock { $0.isEmpty })
    }

    @Test func scriptsGoByTheirHashAndAServerThatForgotThemIsSentTheSource() throws {
        let redis = try PrivateRedis()
        var configuration = RedisTaskStore.Configuration(url: redis.url)
        configuration.keyPrefix = "sha:"
        let store = RedisTaskStore(configuration: configuration, logger: Logger(label: "sha"))
        let admin = RedisClient(url: redis.url)
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        try store.enqueue(record, maxQueued: 10)
        for _ in 0..<5 { #expect(try store.output(of: record.id, attempt: -1, from: 0)?.status == .queued) }
        func calls(_ command: String) throws -> Int {
            let stats = try admin.command(["INFO", "commandstats"]).text ?? ""
            guard let line = stats.split(separator: "\r\n").first(where: { $0.hasPrefix("cmdstat_\(command):") }),
                let calls = line.split(separator: "=").dropFirst().first?.split(separator: ",").first
            else { return 0 }
            return Int(calls) ?? 0
        }
        // Two scripts (enqueue, output), each sent whole once (SCRIPT LOAD), then by hash only.
        #expect(try calls("eval") == 0)
        #expect(try calls("evalsha") == 6)
        // A record read is no script at all (a transaction of HMGET and GET).
        #expect(try store.record(for: record.id)?.status == .queued)
        #expect(try calls("evalsha") == 6)
        #expect(try calls("exec") == 1)
        // A server that lost its scripts (a restart, a promoted replica) answers NOSCRIPT: the call still works.
        try admin.command(["SCRIPT", "FLUSH"])
        #expect(try store.output(of: record.id, attempt: -1, from: 0)?.status == .queued)
        #expect(try calls("eval") == 1)
        let claimed = try #require(try store.claimNext(maxRunning: 1))
        #expect(claimed.id == record.id)
    }

    @Test func aRunWhoseLeaseCannotBeRenewedStopsItselfWithoutEndingTheTask() async throws {
        let redis = try PrivateRedis()
        var configuration = RedisTaskStore.Configuration(url: redis.url)
        configuration.keyPrefix = "fence:"
        configuration.leaseTimeout = .seconds(5)
        configuration.timeout = .milliseconds(250)
        let store = RedisTaskStore(configuration: configuration, logger: Logger(label: "fence"))
        let stoppedWhileRedisWasPaused = LockedValue<[TaskID: Bool]>([:])
        let paused = LockedValue(false)
        let job = ClosureJob { _, context in
            try context.emit("started")
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                stoppedWhileRedisWasPaused.withLock { $0[context.taskID] = paused.withLock { $0 } }
                throw error
            }
        }
        let table = TaskTable(store: store, jobs: ["x": job], logger: Logger(label: "fence"))
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        // On a machine loaded far past its cores a run may miss renewals and stop before the pause; that is the
        // same safety at work, but not what this test shows: try again with a new task (at most three times).
        var shown: TaskID?
        for _ in 0..<3 where shown == nil {
            let id = try table.submit(kind: "x", input: "").id
            #expect(try await eventually { try table.record(id)?.output == "started" })
            paused.withLock { $0 = true }
            redis.pause()
            // Nobody can reach Redis, so nobody else can take the task over: the run must stop by itself.
            let stopped = try await eventually(600) { stoppedWhileRedisWasPaused.withLock { $0[id] } != nil }
            paused.withLock { $0 = false }
            redis.resume()
            #expect(stopped)
            if stoppedWhileRedisWasPaused.withLock({ $0[id] }) == true { shown = id }
        }
        let id = try #require(shown, "no run stopped itself while Redis was paused")
        // It wrote nothing on its way out: the task is not cancelled (nobody asked) and not finished by it.
        try await Task.sleep(for: .milliseconds(300))
        let record = try #require(try table.record(id))
        #expect(record.status != .cancelled)
        #expect(record.status != .succeeded)
    }

    @Test func aShortRedisPauseLosesNoOutputAndFailsNoTask() async throws {
        let redis = try PrivateRedis()
        var configuration = RedisTaskStore.Configuration(url: redis.url)
        configuration.keyPrefix = "blip:"
        configuration.leaseTimeout = .seconds(15)
        configuration.timeout = .milliseconds(200)
        let store = RedisTaskStore(configuration: configuration, logger: Logger(label: "blip"))
        let job = ClosureJob { _, context in
            for index in 0..<20 {
                try context.emit("\(index) ")
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let table = TaskTable(store: store, jobs: ["x": job], logger: Logger(label: "blip"))
        let runner = Task { await table.run() }
        defer { runner.cancel() }
        let id = try table.submit(kind: "x", input: "").id
        #expect(try await eventually { (try table.record(id)?.output.count ?? 0) > 0 })
        redis.pause()
        try await Task.sleep(for: .milliseconds(600))
        redis.resume()
        #expect(try await eventually { try table.record(id)?.status.isFinished == true })
        let record = try #require(try table.record(id))
        #expect(record.status == .succeeded)
        #expect(record.output == (0..<20).map { "\($0) " }.joined())
    }
}

@Suite(.timeLimit(.minutes(2))) struct MemoryStoreRaceTests {
    @Test func anIdempotentResubmissionJustAfterTheResultExpiredMakesANewStoredTask() async throws {
        let clock = ManualClock()
        let store = MemoryTaskStore(resultTTL: .seconds(5), clock: clock)
        let table = TaskTable(store: store, jobs: ["x": ClosureJob { _, _ in }], logger: Logger(label: "race"))
        let first = try table.submit(kind: "x", input: "q", idempotencyKey: "k")
        let claimed = try #require(try store.claimNext(maxRunning: 5))
        try store.finish(claimed.claim, status: .succeeded, failure: nil)
        // The key is remembered for 600 s, the result only 5 s: past those, the key must not answer.
        clock.advance(6)
        let second = try table.submit(kind: "x", input: "q", idempotencyKey: "k")
        #expect(second.id != first.id)
        #expect(try table.record(second.id)?.status == .queued)
    }
}

/// A master, a replica and one sentinel of a test's own, on free ports.
final class SentinelCluster: Sendable {
    let masterPort: Int
    let replicaPort: Int
    let sentinelPort: Int
    private let directory: URL
    private let pids = LockedValue<[Int32]>([])

    /// The password every server and the sentinel ask for.
    let password: String

    init() throws {
        // Three ports in a row, given up for others (up to five times) when one is found taken.
        var base = Int.random(in: 50_000..<59_000)
        for _ in 0..<4 where !Self.portsAreFree(base..<base + 3) { base = Int.random(in: 50_000..<59_000) }
        (masterPort, replicaPort, sentinelPort) = (base, base + 1, base + 2)
        password = "s3cret-\(base)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("longhaul-sentinel-\(base)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let auth = ["--requirepass", password, "--masterauth", password]
        try launch(["--port", String(masterPort)] + auth)
        try launch(["--port", String(replicaPort), "--replicaof", "127.0.0.1", String(masterPort)] + auth)
        let configuration = directory.appendingPathComponent("sentinel.conf")
        try """
        port \(sentinelPort)
        bind 127.0.0.1
        requirepass \(password)
        sentinel monitor testmaster 127.0.0.1 \(masterPort) 1
        sentinel auth-pass testmaster \(password)
        sentinel down-after-milliseconds testmaster 1000
        sentinel failover-timeout testmaster 4000
        """.write(to: configuration, atomically: true, encoding: .utf8)
        try launch([configuration.path, "--sentinel"], plainArguments: true)
    }

    deinit {
        for pid in pids.withLock({ $0 }) {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    var url: String { "redis+sentinel://:\(password)@127.0.0.1:\(sentinelPort)/testmaster/0" }

    /// Whether the sentinel has found the replica (it learns of replicas from the master's INFO, every 10 s):
    /// before that, a dead master has no replica to be replaced by.
    func sentinelKnowsTheReplica() -> Bool {
        let sentinel = RedisClient(
            url: RedisURL("redis://:\(password)@127.0.0.1:\(sentinelPort)/0")!, timeout: .milliseconds(500))
        guard let replicas = try? sentinel.command(["SENTINEL", "replicas", "testmaster"]) else { return false }
        return replicas.elements.contains { replica in
            let fields = replica.elements.compactMap(\.text)
            guard let index = fields.firstIndex(of: "flags"), index + 1 < fields.count else { return false }
            return fields[index + 1] == "slave"
        }
    }

    /// Whether the sentinel names the replica as the master (the failover happened).
    func sentinelNamesTheReplicaAsMaster() -> Bool {
        let sentinel = RedisClient(
            url: RedisURL("redis://:\(password)@127.0.0.1:\(sentinelPort)/0")!, timeout: .milliseconds(500))
        let reply = try? sentinel.command(["SENTINEL", "get-master-addr-by-name", "testmaster"])
        return reply?.elements.last?.text == String(replicaPort)
    }

    /// Whether nothing listens on, or is bound to, these loopback ports now (a bind test, closed at once).
    private static func portsAreFree(_ ports: Range<Int>) -> Bool {
        ports.allSatisfy { port in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        }
    }

    /// SIGKILL the first process started (the master).
    func killMaster() {
        if let master = pids.withLock({ $0.first }) { kill(master, SIGKILL) }
    }

    private func launch(_ arguments: [String], plainArguments: Bool = false) throws {
        let all =
            plainArguments
            ? arguments
            : arguments + ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path]
        let pid = try spawnServer("/usr/bin/redis-server", all)
        pids.withLock { $0.append(pid) }
    }
}

@Suite(.timeLimit(.minutes(3))) struct RedisSentinelTests {
    @Test func urlsWithSentinelsAreParsed() throws {
        let url = try #require(RedisURL("redis+sentinel://:p%40ss@10.0.0.1,10.0.0.2:26380,[::1]:26381/mymaster/2"))
        #expect(url.sentinels.map(\.description) == ["10.0.0.1:26379", "10.0.0.2:26380", "[::1]:26381"])
        #expect(url.masterName == "mymaster" && url.database == 2 && url.password == "p@ss")
        #expect(!url.description.contains("p@ss") && url.description.hasPrefix("redis+sentinel://:***@"))
        #expect(RedisURL("redis+sentinel://h1/m")?.database == 0)
        #expect(RedisURL("redis+sentinel://h1") == nil)
        #expect(RedisURL("redis+sentinel:///m") == nil)
        #expect(RedisURL("redis+sentinel://h1:99999/m") == nil)
        #expect(RedisURL("redis+sentinel://h1/m/x") == nil)
    }

    /// Every server and the sentinel ask for a password (the URL's): it reaches all of them.
    @Test func anAcceptedTaskSurvivesAFailoverWhenWritesWaitForTheReplica() async throws {
        let cluster = try SentinelCluster()
        var configuration = RedisTaskStore.Configuration(url: try #require(RedisURL(cluster.url)))
        configuration.keyPrefix = "sentinel:"
        configuration.timeout = .milliseconds(500)
        configuration.waitReplicas = 1
        configuration.waitTimeout = .milliseconds(500)
        let store = RedisTaskStore(configuration: configuration, logger: Logger(label: "sentinel"))
        let record = TaskRecord(id: .random(), kind: "llm", input: "survive", createdAt: Date())
        // Until the sentinel knows the master and the replica has synced, enqueue fails cleanly (503), then works.
        var accepted = false
        for _ in 0..<150 where !accepted {
            accepted = (try? store.enqueue(record, admission: Admission(maxQueued: 10))) == record.id
            if !accepted { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(accepted)
        #expect(try await eventually(2500) { cluster.sentinelKnowsTheReplica() })
        cluster.killMaster()
        // The sentinel promotes the replica (asked directly: cheap to poll); the store then finds it by itself and
        // the task is there.
        #expect(try await eventually(2500) { cluster.sentinelNamesTheReplicaAsMaster() })
        let survived = try await eventually(100) { (try? store.record(for: record.id))?.input == "survive" }
        #expect(survived)
        let claimed = try #require(try store.claimNext(maxRunning: 5))
        #expect(claimed.id == record.id)
    }

    @Test func withoutEnoughReplicasAnEnqueueIsRefusedWithAClearReason() throws {
        let redis = try PrivateRedis()
        var configuration = RedisTaskStore.Configuration(url: redis.url)
        configuration.keyPrefix = "wait:"
        configuration.waitReplicas = 1
        configuration.waitTimeout = .milliseconds(100)
        let store = RedisTaskStore(configuration: configuration, logger: Logger(label: "wait"))
        let record = TaskRecord(id: .random(), kind: "llm", input: "q", createdAt: Date())
        do {
            _ = try store.enqueue(record, admission: Admission(maxQueued: 10))
            Issue.record("an enqueue that no replica confirmed was acknowledged")
        } catch {
            #expect("\(error)".contains("replicas"))
        }
    }
}

/// A memory store that calls `afterClaim` between a claim and the moment the table registers the run.
final class ClaimHookStore: TaskStore {
    let inner: MemoryTaskStore
    let afterClaim: @Sendable (TaskID) -> Void

    init(inner: MemoryTaskStore, afterClaim: @escaping @Sendable (TaskID) -> Void) {
        self.inner = inner
        self.afterClaim = afterClaim
    }

    func enqueue(_ record: TaskRecord, admission: Admission) throws(TaskStoreError) -> TaskID {
        try inner.enqueue(record, admission: admission)
    }
    func record(for id: TaskID) throws(TaskStoreError) -> TaskRecord? { try inner.record(for: id) }
    func claimNext(maxRunning: Int) throws(TaskStoreError) -> ClaimedTask? {
        let claimed = try inner.claimNext(maxRunning: maxRunning)
        if let claimed { afterClaim(claimed.id) }
        return claimed
    }
    func appendOutput(_ claim: TaskClaim, at offset: Int, _ text: String) throws(TaskStoreError) {
        try inner.appendOutput(claim, at: offset, text)
    }
    func update(_ claim: TaskClaim, metadata: [String: String], progress: Double?) throws(TaskStoreError) {
        try inner.update(claim, metadata: metadata, progress: progress)
    }
    func finish(_ claim: TaskClaim, status: TaskStatus, failure: TaskFailure?) throws(TaskStoreError) -> TaskRecord? {
        try inner.finish(claim, status: status, failure: failure)
    }
    func output(of id: TaskID, attempt: Int, from offset: Int) throws(TaskStoreError) -> TaskOutput? {
        try inner.output(of: id, attempt: attempt, from: offset)
    }
    func cancel(_ id: TaskID) throws(TaskStoreError) -> CancelOutcome { try inner.cancel(id) }
    func sweepExpired() throws(TaskStoreError) -> Int { try inner.sweepExpired() }
    func countsByStatus() throws(TaskStoreError) -> [TaskStatus: Int] { try inner.countsByStatus() }
}

@Suite(.timeLimit(.minutes(1))) struct TaskTableRaceTests {
    @Test func aCancelBetweenTheClaimAndTheStartStopsTheJob() async throws {
        let tableBox = LockedValue<TaskTable?>(nil)
        let outcome = LockedValue<CancelOutcome?>(nil)
        let store = ClaimHookStore(inner: MemoryTaskStore(resultTTL: .seconds(60))) { id in
            // The task is running in the store, but no run is registered yet.
            outcome.withLock { $0 = try? tableBox.withLock { $0 }?.cancel(id) }
        }
        let finishedTheWork = LockedValue(false)
        let job = ClosureJob { _, _ in
            try await Task.sleep(for: .seconds(5))
            finishedTheWork.withLock { $0 = true }
        }
        let table = TaskTable(store: store, jobs: ["x": job], logger: Logger(label: "race"))
        tableBox.withLock { $0 = table }
        let runner = Task { await table.run() }
        defer {
            runner.cancel()
            tableBox.withLock { $0 = nil }  // the store's hook holds the table: break the cycle
        }
        let id = try table.submit(kind: "x", input: "").id
        #expect(try await eventually { try table.record(id)?.status.isFinished == true })
        #expect(outcome.withLock { $0 } == .requested)
        #expect(try table.record(id)?.status == .cancelled)
        #expect(!finishedTheWork.withLock { $0 })
    }
}
