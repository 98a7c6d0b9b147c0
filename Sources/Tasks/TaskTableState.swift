/// What a ``TaskTable`` knows of its runs in this process, as one value under one lock: the runs by task, the cancels
/// asked for between a claim and its run's registration, and the failure that stopped jobs end with once a
/// shutdown deadline has passed.
///
/// Each `mutating` method is one transition; it returns what the caller does once it has left the lock (fence a
/// replaced run, cancel a job). Generic over the run so that tests can drive it with plain objects.
struct TaskTableState<Run: AnyObject> {
    /// What the caller of ``register(_:id:)`` does next.
    struct RegisterAction {
        /// A run of the same task this process started earlier (it had let its lease run out): fence it.
        var replaced: Run?
        /// A cancel came between the claim and the registration: tell the new run.
        var cancelRequested: Bool
    }

    /// How long a cancel for a task with no run here yet is remembered.
    static var earlyCancelWindow: Duration { .seconds(10) }

    private(set) var runs: [TaskID: Run] = [:]
    /// Cancels asked for between a claim and its run's registration (a private store only), with when.
    private(set) var earlyCancels: [TaskID: ContinuousClock.Instant] = [:]
    /// Set by ``interrupt(with:)``: jobs stopped from then on end failed with it instead of cancelled.
    private(set) var interruption: TaskFailure?

    /// A claimed task's run starts.
    mutating func register(_ run: Run, id: TaskID) -> RegisterAction {
        let replaced = runs.updateValue(run, forKey: id)
        let early = earlyCancels.removeValue(forKey: id) != nil
        return RegisterAction(replaced: replaced === run ? nil : replaced, cancelRequested: early)
    }

    /// A run has ended (a newer run of the same task stays).
    mutating func unregister(_ run: Run, id: TaskID) {
        if runs[id] === run { runs[id] = nil }
    }

    /// The store accepted a cancel request for a running task.
    /// - Parameters:
    ///   - id: the task.
    ///   - now: the time, to forget old early cancels.
    ///   - rememberEarly: whether to remember it when no run is registered yet (a private store: no heartbeat
    ///     will report it later).
    /// - Returns: the run to tell, if one is registered.
    mutating func requestCancel(_ id: TaskID, now: ContinuousClock.Instant, rememberEarly: Bool) -> Run? {
        if let run = runs[id] { return run }
        guard rememberEarly else { return nil }
        earlyCancels = earlyCancels.filter { now - $0.value < Self.earlyCancelWindow }
        earlyCancels[id] = now
        return nil
    }

    /// A shutdown deadline has passed: jobs stopped from now on end failed with `failure`.
    /// - Returns: the runs to stop.
    mutating func interrupt(with failure: TaskFailure) -> [Run] {
        interruption = failure
        return Array(runs.values)
    }
}
