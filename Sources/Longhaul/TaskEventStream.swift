import FastCGI
import HTML
import Locking
import Logging
import StandardExtensions
import Synchronization
public import Tasks

/// Wakes the streams watching a task when it changes (new text, new state).
///
/// The table calls ``notify(_:)`` for every change; each open stream registers a wake-up closure (which yields into
/// its own signal stream), so a change costs one call per watcher, no polling and no relay task.
public final class TaskChangeHub: Sendable {
    /// A registration, to end it with ``unwatch(_:)``.
    struct Watch: Sendable {
        fileprivate let id: TaskID
        fileprivate let token: UInt64
    }

    private let watchers = LockedValue<[TaskID: [UInt64: @Sendable () -> Void]]>([:])
    private let nextToken = Atomic<UInt64>(0)

    public init() {}

    /// Signals every watcher of a task.
    /// - Parameter id: the task that changed.
    public func notify(_ id: TaskID) {
        let targets = watchers.withLock { $0[id].map { Array($0.values) } ?? [] }
        for wake in targets { wake() }
    }

    /// Signals every watcher of every task (changes may have been missed: they all re-read).
    public func notifyAll() {
        let targets = watchers.withLock { $0.values.flatMap(\.values) }
        for wake in targets { wake() }
    }

    /// Relays a change from the task table.
    /// - Parameter change: what changed.
    public func notify(_ change: TaskChange) {
        switch change {
        case .task(let id): notify(id)
        case .all: notifyAll()
        }
    }

    /// The number of open watchers, for the status page and tests.
    public var watcherCount: Int { watchers.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Starts watching a task.
    /// - Parameters:
    ///   - id: the task.
    ///   - wake: called (on the notifying thread; it must not block) once per change.
    /// - Returns: the registration; pass it to ``unwatch(_:)``.
    func watch(_ id: TaskID, wake: @escaping @Sendable () -> Void) -> Watch {
        let token = nextToken.add(1, ordering: .relaxed).newValue
        watchers.withLock { $0[id, default: [:]][token] = wake }
        return Watch(id: id, token: token)
    }

    /// Stops watching.
    /// - Parameter watch: a registration from ``watch(_:wake:)``.
    func unwatch(_ watch: Watch) {
        watchers.withLock { all in
            all[watch.id]?[watch.token] = nil
            if all[watch.id]?.isEmpty == true { all[watch.id] = nil }
        }
    }
}

/// The server-sent event stream of one task: its text as it grows, then its final state.
///
/// Event ids name the run and an offset into its text (`RUN-BYTES`, UTF-8 bytes; `RUN.CLAIM-BYTES` from a shared
/// store, whose claim tag tells apart two claims a failover gave the same number), so a reconnect with
/// `Last-Event-ID` resumes exactly where the client left off without running the job again, and a resume after
/// another process took the task over gets `reset` and the new run's text, never a splice of two runs. A finished
/// task's stream replays its text, then `done`. Each wake reads only the bytes past the offset. A comment every
/// ``keepAliveInterval`` keeps proxies from timing out and finds clients that have gone.
struct TaskEventStream: Sendable {
    /// How the events are written.
    enum Format: Sendable {
        /// For the page: `delta` is escaped HTML to append; `done` is the final fragment; `error` a message.
        case html(Views)
        /// For API clients: JSON payloads.
        case json
    }

    static let keepAliveInterval: Duration = .seconds(15)

    /// Where a stream starts.
    struct Position: Sendable, Equatable {
        /// The run whose text the client has; `nil` for "whichever run is current" (a plain offset, or none).
        var attempt: Int?
        /// The tag of the claim that made that run's text (``TaskOutput/claim``), where the store gives one.
        var claim: String?
        /// UTF-8 bytes of that run's text the client has.
        var offset: Int

        static let beginning = Position(attempt: nil, offset: 0)

        /// Parses `RUN-BYTES`, `RUN.CLAIM-BYTES` (a shared store's runs), or a plain `BYTES` (the current run).
        init?(_ text: String) {
            let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 {
                let run = parts[0].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
                guard let attempt = Int(run[0]), attempt >= 0, let offset = Int(parts[1]), offset >= 0 else {
                    return nil
                }
                var claim: String?
                if run.count == 2 {
                    guard (1...16).contains(run[1].utf8.count), run[1].utf8.allSatisfy(Self.isTagByte) else {
                        return nil
                    }
                    claim = String(run[1])
                }
                self.init(attempt: attempt, claim: claim, offset: offset)
            } else {
                guard let offset = Int(text), offset >= 0 else { return nil }
                self.init(attempt: nil, offset: offset)
            }
        }

        init(attempt: Int?, claim: String? = nil, offset: Int) {
            self.attempt = attempt
            self.claim = claim
            self.offset = offset
        }

