import FastCGI
import Tasks

extension LonghaulApp {
    /// The routes every app shares, whatever its jobs: a task's fragment (`check`), its no-JavaScript page (`task`),
    /// its event streams (`stream`, `/api/tasks/ID/events`), cancel (`cancel`, `DELETE /api/tasks/ID`) and its JSON
    /// (`GET /api/tasks/ID`). Each names its task for the access log.
    static func addTaskRoutes(to router: inout Router, context: AppContext, hub: TaskChangeHub) {
        let base = router.basePath
        let views = context.views
        let table = context.table
        let logger = context.logger

        router.add("GET", "/check") { request throws(HTTPError) in
            let record = try context.task(try request.queryTaskID("task_id"))
            return Response.html(body: views.taskFragmentBody(record)).about(record.id)
        }

        router.add("GET", "/task") { request throws(HTTPError) in
            let record = try context.task(try request.queryTaskID("task_id"))
            return Response.html(views.taskPage(record)).about(record.id)
        }

        router.add("GET", "/stream") { request throws(HTTPError) in
            let record = try context.task(try request.queryTaskID("task_id"))
            let start = try resumeOffset(request, fallback: try request.queryParameter("from"))
            return TaskEventStream(
                id: record.id, start: start, format: .html(views), table: table, hub: hub, logger: logger
            ).response().about(record.id)
        }

        router.add("GET", "/api/tasks/:id/events") { request throws(HTTPError) in
            let record = try context.task(request.pathParameters["id"])
            let start = try resumeOffset(request, fallback: try request.queryParameter("from"))
            return TaskEventStream(id: record.id, start: start, format: .json, table: table, hub: hub, logger: logger)
                .response().about(record.id)
        }

        router.add("POST", "/cancel") { request throws(HTTPError) in
            let (record, _) = try context.cancel(try request.queryTaskID("task_id"))
            if request.isHTMX { return Response.html(views.taskFragment(record)).about(record.id) }
            return Response.redirect(to: "\(base)/task?task_id=\(record.id)").about(record.id)
        }

        router.add("GET", "/api/tasks/:id") { request throws(HTTPError) in
            let record = try context.task(request.pathParameters["id"])
            return Response.json(record.json).about(record.id)
        }

        router.add("DELETE", "/api/tasks/:id") { request throws(HTTPError) in
            let (record, outcome) = try context.cancel(request.pathParameters["id"])
            guard case .object(var members) = record.json else { return Response.json(record.json).about(record.id) }
            members.append(("cancel", .string(outcome)))
            return Response.json(.object(members)).about(record.id)
        }
    }

    /// Where a stream starts: `Last-Event-ID` (a reconnect), else the `from` parameter, else the beginning.
    private static func resumeOffset(_ request: Request, fallback: String?) throws(HTTPError)
        -> TaskEventStream.Position
    {
        guard let text = request.header("Last-Event-ID") ?? fallback, !text.isEmpty else { return .beginning }
        guard let position = TaskEventStream.Position(text) else {
            throw HTTPError.badRequest(
                "The stream position (Last-Event-ID or from) must be an event id such as 1-20 or 1.9f86d081-20, or a whole number."
            )
        }
        return position
    }
}
