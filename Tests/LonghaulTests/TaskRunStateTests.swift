import Testing

@testable import Tasks

/// The run's state machine as a value: handles and waiters are names, and each transition's action is checked.
@Suite(.timeLimit(.minutes(1))) struct TaskRunStateTests {
    typealias State = TaskRunState<String, String>

    let start = ContinuousClock.now

    func state(deadlineAfter timeout: Duration = .seconds(60)) -> State {
        State(lastRenewal: start, deadline: start + timeout)
    }

    /// The text and offset of the write, or `nil` for a metadata update.
    func output(_ write: State.Write) -> (text: String, offset: Int)? {
        guard case .output(let pending) = write else { return nil }
        return (pending.text, pending.offset)
    }

    /// The next write's output, when the writer asks for one.
    func nextOutput(_ state: inout State) -> (text: String, offset: Int)? {
        guard case .write(let write) = state.nextWrite() else { return nil }
        return output(write)
    }

    @Test func theFirstEmitStartsTheWriterAndLaterOnesQueueBehindIt() {
        var state = state()
        #expect(state.emit("a") == .startWriter)
        #expect(state.emit("b") == .none)
        #expect(state.update(metadata: ["k": "v"], progress: 0.5) == .none)
        #expect(state.writing)
    }

    @Test func consecutiveChunksTravelAsOneWriteAtTheOffsetOfTheFirst() throws {
        var state = state()
        _ = state.emit("héllo")
        _ = state.emit(" world")
        let first = try #require(nextOutput(&state))
        #expect(first.text == "héllo world")
        #expect(first.offset == 0)
        _ = state.emit("!")
        let second = try #require(nextOutput(&state))
        #expect(second.offset == "héllo world".utf8.count)
        #expect(state.emittedBytes == "héllo world!".utf8.count)
    }

    @Test func anEmptyChunkQueuesNothing() {
        var state = state()
        #expect(state.emit("") == .none)
        #expect(state.pending.isEmpty)
        #expect(!state.writing)
    }

    @Test func anEmitAfterTheFenceIsRefusedAndQueuesNothing() {
        var state = state()
        _ = state.emit("a")
        guard case .fenced = state.fence(.leaseLost) else {
            Issue.record("the first fence did not fence")
            return
        }
        #expect(state.pending.isEmpty)
        #expect(state.emit("b") == .refuse)
        #expect(state.update(metadata: [:], progress: 1) == .refuse)
        #expect(state.pending.isEmpty)
        #expect(state.emittedBytes == 1)
    }

    @Test func theFirstFenceWins() {
        var state = state()
        _ = state.attach("job")
        guard case .fenced(.cancel("job"), _) = state.fence(.renewalOverdue) else {
            Issue.record("the first fence did not cancel the job")
            return
        }
        _ = state.cancelPerformed()
        guard case .none = state.fence(.leaseLost) else {
            Issue.record("a second fence acted")
            return
        }
        #expect(state.fence == .renewalOverdue)
        #expect(state.cancellersInFlight == 0)
    }

    @Test func aCancelBeforeTheJobAttachesCancelsItAsItAttaches() {
        var state = state()
        guard case .none = state.requestCancel() else {
            Issue.record("a cancel with no job attached handed out a handle")
            return
        }
        #expect(state.cancelRequested)
        #expect(state.attach("job") == .cancelSelf)
    }

    @Test func aJobAttachingToARunNotToldToStopRunsOn() {
        var state = state()
        #expect(state.attach("job") == .none)
        guard case .cancel("job") = state.requestCancel() else {
            Issue.record("a cancel of an attached job did not cancel it")
            return
        }
        #expect(state.cancellersInFlight == 1)
    }

    @Test(arguments: [TaskRunState<String, String>.Fence.leaseLost, .renewalOverdue])
    func aJobAttachingToAFencedRunCancelsItself(reason: TaskRunState<String, String>.Fence) {
        var state = state()
        _ = state.fence(reason)
        #expect(state.attach("job") == .cancelSelf)
    }

    @Test func aJobWithNoCancelInFlightDetachesAtOnceAndCannotBeCancelledAfter() {
        var state = state()
        _ = state.attach("job")
        #expect(state.detach() == false)
        guard case .none = state.requestCancel() else {
            Issue.record("a detached job was handed out for cancelling")
            return
        }
        guard case .fenced(.none, _) = state.fence(.leaseLost) else {
            Issue.record("a detached job was cancelled by the fence")
            return
        }
        #expect(state.cancellersInFlight == 0)
    }

    @Test func aDetachingJobWaitsForTheCancelsInFlight() {
        var state = state()
        _ = state.attach("job")
        guard case .cancel = state.requestCancel() else {
            Issue.record("no cancel handed out")
            return
        }
        guard case .cancel = state.deadlinePassed(now: start + .seconds(61)) else {
            Issue.record("no cancel handed out for the deadline")
            return
        }
        #expect(state.detach() == true)
        #expect(state.waitForCancellers("job returns") == nil)
        #expect(state.cancelPerformed() == nil)
        #expect(state.cancelPerformed() == "job returns")
        #expect(state.cancellersInFlight == 0)
    }

    @Test func aCancelDoneBeforeTheJobWaitsLetsItGoAtOnce() {
        var state = state()
        _ = state.attach("job")
        _ = state.requestCancel()
        #expect(state.detach() == true)
        #expect(state.cancelPerformed() == nil)
        #expect(state.waitForCancellers("job returns") == "job returns")
    }

    @Test func aFailedWriteGoesBackFirstInLineWithTheOutputEmittedSince() throws {
        var state = state()
        _ = state.emit("ab")
        guard case .write(let failed) = state.nextWrite() else {
            Issue.record("no write")
            return
        }
        _ = state.emit("cd")
        _ = state.update(metadata: ["k": "v"], progress: nil)
        _ = state.emit("ef")
        #expect(state.writeFailed(failed) == .milliseconds(50))
        let retried = try #require(nextOutput(&state))
        #expect(retried.text == "abcd")
        #expect(retried.offset == 0)
        guard case .write(.update(let metadata, _)) = state.nextWrite() else {
            Issue.record("the update did not keep its place")
            return
        }
        #expect(metadata == ["k": "v"])
        let last = try #require(nextOutput(&state))
        #expect(last.text == "ef")
        #expect(last.offset == 4)
    }

    @Test func theRetryDelayDoublesUpToASecondAndResetsOnSuccess() {
        var state = state()
        var delays: [Duration] = []
        _ = state.update(metadata: [:], progress: 0)
        for _ in 0..<7 {
            guard case .write(let write) = state.nextWrite() else { break }
            delays.append(state.writeFailed(write))
        }
        #expect(
            delays == [
                .milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                .seconds(1), .seconds(1),
            ])
        state.writeSucceeded()
        #expect(state.retryDelay == .milliseconds(50))
    }

    @Test func theWriterStopsWhenTheQueueIsEmptyAndResumesTheDrainWaiters() {
        var state = state()
        #expect(state.drain("idle") == "idle")
        _ = state.emit("a")
        #expect(state.drain("first") == nil)
        #expect(state.drain("second") == nil)
        _ = state.nextWrite()
        guard case .idle(let resume) = state.nextWrite() else {
            Issue.record("the writer did not stop")
            return
        }
        #expect(resume == ["first", "second"])
        #expect(!state.writing)
        #expect(state.emit("b") == .startWriter)
    }

    @Test func theFenceResumesTheDrainWaitersAndTheWriterStopsWithNoneLeft() {
        var state = state()
        _ = state.emit("a")
        _ = state.drain("waiter")
        guard case .fenced(_, let resume) = state.fence(.leaseLost) else {
            Issue.record("not fenced")
            return
        }
        #expect(resume == ["waiter"])
        guard case .idle(let left) = state.nextWrite() else {
            Issue.record("the writer went on after the fence")
            return
        }
        #expect(left.isEmpty)
        #expect(state.drain("late") == "late")
    }

    @Test func theDeadlinePassesOnlyOnce() {
        var state = state(deadlineAfter: .seconds(10))
        _ = state.attach("job")
        #expect(state.deadlinePassed(now: start + .seconds(9)) == nil)
        #expect(!state.timedOut)
        guard case .cancel("job")? = state.deadlinePassed(now: start + .seconds(10)) else {
            Issue.record("the deadline did not cancel the job")
            return
        }
        #expect(state.timedOut)
        #expect(state.deadlinePassed(now: start + .seconds(20)) == nil)
        #expect(state.cancellersInFlight == 1)
    }

    @Test func aRenewalNeverMovesTheLeaseBack() {
        var state = state()
        state.renewed(sentAt: start + .seconds(2))
        state.renewed(sentAt: start + .seconds(1))
        #expect(state.lastRenewal == start + .seconds(2))
    }

    @Test func stoppingTheJobBeforeItAttachesCancelsItAsItAttaches() {
        var state = state()
        guard case .none = state.stopJob() else {
            Issue.record("handed out a handle for a job not attached")
            return
        }
        #expect(state.attach("job") == .cancelSelf)
    }

    @Test func stoppingAnAttachedJobCancelsIt() {
        var state = state()
        #expect(state.attach("job") == .none)
        #expect(state.stopJob() == .cancel("job"))
        #expect(state.cancellersInFlight == 1)
    }
}
