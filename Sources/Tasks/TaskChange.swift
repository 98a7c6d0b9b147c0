/// A change the table reports to its observers.
public enum TaskChange: Sendable, Equatable {
    /// This task's output, progress or state changed.
    case task(TaskID)
    /// Changes may have been missed (a shared store's change feed reconnected): re-read every watched task.
    case all
}
