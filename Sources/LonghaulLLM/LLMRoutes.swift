public import Longhaul

/// The LLM demo's own routes, added beside Longhaul's shared ones:
///
/// ```swift
/// let app = LonghaulApp(table: table, presentation: .llm, logger: logger, addRoutes: LLMRoutes.add)
/// ```
///
/// - `GET /`: the page with the question form (``Longhaul/Views/indexPage()``);
/// - `POST /generate`: the form, starting an ``LLMJob``;
/// - `POST /api/tasks`: the same from JSON `{"query": "..."}`;
/// - `GET /api/openapi.json`: the OpenAPI 3.1 description of the JSON API (generated from `openapi.yaml`).
public enum LLMRoutes {
    /// Adds the routes.
    /// - Parameters:
    ///   - router: the router to add them to.
    ///   - context: what routes need: the table, the views, validation and submission with the app's limits.
    public static func add(_ router: inout Router, _ context: AppContext) {
        let indexPage = IndexPageTemplate(views: context.views)
        router.add("GET", "/") { _ in .html(indexPage.render()) }

        router.add("POST", "/generate") { request throws(HTTPError) in
            let fields = try request.formFields()
            let query = try context.requiredText(fields.first { $0.name == "query" }?.value, field: "query")
            let key = fields.first { $0.name == "idempotency_key" }?.value
            let record = try context.submit(kind: LLMJob.kind, input: query, for: request, idempotencyKey: key)
            return context.taskCreated(record, for: request)
        }

        let openAPI = OpenAPIDocument.text(basePath: context.basePath)
        router.add("GET", "/api/openapi.json") { _ in OpenAPIDocument.response(openAPI) }

        router.add("POST", "/api/tasks") { request throws(HTTPError) in
            let query = try TaskRequest.decode(request, configuration: context.configuration)
            let record = try context.submit(
                kind: LLMJob.kind, input: query, for: request, idempotencyKey: request.header("Idempotency-Key"))
            return context.taskCreated(record, for: request)
        }
    }
}
