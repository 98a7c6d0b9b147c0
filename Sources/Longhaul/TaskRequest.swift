/// The body of `POST /api/tasks`: a JSON object `{"query": "..."}` with no other field.
package enum TaskRequest {
    /// Decodes and checks the body of `POST /api/tasks`: a JSON object whose only field is a string `query`, trimmed,
    /// not blank and within the app's limit. A route of its own so that the fuzz targets can call it.
    /// - Parameters:
    ///   - request: the request (its content type and body).
    ///   - configuration: the app's limits (``LonghaulApp/Configuration/maxQueryBytes``).
    /// - Returns: the trimmed query.
    /// - Throws: ``HTTPError`` 413 (body or query too large), 415 (not `application/json`), 400 (not a JSON object,
    ///   unknown fields, `query` not a string, blank query).
    package static func decode(_ request: Request, configuration: LonghaulApp.Configuration) throws(HTTPError)
        -> String
    {
        let object = try request.jsonObject()
        let unknown = object.keys.filter { $0 != "query" }.sorted()
        guard unknown.isEmpty else {
            throw HTTPError.badRequest("Unknown field(s): \(HTTPError.listing(unknown)). Send {\"query\": \"...\"}.")
        }
        guard object["query"] == nil || object["query"] is String else {
            throw HTTPError.badRequest("\"query\" must be a string.")
        }
        return try LonghaulApp.validQuery(object["query"] as? String, configuration: configuration)
    }
}
