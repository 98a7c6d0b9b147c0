import Foundation
import Locking

/// A few dedicated threads for calls that block (a task store's network round trips), so that they never run on
/// Swift's cooperative pool, which has one thread per core and stalls every task when one of its threads waits.
///
/// Work is taken in arrival order by whichever thread is free. The threads live as long as the process.
public final class BlockingExecutor: Sendable {
    private struct Queue {
        var items: [(@Sendable () -> Void)?] = []
        var head = 0
    }

    private let jobs = LockedValue(Queue())
    private let available = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - name: the threads' name (shown by `top -H` and debuggers).
    ///   - threads: how many calls may block at once.
    public init(name: String, threads: Int) {
        for index in 0..<max(1, threads) {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Runs `body` on one of the executor's threads and returns its result.
    /// - Parameter body: the blocking call.
    /// - Returns: what `body` returned.
    /// - Throws: what `body` threw.
    public func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            submit {
                do throws(E) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// Queues `body` to run on one of the executor's threads, without waiting for it.
    /// - Parameter body: the blocking call.
    public func submit(_ body: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.items.append(body) }
        available.signal()
    }

    private func work() {
        while true {
            available.wait()
            let job: (@Sendable () -> Void)? = jobs.withLock { queue in
                guard queue.head < queue.items.count else { return nil }
                let job = queue.items[queue.head]
                queue.items[queue.head] = nil
                queue.head += 1
                // Drop the taken slots once they are the larger part, so the array does not grow forever.
                if queue.head > 256, queue.head * 2 > queue.items.count {
                    queue.items.removeFirst(queue.head)
                    queue.head = 0
                }
                return job
            }
            job?()
        }
    }
}
