package import Longhaul

/// The body of `POST /api/tasks`: a JSON object `{"query": "..."}` with no other field.
package struct TaskRequest: Decodable {
    /// The query as sent (not yet trimmed or checked), `nil` when the field is absent.
    package var query: String?

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
        static let query = Key(stringValue: "query")
    }

    /// Reads the object's fields: `query` must be a string, and no other field may be there.
    /// - Parameter decoder: the JSON decoder.
    /// - Throws: ``HTTPError`` 400 for unknown fields or a `query` that is not a string (`null` included).
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let unknown = container.allKeys.map(\.stringValue).filter { $0 != "query" }.sorted()
        guard unknown.isEmpty else {
            throw HTTPError.badRequest("Unknown field(s): \(HTTPError.listing(unknown)). Send {\"query\": \"...\"}.")
        }
        guard container.contains(.query) else {
            query = nil
            return
        }
        let mustBeString = HTTPError.badRequest("\"query\" must be a string.")
        if try container.decodeNil(forKey: .query) { throw mustBeString }
        do {
            query = try container.decode(String.self, forKey: .query)
        } catch DecodingError.typeMismatch {
            throw mustBeString
        }
    }

    /// Decodes and checks the body of `POST /api/tasks`: a JSON object whose only field is a string `query`, trimmed,
    /// not blank and within the app's limit. A function of its own so that the fuzz targets can call it.
    /// - Parameters:
    ///   - request: the request (its content type and body).
    ///   - configuration: the app's limits (``LonghaulApp/Configuration/maxQueryBytes``).
    /// - Returns: the trimmed query.
    /// - Throws: ``HTTPError`` 413 (body or query too large), 415 (not `application/json`), 400 (not a JSON object,
    ///   unknown fields, `query` not a string, blank query).
    package static func decode(_ request: Request, configuration: LonghaulApp.Configuration) throws(HTTPError)
        -> String
    {
        let body = try request.jsonBody(TaskRequest.self)
        return try AppContext.requiredText(body.query, field: "query", maxBytes: configuration.maxQueryBytes)
    }
}
