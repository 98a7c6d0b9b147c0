import Logging
import Longhaul
import LonghaulTestSupport
import ServiceLifecycle
import ServiceLifecycleTestKit
import Tasks
import Testing

@Suite(.timeLimit(.minutes(1))) struct TaskTableServiceTests {
    let logger = Logger(label: "test")

    /// A table whose "slow" job runs for `duration` (until cancelled when `nil`).
    func table(jobDuration duration: Duration?) -> TaskTable {
        let job = ClosureJob { _, context in
            try await Task.sleep(for: duration ?? .seconds(3600))
            try context.emit("done")
        }
        return TaskTable(store: MemoryTaskStore(resultTTL: .seconds(60)), jobs: ["slow": job], logger: logger)
    }

    /// Submits a task and waits until it runs.
    func startTask(on table: TaskTable) async throws -> TaskID {
        let id = try table.submit(kind: "slow", input: "").id
        #expect(try await eventually { try table.record(id)?.status == .running })
        return id
    }

    @Test func aTaskRunningAtShutdownFinishesWithinTheGracePeriod() async throws {
        let table = table(jobDuration: .milliseconds(300))
        let service = TaskTableService(table: table, shutdownGrace: .seconds(30), logger: logger)
        let id = try await testGracefulShutdown { trigger in
            async let run: Void = service.run()
            let id = try await startTask(on: table)
            trigger.triggerGracefulShutdown()
            await run
            return id
        }
        #expect(try table.record(id)?.status == .succeeded)
    }

    @Test func aTaskStillRunningAfterTheGracePeriodFailsAsInterrupted() async throws {
        let table = table(jobDuration: nil)
        let service = TaskTableService(table: table, shutdownGrace: .milliseconds(200), logger: logger)
        let id = try await testGracefulShutdown { trigger in
            async let run: Void = service.run()
            let id = try await startTask(on: table)
            trigger.triggerGracefulShutdown()
            await run
            return id
        }
        let record = try #require(try table.record(id))
        #expect(record.status == .failed)
        #expect(record.failure?.kind == .interrupted)
    }

    @Test func skippingTheGracePeriodFailsRunningTasksAtOnce() async throws {
        let table = table(jobDuration: nil)
        let service = TaskTableService(table: table, shutdownGrace: .seconds(3600), logger: logger)
        let id = try await testGracefulShutdown { trigger in
            async let run: Void = service.run()
            let id = try await startTask(on: table)
            trigger.triggerGracefulShutdown()
            service.skipGracePeriod()
            await run
            return id
        }
        #expect(try table.record(id)?.failure?.kind == .interrupted)
    }

    @Test func theSweeperAndHeartbeatServicesStopAfterTheTableHasDrained() async throws {
        let table = table(jobDuration: .milliseconds(300))
        let tasks = TaskTableService(
            table: table, shutdownGrace: .seconds(30), runsSweeperAndHeartbeat: false, logger: logger)
        // As LonghaulRunner lists them: the heartbeat (here with a private store: it only waits) and the sweeper
        // before the table. A service that ended before the shutdown would make run() throw.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [LeaseHeartbeatService(table: table), TaskSweeperService(table: table), tasks],
                logger: logger))
        async let run: Void = group.run()
        let id = try await startTask(on: table)
        await group.triggerGracefulShutdown()
        try await run
        #expect(try table.record(id)?.status == .succeeded)
        #expect(table.runningCount == 0)
    }

    @Test func cancellingTheServiceFailsRunningTasksAsInterruptedNotCancelled() async throws {
        let table = table(jobDuration: nil)
        let service = TaskTableService(table: table, shutdownGrace: .seconds(3600), logger: logger)
        let id = try await testGracefulShutdown { _ in
            let run = Task { await service.run() }
            let id = try await startTask(on: table)
            run.cancel()
            await run.value
            return id
        }
        let record = try #require(try table.record(id))
        #expect(record.status == .failed)
        #expect(record.failure?.kind == .interrupted)
    }
}
