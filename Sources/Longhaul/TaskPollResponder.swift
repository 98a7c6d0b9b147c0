import FastCGI
import Glibc
import HTML
import Tasks

/// Answers the request every open page makes each second, `GET /check?task_id=ID` of a task still queued or
/// running, as a ``QuickResponder``: the id read from `QUERY_STRING` where libfcgi put it, the record read under
/// the in-memory store's lock without a copy, the fragment and its head written into one buffer and sent in one
/// write.
///
/// It declines everything else, and every form of that request it does not recognise exactly (another method, a
/// query with more than the id, an encoded or invalid id, a body, an unknown or finished task, a fragment too
/// large for the buffer): the router then answers, as it answers every request when this responder is not
/// installed. Its answers are the router's byte for byte (`QuickResponderTests`), and so are its access log lines.
final class TaskPollResponder: QuickResponder {
    /// `DOCUMENT_URI` of the route: the base path and `/check`.
    private let checkPath: [UInt8]
    private let store: MemoryTaskStore
    private let views: Views
    private let head = QuickAnswerHead(status: 200, headers: Response.htmlHeaderBlock)!
    private let accessLog: AccessLog?

    /// - Parameters:
    ///   - store: the app's store, when it is this process's memory (a shared store's round trip outweighs what
    ///     this saves).
    ///   - views: the views the router's `/check` route renders with.
    ///   - accessLog: the app's access log, when it is on: each quick answer gets the line the router's would.
    init(store: MemoryTaskStore, views: Views, accessLog: AccessLog? = nil) {
        self.checkPath = Array((views.basePath + "/check").utf8)
        self.store = store
        self.views = views
        self.accessLog = accessLog
    }

    func respond(to request: borrowing FastCGIRequestInPlace, into answer: inout QuickAnswer) -> Bool {
        guard request.value(.requestMethod, is: "GET"),
            checkPath.withUnsafeBufferPointer({ request.value(.documentURI, is: $0) }), Self.hasNoBody(request),
            let query = request.value(.queryString), let id = Self.taskID(query)
        else { return false }
        let started = accessLog == nil ? nil : ContinuousClock.now
        let views = views
        let head = head
        let answered = store.withRecord(for: id) { record -> Bool in
            guard record.status == .queued || record.status == .running else { return false }
            return answer.complete(head: head) { body in
                HTML.write(into: body) { views.writePendingFragment(record, into: &$0) }
            }
        }
        guard answered == true else { return false }
        if let accessLog, let started {
            accessLog.record(
                method: "GET", path: String(decoding: checkPath, as: UTF8.self), status: 200, subject: id.description,
                elapsed: ContinuousClock.now - started)
        }
        return true
    }

    /// No `CONTENT_LENGTH`, an empty one (nginx's for a GET) or `0`.
    private static func hasNoBody(_ request: borrowing FastCGIRequestInPlace) -> Bool {
        guard let length = request.value(.contentLength) else { return true }
        return length[0] == 0 || (length[0] == UInt8(ascii: "0") && length[1] == 0)
    }

    /// The id of a query that is exactly `task_id=ID` (the form the pages poll), else `nil`.
    private static func taskID(_ query: UnsafePointer<UInt8>) -> TaskID? {
        let name: StaticString = "task_id="
        let prefix = name.utf8CodeUnitCount
        guard FastCGIRequestInPlace.matches(query, UnsafeBufferPointer(start: name.utf8Start, count: prefix)) else {
            return nil
        }
        let value = query + prefix
        // Measured only up to one byte past an id's length: a longer value is no id.
        let length = value.withMemoryRebound(to: CChar.self, capacity: TaskID.length + 1) {
            strnlen($0, TaskID.length + 1)
        }
        guard length == TaskID.length else { return nil }
        return TaskID(utf8: UnsafeBufferPointer(start: value, count: length))
    }
}
