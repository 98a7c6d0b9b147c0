import FastCGI
import Foundation
import HTML
import Logging
import Locking
import Synchronization
public import Tasks

/// Wakes the streams watching a task when it changes (new text, new state).
///
/// The table calls ``notify(_:)`` for every change; each open stream waits on its own signal stream, so a change
/// costs one yield per watcher and no polling.
public final class TaskChangeHub: Sendable {
    private struct Watcher {
        let continuation: AsyncStream<Void>.Continuation
    }

    private let watchers = LockedValue<[TaskID: [UInt64: Watcher]]>([:])
    private let nextToken = Atomic<UInt64>(0)

    public init() {}

    /// Signals every watcher of a task.
    /// - Parameter id: the task that changed.
    public func notify(_ id: TaskID) {
        let targets = watchers.withLock { $0[id].map { Array($0.values) } ?? [] }
        for watcher in targets { watcher.continuation.yield() }
    }

    /// The number of open watchers, for the status page and tests.
    public var watcherCount: Int { watchers.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Starts watching a task. The stream yields once per change (changes in between coalesce).
    /// - Parameter id: the task.
    /// - Returns: the signals; ending their iteration stops watching.
    func watch(_ id: TaskID) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let token = nextToken.add(1, ordering: .relaxed).newValue
        watchers.withLock { $0[id, default: [:]][token] = Watcher(continuation: continuation) }
        continuation.onTermination = { [weak self] _ in
            self?.watchers.withLock { all in
                all[id]?[token] = nil
                if all[id]?.isEmpty == true { all[id] = nil }
            }
        }
        return stream
    }
}

/// The server-sent event stream of one task: its text as it grows, then its final state.
///
/// Event ids are offsets into the text (in Unicode scalars), so a reconnect with `Last-Event-ID` resumes exactly
/// where the client left off without asking the model again; a finished task's stream replays its text, then
/// `done`. A comment every ``keepAliveInterval`` keeps proxies from timing out and finds clients that have gone.
struct TaskEventStream: Sendable {
    /// How the events are written.
    enum Format: Sendable {
        /// For the page: `delta` is escaped HTML to append; `done` is the final fragment; `error` a message.
        case html(Views)
        /// For API clients: JSON payloads.
        case json
    }

    static let keepAliveInterval: Duration = .seconds(15)

    let id: TaskID
    let start: Int
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

    /// How a stream ended.
    private enum Outcome: String, CustomStringConvertible {
        case finished = "task finished"
        case clientGone = "client gone"
        case taskGone = "task gone"
        var description: String { rawValue }
    }

    private func run(_ stream: ResponseStream) async -> Outcome {
        let (wakes, wake) = AsyncStream.makeStream(of: Wake.self, bufferingPolicy: .bufferingNewest(2))
        let changes = hub.watch(id)
        let relay = Task {
            for await _ in changes { wake.yield(.changed) }
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.keepAliveInterval)
                wake.yield(.keepAlive)
            }
        }
        defer {
            relay.cancel()
            ticker.cancel()
            wake.finish()
        }
        // Tell the browser how long to wait before reconnecting after a drop.
        guard await stream.write("retry: 2000\n\n") else { return .clientGone }
        var sent = start
        var pendingWake: Wake? = .changed
        var iterator = wakes.makeAsyncIterator()
        while let reason = pendingWake {
            if case .keepAlive = reason {
                guard await stream.write(": keep-alive\n\n") else { return .clientGone }
            }
            // A keep-alive also re-reads the task, in case a change notice was lost (a shared store reconnecting).
            do {
                let record: TaskRecord?
                do {
                    record = try table.record(id)
                } catch {
                    // The store is down (Redis restarting): keep the stream and look again at the next keep-alive.
                    guard await stream.write(": task store unavailable, retrying\n\n") else { return .clientGone }
                    pendingWake = await iterator.next()
                    continue
                }
                guard let record else {
                    let message = "Unknown or expired task."
                    _ = await stream.write(event("error", id: sent, data: errorPayload("unknown_task", message)))
                    return .taskGone
                }
                let scalars = record.output.unicodeScalars
                if scalars.count < sent {
                    // Another process took the task over and started its answer again: so does the client.
                    sent = 0
                    guard await stream.write(event("reset", id: 0, data: "reset")) else { return .clientGone }
                }
                if scalars.count > sent {
                    var text = String.UnicodeScalarView()
                    text.append(contentsOf: scalars.dropFirst(sent))
                    sent = scalars.count
                    guard await stream.write(event("delta", id: sent, data: deltaPayload(String(text)))) else {
                        return .clientGone
                    }
                }
                if record.status.isFinished {
                    var final = ""
                    if record.status == .failed, let failure = record.failure {
                        final += event("error", id: sent, data: errorPayload(failure.type, failure.message))
                    }
                    final += event("done", id: sent, data: donePayload(record))
                    return await stream.write(final) ? .finished : .clientGone
                }
            }
            pendingWake = await iterator.next()
        }
        return .clientGone
    }

    private func event(_ name: String, id: Int, data: String) -> String {
        var text = "id: \(id)\nevent: \(name)\n"
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: "
            text += line
            text += "\n"
        }
        return text + "\n"
    }

    private func deltaPayload(_ text: String) -> String {
        switch format {
        case .html: HTML.escape(text).replacingCRs
        case .json: JSONValue.object([("text", .string(text))]).serialized
        }
    }

    private func donePayload(_ record: TaskRecord) -> String {
        switch format {
        case .html(let views): views.taskFragment(record).rendered.replacingCRs
        case .json: record.json.serialized
        }
    }

    private func errorPayload(_ type: String, _ message: String) -> String {
        switch format {
        case .html: HTML.escape(message).replacingCRs
        case .json: JSONValue.object([("type", .string(type)), ("message", .string(message))]).serialized
        }
    }
}

extension String {
    /// A lone CR would end an SSE line early; the text's own line breaks become plain LFs.
    fileprivate var replacingCRs: String {
        guard unicodeScalars.contains("\r") else { return self }
        return replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
    }
}