        var eventID: String {
            var bytes: [UInt8] = []
            appendEventID(to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }

        /// Appends ``eventID``'s bytes.
        func appendEventID(to bytes: inout [UInt8]) {
            DecimalText.append(UInt(clamping: attempt ?? 0), to: &bytes)
            if let claim {
                bytes.append(UInt8(ascii: "."))
                bytes.append(contentsOf: claim.utf8)
            }
            bytes.append(UInt8(ascii: "-"))
            DecimalText.append(UInt(clamping: offset), to: &bytes)
        }

        private static func isTagByte(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
        }

        /// What a stream does with a store read made from this position.
        enum Step: Equatable {
            /// The client's text is not the start of the store's run: send `reset` (with this position, at the
            /// run's start) and read again from there.
            case restart(Position)
            /// Send `reset` first when there is one (another run), then the read's text; the client is then at
            /// `position`.
            case deliver(reset: Position?, position: Position)
        }

        /// Compares the client's position with a read of the store, never splicing two texts.
        func step(after output: TaskOutput) -> Step {
            let claim = output.claim.isEmpty ? nil : output.claim
            if let attempt, attempt == output.attempt {
                if let mine = self.claim, let claim, mine != claim {
                    // The same run number from another claim: a Redis failover lost the claim whose text the
                    // client has, and gave its number to the next claim, whose text differs.
                    return .restart(Position(attempt: attempt, claim: claim, offset: 0))
                }
                if output.offset < offset {
                    // The store has less of this run than the client (a failover lost writes the client had seen).
                    return .restart(Position(attempt: attempt, claim: claim ?? self.claim, offset: 0))
                }
            }
            var reset: Position?
            if let attempt, attempt != output.attempt, offset > 0 || output.attempt > attempt {
                // Another process took the task over and started its answer again: so does the client.
                reset = Position(attempt: output.attempt, claim: claim, offset: 0)
            }
            let end = Position(attempt: output.attempt, claim: claim, offset: output.offset + output.text.utf8.count)
            return .deliver(reset: reset, position: end)
        }
    }

    let id: TaskID
    let start: Position
    let format: Format
    let table: TaskTable
    let hub: TaskChangeHub
    let logger: Logger

    /// The response: headers now, events from a handed-off task.
    func response() -> Response {
        Response(
            status: 200,
            headers: [
                HeaderField("Content-Type", "text/event-stream; charset=utf-8"),
                HeaderField("Cache-Control", "no-store"),
                HeaderField("X-Accel-Buffering", "no"),
            ],
            body: .stream { stream in
                let outcome = await run(stream)
                logger.debug("event stream ended", metadata: ["task.id": "\(id)", "stream.end": "\(outcome)"])
            })
    }

    private enum Wake: Sendable {
        case changed
        case keepAlive
    }

    /// The stream's wake-ups, for its one task to await: a change or a keep-alive tick sets a flag, and wakes the
    /// task if it waits. Changes coalesce (a wake re-reads everything new since the last one). A concrete type
    /// rather than an `AsyncStream<Wake>`, whose generic code costs a few thousand instructions per wake.
    private final class Wakes: Sendable {
        private struct State {
            var changed = false
            var keepAlive = false
            var finished = false
            var waiter: UnsafeContinuation<Wake?, Never>?

            /// The wake to hand out now, if any; a keep-alive first (it re-reads the task too).
            mutating func take() -> Wake? {
                if keepAlive {
                    keepAlive = false
                    changed = false
                    return .keepAlive
                }
                if changed {
                    changed = false
                    return .changed
                }
                return nil
            }
        }

        private let state = LockedValue(State())

        /// Notes a wake; resumes the waiting task, if any. Called from any thread; never blocks.
        func signal(_ wake: Wake) {
            let resume: (UnsafeContinuation<Wake?, Never>, Wake)? = state.withLock { state in
                guard !state.finished else { return nil }
                switch wake {
                case .changed: state.changed = true
                case .keepAlive: state.keepAlive = true
                }
                guard let waiter = state.waiter, let next = state.take() else { return nil }
                state.waiter = nil
                return (waiter, next)
            }
            if let (waiter, next) = resume { waiter.resume(returning: next) }
        }

        /// Ends the wakes: a waiting or later ``next()`` returns `nil`.
        func finish() {
            let waiter: UnsafeContinuation<Wake?, Never>? = state.withLock { state in
                state.finished = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }

        /// The next wake, waiting for one; `nil` once finished or when the task is cancelled.
        func next() async -> Wake? {
            await withTaskCancellationHandler {
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Wake?, Never>) in
                    let now: Wake?? = state.withLock { state in
                        if let wake = state.take() { return .some(wake) }
                        if state.finished { return .some(nil) }
                        state.waiter = continuation
                        return nil
                    }
                    if let now { continuation.resume(returning: now) }
                }
            } onCancel: {
                finish()
            }
        }
    }

    /// How a stream ended.
    private enum Outcome: String, CustomStringConvertible {
        case finished = "task finished"
        case clientGone = "client gone"
        case taskGone = "task gone"
        var description: String { rawValue }
    }

