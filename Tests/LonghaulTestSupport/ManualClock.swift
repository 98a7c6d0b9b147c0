public import Foundation
import Locking
import StandardExtensions
public import Tasks

/// A ``TaskClock`` the test moves by hand: time stands still until ``advance(by:)``, which wakes every sleeper whose
/// wait has run out. Both its clocks (monotonic and wall) move together.
public final class ManualClock: TaskClock {
    public init() {}

    private struct Sleeper {
        let id: UInt64
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var elapsed: Duration = .zero
        var sleepers: [Sleeper] = []
        var nextID: UInt64 = 0
        /// Callers of ``waitForSleepers(_:)``: how many sleepers each waits for.
        var watchers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let start = ContinuousClock.now
    private let startDate = Date(timeIntervalSince1970: 1_800_000_000)
    private let state = LockedValue(State())

    public var now: ContinuousClock.Instant { start + state.withLock { $0.elapsed } }

    public var date: Date { startDate + state.withLock { $0.elapsed }.timeInterval }

    /// Moves both clocks forward and wakes the sleepers whose wait has run out.
    /// - Parameter duration: how far.
    public func advance(by duration: Duration) {
        let woken = state.withLock { state in
            state.elapsed += duration
            let now = start + state.elapsed
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    /// Moves both clocks forward by `seconds`.
    public func advance(_ seconds: TimeInterval) {
        advance(by: .milliseconds(Int64(seconds * 1000)))
    }

    public func sleep(for duration: Duration) async throws {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (resumeNow, ready) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                    if Task.isCancelled { return (true, []) }
                    let deadline = start + state.elapsed + duration
                    if duration <= .zero { return (true, []) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    let count = state.sleepers.count
                    let ready = state.watchers.filter { $0.count <= count }.map(\.continuation)
                    state.watchers.removeAll { $0.count <= count }
                    return (false, ready)
                }
                for watcher in ready { watcher.resume() }
                if resumeNow {
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        continuation.resume()
                    }
                }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Waits until at least `count` calls to ``sleep(for:)`` are waiting (so that an ``advance(by:)`` reaches them).
    /// - Parameter count: how many sleepers.
    public func waitForSleepers(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state in
                if state.sleepers.count >= count { return true }
                state.watchers.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
