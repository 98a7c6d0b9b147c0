import Testing

@testable import Tasks

/// The table's state machine as a value, with plain objects for runs.
@Suite(.timeLimit(.minutes(1))) struct TaskTableStateTests {
    final class Run {}

    let start = ContinuousClock.now

    @Test func registeringARunOfATaskAlreadyRunningHereReplacesAndReturnsTheOldRun() {
        var state = TaskTableState<Run>()
        let id = TaskID.random()
        let (old, new) = (Run(), Run())
        #expect(state.register(old, id: id).replaced == nil)
        #expect(state.register(new, id: id).replaced === old)
        #expect(state.runs[id] === new)
        // The old run ending leaves the new one registered.
        state.unregister(old, id: id)
        #expect(state.runs[id] === new)
        state.unregister(new, id: id)
        #expect(state.runs.isEmpty)
    }

    @Test func aCancelBeforeTheRegistrationAppliesToTheRunOnce() {
        var state = TaskTableState<Run>()
        let id = TaskID.random()
        #expect(state.requestCancel(id, now: start, rememberEarly: true) == nil)
        #expect(state.register(Run(), id: id).cancelRequested)
        #expect(state.earlyCancels.isEmpty)
        let later = TaskID.random()
        #expect(!state.register(Run(), id: later).cancelRequested)
    }

    @Test func aSharedStoreRemembersNoEarlyCancel() {
        var state = TaskTableState<Run>()
        let id = TaskID.random()
        #expect(state.requestCancel(id, now: start, rememberEarly: false) == nil)
        #expect(!state.register(Run(), id: id).cancelRequested)
    }

    @Test func aCancelForARegisteredRunReturnsIt() {
        var state = TaskTableState<Run>()
        let id = TaskID.random()
        let run = Run()
        _ = state.register(run, id: id)
        #expect(state.requestCancel(id, now: start, rememberEarly: true) === run)
        #expect(state.earlyCancels.isEmpty)
    }

    @Test func earlyCancelsAreForgottenAfterTheirWindow() {
        var state = TaskTableState<Run>()
        let old = TaskID.random()
        _ = state.requestCancel(old, now: start, rememberEarly: true)
        _ = state.requestCancel(TaskID.random(), now: start + .seconds(11), rememberEarly: true)
        #expect(state.earlyCancels[old] == nil)
        #expect(state.earlyCancels.count == 1)
    }

    @Test func anInterruptionIsRecordedAndReturnsEveryRunToStop() {
        var state = TaskTableState<Run>()
        let runs = [Run(), Run()]
        for run in runs { _ = state.register(run, id: TaskID.random()) }
        let failure = TaskFailure(kind: .interrupted, message: "shutdown")
        let stopped = state.interrupt(with: failure)
        #expect(stopped.count == 2)
        #expect(runs.allSatisfy { run in stopped.contains { $0 === run } })
        #expect(state.interruption == failure)
    }
}