    private func run(_ stream: ResponseStream) async -> Outcome {
        let wakes = Wakes()
        let watch = hub.watch(id) { wakes.signal(.changed) }
        defer {
            hub.unwatch(watch)
            wakes.finish()
        }
        return await withDiscardingTaskGroup { group in
            // The keep-alive ticker, a child task: it ends with the stream.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.keepAliveInterval)
                    wakes.signal(.keepAlive)
                }
            }
            let outcome = await deliver(to: stream, wakes: wakes)
            group.cancelAll()
            return outcome
        }
    }

    /// Writes the events: what the task has now, then more on every wake, until the task ends or the client goes.
    private func deliver(to stream: ResponseStream, wakes: Wakes) async -> Outcome {
        // Tell the browser how long to wait before reconnecting after a drop.
        guard await stream.write("retry: 2000\n\n") else { return .clientGone }
        var position = start
        var pendingWake: Wake? = .changed
        while let reason = pendingWake {
            if case .keepAlive = reason {
                guard await stream.write(": keep-alive\n\n") else { return .clientGone }
            }
            // A keep-alive also re-reads the task, in case a change notice was lost.
            let output: TaskOutput?
            do {
                output = try await table.output(of: id, attempt: position.attempt ?? -1, from: position.offset)
            } catch {
                // The store is down (Redis restarting): keep the stream; the change feed's reconnect wakes it.
                guard await stream.write(": task store unavailable, retrying\n\n") else { return .clientGone }
                pendingWake = await wakes.next()
                continue
            }
            guard let output else {
                var events: [UInt8] = []
                appendEvent("error", id: position, to: &events) {
                    appendError("unknown_task", "Unknown or expired task.", to: &$0)
                }
                _ = await stream.write(events)
                return .taskGone
            }
            var events: [UInt8] = []
            switch position.step(after: output) {
            case .restart(let start):
                // The client starts again from the store's text, never a splice of the two.
                position = start
                appendEvent("reset", id: position, to: &events) { $0.append(contentsOf: "reset".utf8) }
                guard await stream.write(events) else { return .clientGone }
                pendingWake = .changed
                continue
            case .deliver(let reset, let end):
                if let reset {
                    appendEvent("reset", id: reset, to: &events) { $0.append(contentsOf: "reset".utf8) }
                }
                position = end
            }
            if !output.text.isEmpty {
                appendEvent("delta", id: position, to: &events) { appendDelta(output.text, to: &$0) }
            }
            if output.status.isFinished, let record = output.finalRecord {
                if record.status == .failed, let failure = record.failure {
                    appendEvent("error", id: position, to: &events) {
                        appendError(failure.type, failure.message, to: &$0)
                    }
                }
                appendEvent("done", id: position, to: &events) { appendDone(record, to: &$0) }
                return await stream.write(events) ? .finished : .clientGone
            }
            if !events.isEmpty {
                guard await stream.write(events) else { return .clientGone }
            }
            pendingWake = await wakes.next()
        }
        return .clientGone
    }

    /// Appends one event: its id and name, then its data, a `data:` line for each line of the payload (a CR, LF or
    /// CRLF in the payload ends a line: a lone CR would end an SSE line early).
    private func appendEvent(
        _ name: StaticString, id: Position, to events: inout [UInt8], payload: (inout [UInt8]) -> Void
    ) {
        events.append(contentsOf: "id: ".utf8)
        id.appendEventID(to: &events)
        events.append(contentsOf: "\nevent: ".utf8)
        name.withUTF8Buffer { events.append(contentsOf: $0) }
        events.append(contentsOf: "\ndata: ".utf8)
        let start = events.count
        payload(&events)
        // Line breaks in the payload (only HTML payloads have any: JSON escapes them) start a new `data:` line.
        if events[start...].contains(where: { $0 == 0x0A || $0 == 0x0D }) {
            let data = Array(events[start...])
            events.removeSubrange(start...)
            var clean = 0
            var index = 0
            while index < data.count {
                let byte = data[index]
                guard byte == 0x0A || byte == 0x0D else {
                    index += 1
                    continue
                }
                events.append(contentsOf: data[clean..<index])
                events.append(contentsOf: "\ndata: ".utf8)
                index += byte == 0x0D && index + 1 < data.count && data[index + 1] == 0x0A ? 2 : 1
                clean = index
            }
            events.append(contentsOf: data[clean...])
        }
        events.append(contentsOf: "\n\n".utf8)
    }

    private func appendDelta(_ text: String, to data: inout [UInt8]) {
        switch format {
        case .html:
            HTML.appendEscaped(text, to: &data)
        case .json:
            data.append(contentsOf: #"{"text":"#.utf8)
            JSONValue.writeString(text, to: &data)
            data.append(UInt8(ascii: "}"))
        }
    }

    private func appendDone(_ record: TaskRecord, to data: inout [UInt8]) {
        switch format {
        case .html(let views): data.append(contentsOf: views.taskFragment(record).rendered.utf8)
        case .json: record.json.write(to: &data)
        }
    }

    private func appendError(_ type: String, _ message: String, to data: inout [UInt8]) {
        switch format {
        case .html: HTML.appendEscaped(message, to: &data)
        case .json: JSONValue.object([("type", .string(type)), ("message", .string(message))]).write(to: &data)
        }
    }
}
